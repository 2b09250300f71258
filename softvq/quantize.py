"""Vector quantizers: the soft (Bayesian) quantizer of the paper and the hard VQ-VAE quantizer.

Every function here broadcasts over leading axes, so the same code serves a single model
(`z` of shape (N, d), codebook (K, d)) and a stack of M models trained together
(`z` (M, N, d), codebook (M, K, d)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
import torch.nn.functional as F

WEIGHTINGS = ("paper", "official", "svhn_code")
ESTIMATORS = ("mean", "sample", "argmax")
CHUNK_SIZE = 2 ** 22     # posterior entries at once in the drop-in layer at most: 16 MiB per (n, K) buffer in float32


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
    """log sigma_k^2 (..., K), one variance per component, as (..., 1, K) against the N inputs; (..., N, K) as is.
    A single set (K,) is one variance per component for every stack of codebooks."""
    return log_var.unsqueeze(-2) if log_var.dim() in (1, codebook.dim() - 1) else log_var


def posterior_logits(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor,
                     weighting: str = "paper") -> torch.Tensor:
    """The unnormalised log posterior of eq. 7: -||z - mu_k||^2 / (2 sigma_k^2) - (d/2) log sigma_k^2, (..., N, K).

    Shapes and `weighting` as in `soft_quantize`; a softmax over the last axis gives p(mu_k | z).
    """
    _check(z, codebook, log_var, weighting)
    return _logits(squared_distances(z, codebook), _against_inputs(log_var, codebook), z.shape[-1], weighting)


def _check(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor, weighting: str) -> None:
    """One clear error for mismatched shapes or an unknown weighting."""
    if z.shape[-1] != codebook.shape[-1]:
        raise ValueError(f"code dimension {z.shape[-1]} does not match codebook dimension {codebook.shape[-1]}")
    if log_var.shape[-1] != codebook.shape[-2]:
        raise ValueError(f"log_var has {log_var.shape[-1]} components, codebook has {codebook.shape[-2]}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")


def _log_var_coefficient(d: int, weighting: str) -> float:
    """a in the logit's a * log sigma_k^2 term: -d/2 (eq. 7, "paper") or +1/2 (the authors' code, log sigma_k)."""
    return -0.5 * d if weighting == "paper" else 0.5


def _logits(dist: torch.Tensor, log_var: torch.Tensor, d: int, weighting: str) -> torch.Tensor:
    """Eq. 7's logits from the squared distances (..., N, K) and log sigma_k^2 laid out against them."""
    log_weight = _log_var_coefficient(d, weighting) * log_var     # first: the committed runs' gradient order
    return -0.5 * dist * torch.exp(-log_var) + log_weight


