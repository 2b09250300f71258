"""softvq.theorem1: the posterior mean is the MMSE estimate and the KL minimiser."""
import torch

from softvq import theorem1


def test_theorem1_posterior_mean_is_best_and_kl_minimiser():
    codebook, clean, noisy = theorem1.mixture_samples(K=6, d=2, n=20_000, sigma=0.6, seed=1)
    mse = theorem1.estimator_mse(codebook, clean, noisy, 0.6)
    best = mse.pop("posterior mean (Theorem 1)")
    assert all(best < v for v in mse.values())
    t, curve = theorem1.temperature_curve(codebook, clean, noisy, 0.6, temperatures=[0.1, 1.0, 10.0])
    assert curve.argmin() == 1
    post = torch.softmax(torch.randn(6, dtype=torch.float64), 0)
    out = theorem1.kl_descent(codebook, post, steps=60, lr=0.5)
    assert torch.allclose(out["m"], post @ codebook, atol=1e-8)
    assert out["distance"][-1] < 1e-8 < out["distance"][0]
