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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/softvq/softvq/blob/main/notebooks/03_figure4.ipynb)
#
# *The outputs saved here are those of the committed results: `python reproduce.py --budget cpu --publish`
# runs this notebook with `budget = "cpu"` and `train_missing = False`. Run it as it is for the quick budget.*
#
# # Figure 4: t-SNE of the latent codes
#
# The paper's Figure 4 shows t-SNE maps of the 60-dimensional test-set codes `z_e` of four MNIST
# autoencoders: the baseline AE, the VAE, the VQ-VAE and the soft VQ-VAE. The soft VQ-VAE's digits form
# the most compact and separated clusters. Here we train the four models (or reuse finished runs), draw the
# same maps, and measure how tight each map's clusters are instead of judging by eye.

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
budget = "quick"        # "quick": 50 iterations, t-SNE of 250 points; "cpu", "paper": 40,000 iterations, 10,000 points
iterations = None       # None: the budget's
seed = 0
perplexity = 30.0
train_missing = True    # train the models whose codes are missing
overrides = {}          # e.g. {"tsne_points": 2000}: any budget setting or option (softvq.notebook.OPTIONS)

# %%
from sklearn.metrics import silhouette_score

from softvq import data, notebook, plots, presets, tables, verdicts

setup = notebook.setup(budget, overrides, train_missing, figure4_iterations=iterations)
configs = presets.figure4(seeds=[seed], iterations=setup.settings["figure4_iterations"], **setup.presets)
[c.run_id for c in configs]

# %% [markdown]
# ## The test-set codes and their t-SNE maps
#
# `notebook.tsne_maps` embeds the saved test codes of the four runs (training them first where their results
# are missing), the same random subset of test images for every model. The maps are kept beside the figures,
# so that the figure can be redrawn without the models.

# %%
embeddings = notebook.tsne_maps(setup, configs, setup.settings["tsne_points"], seed, perplexity)

# %% [markdown]
# Their scores, for reference (d = 60 here, while Table 1 uses d = 64):

# %%
scores = tables.collect(configs, setup.results)
tables.format_table(scores)

# %%
if embeddings is not None:
    n_points = len(next(iter(embeddings.values()))[1])
    fig = plots.plot_embeddings(embeddings, title=plots.title_lines(
        data.sample_note(["mnist"]), f"t-SNE of MNIST test codes z_e (d = 60), {configs[0].iterations:,} iterations, "
                                     f"{n_points:,} points"))
    print("saved", plots.save_figure(fig, setup.figures / "figure4.png"))

# %% [markdown]
# ## How tight are the clusters?
#
# Two numbers stand in for the eye. The silhouette score of each map by digit label (sklearn; from -1 to 1,
# higher when each digit's points lie closer to one another than to other digits') is computed on the very
# t-SNE points drawn above. The NMI of K-means on the codes `z_e` themselves (from the scores table) does not
# depend on t-SNE at all. With the quick budget the models are barely trained, so the maps mostly show the
# pixel structure and the verdict says little about the paper's figure.

# %%
if embeddings is not None:
    silhouettes = {name: float(silhouette_score(points, labels)) for name, (points, labels) in embeddings.items()}
    tightness = verdicts.lead(silhouettes, "silhouette of the t-SNE map by digit", "{:.3f}".format)
    nmi = verdicts.lead(scores["nmi"].to_dict(), "NMI of K-means on z_e", "{:.4f}".format)
    notebook.verdict("Verdict.", f"- {tightness}\n- {nmi}")
