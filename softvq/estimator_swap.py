"""Theorem 1 on trained models: swap the soft VQ-VAE's estimator at test time, without retraining.

Theorem 1 says the posterior mean z_hat = sum_k p(mu_k | z) mu_k (eq. 6) is the minimum-MSE estimate of the
clean code from the noisy one z = z_e + noise under the mixture of eq. 5. `swap` hands a trained stack's
decoder the posterior mean, a posterior sample (the Gumbel-max trick) and the posterior's argmax of the same
noisy codes, and measures for each what the decoder makes of it and how far the estimate is from the code.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .bottlenecks import SoftVectorQuantized
from .quantize import ESTIMATORS, estimate, gumbel_like, posterior_logits


@torch.no_grad()
def swap(model, x: torch.Tensor, noise_std: float | torch.Tensor = 0.0, seed: int = 0,
         batch_size: int = 1000) -> list[dict[str, dict[str, float]]]:
    """Per model of a trained soft VQ-VAE stack: {estimator: scores} on inputs x (N, ...), in evaluation mode.

    Every estimator sees the same noisy codes z = z_e + noise_std * eps (eps, and the sample's Gumbel noise,
    from a generator seeded by `seed`; noise_std 0: z = z_e). Scores, averaged over inputs:
    `recon_loss` the model's own reconstruction loss (the training objective's term), `pixel_mse` the mean
    squared error of the decoded image per pixel, `dist_noisy` ||z_hat - z||^2 and `dist_code` ||z_hat - z_e||^2
    (summed over the code dimension).
    """
    bn = model.bottleneck
    if not isinstance(bn, SoftVectorQuantized):
        raise ValueError(f"the estimator swap needs a 'soft_vqvae' bottleneck, not {type(bn).__name__}")
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(int(seed))
    noise_std = torch.as_tensor(noise_std, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    sums = {e: {k: torch.zeros(bn.n_models, device=device) for k in ("recon_loss", "pixel_mse", "dist_noisy",
                                                                   "dist_code")} for e in ESTIMATORS}
    n = 0
    with model.evaluating():
        for xb in model.stacked_batches(x, batch_size):
            h = model.encoder(xb)
            z_e, log_var = bn.head(h), bn.log_variances(h)                            # (M, B, d), (M, B, K)
            z = z_e + noise_std * torch.randn(z_e.shape, generator=generator, device=device)
            logits = posterior_logits(z, bn.quantizer.codebook, log_var, bn.quantizer.weighting)
            gumbel = gumbel_like(logits, generator)
            batch = xb.shape[1]
            for e in ESTIMATORS:
                z_hat = estimate(logits, bn.quantizer.codebook, e, bn.temperature[:, None, None], gumbel)[0]
                decoded = model.decoder(z_hat)
                sums[e]["recon_loss"] += model.reconstruction_loss(decoded, xb) * batch
                sums[e]["pixel_mse"] += model.pixel_squared_error(decoded, xb)
                sums[e]["dist_noisy"] += (z_hat - z).pow(2).sum(-1).sum(-1)
                sums[e]["dist_code"] += (z_hat - z_e).pow(2).sum(-1).sum(-1)
            n += batch
    return [{e: {k: float(v[m]) / n for k, v in scores.items()} for e, scores in sums.items()}
            for m in range(bn.n_models)]


SCORES = {"recon_loss": "reconstruction loss", "pixel_mse": "pixel MSE", "dist_noisy": "‖ẑ − z‖²",
          "dist_code": "‖ẑ − z_e‖²"}


def swap_table(records: Mapping[str, Sequence[dict]]) -> pd.DataFrame:
    """Mean and sample std over seeds of every `swap` score, one row per (row of {row: records}, estimator at
    test time); records without an "estimator_swap" entry (other bottlenecks, older runs) are skipped."""
    rows = []
    for name, recs in records.items():
        found = [r["estimator_swap"] for r in recs if "estimator_swap" in r]
        for e in ESTIMATORS if found else ():
            row: dict = {"trained": name, "tested": e, "seeds": len(found)}
            for key in SCORES:
                values = np.asarray([s[e][key] for s in found], dtype=float)
                row[key] = float(values.mean())
                row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=["trained", "tested", "seeds", *(f"{k}{s}" for k in SCORES for s in ("", "_std"))])


def format_swap_table(df: pd.DataFrame) -> pd.DataFrame:
    """A display table of `swap_table`: 'mean ± std' per score, the best test-time estimator of each trained row
    in bold for every score (lower is better)."""
    out = df[["trained", "tested", "seeds"]].copy()
    for key, label in SCORES.items():
        best = df.groupby("trained")[key].transform("min")
        out[label] = [("**{}**" if v == b else "{}").format(f"{v:.4g}" + (f" ± {s:.2g}" if np.isfinite(s) else ""))
                      for v, s, b in zip(df[key], df[f"{key}_std"], best)]
    return out.rename(columns={"trained": "trained with", "tested": "tested with"}).set_index("trained with")
