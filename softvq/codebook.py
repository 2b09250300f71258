"""How a trained quantizer (VQ-VAE, soft VQ-VAE, SQ-VAE, a peer quantizer) uses its codebook: codewords used,
perplexity, distortion, softness, sigma_k.

`assignments` encodes a data set with a trained stack; `statistics` turns one model's assignments into a
small JSON-ready record (stored in every VQ-VAE and soft VQ-VAE results JSON, so that the codebook table and
figure regenerate without checkpoints).
"""
from __future__ import annotations

from typing import Mapping

import torch

from .bottlenecks import SoftVectorQuantized, StochasticQuantized, VectorQuantized
from .peers import PeerQuantized
from .quantize import nearest_codeword, perplexity, soft_quantize

USAGE_DIGITS = 6            # rounding of the per-codeword lists stored in results JSONs


@torch.no_grad()
def assignments(model, x: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """Evaluation-mode codes of a quantizer stack for inputs x (N, ...), on the CPU.

    Returns z_e (M, N, d) and the posterior p(mu_k | z_e) (M, N, K): eq. 7 for the soft VQ-VAE (no noise at
    evaluation), the one-hot nearest codeword (eq. 1) for the VQ-VAE, the stochastic quantization
    P(b_k | z) for the SQ-VAE, the one-hot code a peer quantizer (`softvq.peers`) picks; the decoder's input z_q
    (M, N, d); for the soft VQ-VAE also the log variances log sigma_k^2 (M, N, K).
    """
    bn = model.bottleneck
    if not isinstance(bn, (VectorQuantized, SoftVectorQuantized, StochasticQuantized, PeerQuantized)):
        raise ValueError(f"codebook statistics need a quantizer bottleneck (vqvae, soft_vqvae, sqvae or a peer), "
                         f"not {type(bn).__name__}")
    soft = isinstance(bn, SoftVectorQuantized)
    parts: dict[str, list] = {"z_e": [], "z_q": [], "posterior": []} | ({"log_var": []} if soft else {})
    with model.evaluating():
        for xb in model.stacked_batches(x, batch_size):
            h = model.encoder(xb)
            z = bn.head(h)
            if isinstance(bn, PeerQuantized):
                _, z_q, index = bn.codes(h)                         # quantized once: the code and its index
            else:
                z_q = bn(h)[0]                                      # the decoder's input
            if soft:
                log_var = bn.log_variances(h)
                post = soft_quantize(z, bn.quantizer.codebook, log_var, bn.quantizer.weighting)[1]
                parts["log_var"].append(log_var.cpu())
            elif isinstance(bn, StochasticQuantized):
                post = torch.softmax(bn.logits(z), -1)
            elif isinstance(bn, PeerQuantized):
                post = torch.nn.functional.one_hot(index, bn.num_codes).float()
            else:
                index = nearest_codeword(z, bn.codebook)[1]
                post = torch.nn.functional.one_hot(index, bn.codebook.shape[-2]).float()
            parts["z_e"].append(z.cpu())
            parts["z_q"].append(z_q.cpu())
            parts["posterior"].append(post.cpu())
    return {k: torch.cat(v, dim=1) for k, v in parts.items()}


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), USAGE_DIGITS) for v in values]


def statistics(codes: Mapping[str, torch.Tensor], model_index: int = 0) -> dict:
    """One model's codebook record from `assignments`.

    Always: K, codewords_used (the largest posterior's codeword for at least one input), dead_codewords
    (K - used), perplexity_hard (exp entropy of the hard usage; K when all are used equally), hard_usage
    (share of inputs per codeword). With the decoder's input z_q: distortion (mean ||z_e - z_q||^2 per input) and
    z_e_power (mean ||z_e||^2; their ratio is the relative distortion). With log variances (soft VQ-VAE) also:
    perplexity_soft (of the mean posterior), mean_max_posterior (1 = a hard choice), mean_entropy (nats per
    input), soft_usage (mean posterior per codeword), sigma (per codeword, sigma_k averaged over inputs), sigma_min / sigma_max (the
    range of that average over codewords).
    """
    post = codes["posterior"][model_index]                      # (N, K)
    K = post.shape[-1]
    hard = post.argmax(-1)
    hard_usage = torch.bincount(hard, minlength=K).double() / len(hard)
    used = int((hard_usage > 0).sum())
    record = {"K": K, "codewords_used": used, "dead_codewords": K - used,
              "perplexity_hard": float(perplexity(hard, K)), "hard_usage": _rounded(hard_usage)}
    if "z_q" in codes:
        z_e, z_q = codes["z_e"][model_index], codes["z_q"][model_index]
        record.update(distortion=float((z_e - z_q).pow(2).sum(-1).mean()), z_e_power=float(z_e.pow(2).sum(-1).mean()))
    if "log_var" in codes:
        sigma = codes["log_var"][model_index].mul(0.5).exp().mean(0)                 # (K,)
        entropy = -(post * post.clamp_min(1e-12).log()).sum(-1)
        record.update(perplexity_soft=float(perplexity(post)), mean_max_posterior=float(post.max(-1).values.mean()),
                      mean_entropy=float(entropy.mean()), soft_usage=_rounded(post.mean(0)), sigma=_rounded(sigma),
                      sigma_min=float(sigma.min()), sigma_max=float(sigma.max()))
    return record
