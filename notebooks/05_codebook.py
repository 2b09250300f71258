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
budget = "quick"        # "quick": 50 iterations (Table 2: 10), 1 seed; "cpu" and "paper": 40,000, several seeds
iterations = None       # None: the budget's
seeds = None            # None: the budget's
kmeans_n_init = None    # None: the budget's
train_missing = True    # train the Table 1 and 2 quantizer runs whose results are missing
table2_iterations = None  # None: the budget's
table2_datasets = None  # None: the budget's (quick, cpu: the lossy cifar10-jpeg; paper: svhn, cifar10)
figures_dir = None      # None: the budget's figures/, results/, checkpoints/
results_dir = None
checkpoint_dir = None
data_root = None        # None: $SOFTVQ_DATA or ./data
download = None         # fetch MNIST and the Table 2 data sets when missing (None: on Colab only)
precision = "fp32"      # fp32, tf32 or bf16 (bf16: for a GPU; slow on most CPUs)
torch_compile = False   # torch.compile the training step (for a GPU)
device = None           # None: cuda when present
launcher = {}           # {}: train inline; {"kind": "local" or "slurm", ...}: as jobs (softvq.launch)
progress = True         # training progress bars

# %%
from IPython.display import Markdown

from softvq import budgets, data, experiments, plots, tables, verdicts

settings = budgets.budget(budget, iterations=iterations, seeds=seeds, kmeans_n_init=kmeans_n_init,
                          table2_iterations=table2_iterations)
datasets2 = table2_datasets or settings["table2_datasets"]
if data.wants_download(download):
    data.download(["mnist", *datasets2], data_root)
figures, results, checkpoints = budgets.output_dirs(budget, figures_dir, results_dir, checkpoint_dir)
where = dict(root=data_root, device=device, results_dir=results, checkpoint_dir=checkpoints, progress=progress,
             launcher=launcher)
evaluation = budgets.evaluation(settings)
numerics = dict(precision=precision, compile=torch_compile)
QUANTIZERS = ("vqvae", "soft_vqvae")
configs = [c for c in experiments.table1(settings["seeds"], settings["iterations"], **evaluation, **numerics)
           if c.bottleneck in QUANTIZERS]
if train_missing:
    experiments.run(configs, **where)
records = tables.records_by_row(configs, results)
{row: len(recs) for row, recs in records.items()}

# %% [markdown]
# ## The numbers
#
# Mean ± sample standard deviation over seeds (runs made before the statistics were recorded are skipped).

# %%
df = tables.codebook_table(records)
tables.write_codebook_table(df, "codebook_table1", figures, budget=budget,
                            note=f"Table 1 quantizer rows (MNIST, d = 64, K = 128), {settings['iterations']:,} "
                                 f"iterations; statistics on the test set.")
display(df)
display(Markdown("**Verdict.**\n\n" + verdicts.codebook_verdict(df)))

# %% [markdown]
# ## Usage by codeword and the learned variances

# %%
fig = plots.plot_codebook(records, title=plots.title_lines(
    data.sample_note(["mnist"]), f"Table 1 quantizers, {settings['iterations']:,} iterations, one line per seed"))
print("saved", plots.save_figure(fig, figures / "codebook_table1.png"))

# %% [markdown]
# Read the hard usage first: a codeword that no test image picks is dead, and a perplexity far below K
# means a few codewords carry most images. The soft VQ-VAE's mean largest posterior says how often the
# decoder sees a blend of codewords rather than one of them.

# %% [markdown]
# ## Table 2: the same on the CNN
#
# Table 2's VQ-VAE (K = 512) and soft VQ-VAE (K = 32) rows, d = 256, with the settings notebook 04 uses for
# each data set (those its validation sweeps chose, else `experiments.TABLE2`).

# %%
for dataset in datasets2:
    rows = experiments.table2_for(dataset, settings["table2_sweep_seeds"], settings["table2_sweep_iterations"],
                                  results, **evaluation, **numerics)
    configs2 = [c for c in experiments.table2(dataset, settings["table2_seeds"], settings["table2_iterations"],
                                              rows=rows, **evaluation, **numerics) if c.bottleneck in QUANTIZERS]
    if train_missing:
        experiments.run(configs2, **where)
    df2 = tables.codebook_table(tables.records_by_row(configs2, results))
    label = tables.DATASET_LABELS.get(dataset, dataset)
    tables.write_codebook_table(df2, tables.per_dataset_stem("codebook_table2", dataset, datasets2), figures,
                                budget=budget, note=f"Table 2 quantizer rows ({label}, d = 256), "
                                                    f"{configs2[0].iterations:,} iterations; statistics on the test set.")
    display(df2)
    display(Markdown(f"**Verdict ({label}).**\n\n" + verdicts.codebook_verdict(df2)))
