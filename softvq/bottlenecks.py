"""The six bottlenecks the paper compares; the only part in which its models differ.

One interface: `bottleneck(h)` with encoder features h (M, B, F) returns
    z_dec  (M, B, d)  the code fed to the decoder,
    z_e    (M, B, d)  the code used downstream (clustering, classification, t-SNE),
    losses {name: (M,)} the bottleneck's loss terms, already weighted, averaged over the batch.
Latent loss terms are summed over the code dimension per input (negative log-likelihood style); with
`reduction="mean"` they are averaged over it instead, as the authors' public code does.

Per-model scalars (beta, noise_std, vq_weight) are buffers of shape (M,), so a stack may hold models that differ in
them. Random draws come from `self.generators` (one per model, set by the trainer) so that a model
trained in a stack sees exactly the noise it sees alone.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .nets import StackedLinear
from .quantize import SoftVectorQuantizer, init_codebook_, nearest_codeword, straight_through

REDUCTIONS = ("sum", "mean")


def per_model(value: float | Sequence[float], n_models: int) -> torch.Tensor:
    """A scalar or one value per model -> float tensor (M,)."""
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        return t.expand(n_models).clone()
    if t.numel() != n_models:
        raise ValueError(f"expected 1 or {n_models} values, got {t.numel()}")
    return t


class Bottleneck(nn.Module):
    """Base class: heads from features to codes, per-model noise, loss reduction."""

    def __init__(self, in_features: int, dim: int, n_models: int = 1, reduction: str = "sum"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
        self.dim, self.n_models, self.reduction = dim, n_models, reduction
        self.head = StackedLinear(in_features, dim, n_models)
        self.generators: Sequence[torch.Generator] | None = None

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like `like` (M, ...), model m's slice from generator m."""
        if self.generators is None:
            return torch.randn_like(like)
        return torch.stack([torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype)
                            for g in self.generators])

    def reduce(self, per_unit: torch.Tensor) -> torch.Tensor:
        """(M, B, d) per-unit loss -> (M,): sum (or mean) over units, mean over the batch."""
        per_input = per_unit.sum(-1) if self.reduction == "sum" else per_unit.mean(-1)
        return per_input.mean(-1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


class Identity(Bottleneck):
    """Baseline autoencoder: z_e goes straight to the decoder."""

    def forward(self, h):
        z_e = self.head(h)
        return z_e, z_e, {}


class Gaussian(Bottleneck):
    """VAE (beta = 1) and beta-VAE: mean and log-variance heads, reparameterisation, beta * KL(q || N(0, I)).

    Training feeds a sample to the decoder; evaluation feeds the mean. z_e is the mean.
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", beta: float | Sequence[float] = 1.0):
        super().__init__(in_features, dim, n_models, reduction)
        self.log_var_head = StackedLinear(in_features, dim, n_models)
        self.register_buffer("beta", per_model(beta, n_models))

    def forward(self, h):
        mu, log_var = self.head(h), self.log_var_head(h)
        z = mu + torch.exp(0.5 * log_var) * self.randn(mu) if self.training else mu
        kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1)
        return z, mu, {"kl": self.beta * self.reduce(kl)}


class InformationDropout(Bottleneck):
    """Information dropout (Achille & Soatto 2018): z = f(x) * exp(alpha(x) * eps), eps ~ N(0, 1).

    f(x) >= 0 (softplus head, standing in for the ReLU units the method assumes), alpha(x) =
    max_alpha * sigmoid(head) (0.7 as in the original). With the log-uniform prior for ReLU activations
    the KL term is -log alpha(x) per unit up to a constant; it is weighted by beta. z_e is f(x).
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", beta: float | Sequence[float] = 1.0,
                 max_alpha: float = 0.7):
        super().__init__(in_features, dim, n_models, reduction)
        self.alpha_head = StackedLinear(in_features, dim, n_models)
        self.max_alpha = max_alpha
        self.register_buffer("beta", per_model(beta, n_models))

    def forward(self, h):
        f = F.softplus(self.head(h))
        log_alpha = math.log(self.max_alpha) + F.logsigmoid(self.alpha_head(h))
        z = f * torch.exp(log_alpha.exp() * self.randn(f)) if self.training else f
        return z, f, {"kl": self.beta * self.reduce(-log_alpha)}


