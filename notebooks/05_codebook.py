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
# # Codebook diagnostics of a soft VQ-VAE
#
# How does a trained soft VQ-VAE use its codebook? For each test image the encoder gives a code `z_e`
# and K variances `sigma_k^2`; the posterior `p(mu_k | z_e)` weights the codewords. We look at:
#
# - how evenly the codewords are used (perplexity: K when all are used equally),
# - the learned `sigma_k`,
# - how soft the quantizer is: the largest posterior per image (1 means a hard choice).

# %%
# Colab or a fresh environment: install softvq first. There is no public URL yet; once the
# repository is published, install it with `%pip install -q git+https://github.com/<owner>/softvq`.
try:
    import softvq
except ImportError:
    # %pip install -q softvq
    import softvq

# %% tags=["parameters"]
budget = "quick"        # "quick": a few hundred iterations; "cpu": 2,000; "paper": 40,000
iterations = None       # None: the budget's
seed = 0
K = None                # None: the preset's 128
noise_std = None        # None: the preset's
kmeans_n_init = None    # None: the budget's
figures_dir = None      # None: the project's figures/, results/, checkpoints/
results_dir = None
checkpoint_dir = None
data_root = None        # None: $SOFTVQ_DATA or ./data
device = None           # None: cuda when present
progress = True         # training progress bar

# %%
from softvq import data, experiments, report

settings = report.budget(budget, train_iterations=iterations, kmeans_n_init=kmeans_n_init)
figures, results, checkpoints = report.output_dirs(figures_dir, results_dir, checkpoint_dir)
config = report.preset_config("soft_vqvae", "mnist", K=K, noise_std=noise_std, seed=seed,
                              iterations=settings["train_iterations"], kmeans_n_init=settings["kmeans_n_init"])

# %% [markdown]
# The soft VQ-VAE of the Table 1 preset: the same run as notebook 02 with its defaults. A finished run
# is reloaded from its checkpoint, not trained again.

# %%
records, model, _ = experiments.run_stack([config], root=data_root, device=device, results_dir=results,
                                          checkpoint_dir=checkpoints, progress=progress, keep_model=True)
x_test, _ = data.load_dataset("mnist", "test", data_root)
codes = report.soft_codes(model, x_test)
per_code, summary = report.codebook_stats(codes)
summary

# %% [markdown]
# ## Usage, variances and softness

# %%
fig = report.plot_codebook(per_code, codes, title=f"soft VQ-VAE, K = {config.K}, {config.iterations:,} iterations")
print("saved", report.save_figure(fig, figures / "codebook.png"))

# %% [markdown]
# A soft perplexity well below K means that a few codewords carry most of the posterior mass. A largest
# posterior near 1 for most images means that the quantizer acts almost like a hard one on the test set
# (no noise is added at evaluation).

# %%
per_code.sort_values("soft_usage", ascending=False).head(10)
