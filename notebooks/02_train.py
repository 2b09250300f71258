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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/softvq/softvq/blob/main/notebooks/02_train.ipynb)
#
# *The outputs saved here are those of the committed results: `python reproduce.py --budget cpu --publish`
# runs this notebook with `budget = "cpu"` and `train_missing = False`. Run it as it is for the quick budget.*
#
# # Train one model
#
# This notebook trains one autoencoder with the paper's settings and evaluates its latent codes.
# Pick the bottleneck and its settings in the parameters cell; fields left as `None` keep the value of
# the Table 1 preset (MNIST) or the Table 2 preset (other data sets). A finished run is never trained again:
# its results JSON and the few reconstructions saved beside the figures (named by its run id) are reused, and
# reconstructions that are missing are decoded from the run's final checkpoint.

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
budget = "quick"            # "quick": 50 iterations; "cpu": 2,000; "paper": 40,000
dataset = "mnist"           # mnist, svhn, cifar10, cifar10-jpeg
bottleneck = "soft_vqvae"   # ae, vae, beta_vae, info_dropout, vqvae, soft_vqvae
d = None                    # code size (None: 64 on MNIST, 256 otherwise)
K = None                    # codebook size of the VQ-VAE / soft VQ-VAE (None: the preset's)
beta = None                 # KL weight, or commitment weight of the VQ models (None: the preset's)
noise_std = None            # soft VQ-VAE: noise added to z_e while training (None: the preset's)
iterations = None           # None: the budget's
seed = 0
n_images = 10               # reconstructions shown
train_missing = True        # train when the run's results are missing
overrides = {}              # any budget setting or option (softvq.notebook.OPTIONS: folders, device, ...)

# %%
import json

from softvq import budgets, data, notebook, plots

setup = notebook.setup(budget, overrides, train_missing, train_iterations=iterations)
config = budgets.preset_config(bottleneck, dataset, d=d, K=K, beta=beta, noise_std=noise_std, seed=seed,
                               iterations=setup.settings["train_iterations"], **setup.presets)
config

# %% [markdown]
# ## Training
#
# `notebook.reconstructions` trains the model when its results are missing: it encodes the training and
# evaluation sets, scores the codes and writes a results JSON named after the config, and keeps a few test
# images and their reconstructions in a small file beside the figures, named by the run id, so that the plots
# below can be redrawn without the model (and never show another run's images). For a finished run without
# that file, the images are decoded by the model in the run's final checkpoint; it is not trained again.

# %%
record, saved = notebook.reconstructions(setup, config, n_images)
if record is not None:
    print(json.dumps(record["metrics"], indent=2))

# %% [markdown]
# The three scores are those of the paper: K-means clustering accuracy and NMI of the test codes, and
# the accuracy of a linear classifier trained on the training codes.
#
# ## Loss curves
#
# Each panel is one term of the loss, averaged over the logged iterations.

# %%
if record is not None:
    fig = plots.plot_history(record["history"], title=plots.title_lines(data.sample_note([dataset]), config.run_id))
    print("saved", plots.save_figure(fig, setup.figures / f"train_{bottleneck}_loss.png"))

# %% [markdown]
# ## Reconstructions
#
# Test images (top) and what the decoder makes of their codes (bottom).

# %%
if saved is not None:
    fig = plots.plot_reconstructions(saved["x"], saved["x_hat"], title=plots.title_lines(
        data.sample_note([dataset]), f"{bottleneck}, {config.iterations:,} iterations"))
    print("saved", plots.save_figure(fig, setup.figures / f"train_{bottleneck}_reconstructions.png"))
