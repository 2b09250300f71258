"""Tables from results JSONs: collect (mean and std over seeds) -> compare_with_paper -> write_table, and
the seed statistics (95 % t-intervals, Welch tests) of any table with seeds.

Accuracies are in percent and NMI a fraction, as in the paper.
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import budgets, data, paper, store
from .config import Config
from .io import write_atomic
from .store import RESULTS_DIR

METRICS = paper.METRICS
SHORT_LABELS = {"cluster_acc": "clust. %", "nmi": "NMI", "classification_acc": "class. %"}
DATASET_LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
                  "cifar10-jpeg": "CIFAR-10, LOSSY JPEG copy (quality 75; not the original pixels)"}
CONFIDENCE = 0.95


def group_configs(configs: Iterable[Config] | Mapping[str, Sequence[Config]]) -> dict[str, list[Config]]:
    """Rows of a table: a mapping {row: configs} as given, or a list grouped by bottleneck (in order)."""
    if isinstance(configs, Mapping):
        return {name: list(cs) for name, cs in configs.items()}
    rows: dict[str, list[Config]] = {}
    for c in configs:
        rows.setdefault(c.bottleneck, []).append(c)
    return rows


def per_dataset_stem(stem: str, dataset: str, datasets: Sequence[str]) -> str:
    """A Table 2 file name: `stem` (e.g. "table2_stats") for one data set, with the data set after "table2"
    ("table2_svhn_stats") when there are several."""
    return stem if len(datasets) == 1 else stem.replace("table2", f"table2_{dataset}", 1)


def read_result(config: Config, results_dir=RESULTS_DIR) -> dict | None:
    """The results record of `config` from `results_dir`, or from the first of several folders that holds it
    (a table whose rows were trained into different folders, e.g. the quantizers study's SQ-VAE row)."""
    folders = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    return next((r for r in (store.read_result(config, f) for f in folders) if r is not None), None)


def records_by_row(configs: Iterable[Config] | Mapping[str, Sequence[Config]],
                   results_dir=RESULTS_DIR) -> dict[str, list[dict]]:
    """{row: the results records that exist} for the rows of `group_configs`."""
    return {row: [r for r in (read_result(c, results_dir) for c in cs) if r is not None]
            for row, cs in group_configs(configs).items()}


def metric_values(records: Sequence[dict], metric: str) -> np.ndarray:
    """One metric over records (one per seed), accuracies in percent."""
    scale = 100.0 if metric in paper.PERCENT else 1.0
    return scale * np.asarray([r["metrics"][metric] for r in records if metric in r.get("metrics", {})], dtype=float)


def summarize(records: Sequence[dict]) -> dict:
    """Mean and sample std (NaN for one seed) of each metric over records, accuracies in percent."""
    out: dict = {}
    for m in METRICS:
        arr = metric_values(records, m)
        out[m] = float(arr.mean()) if len(arr) else math.nan
        out[f"{m}_std"] = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
    return out


def trained_on(record: dict) -> str:
    """Where and from what a run was trained: the GPU's name or the CPU's model, then the commit ("AMD EPYC CPU
    at 1525f9b", "-dirty" with uncommitted changes), since float32 results differ across both; "unrecorded" for
    runs older than code_version."""
    version = record.get("code_version") or {}
    if not version.get("gpu") and version.get("device") != "cpu":
        return "unrecorded"
    cpu = " ".join(re.sub(r"\((R|TM)\)", "", version.get("cpu") or "").split())
    where = version.get("gpu") or (cpu if re.search(r"CPU|Processor", cpu) else " ".join(filter(None, [cpu, "CPU"])))
    commit = version.get("commit")
    return f"{where} at {commit[:7]}{'-dirty' if version.get('dirty') else ''}" if commit else where


def _row(config: dict, records: Sequence[dict], expected: int) -> dict:
    """One table row: what was run (from a config dict), how many seeds were found, the summary."""
    seeds = sorted(int(r["config"].get("seed", 0)) for r in records)
    return {"bottleneck": config["bottleneck"], "dataset": config["dataset"],
            "trained_on": " + ".join(sorted({trained_on(r) for r in records if r["config"].get("iterations")})),
            "split": "validation" if config.get("validation") else "test",
            "iterations": int(config.get("iterations", 0)), "kmeans_n_init": config.get("kmeans_n_init"),
            "seeds": len(records), "seed_list": ",".join(map(str, seeds)), "missing": expected - len(records),
            **summarize(records)}


def collect(configs: Iterable[Config] | Mapping[str, Sequence[Config]],
            results_dir=RESULTS_DIR, records: Mapping[str, Sequence[dict]] | None = None) -> pd.DataFrame:
    """A table with one row per bottleneck (or per key of a {row: configs} mapping): mean and std over
    the seeds whose results JSON exists in `results_dir` (a folder, or several searched in order: `read_result`),
    the number of seeds found and missing.

    Missing runs are not an error: their row keeps NaN metrics, and df.attrs["missing"] lists the paths of
    their results JSONs (a damaged one among them, set aside by `store.read_result`). `records` adds rows
    given as records (e.g. {"raw": [evaluation.evaluate_raw(...)]}) first.
    """
    rows, missing = {}, []
    for name, recs in (records or {}).items():
        rows[name] = _row(recs[0]["config"], recs, len(recs))
    for name, cs in group_configs(configs).items():
        found = [read_result(c, results_dir) for c in cs]
        first = results_dir if isinstance(results_dir, (str, Path)) else results_dir[0]
        missing += [str(store.result_path(c, first)) for c, r in zip(cs, found) if r is None]
        rows[name] = _row(dataclasses.asdict(cs[0]), [r for r in found if r is not None], len(cs))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "row"
    df.attrs["missing"] = missing
    return df


def compare_with_paper(df: pd.DataFrame, table: str = "table1") -> pd.DataFrame:
    """Add paper_<metric> (the paper's number for the row's bottleneck and dataset; the lossy CIFAR-10
    copy is compared with CIFAR-10) and diff_<metric> = ours - paper after each metric's columns."""
    out = df.copy()
    for m in METRICS:
        reported = [paper.value(table, b, m, ds) for b, ds in zip(df["bottleneck"], df["dataset"])]
        at = out.columns.get_loc(f"{m}_std") + 1
        out.insert(at, f"paper_{m}", reported)
        out.insert(at + 1, f"diff_{m}", out[m] - out[f"paper_{m}"])
    out.attrs = dict(df.attrs, table=table)
    return out


def budget_note(df: pd.DataFrame) -> str:
    """One line: training iterations, seeds, evaluation split and data set, K-means initialisations."""
    trained = df[df["iterations"] > 0]
    its = sorted({int(i) for i in trained["iterations"]})
    seeds = sorted({s for sl in trained["seed_list"] for s in str(sl).split(",") if s})
    datasets = ", ".join(DATASET_LABELS.get(d, d) for d in dict.fromkeys(df["dataset"]))
    split = ("validation split (10,000 images held out of the training set)" if (df["split"] == "validation").all()
             else "test set")
    n_init = sorted({int(n) for n in df["kmeans_n_init"].dropna()})
    paper_its = "40,000" if df["dataset"].isin(data.GREY28).all() else "40,000; soft VQ-VAE 10,000"
    return (f"Budget: {' / '.join(f'{i:,}' for i in its) or 'n/a'} training iterations per run (the paper: "
            f"{paper_its}); seeds: {', '.join(seeds) or 'none found'}; evaluation: {datasets}, {split}; "
            f"K-means initialisations: {', '.join(map(str, n_init))}.{_paper_column_note(df)}{_platform_note(df)}")


def _platform_note(df: pd.DataFrame) -> str:
    """' Trained on: NVIDIA H100 at <commit>.' when every trained row was, or ' Trained on: AMD EPYC CPU at <commit>
    (rows ...); NVIDIA H100 at <commit> (rows ...).' for rows from more than one machine or commit (their float32
    numerics differ, so a rerun matches only on the same kind of machine and commit)."""
    rows: dict[str, list[str]] = {}
    for name, where in df["trained_on"].items():
        if where:
            rows.setdefault(where, []).append(paper.LABELS.get(name, name))
    if not rows:
        return ""
    if len(rows) == 1:
        return f" Trained on: {next(iter(rows))}."
    return " Trained on: " + "; ".join(f"{where} ({', '.join(names)})" for where, names in rows.items()) + "."


def trained_on_line(records: Mapping[str, Sequence[dict]]) -> str:
    """'Trained on: <machine> at <commit>' (per row where they differ) of {row: records}, as a table's budget line
    says it: the caption of a table made from records rather than from `collect`."""
    where = {row: " + ".join(sorted({trained_on(r) for r in recs if r.get("config", {}).get("iterations")}))
             for row, recs in records.items()}
    return _platform_note(pd.DataFrame({"trained_on": where})).strip()


def _paper_column_note(df: pd.DataFrame) -> str:
    """' Paper columns: CIFAR-10 ...' when a data set is compared with another one's paper column."""
    other = {d: paper.PAPER_DATASET[d] for d in df["dataset"] if d in paper.PAPER_DATASET}
    if not other or not any(c.startswith("paper_") for c in df.columns):
        return ""
    names = ", ".join(DATASET_LABELS.get(p, p) for p in dict.fromkeys(other.values()))
    return f" Paper columns: the paper's {names} numbers (original pixels)."


def format_metric(value: float, metric: str, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    digits = 4 if metric == "nmi" else 2
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_table(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """A display table: model label, iterations, seeds, 'mean ± std' per metric, the paper and the
    difference beside it where compare_with_paper added them; 'missing' where no seed was found."""
    metrics = [m for m in (metrics or METRICS) if m in df]
    out = pd.DataFrame(index=[paper.LABELS.get(str(i), str(i)) for i in df.index])
    out.index.name = "model"
    out["iterations"] = [f"{int(i):,}" if i else "–" for i in df["iterations"]]
    out["seeds"] = [f"{n}" + (f" ({k} missing)" if k else "") for n, k in zip(df["seeds"], df["missing"])]
    for m in metrics:
        label = SHORT_LABELS[m]
        out[label] = ["missing" if n == 0 else
                      format_metric(v, m) + (f" ± {format_metric(s, m)}" if np.isfinite(s) else "")
                      for n, v, s in zip(df["seeds"], df[m], df[f"{m}_std"])]
        if f"paper_{m}" in df:
            out[f"{label.split()[0]} paper"] = [format_metric(v, m) for v in df[f"paper_{m}"]]
            out[f"{label.split()[0]} diff"] = [format_metric(v, m, signed=True) for v in df[f"diff_{m}"]]
    return out


def make_table(configs: Iterable[Config] | Mapping[str, Sequence[Config]], stem: str, figures_dir="figures",
               results_dir=RESULTS_DIR, paper_table: str | None = None,
               records: Mapping[str, Sequence[dict]] | None = None, note: str = "",
               metrics: Sequence[str] | None = None, budget: str = budgets.COMMITTED) -> pd.DataFrame:
    """collect -> compare_with_paper (when `paper_table` names one) -> write_table: figures/<stem>.csv and
    .md from the results that exist. Returns the table; df.attrs["missing"] lists the runs not found."""
    df = collect(configs, results_dir, records)
    if paper_table is not None:
        df = compare_with_paper(df, paper_table)
    write_table(df, stem, figures_dir, note, metrics, budget)
    return df


def write_csv_md(numbers: pd.DataFrame, display: pd.DataFrame, stem: str, figures_dir="figures",
                 header: Sequence[str] = ()) -> tuple[Path, Path]:
    """figures/<stem>.csv (`numbers`) and figures/<stem>.md (the non-empty `header` paragraphs, then
    `display` as markdown), each atomically. Returns both paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    write_atomic(csv_path, lambda f: f.write(numbers.to_csv().encode()))
    markdown = "\n\n".join([*filter(None, header), display.to_markdown(disable_numparse=True)]) + "\n"
    write_atomic(md_path, lambda f: f.write(markdown.encode()))
    return csv_path, md_path


def write_table(df: pd.DataFrame, stem: str, figures_dir="figures", note: str = "",
                metrics: Sequence[str] | None = None, budget: str = budgets.COMMITTED) -> tuple[Path, Path]:
    """figures/<stem>.csv (all numbers) and .md (the budget's banner when it is not the committed one or the
    data came from the embedded sample, a budget line and `note`, then the display table)."""
    return write_csv_md(df, format_table(df, metrics), stem, figures_dir,
                        [budgets.banner(budget, df["dataset"]), budget_note(df) + (f" {note}" if note else "")])


# ------------------------------------------------------------------------------------- seed statistics
def t_interval(values: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Student-t interval for the mean of `values` (one per seed); NaN with fewer than two."""
    if len(values) < 2:
        return math.nan, math.nan
    low, high = stats.t.interval(level, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high)


def p_better(reference: np.ndarray, other: np.ndarray, fixed: bool = False) -> float:
    """One-sided p-value of "the reference row's mean is higher": Welch's t-test over seeds, or with
    `fixed` (the other row is one deterministic number, e.g. raw pixels) a one-sample t-test against it.
    NaN when either side has too few values."""
    if len(reference) < 2 or (len(other) < 2 and not (fixed and len(other) == 1)):
        return math.nan
    if fixed:
        return float(stats.ttest_1samp(reference, other[0], alternative="greater").pvalue)
    return float(stats.ttest_ind(reference, other, equal_var=False, alternative="greater").pvalue)


def seed_statistics(configs: Iterable[Config] | Mapping[str, Sequence[Config]], reference: str,
                    results_dir=RESULTS_DIR, records: Mapping[str, Sequence[dict]] | None = None
                    ) -> pd.DataFrame:
    """Per row and metric: the seeds found, mean, 95 % t-interval, and (other rows) the one-sided p-value
    that row `reference` is better. Rows as in `collect`; rows given as `records` count as fixed numbers.
    df.attrs["datasets"] lists the data sets of the records found."""
    found = {name: list(recs) for name, recs in (records or {}).items()}
    for name, cs in group_configs(configs).items():
        found[name] = [r for r in (read_result(c, results_dir) for c in cs) if r is not None]
    if reference not in found:
        raise ValueError(f"reference row {reference!r} is not one of {list(found)}")
    out = []
    for name, recs in found.items():
        for m in METRICS:
            values, ref = metric_values(recs, m), metric_values(found[reference], m)
            low, high = t_interval(values)
            out.append({"row": name, "metric": m, "seeds": len(values),
                        "mean": float(values.mean()) if len(values) else math.nan, "ci_low": low, "ci_high": high,
                        "p_reference_better": math.nan if name == reference else
                        p_better(ref, values, fixed=name in (records or {}))})
    df = pd.DataFrame(out)
    df.attrs.update(reference=reference, datasets=_datasets(found))
    return df


def _datasets(records: Mapping[str, Sequence[dict]]) -> list[str]:
    """The data sets of {row: records} (of those that hold their config), in order of appearance."""
    return list(dict.fromkeys(r["config"]["dataset"] for recs in records.values() for r in recs if "config" in r))


def format_statistics(df: pd.DataFrame) -> pd.DataFrame:
    """A display table of `seed_statistics`: per metric 'mean [low, high]' and the p-value, one row per row."""
    out = pd.DataFrame(index=[paper.LABELS.get(r, r) for r in dict.fromkeys(df["row"])])
    out.index.name = "model"
    for m in dict.fromkeys(df["metric"]):
        part = df[df["metric"] == m]
        label = SHORT_LABELS[m]
        out[f"{label} (n)"] = [f"{format_metric(v, m)} [{format_metric(lo, m)}, {format_metric(hi, m)}] ({n})"
                               if np.isfinite(lo) else f"{format_metric(v, m)} ({n})" for v, lo, hi, n in
                               zip(part["mean"], part["ci_low"], part["ci_high"], part["seeds"])]
        out[f"{label.split()[0]} p"] = ["–" if not np.isfinite(p) else f"{p:.2g}" for p in part["p_reference_better"]]
    return out


def write_statistics(df: pd.DataFrame, stem: str, figures_dir="figures", note: str = "",
                     budget: str = budgets.COMMITTED) -> tuple[Path, Path]:
    """figures/<stem>.csv (every number) and .md (banner, what the columns mean, `note`, the table)."""
    tests = int(df["p_reference_better"].notna().sum())
    reference = paper.LABELS.get(df.attrs["reference"], df.attrs["reference"])
    explain = (f"Mean over seeds with its {CONFIDENCE:.0%} Student-t interval [low, high] and the number of seeds "
               f"(n). p: one-sided p-value that the {reference} is better than the row (Welch's t-test over seeds; "
               f"one-sample t-test against a deterministic row such as raw pixels); {tests} tests, not corrected "
               f"for multiplicity (Bonferroni at 5 %: p < {0.05 / max(tests, 1):.2g}).")
    return write_csv_md(df.set_index("row"), format_statistics(df), stem, figures_dir,
                        [budgets.banner(budget, df.attrs.get("datasets", ())), explain + (f" {note}" if note else "")])


# ------------------------------------------------------------------------------------ codebook usage
CODEBOOK_STATS = {"codewords_used": "codewords used", "dead_codewords": "dead", "perplexity_hard": "perplexity (hard)",
                  "perplexity_soft": "perplexity (soft)", "mean_max_posterior": "mean largest posterior",
                  "sigma_min": "sigma_k min", "sigma_max": "sigma_k max"}


def codebook_table(records: Mapping[str, Sequence[dict]]) -> pd.DataFrame:
    """Mean and sample std over seeds of each codebook statistic (the "codebook" entry that VQ-VAE and soft
    VQ-VAE results JSONs carry) per row of {row: records}; records without one are skipped.
    df.attrs["datasets"] lists the records' data sets."""
    rows = {}
    for name, recs in records.items():
        found = [r["codebook"] for r in recs if "codebook" in r]
        row: dict = {"seeds": len(found), "K": found[0]["K"] if found else math.nan}
        for key in CODEBOOK_STATS:
            values = np.asarray([c[key] for c in found if key in c], dtype=float)
            row[key] = float(values.mean()) if len(values) else math.nan
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows[name] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "row"
    df.attrs["datasets"] = _datasets(records)
    return df


def write_codebook_table(df: pd.DataFrame, stem: str, figures_dir="figures", note: str = "",
                         budget: str = budgets.COMMITTED) -> tuple[Path, Path]:
    """figures/<stem>.csv and .md of `codebook_table`: 'mean ± std' per statistic."""
    display = pd.DataFrame(index=[paper.LABELS.get(str(i), str(i)) for i in df.index])
    display.index.name = "model"
    display["seeds"] = df["seeds"].astype(int).astype(str).to_list()
    display["K"] = [f"{k:.0f}" if np.isfinite(k) else "–" for k in df["K"]]
    for key, label in CODEBOOK_STATS.items():
        display[label] = ["–" if not np.isfinite(v) else f"{v:.3g}" + (f" ± {s:.2g}" if np.isfinite(s) else "")
                          for v, s in zip(df[key], df[f"{key}_std"])]
    return write_csv_md(df, display, stem, figures_dir, [budgets.banner(budget, df.attrs.get("datasets", ())), note])