class VectorQuantized(Bottleneck):
    """VQ-VAE (van den Oord et al. 2017): nearest codeword (eq. 1), straight-through gradient,
    loss ||sg(z_e) - z_q||^2 + beta ||z_e - sg(z_q)||^2. Codebook init: uniform unit scaling."""

    def __init__(self, in_features, dim, n_models=1, reduction="sum", num_codes: int = 128,
                 beta: float | Sequence[float] = 0.25):
        super().__init__(in_features, dim, n_models, reduction)
        self.codebook = nn.Parameter(torch.empty(n_models, num_codes, dim))
        self.register_buffer("beta", per_model(beta, n_models))

    def reset_stacked(self, generators):
        for codebook, g in zip(self.codebook, generators):
            init_codebook_(codebook, g)

    def forward(self, h):
        z_e = self.head(h)
        z_q, _ = nearest_codeword(z_e, self.codebook)
        losses = {"codebook": self.reduce((z_e.detach() - z_q).pow(2)),
                  "commitment": self.beta * self.reduce((z_e - z_q.detach()).pow(2))}
        return straight_through(z_e, z_q), z_e, losses


class SoftVectorQuantized(Bottleneck):
    """Soft VQ-VAE (the paper): two heads, z_e (d) and the log variances of the K components; Gaussian
    noise on z_e while training; the posterior-mean estimator (eq. 5-7); loss eq. 27,

        vq_weight * ( ||sg(z_e) - z_hat||^2 + beta ||z_e - sg(z_hat)||^2 ),

    decoder input z_e + sg(z_hat - z_e). vq_weight is 1 in the paper and 3 in the authors' MNIST code.
    The log-variance head is bounded to [-log_var_bound, log_var_bound] by a scaled tanh: an unbounded
    head can drive sigma_k to 0 and the loss to NaN.
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", num_codes: int = 128,
                 beta: float | Sequence[float] = 0.25, noise_std: float | Sequence[float] = 0.0,
                 vq_weight: float | Sequence[float] = 1.0, weighting: str = "paper", log_var_bound: float = 10.0):
        super().__init__(in_features, dim, n_models, reduction)
        self.log_var_head = StackedLinear(in_features, num_codes, n_models)
        self.quantizer = SoftVectorQuantizer(dim, num_codes, weighting=weighting, learned_log_var=False,
                                             n_models=n_models)
        self.log_var_bound = log_var_bound
        self.register_buffer("vq_weight", per_model(vq_weight, n_models))
        self.register_buffer("beta", per_model(beta, n_models))
        self.register_buffer("noise_std", per_model(noise_std, n_models))

    def reset_stacked(self, generators):
        for codebook, g in zip(self.quantizer.codebook, generators):
            init_codebook_(codebook, g)

    def log_variances(self, h: torch.Tensor) -> torch.Tensor:
        """(M, B, F) -> log sigma_k^2 (M, B, K), bounded."""
        b = self.log_var_bound
        return b * torch.tanh(self.log_var_head(h) / b)

    def forward(self, h):
        z_e = self.head(h)
        noise = self.noise_std[:, None, None] * self.randn(z_e) if self.training else None
        z_dec, out = self.quantizer(z_e, self.log_variances(h), noise)
        n = 1 if self.reduction == "sum" else self.dim           # quantizer terms are summed over d
        losses = {"codebook": self.vq_weight * out["codebook"].mean(-1) / n,
                  "commitment": self.vq_weight * self.beta * out["commitment"].mean(-1) / n}
        return z_dec, z_e, losses


BOTTLENECKS = {
    "ae": Identity,
    "vae": Gaussian,
    "beta_vae": Gaussian,
    "info_dropout": InformationDropout,
    "vqvae": VectorQuantized,
    "soft_vqvae": SoftVectorQuantized,
}
