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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/softvq/softvq/blob/main/notebooks/08_quantizers.ipynb)
#
# *The outputs saved here are those of the committed results: `python reproduce.py --budget cpu --publish`
# runs this notebook with `budget = "cpu"` and `train_missing = False`. Run it as it is for the quick budget.*
#
# # Beyond the paper: the posterior mean against today's quantizers
#
# The paper (2020) measures the soft VQ-VAE against the 2017 VQ-VAE. Someone choosing a quantizer today takes
# one from vector-quantize-pytorch instead:
#
# - **VectorQuantize** with an EMA codebook, k-means initialisation, dead-code replacement and the **rotation
#   trick** (Fifty et al. 2024; the library's default) or the straight-through estimator,
# - **FSQ** (Mentzer et al., ICLR 2024): finite scalar quantization of a learned projection, no codebook,
# - **SimVQ** (Zhu et al., ICCV 2025): a frozen random codebook through one learned linear map,
# - **DiVeQ**: a codebook learned by gradient through the direction to the nearest codeword.
#
# Their papers report reconstruction and codebook usage; this notebook measures what the paper measures, how
# well the codes cluster and classify, on Table 1's protocol (d = 64, the test set, K-means with 100 starts, the
# linear probe), beside the soft VQ-VAE, the hard VQ-VAE and SQ-VAE:
#
# 1. a grid per quantizer on the validation split chooses its settings (rotation trick on and off included),
# 2. what the rotation trick changes in this net,
# 3. the tables, MNIST and Fashion-MNIST: the scores of z_e and of the quantized code, the reconstruction
#    error, codebook usage and training time, with intervals and p-values against the soft VQ-VAE.
#
# The quantizers come from the library itself (`softvq.peers` wraps its modules; `pip install "softvq[peers]"`).

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
budget = "quick"            # "quick": 50 iterations, 1 seed; "cpu": what the README reports
datasets = ["mnist", "fashion-mnist"]
train_missing = True        # train the runs whose results are missing
overrides = {}              # any budget setting or option (softvq.notebook.OPTIONS), e.g. {"seeds": (0, 1)}

# %%
from softvq import data, notebook, plots, presets, quantizer_table, tables, verdicts

setup = notebook.setup(budget, overrides, train_missing)
settings = setup.settings
sweep_seeds, sweep_iterations = settings["ablation_seeds"][:2], settings["ablation_iterations"]
# MNIST's soft VQ-VAE, VQ-VAE and SQ-VAE rows: the estimators study's (trained together on one CPU); today's
# quantizers and Fashion-MNIST's rows: the results folder
folders = [setup.results / "estimators", setup.results]

# %% [markdown]
# ## 1. Choosing each quantizer's settings on the validation split
#
# Each quantizer takes the VQ-VAE row's losses and batch (the Bernoulli log-likelihood summed over pixels, its
# latent terms summed over d, batch 32) and K = 128 codes (FSQ: 8 x 4 x 4 = 128 or 5 x 5 x 5 = 125). The grid
# (`presets.QUANTIZER_CANDIDATES`): VectorQuantize's commitment weight and EMA decay, SimVQ's commitment
# weight, each with the rotation trick and with straight-through; FSQ's levels and input scale; DiVeQ's noise
# variance. Trained on the training set minus 10,000 held-out images and scored on those, never on the test set.
# Each table row keeps the candidate with the best mean validation clustering accuracy, the rule that chose
# Table 1's loss scaling; VectorQuantize keeps its best with the rotation trick as well, the library's default.
# Table 1's soft VQ-VAE on the same split and budget (the ablation's runs) stands first, for reference.

# %%
choices, sweeps = {}, {}
for dataset in datasets:
    sweep = presets.quantizers_sweep(sweep_seeds, sweep_iterations, dataset=dataset, **setup.presets)
    soft = [presets.official_code(seed=s, dataset=dataset, iterations=sweep_iterations, validation=True,
                                  **setup.presets) for s in sweep_seeds]       # for reference: Table 1's soft VQ-VAE
    rows = {"soft VQ-VAE (Table 1's settings)": soft, **sweep}
    setup.run(rows)
    sweeps[dataset], _ = quantizer_table.quantizer_table(rows, [setup.results])
    stem = f"quantizers_sweep_{data.data_name(dataset).replace('-', '_')}"
    quantizer_table.write_quantizer_table(sweeps[dataset], stem, setup.figures, budget=setup.budget,
                                          note="Candidates of today's quantizers on the validation split.")
    try:
        choices[dataset] = presets.choose_quantizers(dataset, sweep_seeds, sweep_iterations, setup.results,
                                                         **setup.presets)
    except FileNotFoundError as missing:
        print(f"sweep incomplete ({missing}); using the committed choices")
        choices[dataset] = presets.QUANTIZER_CHOICES.get(dataset)
    chosen = choices[dataset] or {}
    print(f"{dataset}, chosen:", {k: v for k, v in chosen.items() if k != "pending"} or "none yet",
          "\n  sweeps still incomplete (no row yet):", ", ".join(chosen.get("pending", [])) or "none")
    notebook.show(quantizer_table.format_quantizer_table(sweeps[dataset]), tables.budget_note(sweeps[dataset]))

