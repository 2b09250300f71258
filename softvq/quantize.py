"""Vector quantizers: the soft (Bayesian) quantizer of the paper and the hard VQ-VAE quantizer.

Every function here broadcasts over leading axes, so the same code serves a single model
(`z` of shape (N, d), codebook (K, d)) and a stack of M models trained together
(`z` (M, N, d), codebook (M, K, d)).
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

WEIGHTINGS = ("paper", "official", "svhn_code")
ESTIMATORS = ("mean", "sample", "argmax")


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """||z_n - mu_k||^2 for all n, k: (..., N, d) x (..., K, d) -> (..., N, K).

    Expanded as |z|^2 - 2 z.mu + |mu|^2 (one matrix product, no square root as in
    `torch.cdist(...)**2`, whose gradient is unstable at zero distance) and clamped at 0.
    """
    cross = z @ codebook.transpose(-1, -2)                      # (..., N, K)
    z_sq = z.pow(2).sum(-1, keepdim=True)                       # (..., N, 1)
    mu_sq = codebook.pow(2).sum(-1).unsqueeze(-2)               # (..., 1, K)
    return (z_sq - 2 * cross + mu_sq).clamp_min(0)


def _against_inputs(log_var: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """log sigma_k^2 (..., K), one variance per component, as (..., 1, K) against the N inputs; (..., N, K) as is."""
    return log_var.unsqueeze(-2) if log_var.dim() == codebook.dim() - 1 else log_var


def posterior_logits(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor,
                     weighting: str = "paper") -> torch.Tensor:
    """The unnormalised log posterior of eq. 7: -||z - mu_k||^2 / (2 sigma_k^2) - (d/2) log sigma_k^2, (..., N, K).

    Shapes and `weighting` as in `soft_quantize`; a softmax over the last axis gives p(mu_k | z).
    """
    if z.shape[-1] != codebook.shape[-1]:
        raise ValueError(f"code dimension {z.shape[-1]} does not match codebook dimension {codebook.shape[-1]}")
    if log_var.shape[-1] != codebook.shape[-2]:
        raise ValueError(f"log_var has {log_var.shape[-1]} components, codebook has {codebook.shape[-2]}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    log_var = _against_inputs(log_var, codebook)
    d = z.shape[-1]
    dist = squared_distances(z, codebook)                       # (..., N, K)
    log_weight = -0.5 * d * log_var if weighting == "paper" else 0.5 * log_var
    return -0.5 * dist * torch.exp(-log_var) + log_weight       # (..., N, K)


def soft_quantize(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor,
                  weighting: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior-mean (MMSE) soft quantization, paper eq. 5-7.

    The noisy code is modelled as the mixture p(z) = 1/K sum_k N(z; mu_k, sigma_k^2 I) (eq. 5), and the
    estimate is the posterior mean z_hat = sum_k mu_k p(mu_k | z) (eq. 6), with (eq. 7)

        p(mu_k | z) = softmax_k( -||z - mu_k||^2 / (2 sigma_k^2) - (d/2) log sigma_k^2 ).

    The softmax works on logits (log-sum-exp), so it is finite for distances up to 1e6 and log variances
    in [-20, 20] in float32. As all sigma_k -> 0 it becomes the hard quantizer (eq. 1); with equal, large
    sigma_k it tends to the codebook mean.

    Args:
        z: codes, shape (..., N, d).
        codebook: codewords mu_k, shape (..., K, d) (leading axes broadcast with `z`'s).
        log_var: log sigma_k^2, shape (..., N, K) (one set per input, as the paper's encoder head) or (..., K).
        weighting: "paper" uses the -(d/2) log sigma_k^2 term of eq. 7; "official" uses +log sigma_k
            instead, as the authors' public MNIST notebook does; "svhn_code" is the authors' SVHN notebook,
            not the paper: the "official" posterior multiplied by sigma_k, z_hat = sum_k sigma_k p(mu_k | z)
            mu_k, whose weights do not sum to one.

    Returns:
        z_hat (..., N, d) and the posterior (..., N, K) (normalised, also for "svhn_code").
    """
    posterior = torch.softmax(posterior_logits(z, codebook, log_var, weighting), dim=-1)
    if weighting == "svhn_code":
        return (posterior * torch.exp(0.5 * _against_inputs(log_var, codebook))) @ codebook, posterior
    return posterior @ codebook, posterior


