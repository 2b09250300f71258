# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/softvq/softvq/blob/main/notebooks/01_theorem1.ipynb)
#
# *The outputs saved here are those of the committed results: `python reproduce.py --budget cpu --publish`
# runs this notebook with `budget = "cpu"` and `train_missing = False`. Run it as it is for the quick budget.*
#
# # Theorem 1: the posterior mean is the best soft quantizer
#
# The soft VQ-VAE feeds its decoder the posterior mean of the codewords, `sum_k mu_k p(mu_k | z)`,
# where `z` is a noisy latent code (paper eq. 6-7). Theorem 1 says this estimate is optimal.
# This notebook checks the claim numerically, without training anything:
#
# 1. We sample noisy codes from a Gaussian mixture, in 2-D and in more dimensions.
# 2. We compare the mean squared error of several estimates of the clean codeword.
# 3. We check the KL argument of the proof: the Gaussian closest on average to the components
#    (weighted by the posterior) has the posterior mean as its mean.

# %%
# Without softvq (Colab, a fresh kernel), pip installs it from $SOFTVQ_PIP (a git URL, a wheel, a local
# path), else from the project's repository with the plots and peers extras: what the notebooks import.
import importlib, os, subprocess, sys

try:
    import softvq
except ImportError:
    requirement = os.environ.get("SOFTVQ_PIP", "softvq[plots,peers] @ git+https://github.com/softvq/softvq")
    print(f"installing softvq from {requirement}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", requirement])
    importlib.invalidate_caches()
    import softvq

# %% tags=["parameters"]
budget = "quick"        # no training here: the budget sets the number of samples (quick 5,000, else 20,000)
K = 8                   # codewords
sigma = 0.5             # noise standard deviation in 2-D
d_high = 16             # a higher-dimensional case ...
sigma_high = 1.5        # ... with noise large enough that codewords get confused
seed = 0
kl_steps = 60           # gradient steps of the KL minimisation
overrides = {}          # e.g. {"theorem_samples": 2000, "figures_dir": "out"}: any budget setting or option

# %%
import pandas as pd

from softvq import notebook, plots, theorem1

setup = notebook.setup(budget, overrides)
n = setup.settings["theorem_samples"]

# %% [markdown]
# ## Noisy codes from a Gaussian mixture
#
# Each clean code is a codeword `mu_c` drawn uniformly from K random codewords. The encoder's code is
# the clean code plus white Gaussian noise. We know the clean code, so we can measure the error of
# any estimate of it.

# %%
cases = {
    f"2-D, sigma = {sigma:g}": (theorem1.mixture_samples(K, 2, n, sigma, seed), sigma),
    f"{d_high}-D, sigma = {sigma_high:g}": (theorem1.mixture_samples(K, d_high, n, sigma_high, seed), sigma_high),
}

# %% [markdown]
# ## Which estimate has the smallest error?
#
# Candidates: the posterior mean with the true noise variance (Theorem 1); tempered posteriors that
# assume a variance `t` times too small or too large; the hard nearest codeword (the VQ-VAE); the mean
# of all codewords; and the noisy code itself. Errors are per dimension.

# %%
mse = pd.DataFrame({name: theorem1.estimator_mse(*samples, s) for name, (samples, s) in cases.items()})
mse.round(5)

# %% [markdown]
# The posterior mean has the smallest error in both cases. A tempered posterior is a different convex
# combination of the same codewords: as `t -> 0` it becomes the hard quantizer, as `t -> inf` the codebook
# mean. The curve below sweeps `t`; its minimum sits at `t = 1`, the true variance.

# %%
curves = {name: theorem1.temperature_curve(*samples, s) for name, (samples, s) in cases.items()}

# %% [markdown]
# ## The KL argument
#
# The proof minimizes the posterior-weighted KL divergence `sum_k p_k KL(N(mu_k, I) || N(m, I))` over the
# mean `m`. For one noisy code we run plain gradient descent on `m`, with the KL computed by
# `torch.distributions`, and compare the result with the posterior mean.

# %%
(codebook, clean, noisy), s = cases[f"2-D, sigma = {sigma:g}"]
z_hat, weights = theorem1.posterior(codebook, noisy[:1], s ** 2)
descent = theorem1.kl_descent(codebook, weights[0], steps=kl_steps)
print("minimiser m         :", descent["m"].numpy().round(6))
print("posterior mean      :", z_hat[0].numpy().round(6))
print("distance after steps:", f"{descent['distance'][-1]:.2e}")

# %% [markdown]
# Gradient descent lands on the posterior mean. For Gaussians with identity covariance the KL is half the
# squared distance between the means, so the minimizer of the weighted sum is the weighted mean.

# %%
fig = plots.plot_theorem1(codebook, noisy, s, curves, descent)
print("saved", plots.save_figure(fig, setup.figures / "theorem1.png"))

# %% [markdown]
# Left: ambiguous noisy codes (black crosses) move along the blue arrows to their posterior means (blue
# dots), which lie between codewords; the hard quantizer jumps to the nearest codeword (red dashed lines).
# Middle: any other temperature gives a larger error. Right: the KL minimization converges to the
# posterior mean.
