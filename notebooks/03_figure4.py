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
# # Figure 4: t-SNE of the latent codes
#
# The paper's Figure 4 shows t-SNE maps of the 60-dimensional test-set codes `z_e` of four MNIST
# autoencoders: the baseline AE, the VAE, the VQ-VAE and the soft VQ-VAE. The soft VQ-VAE's digits form
# the most compact and separated clusters. Here we train the four models (or reuse finished runs), draw the
# same maps, and measure how tight each map's clusters are instead of judging by eye.

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
budget = "quick"        # "quick": 50 iterations, t-SNE of 500 points; "paper": 40,000 iterations, 10,000 points
iterations = None       # None: the budget's
seed = 0
kmeans_n_init = None    # None: the budget's
tsne_points = None      # None: the budget's (quick: 500; cpu and paper: all 10,000 test codes)
perplexity = 30.0
figures_dir = None      # None: the project's figures/, results/, checkpoints/
results_dir = None
checkpoint_dir = None
data_root = None        # None: $SOFTVQ_DATA or ./data
download = None         # fetch MNIST when missing (None: on Colab only)
precision = "fp32"      # fp32, tf32 or bf16 (bf16: for a GPU; slow on most CPUs)
torch_compile = False   # torch.compile the training step (for a GPU)
device = None           # None: cuda when present
launcher = {}           # {}: train inline; {"kind": "local" or "slurm", ...}: as jobs (softvq.launch)
train_missing = True    # train the models whose codes are missing
progress = True         # training progress bars

# %%
from IPython.display import Markdown
from sklearn.metrics import silhouette_score

from softvq import budgets, data, experiments, launch, plots, store, tables, verdicts

if data.wants_download(download):
    data.download(["mnist"], data_root)
settings = budgets.budget(budget, figure4_iterations=iterations, kmeans_n_init=kmeans_n_init, tsne_points=tsne_points)
figures, results, checkpoints = budgets.output_dirs(budget, figures_dir, results_dir, checkpoint_dir)
configs = experiments.figure4(seeds=[seed], iterations=settings["figure4_iterations"], **budgets.evaluation(settings),
                              precision=precision, compile=torch_compile)
[c.run_id for c in configs]

# %% [markdown]
# ## The test-set codes and their t-SNE maps
#
# `experiments.latents` returns the saved test codes of a finished run, training it first when they are
# missing. The same random subset of test images is embedded for every model. The embeddings are saved
# beside the figures, so that the figure can be redrawn without the models.

# %%
saved_path = figures / "data" / "figure4_tsne.npz"
saved = store.read_arrays(saved_path)
run_ids = [c.run_id for c in configs]
fresh = saved is not None and list(saved["run_ids"]) == run_ids and saved["tsne_points"] == settings["tsne_points"]
have_codes = all(store.latents_path(c, checkpoints).exists() for c in configs)
if not fresh and not have_codes and train_missing:          # the runs without results, as jobs if asked
    experiments.run(configs, root=data_root, device=device, results_dir=results, checkpoint_dir=checkpoints,
                    progress=progress, launcher=launcher)
    have_codes = all(store.latents_path(c, checkpoints).exists() for c in configs)
if not fresh and (have_codes or (train_missing and launch.launcher(launcher).wait)):
    codes = {c.bottleneck: experiments.latents(c, root=data_root, device=device, results_dir=results,
                                               checkpoint_dir=checkpoints, progress=progress) for c in configs}
    labels = next(iter(codes.values()))[1]
    index = plots.subsample(len(labels), settings["tsne_points"], seed)
    saved = {"run_ids": run_ids, "tsne_points": settings["tsne_points"], "labels": labels[index].numpy(),
             **{name: plots.tsne(z[index], seed=seed, perplexity=perplexity) for name, (z, _) in codes.items()}}
    store.write_arrays(saved_path, **saved)
elif not fresh:
    saved = None
    print(f"missing: the test codes of {run_ids} (or {saved_path}); run with train_missing = True")

# %% [markdown]
# Their scores, for reference (d = 60 here, while Table 1 uses d = 64):

# %%
scores = tables.collect(configs, results)
tables.format_table(scores)

# %%
if saved is not None:
    embeddings = {c.bottleneck: (saved[c.bottleneck], saved["labels"]) for c in configs}
    fig = plots.plot_embeddings(embeddings, title=plots.title_lines(
        data.sample_note(["mnist"]), f"t-SNE of MNIST test codes z_e (d = 60), {configs[0].iterations:,} iterations, "
                                     f"{len(saved['labels']):,} points"))
    print("saved", plots.save_figure(fig, figures / "figure4.png"))

# %% [markdown]
# ## How tight are the clusters?
#
# Two numbers stand in for the eye. The silhouette score of each map by digit label (sklearn; from -1 to 1,
# higher when each digit's points lie closer to one another than to other digits') is computed on the very
# t-SNE points drawn above. The NMI of K-means on the codes `z_e` themselves (from the scores table) does not
# depend on t-SNE at all. With the quick budget the models are barely trained, so the maps mostly show the
# pixel structure and the verdict says little about the paper's figure.

# %%
if saved is not None:
    silhouettes = {name: float(silhouette_score(points, labels)) for name, (points, labels) in embeddings.items()}
    tightness = verdicts.lead(silhouettes, "silhouette of the t-SNE map by digit", "{:.3f}".format)
    nmi = verdicts.lead(scores["nmi"].to_dict(), "NMI of K-means on z_e", "{:.4f}".format)
    display(Markdown(f"**Verdict.**\n\n- {tightness}\n- {nmi}"))
