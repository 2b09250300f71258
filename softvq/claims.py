"""Does the paper's claim carry? Per data set, whether the soft VQ-VAE leads every other row on each score.

The claim (Wu & Flierl, Tables 1-2): the soft VQ-VAE's codes cluster (K-means accuracy, NMI) and classify (a
linear probe) better than those of every other bottleneck. `claims` reads the committed seed statistics of each
data set's table (`figures/<stem>_stats.csv`, written by `softvq.tables.write_statistics` with the soft VQ-VAE as
the reference row) and, per score, names the best other row, the margin and the largest of the one-sided Welch
p-values that the soft VQ-VAE is better than each other row. Nothing is retrained: the table follows the
committed tables, and `reproduce.py` copies figures/claims.md into the README's and docs/results.md's
`<!-- claims -->` blocks.
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
          "Fashion-MNIST (settings its probe picks)": "fashion_table1_probe_stats",
          "lossy CIFAR-10 (Table 2)": "table2_stats",
          # the quantizers study (notebook 08): Table 1's protocol against today's quantizers
          "MNIST (today's quantizers)": "quantizers_mnist_stats",
          "Fashion-MNIST (today's quantizers)": "quantizers_fashion_mnist_stats",
          # the paper budget's Table 2, one file per data set (`tables.per_dataset_stem`), where it was made
          "SVHN (Table 2, the paper's budget)": "table2_svhn_stats",
          "CIFAR-10 (Table 2, the paper's budget)": "table2_cifar10_stats"}
REFERENCE = "soft_vqvae"
ALPHA = 0.05
SCORE_LABELS = {"cluster_acc": "clustering %", "nmi": "NMI", "classification_acc": "classification %"}


def claim_rows(stats: pd.DataFrame) -> list[dict]:
    """Per metric of one data set's seed statistics: the soft VQ-VAE's mean, the best other row, the margin
    (soft VQ-VAE minus that row) and p, the largest of the one-sided p-values that the soft VQ-VAE is better than
    each other row: "leads" means beating every other row, so its p is that of the weakest of those tests (the
    same number `verdicts` quotes for a lead)."""
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
                     "p": float(part.drop(index=REFERENCE)["p_reference_better"].max(skipna=False))})
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


CHOICE_RULES = {"cluster_acc": "clust.", "classification_acc": "class."}   # metric -> label of its pick


def _picks(sweeps, results_dir) -> dict[str, dict[str, str]] | None:
    """{bottleneck: {metric: the sweep row with the best mean validation metric}} of the sweeps' bottlenecks,
    for each metric of CHOICE_RULES; None when a run of the sweeps has no results JSON in `results_dir`."""
    picks: dict[str, dict[str, str]] = {}
    for sweep in sweeps:
        groups: dict[str, dict] = {}
        for row, configs in sweep.items():
            groups.setdefault(configs[0].bottleneck, {})[row] = configs
        for bottleneck, rows in groups.items():
            try:
                picks[bottleneck] = {m: best_row(rows, results_dir, metric=m) for m in CHOICE_RULES}
            except FileNotFoundError:
                return None
    return picks


def rechosen(sweeps, results_dir, mnist_sweeps=()) -> pd.DataFrame:
    """Whether choosing the open settings again on another data set's validation split picks what Table 1 uses on
    MNIST: per bottleneck of the noise and scaling sweeps (`presets.noise_sweep` / `scaling_sweep`, {row: configs}
    mappings), Table 1's setting and the rows with the best validation clustering accuracy (the rule Table 1's
    scaling was chosen by) and the best linear probe (Table 2's rule, `presets.CHOICE_METRIC`). With the same
    sweeps on MNIST (`mnist_sweeps`, read when all their results are in `results_dir`), MNIST's own picks by the
    same two rules stand beside them: where those differ from Table 1 as well, the rule, not the data set, moves
    the choice. `retrain` names the picks on the new data set that differ from Table 1's setting."""
    picks, mnist = _picks(sweeps, results_dir), _picks(mnist_sweeps, results_dir) if mnist_sweeps else None
    if picks is None:
        raise FileNotFoundError("the sweeps lack results: train them first")
    out = []
    for bottleneck, chosen in picks.items():
        row = {"bottleneck": bottleneck, "table1": MNIST_CHOICES[bottleneck],
               **{f"{label} pick": chosen[m] for m, label in CHOICE_RULES.items()}}
        if mnist is not None and bottleneck in mnist:
            row.update({f"MNIST {label} pick": mnist[bottleneck][m] for m, label in CHOICE_RULES.items()})
        row["retrain"] = ", ".join(sorted({c for c in chosen.values() if c != row["table1"]})) or "–"
        out.append(row)
    return pd.DataFrame(out)


def write_rechosen(choices: pd.DataFrame, stem: str, figures_dir: str | Path = "figures") -> tuple[Path, Path]:
    """figures/<stem>.{csv,md}: the table of `rechosen`, after a note on what its columns mean."""
    note = ("Per open setting, the setting Table 1 uses on MNIST (table1) and the sweep row picked on this data "
            "set's validation split by the best clustering accuracy (clust., the rule that chose Table 1's loss "
            "scaling) and by the best linear probe (class., the rule that chose Table 2's settings); the MNIST "
            "columns apply the same two rules to MNIST's own sweeps. retrain: the picks that differ from table1.")
    return write_csv_md(choices.set_index("bottleneck"), choices.set_index("bottleneck"), stem, figures_dir, [note])


def claims(figures_dir: str | Path = "figures") -> pd.DataFrame:
    """One row per data set and score, for every data set whose statistics are in `figures_dir` with runs in every
    row: a verdict against the best of some rows would say nothing. The data sets left out for rows without runs
    are in `attrs["incomplete"]` ({data set: those rows})."""
    out, incomplete = [], {}
    for dataset, stem in TABLES.items():
        path = Path(figures_dir) / f"{stem}.csv"
        if path.is_file():
            stats = pd.read_csv(path)
            empty = list(dict.fromkeys(stats.loc[stats["seeds"] == 0, "row"]))
            if empty:
                incomplete[dataset] = empty
                continue
            out += [{"dataset": dataset, **row, "verdict": verdict(row["margin"], row["p"])}
                    for row in claim_rows(stats)]
    df = pd.DataFrame(out, columns=["dataset", "metric", "soft_vqvae", "seeds", "best_other", "best_other_mean",
                                    "margin", "p", "verdict"])
    df.attrs["incomplete"] = incomplete
    return df


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
            f"set's table (raw pixels included) and the margin; p is the largest of the one-sided p-values (Welch "
            f"over seeds, from the table's seed statistics) that the soft VQ-VAE is better than each other row, so "
            f"'leads' (p < {ALPHA}, not corrected for multiplicity) means it beats every row. Each data set's "
            f"budget, seeds and machine are in its own table.")
    waiting = "; ".join(f"{d} ({', '.join(paper.LABELS.get(r, r) for r in rows)})"
                        for d, rows in df.attrs["incomplete"].items())
    if waiting:
        note += f" Left out until every row has runs: {waiting}."
    return write_csv_md(df.set_index("dataset"), format_claims(df), "claims", figures_dir, [note])