# %% [markdown]
# SQ-VAE (Takida et al. 2022) has its own open settings, its initial variance and its loss scaling. Each data set
# chooses them on its own validation split by the rule the estimators study chose them by on MNIST (notebook 06):
# the best mean validation linear probe, over `presets.SQVAE_SWEEP_SEEDS` (on MNIST that study's sweep).

# %%
sqvae = {}
for dataset in datasets:
    seeds = presets.SQVAE_SWEEP_SEEDS[dataset]
    sweep = presets.estimators_sweep(seeds, sweep_iterations, dataset=dataset, families=("sqvae",), **setup.presets)
    setup.tabulate(sweep, f"sqvae_sweep_{data.data_name(dataset).replace('-', '_')}",
                   note=f"SQ-VAE candidates, {dataset}, d = 64, K = 128; chosen by the best validation linear probe.")
    try:
        sqvae[dataset] = presets.choose_estimators(seeds, sweep_iterations, setup.results, dataset=dataset,
                                                   families=("sqvae",), **setup.presets)["sqvae"]
    except FileNotFoundError as missing:
        print(f"sweep incomplete ({missing}); using the committed choice")
        sqvae[dataset] = presets.SQVAE_CHOICES[dataset]
    print(f"{dataset}, SQ-VAE chosen: {sqvae[dataset]}")

# %% [markdown]
# ## 2. What the rotation trick does here
#
# The rotation trick (Fifty et al. 2024) passes the gradient through the quantizer by the rotation and scaling
# that take z_e to its codeword, instead of copying it unchanged (straight-through). Each line pairs two sweep
# rows that differ in that alone.

# %%
for dataset in datasets:
    effect = quantizer_table.rotation_effect(sweeps[dataset])
    stem = f"quantizers_rotation_{data.data_name(dataset).replace('-', '_')}"
    rotation = verdicts.rotation_verdict(effect)
    if len(effect) and effect["seeds"].max() > 0:
        quantizer_table.write_rotation_effect(effect, stem, setup.figures, rotation, setup.budget)
        notebook.show(quantizer_table.format_rotation_effect(effect), tables.budget_note(sweeps[dataset]))
    notebook.verdict(f"What the rotation trick changes ({dataset}, validation split).", rotation)

# %% [markdown]
# ## 3. The tables: Table 1's protocol
#
# 40,000 iterations and 5 seeds at the committed budget, the test set. On MNIST the soft VQ-VAE, VQ-VAE and
# SQ-VAE rows are the estimators study's (all trained on one CPU from one commit), on Fashion-MNIST the soft
# VQ-VAE and VQ-VAE rows are those of its Table 1 protocol; their records predate the scores of the quantized
# code ("–"). "Leads" means beating every other row: the p-value of a lead is the largest of the one-sided Welch
# tests against the others.

# %%
sentences = []
for dataset in datasets:
    if not choices[dataset]:
        print(f"{dataset}: no settings chosen yet (the sweep has no results)")
        continue
    rows = presets.quantizers(dataset, settings["seeds"], settings["iterations"], choices[dataset],
                              sqvae[dataset], **setup.presets)
    stem = f"quantizers_{data.data_name(dataset).replace('-', '_')}"
    df, stats, records = setup.quantizers(rows, stem, folders, note=f"Quantizers study, {dataset}.")
    notebook.verdict(f"Verdict ({dataset}).", verdicts.table_verdict(df, stats))
    sentences.append(verdicts.leads_sentence(stats, tables.DATASET_LABELS.get(dataset, dataset)))
    fig = plots.plot_quantizers(df, title=plots.title_lines(data.sample_note([dataset]), tables.budget_note(df)))
    print("saved", plots.save_figure(fig, setup.figures / f"{stem}.png"))
quantizer_table.write_verdict(sentences, "quantizers_verdict", setup.figures, setup.budget)
notebook.verdict("In one sentence per data set.", "\n\n".join(sentences))