def gumbel_like(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise -log E, E ~ Exp(1), shaped like `logits` (E clamped away from 0: finite)."""
    e = torch.empty_like(logits).exponential_(generator=generator)
    return -e.clamp_min(torch.finfo(e.dtype).tiny).log()


def estimate(logits: torch.Tensor, codebook: torch.Tensor, estimator: str = "mean",
             temperature: float | torch.Tensor = 1.0, gumbel: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the decoder gets from the posterior p(mu_k | z) = softmax(logits): (..., N, K) -> (..., N, d).

    "mean"   the paper's posterior mean, z_hat = sum_k p(mu_k | z) mu_k (eq. 6; optimal by Theorem 1);
    "sample" a codeword drawn from the posterior, z_hat = mu_c with c = argmax_k (logits_k + g_k) for
             Gumbel noise g (the Gumbel-max trick: c ~ p(mu_k | z)); gradients as in the straight-through
             Gumbel-softmax (Jang et al. 2017), through y = softmax((logits + g) / temperature);
    "argmax" the most probable codeword, z_hat = mu_c with c = argmax_k p(mu_k | z) (with equal sigma_k:
             the nearest codeword, eq. 1); gradients straight through the posterior, as for the mean.

    The forward value of "sample" and "argmax" is exactly a codeword: the weights are one_hot(c) + (y - sg(y)).
    `temperature` broadcasts against logits (a scalar, or (M, 1, 1) for a stack); `gumbel` is the noise g
    (drawn here when None). Returns z_hat and the weights that produced it.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    posterior = torch.softmax(logits, dim=-1)
    if estimator == "mean":
        return posterior @ codebook, posterior
    if estimator == "sample":
        relaxed = torch.softmax((logits + (gumbel_like(logits) if gumbel is None else gumbel)) / temperature, -1)
    else:
        relaxed = posterior
    hard = F.one_hot(relaxed.argmax(-1), logits.shape[-1]).to(logits.dtype)
    weights = hard + (relaxed - relaxed.detach())            # exactly one_hot(c) forward
    return weights @ codebook, weights


def nearest_codeword(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard vector quantizer, paper eq. 1: z_q = mu_c with c = argmin_k ||z - mu_k||^2.

    Returns z_q (..., N, d) and the indices c (..., N).
    """
    index = squared_distances(z, codebook).argmin(-1)           # (..., N)
    expanded = index.unsqueeze(-1).expand(*index.shape, codebook.shape[-1])          # (..., N, d)
    return torch.gather(codebook.expand(*index.shape[:-1], *codebook.shape[-2:]), -2, expanded), index


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_e + sg(z_q - z_e): forward pass gives z_q, gradients are copied to z_e (eq. 27)."""
    return z_e + (z_q - z_e).detach()


def init_codebook_(codebook: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform unit scaling (the paper's codebook init): U(-sqrt(3/K), sqrt(3/K)) for a (K, d) codebook."""
    bound = math.sqrt(3.0 / codebook.shape[-2])
    with torch.no_grad():
        return codebook.uniform_(-bound, bound, generator=generator)


class SoftVectorQuantizer(nn.Module):
    """Drop-in soft vector quantizer (paper eq. 5-7, 27) for any PyTorch model.

    Holds a learnable codebook of `num_codes` codewords of size `dim`. Call it with codes `z` (..., N, dim)
    and log variances log sigma_k^2 ((..., N, K) from a network head, or None to use one learned log
    variance per codeword). Returns the decoder input `z_e + sg(z_hat - z_e)` and a dict with
    `posterior` p(mu_k | z) (..., N, K), `z_hat`, the hard `indices` (..., N) (the most probable codeword),
    the batch `perplexity` of the posterior's mean usage (exp of its entropy; K when all codewords are used
    equally), and the two loss terms of eq. 27: `codebook` ||sg(z) - z_hat||^2 and `commitment`
    ||z - sg(z_hat)||^2 (per input, summed over the code dimension; weight them yourself, beta on the
    commitment term).

    `estimator` is what z_hat is made of (see `estimate`): "mean" the paper's posterior mean, "sample" a
    straight-through Gumbel-softmax sample of the posterior at `temperature`, "argmax" its most probable
    codeword. `noise_std` > 0 adds Gaussian noise to the code before estimation while training (section
    "Noisy Latent Codes"). `channel_dim` names the axis that holds the code of an input: -1 (the default,
    z of shape (..., N, dim)) or 1 for channel-first feature maps (B, dim, H, W) as an image autoencoder
    has; the output then has the input's shape and the per-input outputs are (B, H, W)-shaped (posterior
    (B, H, W, K)). With `n_models` set, the codebook gets a leading model axis (n_models, K, dim) for
    stacked training; `z` must then be (n_models, N, dim). The quantization runs in float32 under any
    autocast.
    """

    def __init__(self, dim: int, num_codes: int, noise_std: float = 0.0, weighting: str = "paper",
                 learned_log_var: bool = True, n_models: int | None = None, estimator: str = "mean",
                 temperature: float = 1.0, channel_dim: int = -1):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
        if estimator != "mean" and weighting == "svhn_code":
            raise ValueError("the 'svhn_code' weighting scales the posterior mean; use it with estimator 'mean'")
        if channel_dim not in (-1, 1):
            raise ValueError(f"channel_dim must be -1 (codes last) or 1 (channel-first maps), not {channel_dim}")
        if channel_dim == 1 and n_models is not None:
            raise ValueError("channel_dim=1 is for one model's feature maps; a stack takes (n_models, N, dim)")
        stack = () if n_models is None else (n_models,)
        self.codebook = nn.Parameter(torch.empty(*stack, num_codes, dim))
        # one learned log variance per codeword, for callers that do not predict them per input
        self.log_var = nn.Parameter(torch.zeros(*stack, num_codes)) if learned_log_var else None
        self.noise_std, self.weighting = noise_std, weighting
        self.estimator, self.temperature, self.channel_dim = estimator, temperature, channel_dim
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        init_codebook_(self.codebook, generator)
        if self.log_var is not None:
            nn.init.zeros_(self.log_var)

    def forward(self, z: torch.Tensor, log_var: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                gumbel: torch.Tensor | None = None, temperature: float | torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict]:
        """z (..., N, dim) (or (B, dim, H, W) with channel_dim=1), log_var (..., N, K) or None, noise like z
        (drawn here when None and training), gumbel like the posterior (drawn here when None; "sample" only),
        temperature to use instead of the constructor's (e.g. one per model of a stack, (M, 1, 1)).

        The posterior is computed from the detached noisy code, so that, as eq. 27 says, the codebook and
        the variances learn from the codebook term and the encoder from the commitment term (and the
        reconstruction, through the straight-through estimator).
        """
        if self.channel_dim == 1:
            z_last, out = self._forward_last(z.movedim(1, -1), log_var, noise if noise is None else
                                             noise.movedim(1, -1), gumbel, temperature)
            return z_last.movedim(-1, 1), out
        return self._forward_last(z, log_var, noise, gumbel, temperature)

    def _forward_last(self, z, log_var, noise, gumbel, temperature):
        """`forward` on codes in the last axis, in float32 whatever the autocast."""
        if log_var is None:
            if self.log_var is None:
                raise ValueError("this quantizer has no learned log variances: pass log_var")
            log_var = self.log_var
        if noise is None and self.training and self.noise_std > 0:
            noise = self.noise_std * torch.randn_like(z)
        with torch.autocast(z.device.type, enabled=False):
            z = z.to(torch.promote_types(z.dtype, torch.float32))
            log_var = log_var.to(z.dtype)
            z_noisy = z if noise is None else z + noise.to(z.dtype)
            codebook = self.codebook.to(z.dtype)
            if self.estimator == "mean":
                z_hat, posterior = soft_quantize(z_noisy.detach(), codebook, log_var, self.weighting)
            else:
                logits = posterior_logits(z_noisy.detach(), codebook, log_var, self.weighting)
                tau = self.temperature if temperature is None else temperature
                z_hat = estimate(logits, codebook, self.estimator, tau, gumbel)[0]
                posterior = torch.softmax(logits, -1)
            out = {
                "posterior": posterior, "z_hat": z_hat, "indices": posterior.argmax(-1),
                "perplexity": perplexity(posterior.flatten(end_dim=-2)) if self.codebook.dim() == 2
                else perplexity(posterior.flatten(1, -2)),
                "codebook": (z.detach() - z_hat).pow(2).sum(-1),          # (..., N)
                "commitment": (z - z_hat.detach()).pow(2).sum(-1),        # (..., N)
            }
            return straight_through(z, z_hat), out


def perplexity(posterior_or_index: torch.Tensor, num_codes: int | None = None) -> torch.Tensor:
    """Codebook perplexity exp(H(mean usage)) over the N axis: K when all codewords are used equally.

    Accepts a posterior (..., N, K) or hard indices (..., N) (then `num_codes` is needed).
    """
    if posterior_or_index.dtype in (torch.int64, torch.int32):
        posterior_or_index = F.one_hot(posterior_or_index, num_codes).float()
    usage = posterior_or_index.mean(-2)                               # (..., K)
    return torch.exp(-(usage * torch.log(usage.clamp_min(1e-12))).sum(-1))
