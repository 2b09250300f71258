"""Numerics that check Theorem 1: the posterior mean sum_k mu_k p(mu_k | z) (eq. 6, `soft_quantize`) is the
minimum-MSE estimate of a clean code from its noisy version under the Gaussian mixture of eq. 5, and it
minimises the posterior-weighted KL divergence to the components. Float64 throughout.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .quantize import nearest_codeword, soft_quantize


def mixture_samples(K: int = 8, d: int = 2, n: int = 20_000, sigma: float = 0.5, seed: int = 0):
    """Codewords mu_k ~ N(0, I) (K, d); clean codes z_q = mu_c with c uniform (n, d); noisy codes
    z_q + sigma * eps (n, d). Float64."""
    g = torch.Generator().manual_seed(seed)
    codebook = torch.randn(K, d, generator=g, dtype=torch.float64)
    clean = codebook[torch.randint(K, (n,), generator=g)]
    return codebook, clean, clean + sigma * torch.randn(n, d, generator=g, dtype=torch.float64)


def posterior(codebook: torch.Tensor, noisy: torch.Tensor, variance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """softvq.soft_quantize with one (assumed) variance for every component: the posterior mean
    sum_k mu_k p(mu_k | z) (N, d) and the posterior p(mu_k | z) (N, K)."""
    log_var = torch.full((codebook.shape[0],), math.log(variance), dtype=codebook.dtype)
    return soft_quantize(noisy, codebook, log_var)


def posterior_mean(codebook: torch.Tensor, noisy: torch.Tensor, variance: float) -> torch.Tensor:
    """sum_k mu_k p(mu_k | z) under the mixture with (assumed) component variance `variance`."""
    return posterior(codebook, noisy, variance)[0]


def estimator_mse(codebook, clean, noisy, sigma: float, temperatures: Sequence[float] = (0.25, 0.5, 2.0, 4.0)) -> dict:
    """Mean squared error per dimension of estimators of the clean code from the noisy one: the posterior
    mean (the true sigma), tempered posteriors (variance t * sigma^2), the hard nearest codeword, the
    codebook mean and the noisy code itself."""
    d = codebook.shape[1]
    estimates = {"posterior mean (Theorem 1)": posterior_mean(codebook, noisy, sigma ** 2)}
    estimates.update({f"tempered posterior, t = {t:g}": posterior_mean(codebook, noisy, t * sigma ** 2)
                      for t in temperatures})
    estimates["hard nearest codeword"] = nearest_codeword(noisy, codebook)[0]
    estimates["codebook mean"] = codebook.mean(0).expand_as(noisy)
    estimates["noisy code"] = noisy
    return {name: float((est - clean).pow(2).sum(-1).mean() / d) for name, est in estimates.items()}


def temperature_curve(codebook, clean, noisy, sigma: float, temperatures=np.logspace(-2, 2, 41)):
    """(temperatures, MSE per dimension) of the tempered posterior mean (variance t * sigma^2) over t."""
    d = codebook.shape[1]
    mse = [float((posterior_mean(codebook, noisy, t * sigma ** 2) - clean).pow(2).sum(-1).mean() / d)
           for t in temperatures]
    return np.asarray(temperatures), np.asarray(mse)


def kl_descent(codebook: torch.Tensor, weights: torch.Tensor, steps: int = 60, lr: float = 0.5) -> dict:
    """Minimise sum_k p_k KL(N(mu_k, I) || N(m, I)) over m by gradient descent from m = 0.

    Returns the minimiser m, the posterior mean sum_k p_k mu_k, and per step the objective and the
    distance ||m - sum_k p_k mu_k||."""
    from torch.distributions import Independent, Normal, kl_divergence
    target = weights @ codebook
    m = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.SGD([m], lr=lr)
    components = Independent(Normal(codebook, torch.ones_like(codebook)), 1)
    objective, distance = [], []
    for _ in range(steps):
        loss = (weights * kl_divergence(components, Independent(Normal(m, torch.ones_like(m)), 1))).sum()
        objective.append(float(loss.detach()))
        distance.append(float((m.detach() - target).norm()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"m": m.detach(), "target": target, "objective": np.asarray(objective), "distance": np.asarray(distance)}
