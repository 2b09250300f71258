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
from .quantize import (SoftVectorQuantizer, gumbel_like, init_codebook_, nearest_codeword, squared_distances,
                       straight_through)

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

    def gumbel(self, like: torch.Tensor) -> torch.Tensor:
        """Standard Gumbel noise shaped like `like` (M, ...), model m's slice from generator m."""
        if self.generators is None:
            return gumbel_like(like)
        return torch.stack([gumbel_like(like[m], g) for m, g in enumerate(self.generators)])

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
    head can drive sigma_k to 0 and the loss to NaN. `sigma_floor` > 0 (per model) floors every sigma_k
    smoothly, sigma_k^2 <- sigma_k^2 + floor^2. `estimator` replaces the posterior mean by a posterior
    sample (straight-through Gumbel-softmax at `temperature`, per model) or its argmax; see
    `softvq.quantize.estimate`. In evaluation mode a sample-trained model decodes the posterior mean (the
    quantizer's deterministic `eval_estimator`).
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", num_codes: int = 128,
                 beta: float | Sequence[float] = 0.25, noise_std: float | Sequence[float] = 0.0,
                 vq_weight: float | Sequence[float] = 1.0, weighting: str = "paper", log_var_bound: float = 10.0,
                 estimator: str = "mean", temperature: float | Sequence[float] = 1.0,
                 sigma_floor: float | Sequence[float] = 0.0):
        super().__init__(in_features, dim, n_models, reduction)
        self.log_var_head = StackedLinear(in_features, num_codes, n_models)
        # chunk_size None: the whole posterior graph kept, the arithmetic every committed run trained with
        self.quantizer = SoftVectorQuantizer(dim, num_codes, weighting=weighting, learned_log_var=False,
                                             n_models=n_models, estimator=estimator, chunk_size=None)
        self.log_var_bound = log_var_bound
        self.register_buffer("vq_weight", per_model(vq_weight, n_models))
        self.register_buffer("beta", per_model(beta, n_models))
        self.register_buffer("noise_std", per_model(noise_std, n_models))
        self.register_buffer("temperature", per_model(temperature, n_models))
        self.register_buffer("sigma_floor", per_model(sigma_floor, n_models))
        self.floored = bool((self.sigma_floor > 0).any())        # known here: no device sync per step

    def reset_stacked(self, generators):
        for codebook, g in zip(self.quantizer.codebook, generators):
            init_codebook_(codebook, g)

    def log_variances(self, h: torch.Tensor) -> torch.Tensor:
        """(M, B, F) -> log sigma_k^2 (M, B, K), bounded, and floored where sigma_floor > 0."""
        b = self.log_var_bound
        log_var = b * torch.tanh(self.log_var_head(h) / b)
        if self.floored:                                # log(0) = -inf leaves a model without a floor unchanged
            log_var = torch.logaddexp(log_var, 2 * self.sigma_floor.log()[:, None, None])
        return log_var

    def forward(self, h):
        z_e = self.head(h)
        log_var = self.log_variances(h)
        noise = self.noise_std[:, None, None] * self.randn(z_e) if self.training else None
        gumbel = self.gumbel(log_var) if self.training and self.quantizer.estimator == "sample" else None
        out = self.quantizer(z_e, log_var, noise, gumbel, self.temperature[:, None, None])
        n = 1 if self.reduction == "sum" else self.dim           # quantizer terms are summed over d
        losses = {"codebook": self.vq_weight * out.codebook_loss / n,
                  "commitment": self.vq_weight * self.beta * out.commitment_loss / n}
        return out.quantized, z_e, losses


class StochasticQuantized(Bottleneck):
    """SQ-VAE (Takida et al., ICML 2022), the Gaussian variant with one learned isotropic variance s^2 per model.

    The stochastic quantization of the encoder output z (M, B, d) is the categorical posterior

        P(z_q = b_k | z) = softmax_k( -||z - b_k||^2 / (2 s^2) )

    (the paper's Gaussian stochastic dequantization p(z | z_q = b_k) = N(b_k, s^2 I) under a uniform prior
    over the K codewords, inverted by Bayes' rule). While training the decoder gets the Gumbel-softmax
    relaxation z_q = sum_k y_k b_k, y = softmax((log P + g) / temperature), with no straight-through step
    and no stop-gradient; at evaluation it gets the most probable codeword (the deterministic quantization
    that the self-annealed s^2 -> 0 approaches). The latent part of the objective is the paper's ELBO term
    with the expectation over P taken in closed form,

        vq_weight * ( E_P ||z - z_q||^2 / (2 s^2) - H(P(z_q | z)) )

    (+ log K, dropped), summed over d per input (with reduction "mean": divided by d). s^2 starts at
    `var_init` and is learned; log s^2 is clamped to [-log_var_bound, log_var_bound]. z_e is z.
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", num_codes: int = 128,
                 var_init: float | Sequence[float] = 1.0, temperature: float | Sequence[float] = 1.0,
                 vq_weight: float | Sequence[float] = 1.0, log_var_bound: float = 10.0):
        super().__init__(in_features, dim, n_models, reduction)
        self.codebook = nn.Parameter(torch.empty(n_models, num_codes, dim))
        self.log_var = nn.Parameter(per_model(var_init, n_models).log())          # log s^2, (M,)
        self.log_var_bound = log_var_bound
        self.register_buffer("temperature", per_model(temperature, n_models))
        self.register_buffer("vq_weight", per_model(vq_weight, n_models))

    def reset_stacked(self, generators):
        for codebook, g in zip(self.codebook, generators):
            init_codebook_(codebook, g)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """log P(z_q = b_k | z) up to a constant, (M, B, K)."""
        log_var = self.log_var.clamp(-self.log_var_bound, self.log_var_bound)[:, None, None]
        return -0.5 * squared_distances(z, self.codebook) * torch.exp(-log_var)

    def forward(self, h):
        z = self.head(h)
        logits = self.logits(z)                                   # (M, B, K)
        log_p = torch.log_softmax(logits, -1)
        p = log_p.exp()
        if self.training:
            y = torch.softmax((log_p + self.gumbel(log_p)) / self.temperature[:, None, None], -1)
            z_q = y @ self.codebook                               # (M, B, d)
        else:
            z_q = nearest_codeword(z, self.codebook)[0]           # argmax P: the nearest codeword
        latent = -(p * logits).sum(-1) + (p * log_p).sum(-1)      # E_P dist / (2 s^2) - H(P), per input
        n = 1 if self.reduction == "sum" else self.dim
        return z_q, z, {"sq": self.vq_weight * latent.mean(-1) / n}


BOTTLENECKS = {
    "ae": Identity,
    "vae": Gaussian,
    "beta_vae": Gaussian,
    "info_dropout": InformationDropout,
    "vqvae": VectorQuantized,
    "soft_vqvae": SoftVectorQuantized,
    "sqvae": StochasticQuantized,
}
