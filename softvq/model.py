"""An autoencoder = encoder body + bottleneck + decoder, with its reconstruction loss.

All tensors carry the leading model axis M of `softvq.nets` (M = 1 for a single model).
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .bottlenecks import BOTTLENECKS
from .nets import NETWORKS, reset_stacked

RECONSTRUCTIONS = ("bce", "mse_var")


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """bfloat16 / float16 -> float32; float32 and float64 unchanged."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class AutoEncoder(nn.Module):
    """x (M, B, C, H, W) in [0, 1] -> decoder logits, z_e and named per-model losses (M,).

    Reconstruction loss:
      "bce"     -log p(x | z) under independent Bernoulli pixels (the paper's -log p(x | z_hat)),
      "mse_var" mean squared error of sigmoid(logits) divided by the training-set pixel variance
                (the authors' public code).
    Summed over pixels per input with reduction "sum", averaged with "mean"; averaged over the batch.
    """

    def __init__(self, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module,
                 recon: str = "bce", pixel_var: float = 1.0):
        super().__init__()
        if recon not in RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction loss {recon!r}; expected one of {RECONSTRUCTIONS}")
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder
        self.recon, self.pixel_var = recon, pixel_var

    def reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.recon == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            per_pixel = (torch.sigmoid(logits) - x).pow(2) / self.pixel_var
        per_input = per_pixel.flatten(2)
        per_input = per_input.sum(-1) if self.bottleneck.reduction == "sum" else per_input.mean(-1)
        return per_input.mean(-1)                                   # (M,)

    @staticmethod
    def pixel_squared_error(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(M,): the mean squared error per pixel of each decoded image sigmoid(logits) in [0, 1] against x
        (M, B, ...), summed over the batch (the same measure for every loss and bottleneck)."""
        return (torch.sigmoid(logits) - x).pow(2).flatten(2).mean(-1).sum(-1)

    def forward(self, x: torch.Tensor) -> dict:
        """Under a bfloat16 autocast only the encoder and decoder bodies run in bfloat16: the bottleneck
        (heads, posterior softmax, KL and VQ terms) and the reconstruction loss stay float32."""
        h = self.encoder(x)
        with torch.autocast(h.device.type, enabled=False):
            z_dec, z_e, losses = self.bottleneck(at_least_float32(h))
        logits = self.decoder(z_dec)
        losses = {"recon": self.reconstruction_loss(at_least_float32(logits), x), **losses}
        return {"logits": logits, "z_e": z_e, "losses": losses, "total": sum(losses.values())}

    @contextlib.contextmanager
    def evaluating(self):
        """Evaluation mode and no gradients inside the block; the previous mode is restored after it."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield self
        finally:
            self.train(was_training)

    def stacked_batches(self, x: torch.Tensor, batch_size: int = 1000):
        """Chunks of x (N, ...) on the model's device, repeated for every model: (M, B, ...) each."""
        device = next(self.parameters()).device
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            yield xb.expand(self.bottleneck.n_models, *xb.shape)

    def encode(self, x: torch.Tensor, batch_size: int = 1000, decoder_input: bool = False) -> torch.Tensor:
        """z_e of every input for every model: x (N, ...) -> (M, N, d), in evaluation mode; with `decoder_input`
        the code the decoder gets instead (a quantizer's quantized code)."""
        return self.encode_both(x, batch_size)[0 if decoder_input else 1]

    def encode_both(self, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's input and z_e of every input for every model, from one pass: two (M, N, d)."""
        with self.evaluating():
            views = [self.bottleneck(self.encoder(xb))[:2] for xb in self.stacked_batches(x, batch_size)]
        return torch.cat([v[0] for v in views], dim=1), torch.cat([v[1] for v in views], dim=1)

    def reconstruction_error(self, x: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
        """Evaluation-mode reconstruction of x (N, ...) per model, each (M,) on the CPU: "recon", the model's own
        reconstruction loss per input (averaged over x), and "mse", the mean squared error per pixel of the
        decoded image in [0, 1] (the same measure for every loss and bottleneck)."""
        recon, squared = 0.0, 0.0
        with self.evaluating():
            for xb in self.stacked_batches(x, batch_size):
                logits = at_least_float32(self.decoder(self.bottleneck(self.encoder(xb))[0]))
                recon = recon + self.reconstruction_loss(logits, xb) * xb.shape[1]
                squared = squared + self.pixel_squared_error(logits, xb)
        return {"recon": (recon / len(x)).cpu(), "mse": (squared / len(x)).cpu()}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded images (M, N, ...) of x (N, ...) in evaluation mode, pixel values in [0, 1]."""
        with self.evaluating():
            (xb,) = self.stacked_batches(x, len(x))
            return torch.sigmoid(self.forward(xb)["logits"])


def build_model(image_shape: Sequence[int], bottleneck: str | type, dim: int, net: str = "mlp",
                seeds: Sequence[int] = (0,), recon: str = "bce", pixel_var: float = 1.0,
                widths: Sequence[int] | None = None, **bottleneck_kwargs) -> AutoEncoder:
    """A stack of len(seeds) autoencoders, model m initialised from torch.Generator(seed=seeds[m]).

    `bottleneck` is a name of BOTTLENECKS or a bottleneck class (e.g. one of `softvq.peers.PEERS`, today's
    quantizers, which need an extra); `bottleneck_kwargs` go to its constructor (beta, num_codes,
    noise_std, ...). `widths` replaces the encoder's layer widths (MLP: 500-500-2000, CNN: 64-128-256-512;
    the decoder mirrors them), e.g. for small test models. A model built in a stack has the same initial
    weights as built alone.
    """
    if not isinstance(bottleneck, type) and bottleneck not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {bottleneck!r}; expected one of {sorted(BOTTLENECKS)} or a class")
    if net not in NETWORKS:
        raise ValueError(f"unknown network {net!r}; expected one of {sorted(NETWORKS)}")
    n = len(seeds)
    enc_cls, dec_cls = NETWORKS[net]
    enc_widths, dec_widths = ((tuple(widths),), (tuple(reversed(widths)),)) if widths else ((), ())
    encoder = enc_cls(image_shape, *enc_widths, n_models=n)
    kind = bottleneck if isinstance(bottleneck, type) else BOTTLENECKS[bottleneck]
    model = AutoEncoder(encoder, kind(encoder.out_features, dim, n_models=n, **bottleneck_kwargs),
                        dec_cls(dim, image_shape, *dec_widths, n_models=n), recon=recon, pixel_var=pixel_var)
    reset_stacked(model, [torch.Generator().manual_seed(int(s)) for s in seeds])
    return model
