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
# # Train one model
#
# This notebook trains one autoencoder with the paper's settings and evaluates its latent codes.
# Pick the bottleneck and its settings in the parameters cell; fields left as `None` keep the value of
# the Table 1 preset (MNIST) or the Table 2 preset (other data sets). A finished run is not trained again:
# its results JSON and the few reconstructions saved beside the figures (named by its run id) are reused.

# %%
# Without softvq (Colab, a fresh kernel), pip installs it from $SOFTVQ_PIP (a git URL, a wheel, a local
# path), else from the project's repository.
import importlib, os, subprocess, sys

try:
    import softvq
except ImportError:
    requirement = os.environ.get("SOFTVQ_PIP", "git+https://github.com/softvq/softvq")
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
kmeans_n_init = None        # None: the budget's
n_images = 10               # reconstructions shown
figures_dir = None          # None: the project's figures/, results/, checkpoints/
results_dir = None
checkpoint_dir = None
data_root = None            # None: $SOFTVQ_DATA or ./data
download = None             # fetch the data set when missing (mnist, svhn, cifar10; None: on Colab only)
precision = "fp32"          # fp32, tf32 or bf16 (bf16: for a GPU; slow on most CPUs)
torch_compile = False       # torch.compile the training step (for a GPU)
device = None               # None: cuda when present
train_missing = True        # train when the results or the saved reconstructions are missing
progress = True             # training progress bar

# %%
import json

from softvq import budgets, data, experiments, plots, store

if data.wants_download(download):
    data.download([dataset], data_root)
settings = budgets.budget(budget, train_iterations=iterations, kmeans_n_init=kmeans_n_init)
figures, results, checkpoints = budgets.output_dirs(budget, figures_dir, results_dir, checkpoint_dir)
config = budgets.preset_config(bottleneck, dataset, d=d, K=K, beta=beta, noise_std=noise_std, seed=seed,
                               iterations=settings["train_iterations"], **budgets.evaluation(settings),
                               precision=precision, compile=torch_compile)
config

# %% [markdown]
# ## Training
#
# `experiments.run_stack` trains the model, encodes the training and evaluation sets, scores the codes
# and writes a results JSON named after the config. We keep a few test images and their reconstructions
# in a small file beside the figures, named by the run id, so that the plots below can be redrawn without
# the model (and never show another run's images).

# %%
record = store.read_result(config, results)
saved_path = figures / "data" / f"train_{config.run_id}_reconstructions.npz"
saved = store.read_arrays(saved_path)
if (record is None or saved is None) and train_missing:
    records, model, _ = experiments.run_stack([config], root=data_root, device=device, results_dir=results,
                                              checkpoint_dir=checkpoints, progress=progress, keep_model=True)
    record = records[0]
    x = data.load_dataset(dataset, "test", data_root)[0][:n_images]
    saved = {"x": x.numpy(), "x_hat": model.reconstruct(x)[0].cpu().numpy()}
    store.write_arrays(saved_path, **saved)
if record is None:
    print(f"missing: {store.result_path(config, results)}; run with train_missing = True")
else:
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
    print("saved", plots.save_figure(fig, figures / f"train_{bottleneck}_loss.png"))

# %% [markdown]
# ## Reconstructions
#
# Test images (top) and what the decoder makes of their codes (bottom).

# %%
if saved is not None:
    fig = plots.plot_reconstructions(saved["x"], saved["x_hat"], title=plots.title_lines(
        data.sample_note([dataset]), f"{bottleneck}, {config.iterations:,} iterations"))
    print("saved", plots.save_figure(fig, figures / f"train_{bottleneck}_reconstructions.png"))
