"""Does the paper's claim carry? Per data set, whether the soft VQ-VAE leads the best other row on each score.

The claim (Wu & Flierl, Tables 1-2): the soft VQ-VAE's codes cluster (K-means accuracy, NMI) and classify (a
linear probe) better than those of every other bottleneck. `claims` reads the committed seed statistics of each
data set's table (`figures/<stem>_stats.csv`, written by `softvq.tables.write_statistics` with the soft VQ-VAE as
the reference row) and, per score, names the best other row, the margin and the one-sided Welch p-value that
the soft VQ-VAE is better. Nothing is retrained: the table follows the committed tables, and `reproduce.py`
copies figures/claims.md into the README's and docs/results.md's `<!-- claims -->` blocks.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import paper
from .presets import OFFICIAL_CODE, SCALING_ROWS, TABLE1, best_row
from .tables import METRICS, format_metric, write_csv_md

# data set label -> the stem of its seed statistics in figures/, in the order of the table
TABLES = {"MNIST (Table 1)": "table1_stats", "Fashion-MNIST (Table 1's protocol)": "fashion_table1_stats",
          "lossy CIFAR-10 (Table 2)": "table2_stats"}
REFERENCE = "soft_vqvae"
ALPHA = 0.05
SCORE_LABELS = {"cluster_acc": "clustering %", "nmi": "NMI", "classification_acc": "classification %"}


def claim_rows(stats: pd.DataFrame) -> list[dict]:
    """Per metric of one data set's seed statistics: the soft VQ-VAE's mean, the best other row, the margin
    (soft VQ-VAE minus that row) and the p-value that the soft VQ-VAE is better than it."""
    rows = []
    for metric in METRICS:
        part = stats[stats["metric"] == metric].set_index("row")
        others = part.drop(index=REFERENCE, errors="ignore")["mean"].dropna()
        if REFERENCE not in part.index or others.empty or not math.isfinite(part.loc[REFERENCE, "mean"]):
            continue
        best = others.idxmax()
        rows.append({"metric": metric, "soft_vqvae": float(part.loc[REFERENCE, "mean"]),
                     "seeds": int(part.loc[REFERENCE, "seeds"]), "best_other": best,
                     "best_other_mean": float(others[best]), "margin": float(part.loc[REFERENCE, "mean"] - others[best]),
                     "p": float(part.loc[best, "p_reference_better"])})
    return rows


def verdict(margin: float, p: float) -> str:
    """'leads' (p < ALPHA), 'leads, not significant', or 'trails' the best other row."""
    if margin <= 0:
        return "trails"
    return "leads" if math.isfinite(p) and p < ALPHA else "leads, not significant"


# What Table 1 uses on MNIST, as the names of the sweeps' rows: the noise level, and each baseline's loss scaling.
MNIST_CHOICES = {"soft_vqvae": f"noise_std {OFFICIAL_CODE['noise_std']:g}",
                 **{b: next(n for n, row in SCALING_ROWS.items() if row == TABLE1[b])
                    for b in ("vae", "beta_vae", "info_dropout")}}


def rechosen(sweeps, results_dir) -> pd.DataFrame:
    """Whether choosing the open settings again on another data set's validation split picks MNIST's: per
    bottleneck of the noise and scaling sweeps (`presets.noise_sweep` / `scaling_sweep` on that data set), the
    row `presets.best_row` picks there beside Table 1's choice on MNIST. `sweeps`: {row: configs} mappings."""
    out = []
    for sweep in sweeps:
        groups: dict[str, dict] = {}
        for row, configs in sweep.items():
            groups.setdefault(configs[0].bottleneck, {})[row] = configs
        for bottleneck, rows in groups.items():
            chosen = best_row(rows, results_dir)
            out.append({"bottleneck": bottleneck, "chosen": chosen, "mnist": MNIST_CHOICES[bottleneck],
                        "same": chosen == MNIST_CHOICES[bottleneck]})
    return pd.DataFrame(out)


def claims(figures_dir: str | Path = "figures") -> pd.DataFrame:
    """One row per data set and score, for every data set whose statistics are in `figures_dir`."""
    out = []
    for dataset, stem in TABLES.items():
        path = Path(figures_dir) / f"{stem}.csv"
        if path.is_file():
            out += [{"dataset": dataset, **row, "verdict": verdict(row["margin"], row["p"])}
                    for row in claim_rows(pd.read_csv(path))]
    return pd.DataFrame(out)


def format_claims(df: pd.DataFrame) -> pd.DataFrame:
    """The display table: per data set and score, the verdict, the margin over the best other row, and p."""
    show = pd.DataFrame({
        "data set": df["dataset"], "score": [SCORE_LABELS[m] for m in df["metric"]],
        "soft VQ-VAE (seeds)": [f"{format_metric(v, m)} ({n})" for v, m, n in zip(df["soft_vqvae"], df["metric"],
                                                                                   df["seeds"])],
        "best other row": [f"{paper.LABELS.get(r, r)} {format_metric(v, m)}"
                           for r, v, m in zip(df["best_other"], df["best_other_mean"], df["metric"])],
        "margin": [format_metric(v, m, signed=True) for v, m in zip(df["margin"], df["metric"])],
        "p": [f"{p:.2g}" if math.isfinite(p) else "–" for p in df["p"]],
        "soft VQ-VAE": df["verdict"]})
    return show.set_index("data set")


def write_claims(figures_dir: str | Path = "figures") -> tuple[Path, Path]:
    """figures/claims.csv (every number) and claims.md (what the columns mean, the table)."""
    df = claims(figures_dir)
    note = (f"Per data set and score: the soft VQ-VAE's mean over seeds against the best other row of that data "
            f"set's table (raw pixels included), the margin, and the one-sided Welch p-value that the soft VQ-VAE "
            f"is better (from the table's seed statistics; 'leads' at p < {ALPHA}, not corrected for multiplicity). "
            f"Each data set's budget, seeds and machine are in its own table.")
    return write_csv_md(df.set_index("dataset"), format_claims(df), "claims", figures_dir, [note])
