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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/softvq/softvq/blob/main/notebooks/05_codebook.ipynb)
#
# *The outputs saved here are those of the committed results: `python reproduce.py --budget cpu --publish`
# runs this notebook with `budget = "cpu"` and `train_missing = False`. Run it as it is for the quick budget.*
#
# # How the two quantizers use their codebooks
#
# The VQ-VAE sends each code to its nearest codeword; the soft VQ-VAE feeds the decoder the posterior mean
# over all K codewords, with a learned `sigma_k` per codeword and input (eq. 5-7). How many codewords does
# each of them actually use? For every Table 1 run of the two models, at the end of training and on the
# test set, the results JSON stores:
#
# - codewords used (the nearest / most probable codeword of at least one test image) and dead ones,
# - the perplexity of that hard usage (K when all codewords are used equally) and, for the soft VQ-VAE,
#   of the mean posterior,
# - how soft the soft quantizer is: the mean largest posterior (1 means a hard choice),
# - the learned `sigma_k` (averaged over test images) and its range.
#
# So this notebook needs no model, only the results JSONs.

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
budget = "quick"            # "quick": 50 iterations (Table 2: 5), 1 seed; "cpu" and "paper": 40,000, several seeds
iterations = None           # Table 1's (None: the budget's)
seeds = None                # None: the budget's
table2_datasets = None      # None: the budget's (quick, cpu: the lossy cifar10-jpeg; paper: svhn, cifar10)
train_missing = True        # train the Table 1 and 2 quantizer runs whose results are missing
overrides = {}              # e.g. {"table2_iterations": 100}: any budget setting or option (softvq.notebook.OPTIONS)

# %%
from softvq import data, notebook, plots, presets, tables

setup = notebook.setup(budget, overrides, train_missing, iterations=iterations, seeds=seeds,
                       table2_datasets=table2_datasets)
settings = setup.settings
QUANTIZERS = ("vqvae", "soft_vqvae")
configs = [c for c in presets.table1(settings["seeds"], settings["iterations"], **setup.presets)
           if c.bottleneck in QUANTIZERS]

# %% [markdown]
# ## The numbers
#
# Mean ± sample standard deviation over seeds (runs made before the statistics were recorded are skipped).

# %%
df, records = setup.codebook(configs, "codebook_table1", note=f"Table 1 quantizer rows (MNIST, d = 64, K = 128), "
                             f"{settings['iterations']:,} iterations; statistics on the test set.")

# %% [markdown]
# ## Usage by codeword and the learned variances

# %%
fig = plots.plot_codebook(records, title=plots.title_lines(
    data.sample_note(["mnist"]), f"Table 1 quantizers, {settings['iterations']:,} iterations, one line per seed"))
print("saved", plots.save_figure(fig, setup.figures / "codebook_table1.png"))

# %% [markdown]
# Read the hard usage first: a codeword that no test image picks is dead, and a perplexity far below K
# means a few codewords carry most images. The soft VQ-VAE's mean largest posterior says how often the
# decoder sees a blend of codewords rather than one of them.

# %% [markdown]
# ## Table 2: the same on the CNN
#
# Table 2's VQ-VAE (K = 512) and soft VQ-VAE (K = 32) rows, d = 256, with the settings notebook 04 uses for
# each data set (those its validation sweeps chose, else `presets.TABLE2`).

# %%
for dataset in setup.table2_datasets:
    rows = presets.table2_for(dataset, settings["table2_sweep_seeds"], settings["table2_sweep_iterations"],
                                  setup.results, **setup.presets)
    configs2 = [c for c in presets.table2(dataset, settings["table2_seeds"], settings["table2_iterations"],
                                              rows=rows, **setup.presets) if c.bottleneck in QUANTIZERS]
    label = tables.DATASET_LABELS.get(dataset, dataset)
    setup.codebook(configs2, setup.stem("codebook_table2", dataset), title=f"Verdict ({label}).",
                   note=f"Table 2 quantizer rows ({label}, d = 256), {configs2[0].iterations:,} iterations; "
                        f"statistics on the test set.")
