"""Budgets (how much to train for each figure and table) and where each budget writes its outputs.

The committed figures/ and results/ come from the "cpu" budget; every other budget writes under
outputs/<budget>/, so that a quick run leaves the committed files alone. A run that reads any data set
from the embedded sample (`data.sampled()`) writes under outputs/<budget>-sample/, whatever the budget, so
that its results are never taken for those of the full data.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from . import data
from .config import EVALUATION, Config
from .presets import TABLE1, TABLE2

COMMITTED = "cpu"           # the budget the committed figures/ and results/ come from

BUDGETS = {
    # a smoke run of every notebook in under 2 minutes on a 2-core CPU: 50 iterations (the sweeps that choose
    # settings: 20; Table 2's CNN: 5), 1,000 training and 250 evaluation images (a fixed draw), a capped linear
    # probe, 3 K-means starts; numbers far from converged. Its 21 CNN runs are most of its time, and scoring one
    # costs more than training it.
    "quick": dict(iterations=50, seeds=(0,), table2_seeds=(0,), table2_iterations=5, figure4_iterations=50,
                  train_iterations=50, ablation_iterations=20, ablation_seeds=(0,), kmeans_n_init=3,
                  tsne_points=250, train_size=1_000, eval_size=250, probe_iterations=50, theorem_samples=5_000,
                  table2_sweep_iterations=5, table2_sweep_seeds=(0,), table2_datasets=("cifar10-jpeg",)),
    # what a 2-core CPU affords in a few hours (the README's tables): Table 1 and Figure 4 at the paper's
    # 40,000 iterations with 5 seeds (Figure 4: one), the ablation at 5,000 with three, Table 2 at 10,000 with
    # three (its settings chosen at 2,000 with two)
    "cpu": dict(iterations=40_000, seeds=(0, 1, 2, 3, 4), table2_seeds=(0, 1, 2), table2_iterations=10_000,
                figure4_iterations=40_000, train_iterations=2_000, ablation_iterations=5_000, ablation_seeds=(0, 1, 2),
                kmeans_n_init=100, tsne_points=10_000, theorem_samples=20_000, table2_sweep_iterations=2_000,
                table2_sweep_seeds=(0, 1), table2_datasets=("cifar10-jpeg",)),
    # the paper's budget, for a GPU: 40,000 iterations (Table 2 soft VQ-VAE: 10,000), 3 seeds
    "paper": dict(iterations=40_000, seeds=(0, 1, 2), table2_seeds=(0, 1, 2), table2_iterations=None,
                  figure4_iterations=40_000, train_iterations=40_000, ablation_iterations=40_000,
                  ablation_seeds=(0, 1, 2), kmeans_n_init=100, tsne_points=10_000, theorem_samples=20_000,
                  table2_sweep_iterations=10_000, table2_sweep_seeds=(0, 1, 2), table2_datasets=("svhn", "cifar10")),
}
# The paper's evaluation protocol (all images, K-means with 100 starts, the probe to convergence); a budget
# may change these Config fields (config.EVALUATION) for every run it makes.
PAPER_EVALUATION = {f.name: f.default for f in dataclasses.fields(Config) if f.name in EVALUATION}


def budget(name: str = "quick", **overrides) -> dict:
    """The settings of budget `name` ("quick": minutes on a CPU; "cpu": a few hours on a CPU; "paper": the
    paper's 40,000 iterations, 3 seeds). Overrides that are not None replace them; given `seeds` also
    replace `table2_seeds`. table2_iterations None keeps the paper's per-row budget (40,000; 10,000 for the
    soft VQ-VAE)."""
    if name not in BUDGETS:
        raise ValueError(f"unknown budget {name!r}; expected one of {sorted(BUDGETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "seeds" in given:                            # seeds chosen by the caller apply to Table 2 as well
        given.setdefault("table2_seeds", given["seeds"])
    chosen = {**BUDGETS[name], **given}
    for key in ("seeds", "table2_seeds", "ablation_seeds", "table2_sweep_seeds"):
        chosen[key] = tuple(int(s) for s in chosen[key])
    return chosen


def evaluation(settings: dict) -> dict:
    """The evaluation fields of a budget's `settings` (from `budget`), for every Config and the raw row."""
    return {k: settings.get(k, v) for k, v in PAPER_EVALUATION.items()}


def project_dir() -> Path:
    """The working folder, or its parent when a notebook runs inside notebooks/."""
    cwd = Path.cwd()
    return cwd.parent if cwd.name == "notebooks" else cwd


def output_root(name: str = COMMITTED, base: Path | None = None) -> Path:
    """Where budget `name` writes: the project folder (`base`, default `project_dir()`) for the committed
    budget, outputs/<name>/ (git-ignored) in it for any other, so that a quick run never touches the
    committed figures and results; outputs/<name>-sample/ when a data set is read from the embedded sample."""
    budget(name)                                    # refuses an unknown name
    base = Path(base) if base is not None else project_dir()
    return base if name == COMMITTED and not data.sampled() else base / "outputs" / outputs_name(name)


def outputs_name(name: str) -> str:
    """The folder under outputs/ that budget `name` writes to (for the committed budget, its executed notebooks
    only): the budget's name, with "-sample" when a data set is read from the embedded sample."""
    return f"{name}-sample" if data.sampled() else name


def output_dirs(name: str = COMMITTED, figures_dir=None, results_dir=None, checkpoint_dir=None,
                base: Path | None = None) -> tuple[Path, Path, Path]:
    """(figures, results, checkpoints) folders of budget `name` under `output_root`; a folder given replaces
    its default. The figures folder is created."""
    root = output_root(name, base)
    dirs = [Path(p) if p is not None else root / sub for p, sub in
            ((figures_dir, "figures"), (results_dir, "results"), (checkpoint_dir, "checkpoints"))]
    dirs[0].mkdir(parents=True, exist_ok=True)
    return tuple(dirs)


def banner(name: str, datasets: Iterable[str] = ()) -> str:
    """The first line of a table made at budget `name` from `datasets`: a warning for any budget but the
    committed one, and a note when one of the data sets was read from the embedded sample; else empty."""
    warning = "" if name == COMMITTED else (
        f"**Budget '{name}'**: not the committed results, which come from the '{COMMITTED}' budget "
        f"(figures/ and results/ of the repository).")
    sample = data.sample_note(datasets)
    return " ".join(filter(None, [warning, sample and f"**{sample}**"]))


def preset_config(bottleneck: str = "soft_vqvae", dataset: str = "mnist", **fields) -> Config:
    """The preset row of `bottleneck` (presets.TABLE1 on MNIST, TABLE2 otherwise) with the given
    fields replaced; fields that are None keep the preset's value."""
    table = TABLE1 if dataset == "mnist" else TABLE2
    if bottleneck not in table:
        raise ValueError(f"unknown bottleneck {bottleneck!r}; expected one of {sorted(table)}")
    given = {k: v for k, v in fields.items() if v is not None}
    defaults = {"d": 64 if dataset == "mnist" else 256}
    return Config(dataset=dataset, **{**defaults, **table[bottleneck], **given})