def soft_quantize(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor,
                  weighting: str = "paper", chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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
        chunk_size: None builds the posterior from autograd's operations and keeps every (..., N, K)
            intermediate for the backward pass. An int runs the fused path: eq. 5-7 and their gradients by
            hand, chunk_size // K inputs at a time (at least one), the backward reusing the returned posterior;
            memory beyond the inputs and the returned posterior is O(chunk_size), and the posterior carries no
            gradient.

    Returns:
        z_hat (..., N, d) and the posterior (..., N, K) (normalised, also for "svhn_code").
    """
    if chunk_size is not None:
        _check(z, codebook, log_var, weighting)
        return _FusedPosteriorMean.apply(z, codebook, log_var, weighting, max(1, chunk_size // codebook.shape[-2]))
    posterior = torch.softmax(posterior_logits(z, codebook, log_var, weighting), dim=-1)
    if weighting == "svhn_code":
        return (posterior * torch.exp(0.5 * _against_inputs(log_var, codebook))) @ codebook, posterior
    return posterior @ codebook, posterior


def _rows(log_var: torch.Tensor, rows: slice) -> torch.Tensor:
    """The inputs `rows` of a log variance laid out against the inputs, (..., N, K) or (..., 1, K)."""
    return log_var[..., rows, :] if log_var.shape[-2] > 1 else log_var


def _chunk_posterior(z: torch.Tensor, codebook_t: torch.Tensor, codebook_sq: torch.Tensor, log_var: torch.Tensor,
                     a: float, out: torch.Tensor) -> torch.Tensor:
    """Eq. 7 on a chunk of inputs without autograd: p(mu_k | z) into `out` (..., n, K), with log_var laid out
    against the inputs; returns the logits' log-sum-exp (..., n, 1). `codebook_t` (B, d, K) and `codebook_sq`
    (B, 1, K) are mu^T and ||mu_k||^2 batched over out's leading axes (see `_batched`), `a` as in
    `_log_var_coefficient`.

    The same arithmetic as `posterior_logits` (the expanded distance clamped at 0) and a softmax through the
    log-sum-exp (finite at any distance), in place in one (n, K) buffer besides `out`.
    """
    lead = out.shape[:-2]
    logits = torch.baddbmm(codebook_sq, _batched(z, lead), codebook_t, alpha=-2).view(out.shape)
    logits.add_(z.pow(2).sum(-1, keepdim=True)).clamp_min_(0).mul_(-0.5 * torch.exp(-log_var)).add_(a * log_var)
    lse = torch.logsumexp(logits, -1, keepdim=True)
    torch.sub(logits, lse, out=out).exp_()
    return lse


class _FusedPosteriorMean(torch.autograd.Function):
    """`soft_quantize` in chunks of `rows` inputs, with a hand-written backward that reuses the saved posterior.

    Backward per chunk, for the incoming gradient g = dL/dz_hat, with z_hat = w @ mu, w = p * s (s_k = sigma_k
    for "svhn_code", else 1), logits l = -dist / (2 sigma^2) + a log sigma^2 (eq. 7, a as in
    `_log_var_coefficient`), p = softmax(l):
        dL/dw = g mu^T,  t = dL/dp - sum_k p dL/dp  (dL/dp = s dL/dw),  dL/dl = p t,
        dL/dlog sigma^2 = dL/dl (dist / (2 sigma^2) + a)  (+ w dL/dw / 2 for "svhn_code"),
        dL/ddist = -dL/dl / (2 sigma^2),
        dL/dmu = w^T g + 2 (mu sum_n dL/ddist - dL/ddist^T z),  dL/dz = 2 (z sum_k dL/ddist - dL/ddist mu).
    The distances are not recomputed: dist / (2 sigma^2) = a log sigma^2 - lse - log p, with lse the logits'
    log-sum-exp saved in the forward pass (log p taken of p clamped at the smallest normal float: where p
    underflowed to 0, dL/dl is 0 and so is the term). Where rounding made the expanded distance negative (z = mu_k)
    it was clamped to 0 as in `squared_distances`, and the gradient there is the expansion's, 2 (z - mu_k) dL/ddist
    = 0 up to that rounding.
    """

    @staticmethod
    def forward(ctx, z, codebook, log_var, weighting, rows):
        lv = _against_inputs(log_var, codebook)
        shape = torch.broadcast_shapes(z.shape[:-2], codebook.shape[:-2], lv.shape[:-2])
        posterior = z.new_empty(*shape, z.shape[-2], codebook.shape[-2])          # filled in place, chunk by chunk
        lse = z.new_empty(*shape, z.shape[-2], 1)
        z_hat = z.new_empty(*shape, z.shape[-2], codebook.shape[-1])
        codebook_t = _batched(codebook.transpose(-1, -2), shape)                             # (B, d, K)
        codebook_sq = _batched(codebook.pow(2).sum(-1).unsqueeze(-2), shape)                 # (B, 1, K)
        a = _log_var_coefficient(z.shape[-1], weighting)
        for start in range(0, z.shape[-2], rows):
            chunk = slice(start, start + rows)
            zc, lvc, p = z[..., chunk, :], _rows(lv, chunk), posterior[..., chunk, :]
            lse[..., chunk, :] = _chunk_posterior(zc, codebook_t, codebook_sq, lvc, a, out=p)
            torch.matmul(p * torch.exp(0.5 * lvc) if weighting == "svhn_code" else p, codebook,
                         out=z_hat[..., chunk, :])
        ctx.weighting, ctx.rows = weighting, rows
        ctx.save_for_backward(z, codebook, log_var, z_hat, posterior, lse)
        ctx.mark_non_differentiable(posterior)
        ctx.set_materialize_grads(False)        # no (N, K) zeros for the posterior, which has no gradient
        return z_hat, posterior

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z_hat, _):
        if grad_z_hat is None:
            return None, None, None, None, None
        z, codebook, log_var, z_hat, posterior, lse = ctx.saved_tensors
        with torch.autocast(z.device.type, enabled=False):   # in the forward's dtype, whatever autocast
            return _FusedPosteriorMean._backward(ctx, z, codebook, log_var, z_hat, posterior, lse,
                                                 grad_z_hat.to(z_hat.dtype))

    @staticmethod
    def _backward(ctx, z, codebook, log_var, z_hat, posterior, lse, grad_z_hat):
        """The chunks' gradients (see the class docstring)."""
        lv = _against_inputs(log_var, codebook)
        a, svhn = _log_var_coefficient(z.shape[-1], ctx.weighting), ctx.weighting == "svhn_code"
        tiny = torch.finfo(posterior.dtype).tiny
        lead = posterior.shape[:-2]                                 # the broadcast batch axes, (B,) once flattened
        grad_mu = codebook.new_zeros(math.prod(lead), *codebook.shape[-2:])
        grad_dist_sum = codebook.new_zeros(*lead, 1, codebook.shape[-2])
        codebook_t = _batched(codebook.transpose(-1, -2), lead)                              # (B, d, K)
        grad_z, grad_lv = [], []
        for start in range(0, z.shape[-2], ctx.rows):
            chunk = slice(start, start + ctx.rows)
            zc, lvc, g, p = z[..., chunk, :], _rows(lv, chunk), grad_z_hat[..., chunk, :], posterior[..., chunk, :]
            g_b = _batched(g, lead)                                                 # (B, n, d)
            g_dot_z_hat = (g * z_hat[..., chunk, :]).sum(-1, keepdim=True)       # sum_k p dL/dp, (..., n, 1)
            if svhn:
                t = torch.bmm(g_b, codebook_t).view(p.shape)          # dL/dw, (..., n, K)
                sigma = torch.exp(0.5 * lvc)
                w = p * sigma
                direct = t * w                                                      # 2 x the direct dL/dlog sigma^2
                t.mul_(sigma).sub_(g_dot_z_hat)                                     # dL/dp - sum_k p dL/dp
            else:
                w = p
                t = torch.baddbmm(_batched(g_dot_z_hat, lead), g_b, codebook_t, beta=-1).view(p.shape)
            grad_logit = p * t
            # -dL/dlog sigma^2 = dL/dl (log p + lse - a log sigma^2 - a), in t's buffer
            neg = torch.clamp_min(p, tiny, out=t).log_().add_(lse[..., chunk, :]).sub_(a * lvc + a).mul_(grad_logit)
            if svhn:
                neg.sub_(direct, alpha=0.5)
            grad_lv.append(neg.sum_to_size(lvc.shape).neg_())
            grad_dist = grad_logit.mul_(-0.5 * torch.exp(-lvc))
            grad_dist_sum += grad_dist.sum(-2, keepdim=True)
            grad_mu.baddbmm_(_batched(w.transpose(-1, -2), lead), g_b)
            grad_mu.baddbmm_(_batched(grad_dist.transpose(-1, -2), lead), _batched(zc, lead), alpha=-2)
            if ctx.needs_input_grad[0]:
                grad_z.append((2 * zc * grad_dist.sum(-1, keepdim=True) - 2 * grad_dist @ codebook
                               ).sum_to_size(zc.shape))
        grad_codebook = (grad_mu.reshape(*lead, *codebook.shape[-2:])
                         + 2 * codebook * grad_dist_sum.transpose(-1, -2)).sum_to_size(codebook.shape)
        grad_log_var = torch.cat(grad_lv, -2) if lv.shape[-2] > 1 else sum(grad_lv).reshape(log_var.shape)
        return torch.cat(grad_z, -2) if grad_z else None, grad_codebook, grad_log_var, None, None


def _batched(t: torch.Tensor, lead: torch.Size) -> torch.Tensor:
    """t (..., r, c) broadcast to the batch axes `lead` and flattened to (B, r, c), as `baddbmm_` takes it."""
    return t.expand(*lead, *t.shape[-2:]).reshape(-1, *t.shape[-2:])


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


@dataclass
class QuantizerOutput:
    """What `SoftVectorQuantizer` returns. It unpacks as `quantized, indices, loss = vq(z)`; the rest are
    attributes. Shapes for an input z of per-position shape P (z's shape without its channel axis) and K codewords:

    quantized        like z, in z's dtype: z + sg(z_hat - z), the decoder input (eq. 27's straight-through form)
    indices          P, int64: the codeword used (sample, argmax) or the most probable one (mean)
    loss             (), or (n_models,) for a stack: codebook_weight * codebook_loss
                     + commitment_weight * commitment_loss, the term to add to the model's loss
    posterior        P with K in the channel axis (the last for channel_dim=-1), float32 (float64 for float64
                     inputs), no gradient: p(mu_k | z), eq. 7
    perplexity       () or (n_models,), no gradient: exp of the entropy of the batch's mean posterior (K when
                     every codeword is used equally)
    codebook_loss    () or (n_models,): ||sg(z) - z_hat||^2 (eq. 27), summed over the code, averaged over positions
    commitment_loss  () or (n_models,): ||z - sg(z_hat)||^2 (eq. 27), the same reduction, unweighted
    """
    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    posterior: torch.Tensor
    perplexity: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor

    def __iter__(self):
        return iter((self.quantized, self.indices, self.loss))


class SoftVectorQuantizer(nn.Module):
    """Drop-in soft vector quantizer (paper eq. 5-7, 27) for any PyTorch model.

    Holds a learnable codebook of `num_codes` (K) codewords of size `dim`, and, with `learned_log_var`, one
    learned log variance log sigma_k^2 per codeword. `vq(z, log_var)` returns a `QuantizerOutput`:

        quantized, indices, loss = vq(z)            # loss: the term of eq. 27 to add to the model's loss

    Shapes, with `channel_dim` naming the axis of z that holds the code (-1, the default, or e.g. 1 for
    channel-first maps) and P the shape of z without it (any number of axes, e.g. (B,), (B, T), (B, H, W)):
        z         P with `dim` in the channel axis, any float dtype; e.g. (B, H, W, dim) or (B, dim, H, W)
        log_var   (K,), or P with K in the channel axis (a per-position head as in the paper), or None to use
                  the learned one
        noise     like z (drawn here while training when `noise_std` > 0 and it is None)
        gumbel    P with K in the channel axis (estimator "sample"; drawn here when None)
    With `n_models` set the codebook is (n_models, K, dim) for stacked training; z is then (n_models, ..., dim)
    (channel_dim -1), log_var (n_models, K) or (n_models, ..., K), and the losses are (n_models,).

    `estimator` is what z_hat is made of (see `estimate`): "mean" the paper's posterior mean (eq. 6), "sample"
    a straight-through Gumbel-softmax sample of the posterior at `temperature`, "argmax" its most probable
    codeword. In evaluation mode the layer is deterministic: no noise is drawn, and "sample" gives way to
    `eval_estimator` ("mean", by Theorem 1 the best estimate, or "argmax"); `forward(..., estimator="sample")`
    asks for a sample explicitly. `noise_std` > 0 adds Gaussian noise to the code before estimation while
    training (section "Noisy Latent Codes"). `weighting` is the log-variance term of eq. 7 (see
    `soft_quantize`). `codebook_weight` and `commitment_weight` (beta) weigh the two terms of eq. 27 in `loss`.

    Precision: the posterior is computed in float32 (float64 for float64 inputs) under any autocast, and
    `quantized` is cast back to z's dtype, so a bfloat16 or float16 model works without autocast. The codebook
    may be kept in higher precision than the model (`model.bfloat16(); vq.float()`); its state dict loads into
    a quantizer of any float dtype. `chunk_size` (posterior mean only): at most that many posterior entries
    (positions x K) at once, the posterior recomputed in backward when N x K exceeds it, so memory is
    O(chunk_size) beyond the returned (N, K) posterior (see `soft_quantize`); None keeps the whole (N, K) graph
    for autograd (the paper's stacked trainer does, for bit-identical runs).
    """

    def __init__(self, dim: int, num_codes: int, noise_std: float = 0.0, weighting: str = "paper",
                 learned_log_var: bool = True, n_models: int | None = None, estimator: str = "mean",
                 temperature: float = 1.0, channel_dim: int = -1, eval_estimator: str = "mean",
                 commitment_weight: float = 0.25, codebook_weight: float = 1.0,
                 chunk_size: int | None = CHUNK_SIZE):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
        if eval_estimator not in ("mean", "argmax"):
            raise ValueError(f"eval_estimator must be 'mean' or 'argmax', not {eval_estimator!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
        if estimator != "mean" and weighting == "svhn_code":
            raise ValueError("the 'svhn_code' weighting scales the posterior mean; use it with estimator 'mean'")
        if channel_dim != -1 and n_models is not None:
            raise ValueError("a stack takes codes last, (n_models, ..., dim): leave channel_dim at -1")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive or None, not {chunk_size}")
        stack = () if n_models is None else (n_models,)
        self.codebook = nn.Parameter(torch.empty(*stack, num_codes, dim))
        # one learned log variance per codeword, for callers that do not predict them per input
        self.log_var = nn.Parameter(torch.zeros(*stack, num_codes)) if learned_log_var else None
        self.dim, self.num_codes, self.n_models = dim, num_codes, n_models
        self.noise_std, self.weighting, self.channel_dim = noise_std, weighting, channel_dim
        self.estimator, self.eval_estimator, self.temperature = estimator, eval_estimator, temperature
        self.commitment_weight, self.codebook_weight, self.chunk_size = commitment_weight, codebook_weight, chunk_size
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        init_codebook_(self.codebook, generator)
        if self.log_var is not None:
            nn.init.zeros_(self.log_var)

    def extra_repr(self) -> str:
        settings = ("dim", "num_codes", "n_models", "estimator", "eval_estimator", "temperature", "noise_std",
                    "weighting", "learned_log_var", "channel_dim", "codebook_weight", "commitment_weight",
                    "chunk_size")
        values = {**vars(self), "learned_log_var": self.log_var is not None}
        return ", ".join(f"{name}={values[name]!r}" for name in settings)

    def forward(self, z: torch.Tensor, log_var: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                gumbel: torch.Tensor | None = None, temperature: float | torch.Tensor | None = None,
                estimator: str | None = None) -> QuantizerOutput:
        """Quantize z; shapes in the class docstring. `temperature` replaces the constructor's for this call
        (e.g. one per model of a stack, (n_models, 1, 1)); `estimator` replaces the constructor's (and the
        evaluation-mode fallback) for this call.

        The posterior is computed from the detached noisy code, so that, as eq. 27 says, the codebook and
        the variances learn from the codebook term and the encoder from the commitment term (and the
        reconstruction, through the straight-through estimator).
        """
        if estimator is None:
            estimator = self.eval_estimator if self.estimator == "sample" and not self.training else self.estimator
        if log_var is None:
            if self.log_var is None:
                raise ValueError("this quantizer has no learned log variances: pass log_var")
            log_var = self.log_var
        elif log_var.dim() != self.codebook.dim() - 1:
            expected = list(z.shape)
            expected[self.channel_dim] = self.num_codes
            if list(log_var.shape) != expected:
                raise ValueError(f"log_var must be {tuple(self.codebook.shape[:-1])} (one per codeword) or shaped "
                                 f"like z with K in the channel axis, {tuple(expected)}; got {tuple(log_var.shape)}")
            log_var = self._rows(log_var)
        positions = z.shape[:self.channel_dim % z.dim()] + z.shape[self.channel_dim % z.dim() + 1:]
        with torch.autocast(z.device.type, enabled=False):
            codes = self._rows(z).to(torch.promote_types(z.dtype, torch.float32))        # (N, d) or (M, N, d)
            if noise is None and self.training and self.noise_std > 0:
                noise = self.noise_std * torch.randn_like(codes)
            noisy = codes if noise is None else codes + self._rows(noise).to(codes.dtype)
            codebook, log_var = self.codebook.to(codes.dtype), log_var.to(codes.dtype)
            if estimator == "mean":
                z_hat, posterior = soft_quantize(noisy.detach(), codebook, log_var, self.weighting, self.chunk_size)
                indices = posterior.argmax(-1)
            else:
                logits = posterior_logits(noisy.detach(), codebook, log_var, self.weighting)
                tau = self.temperature if temperature is None else temperature
                z_hat, weights = estimate(logits, codebook, estimator, tau,
                                          None if gumbel is None else self._rows(gumbel).to(codes.dtype))
                posterior, indices = torch.softmax(logits, -1), weights.argmax(-1)
            codebook_loss = (codes.detach() - z_hat).pow(2).sum(-1).mean(-1)
            commitment_loss = (codes - z_hat.detach()).pow(2).sum(-1).mean(-1)
            posterior = posterior.detach()
            return QuantizerOutput(
                quantized=self._positions(straight_through(codes, z_hat).to(z.dtype), positions),
                indices=indices.reshape(positions),
                loss=self.codebook_weight * codebook_loss + self.commitment_weight * commitment_loss,
                posterior=self._positions(posterior, positions), perplexity=perplexity(posterior),
                codebook_loss=codebook_loss, commitment_loss=commitment_loss)

    # The layout helpers leave a tensor already in place untouched (no view in the autograd graph), so that a
    # stack's (M, N, d) codes take exactly the graph, and the gradient summation order, of the committed runs.
    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        """A per-position tensor, channel axis last and positions flattened: (N, C), or (M, N, C) for a stack."""
        t = t if self.channel_dim == -1 else t.movedim(self.channel_dim, -1)
        return t.flatten(0 if self.n_models is None else 1, -2)

    def _positions(self, rows: torch.Tensor, positions: torch.Size) -> torch.Tensor:
        """The inverse of `_rows`: (N, C) back to the positions' shape, the channel axis where z had it."""
        rows = rows if rows.shape[:-1] == positions else rows.reshape(*positions, rows.shape[-1])
        return rows if self.channel_dim == -1 else rows.movedim(-1, self.channel_dim)

    def get_codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The codewords of `indices` (any shape; (n_models, ...) for a stack): indices.shape + (dim,), codes last,
        in the codebook's dtype."""
        if self.n_models is None:
            return self.codebook[indices]
        model = torch.arange(self.n_models, device=indices.device).view(-1, *([1] * (indices.dim() - 1)))
        return self.codebook[model, indices]

    def get_output_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The layer's output for hard `indices` (the shape of `QuantizerOutput.indices`): their codewords laid out
        like `quantized` (code in the channel axis), in the codebook's dtype. For "sample" and "argmax" it is
        `quantized` (up to the rounding of z + (z_hat - z))."""
        return self.get_codes_from_indices(indices).movedim(-1, self.channel_dim)


def perplexity(posterior_or_index: torch.Tensor, num_codes: int | None = None) -> torch.Tensor:
    """Codebook perplexity exp(H(mean usage)) over the N axis: K when all codewords are used equally.

    Accepts a posterior (..., N, K) or hard indices (..., N) (then `num_codes` is needed).
    """
    if posterior_or_index.dtype in (torch.int64, torch.int32):
        posterior_or_index = F.one_hot(posterior_or_index, num_codes).float()
    usage = posterior_or_index.mean(-2)                               # (..., K)
    return torch.exp(-(usage * torch.log(usage.clamp_min(1e-12))).sum(-1))
