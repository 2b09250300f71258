"""The numbers in the prose of README.md and docs/, recomputed from the committed data they come from.

The tables between `<!-- name -->` markers are figures/<name>.md, rewritten by reproduce.py (and compared with
it by test_packaging.py); this file checks the numbers the prose around them states. Each claim names its page,
the page's words around the numbers (`{}` a number, `{s}` a word or a code such as a commit, whitespace free),
the data it comes from and how each number is computed from it. A number passes when it equals the computed value
to the page's own rounding (half a unit of its last digit), so a rerun that changes the data fails here until the
text says what the data says. Only committed files are read: results/, figures/*.csv, benchmarks/results/.
"""
from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from softvq import presets, store
from softvq.presets import QUANTIZER_CANDIDATES

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- (\w+) -->.*?<!-- /\1 -->", re.S)       # generated from figures/<name>.md
NUMBER = r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?)"
WORD = r"([\w.+-]*\w)"
WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
PARTS = {2: "half", 3: "third", 4: "quarter", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth",
         10: "tenth"}


# ---------------------------------------------------------------------------------------------- the data

@cache
def prose(page: str) -> str:
    """The page without its generated blocks."""
    return BLOCK.sub("", (ROOT / page).read_text(encoding="utf-8"))


@cache
def table(name: str) -> tuple[dict, ...]:
    with open(ROOT / "figures" / f"{name}.csv", newline="", encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


def row(name: str, key: str, column: str = "row") -> dict:
    rows = [r for r in table(name) if r[column] == key]
    assert len(rows) == 1, f"figures/{name}.csv: {len(rows)} rows {column} = {key!r}"
    return rows[0]


def cell(name: str, key: str, field: str) -> float:
    """A number of figures/<name>.csv (percentages as the table shows them)."""
    return float(row(name, key)[field])


def stat(name: str, key: str, metric: str, field: str = "mean") -> float:
    """A number of figures/<name>_stats.csv: mean, ci_low, ci_high or p_reference_better."""
    rows = [r for r in table(f"{name}_stats") if r["row"] == key and r["metric"] == metric]
    assert len(rows) == 1, f"figures/{name}_stats.csv: no {key} {metric}"
    return float(rows[0][field])


def p_values(name: str, metrics=("cluster_acc", "nmi", "classification_acc")) -> list[float]:
    return [float(r["p_reference_better"]) for r in table(f"{name}_stats")
            if r["metric"] in metrics and r["p_reference_better"]]


@cache
def records(folder: str) -> tuple[dict, ...]:
    return tuple(json.loads(p.read_text()) for p in sorted((ROOT / folder).glob("*.json")))


def runs(folder: str, commit: str | None = None, **config) -> list[dict]:
    """The records of `folder` whose config has these values (and whose commit starts with `commit`)."""
    return [r for r in records(folder)
            if all(r.get("config", {}).get(k) == v for k, v in config.items())
            and (commit is None or r.get("code_version", {}).get("commit", "").startswith(commit))]


def row_runs(name: str, key: str, folder: str | None = None, **config) -> list[dict]:
    """The runs behind one row of figures/<name>.csv: its data set, bottleneck, budget, split, seeds and the
    commit its `trained_on` names (and these `config` values); exactly as many as its `seeds` column says."""
    r = row(name, key)
    commit = r["trained_on"].rsplit(" at ", 1)[1].removesuffix("-dirty")
    seeds = {int(s) for s in r["seed_list"].split(",")}
    found = [x for x in runs(folder or f"results/{r['dataset']}", commit, bottleneck=r["bottleneck"],
                             iterations=int(r["iterations"]), validation=r["split"] == "validation", **config)
             if x["config"]["seed"] in seeds]
    assert len(found) == int(r["seeds"]), f"figures/{name}.csv {key}: {len(found)} runs for {r['seeds']} seeds"
    return found


def metric(records_: list[dict], name: str) -> list[float]:
    """A metric of each record, as the pages show it (accuracies in %)."""
    return [x["metrics"][name] * (1 if name == "nmi" else 100) for x in records_]


def stacks(records_: list[dict]) -> list[tuple[float, int]]:
    """(training wall time, models) of each stack: the runs trained together share their `train_time_s`."""
    groups: dict[tuple, int] = {}
    for x in records_:
        key = (x["code_version"]["commit"], x["train_time_s"], x["stack_size"])
        groups[key] = groups.get(key, 0) + 1
    assert all(n <= key[2] for key, n in groups.items())
    return sorted((key[1], key[2]) for key in groups)


def only(values) -> float | str:
    """The one value all of `values` share (NaN where they differ, so that no page number matches)."""
    values = set(values)
    return values.pop() if len(values) == 1 else math.nan


@cache
def bench(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def conditions() -> dict:
    return bench("quantizer_speed_cpu")["conditions"]


def quantizer_row(shape: tuple) -> dict:
    return next(r for r in bench("quantizer_speed_cpu")["rows"] if tuple(r["shape"]) == shape)


def part(ratio: float) -> str:
    """The largest unit fraction that bounds `ratio` from above ('at most a fifth')."""
    return PARTS[max(n for n in PARTS if 1 / n >= ratio)]


def sd(xs) -> float:
    return statistics.stdev(xs)


# ---------------------------------------------------------------------------------------------- the claims

class Claim(NamedTuple):
    page: str
    text: str
    source: str
    values: Callable[[], tuple]


CLAIMS: list[Claim] = []


def claim(page: str, text: str, source: str, values: Callable[[], tuple]) -> None:
    CLAIMS.append(Claim(page, text, source, values))


T1, T2, FT1, EST = "table1", "table2", "fashion_table1", "estimators"
CPU = "benchmarks/results/table1_cpu"
ESTR = "results/estimators/mnist"


def table1_runs(key):
    return row_runs(T1, key)


def T1R():
    """Every Table 1 run (the trained rows of figures/table1.csv)."""
    return [x for r in table(T1) if r["row"] != "raw" for x in table1_runs(r["row"])]


def soft_codebook(field):
    return cell("codebook_table1", "soft_vqvae", field)


def figure4(bottleneck):
    found = runs("results/mnist", bottleneck=bottleneck, d=60, iterations=40000, seed=0)
    assert len(found) == 1
    return found[0]


def f4(bottleneck, name):
    return metric([figure4(bottleneck)], name)[0]


def seed_spread(key):
    xs = metric(table1_runs(key), "cluster_acc")
    return max(xs) - min(xs)


def sample_files():
    return sum(p.stat().st_size for p in (ROOT / "softvq" / "sample_data").iterdir() if p.is_file()) / 1e6


def ablation_runs():
    """The ablation: every validation run of figures/ablation.csv's commit (its soft VQ-VAE rows and `paper ae`)."""
    commit = row("ablation", "official-code")["trained_on"].rsplit(" at ", 1)[1]
    return [x for x in records("results/mnist")
            if x["config"]["validation"] and x["code_version"]["commit"].startswith(commit)]


def noise_runs(level):
    """The noise sweep's run at `level`: the official-code preset at that noise, of the commit its row names."""
    return row_runs("noise_sweep", f"noise_std {level:g}", noise_std=float(level), weighting="official",
                    recon="mse_var", vq_weight=3.0, beta=2.5, batch_size=64)


def scaling_runs():
    return [x for b in ("vae", "beta_vae", "info_dropout")
            for x in runs("results/mnist", bottleneck=b, iterations=5000, validation=True)]


def cifar_runs(iterations, commit=None, device=None):
    return [x for x in runs("results/cifar10-jpeg", commit, iterations=iterations)
            if device is None or x["code_version"]["device"] == device]


def cifar_clusterings():
    names = ("table2", "table2_sweep", "table2_scaling_sweep")
    return [float(r["cluster_acc"]) for n in names for r in table(n)]


def sweep_pick(family):
    """The estimators sweep row a family keeps: its best validation linear probe."""
    rows = [r for r in table("estimators_sweep") if r["row"].startswith(family + " ")]
    return max(rows, key=lambda r: float(r["classification_acc"]))


def sqvae_val(recon, var_init):
    found = runs("results/mnist", bottleneck="sqvae", validation=True, recon=recon, var_init=var_init)
    assert len(found) == 1
    return found[0]["codebook"]["perplexity_hard"]


def estimator_runs(estimator):
    return [x for x in runs(ESTR, bottleneck="soft_vqvae") if x["config"].get("estimator") == estimator]


def estimator_row_hours():
    """CPU-core hours per row of the estimators table: the training wall time of its stacks, one thread each."""
    rows = [estimator_runs(e) for e in ("mean", "sample", "argmax")]
    rows += [runs(ESTR, bottleneck=b) for b in ("sqvae", "vqvae")]
    assert all(x["code_version"]["threads"] == 1 for r in rows for x in r)
    return [sum(t for t, _ in stacks(r)) / 3600 for r in rows]


def platform_shifts():
    return (abs(cell(EST, "posterior mean", "cluster_acc") - cell(T1, "soft_vqvae", "cluster_acc")),
            abs(cell(EST, "vqvae", "cluster_acc") - cell(T1, "vqvae", "cluster_acc")))


def estimator_gaps():
    mean = cell(EST, "posterior mean", "cluster_acc")
    return [mean - float(r["cluster_acc"]) for r in table(EST) if r["row"] != "posterior mean"]


def cell_theorem1(trained, tested, field="recon_loss"):
    return float(row_theorem1(trained, tested)[field])


def row_theorem1(trained, tested):
    rows = [r for r in table("estimators_theorem1") if r["trained"] == trained and r["tested"] == tested]
    assert len(rows) == 1
    return rows[0]


def per_seed_swap(estimator):
    """(recon loss with the mean, with the own estimator) per seed of the runs trained with `estimator`."""
    return [(x["estimator_swap"]["mean"]["recon_loss"], x["estimator_swap"][estimator]["recon_loss"])
            for x in sorted(estimator_runs(estimator), key=lambda x: x["config"]["seed"])]


def gpu_speed(models, precision="fp32"):
    rows = bench("gpu_check_nvidia_h100_80gb_hbm3")["speed"]["rows"]
    return next(r["ms_per_model_iteration"] for r in rows
                if r["models"] == models and r["precision"] == precision and not r["compile"])


def host_us_per_op():
    """softvq.gpu_run.CALIBRATION's CPU time per operation, read from the source (no import)."""
    text = (ROOT / "softvq" / "gpu_run.py").read_text()
    return float(re.search(r'"host_us_per_op":\s*([\d.]+)', text).group(1))


def ops_per_step():
    """The operation counts docs/gpu.md states beside the calibration (counted on a CPU, not in the data)."""
    m = re.search(r"at (\d+), (\d+), (\d+) operations per step", prose("docs/gpu.md"))
    return [int(g) for g in m.groups()]


def us_per_op():
    return [gpu_speed(n) * n * 1000 / ops for n, ops in zip((1, 6, 18), ops_per_step())]


def fashion_runs(key, name=FT1):
    return row_runs(name, key)


# README.md: the results section ------------------------------------------------------------------------

R = "README.md"
claim(R, "5 seeds per row at the paper's {} iterations", "figures/table1.csv: iterations of every trained row",
      lambda: (only(int(r["iterations"]) for r in table(T1) if r["row"] != "raw"),))
claim(R, "**Table 1, MNIST, d = 64, test set**: {} seeds", "figures/table1.csv: seeds of every trained row",
      lambda: (only(int(r["seeds"]) for r in table(T1) if r["row"] != "raw"),))
claim(R, "Bonferroni correction over the {} tests (p <= {})",
      "figures/table1_stats.csv: the number of p-values; the largest NMI and classification p",
      lambda: (len(p_values(T1)), max(p_values(T1, ("nmi", "classification_acc")))))
claim(R, "against the VAE ({} % [{}, {}]) not after the correction (p = {})",
      "figures/table1_stats.csv: the VAE's clustering mean, 95 % interval and p",
      lambda: (stat(T1, "vae", "cluster_acc"), stat(T1, "vae", "cluster_acc", "ci_low"),
               stat(T1, "vae", "cluster_acc", "ci_high"), stat(T1, "vae", "cluster_acc", "p_reference_better")))
claim(R, "Clustering accuracy spans {}-{} points over the seeds",
      "results/mnist (Table 1 runs): max - min clustering accuracy over the seeds of the VAE, beta-VAE, soft VQ-VAE",
      lambda: (min(map(seed_spread, ("vae", "beta_vae", "soft_vqvae"))),
               max(map(seed_spread, ("vae", "beta_vae", "soft_vqvae")))))
claim(R, "(our VAE clusters {} points better, our VQ-VAE {} points worse)",
      "figures/table1.csv: clust. diff of the VAE and the VQ-VAE",
      lambda: (cell(T1, "vae", "diff_cluster_acc"), -cell(T1, "vqvae", "diff_cluster_acc")))
claim(R, "not the original pixels; {} iterations, {} seeds)", "figures/table2.csv: iterations and seeds of every row",
      lambda: (only(int(r["iterations"]) for r in table(T2)), only(int(r["seeds"]) for r in table(T2))))
claim(R, "CIFAR-10 number ({} ± {} % against {} %)", "figures/table2.csv: the soft VQ-VAE's class. mean, std, paper",
      lambda: (cell(T2, "soft_vqvae", "classification_acc"), cell(T2, "soft_vqvae", "classification_acc_std"),
               cell(T2, "soft_vqvae", "paper_classification_acc")))
claim(R, "the hard VQ-VAE ({} ± {} %), but our plain AE ({} ± {} %), VAE ({} ± {} %) and beta-VAE ({} ± {} %)",
      "figures/table2.csv: class. mean and std of the VQ-VAE, AE, VAE and beta-VAE",
      lambda: tuple(v for k in ("vqvae", "ae", "vae", "beta_vae")
                    for v in (cell(T2, k, "classification_acc"), cell(T2, k, "classification_acc_std"))))
claim(R, "Every model clusters near chance ({}-{} % for {} classes)",
      "figures/table2.csv: the lowest and highest clustering accuracy; CIFAR-10's classes",
      lambda: (min(cell(T2, r["row"], "cluster_acc") for r in table(T2)),
               max(cell(T2, r["row"], "cluster_acc") for r in table(T2)), 10))
claim(R, "unchanged ({} iterations, {} seeds), the soft VQ-VAE's codes cluster best of all {s} rows ({} % against "
      "information dropout's {} %), but the plain AE's classify best ({} % against {} %)",
      "figures/fashion_table1.csv: budget, seeds, rows; clust. of the soft VQ-VAE and information dropout; "
      "class. of the AE and the soft VQ-VAE",
      lambda: (only(int(r["iterations"]) for r in table(FT1) if r["row"] != "raw"),
               only(int(r["seeds"]) for r in table(FT1) if r["row"] != "raw"), WORDS[len(table(FT1))],
               cell(FT1, "soft_vqvae", "cluster_acc"), cell(FT1, "info_dropout", "cluster_acc"),
               cell(FT1, "ae", "classification_acc"), cell(FT1, "soft_vqvae", "classification_acc")))
claim(R, "(clustering {} %, NMI {}, classification {} %), ahead of the VAE's ({} %), the AE's ({} %) and the hard "
      "VQ-VAE's ({} % clustering accuracy)", "results/mnist/*-d60-it40000-s0-*.json: the Figure 4 runs' scores",
      lambda: (f4("soft_vqvae", "cluster_acc"), f4("soft_vqvae", "nmi"), f4("soft_vqvae", "classification_acc"),
               f4("vae", "cluster_acc"), f4("ae", "cluster_acc"), f4("vqvae", "cluster_acc")))
claim(R, "settings chosen on a validation sweep, {} runs on one {}-core Intel Xeon CPU), the posterior mean wins every "
      "score against every rival at p <= {}: {} ± {} % clustering against SQ-VAE's {} %",
      "results/estimators/mnist (runs, their CPU); figures/estimators_stats.csv (largest p); figures/estimators.csv",
      lambda: (len(records(ESTR)), only(x["code_version"]["cpu"] for x in records(ESTR)) == "Intel(R) Xeon(R) Processor"
               and 2, max(p_values(EST)), cell(EST, "posterior mean", "cluster_acc"),
               cell(EST, "posterior mean", "cluster_acc_std"), cell(EST, "sqvae", "cluster_acc")))
claim(R, "(`softvq/sample_data/`, {} MB, with their sources", "softvq/sample_data/: the files' bytes / 1e6",
      lambda: (sample_files(),))

# docs/results.md ------------------------------------------------------------------------------------------

D = "docs/results.md"
claim(D, "(all {} notebooks, two at a time: {} s on a fresh clone on a {}-core AMD EPYC CPU",
      "benchmarks/results/reproduce_cpu_notrain.json: every notebook, none failed, parallel 2, total_s, cpu_count",
      lambda: cpu_notrain())
claim(D, "# validation split, {} jobs", "results/mnist: the ablation's stacks (runs sharing their train_time_s)",
      lambda: (len(stacks(ablation_runs())),))
claim(D, "# validation split, {} runs, {}-{} min per stack",
      "results/mnist/{vae,beta_vae,info_dropout}-d64-it5000-val-*.json: runs; training wall time per stack",
      lambda: (len(scaling_runs()), min(t for t, _ in stacks(scaling_runs())) / 60,
               max(t for t, _ in stacks(scaling_runs())) / 60))
claim(D, "--seeds 0 1 2 3 4              # {} runs", "figures/table1.csv: the trained rows x their seeds",
      lambda: (sum(len(table1_runs(r["row"])) for r in table(T1) if r["row"] != "raw"),))
claim(D, "--seeds 0                     # {} runs", "results/mnist/*-d60-it40000-s0-*.json",
      lambda: (len(runs("results/mnist", d=60, iterations=40000)),))
claim(D, "All {} runs (six rows x seeds 0-4, {} iterations) were trained from one commit (`{s}`) on one NVIDIA H100 "
      "(torch {s})", "results/mnist: the Table 1 runs, their budget, commit and torch",
      lambda: (len(T1R()), only(x["config"]["iterations"] for x in T1R()),
               only(x["code_version"]["commit"][:7] for x in T1R()), only(x["code_version"]["torch"] for x in T1R())))
claim(D, "({}-{} s of training per 5-model stack)", "results/mnist: train_time_s of the four baseline rows' stacks",
      lambda: (min(t for k in ("ae", "vae", "beta_vae", "info_dropout") for t, _ in stacks(table1_runs(k))),
               max(t for k in ("ae", "vae", "beta_vae", "info_dropout") for t, _ in stacks(table1_runs(k)))))
claim(D, "K-means with 100 starts and the probe took {}-{} s per run", "results/mnist: eval_time_s of the Table 1 runs",
      lambda: (min(x["eval_time_s"] for x in T1R()), max(x["eval_time_s"] for x in T1R())))
claim(D, "a soft VQ-VAE stack of {} took {} minutes", "benchmarks/results/table1_cpu: the soft VQ-VAE's stack of 2",
      lambda: next((n, t / 60) for t, n in stacks(runs(CPU, bottleneck="soft_vqvae")) if n == 2))
claim(D, "The quantizer rows' earlier CPU runs (commit `{s}`, seeds 0-4)", "benchmarks/results/table1_cpu: commit",
      lambda: (only(x["code_version"]["commit"][:7] for x in records(CPU)),))
claim(D, "above the paper's own soft VQ-VAE numbers ({} % / {} / {} %)", "figures/table1.csv: the paper's columns",
      lambda: tuple(cell(T1, "soft_vqvae", f"paper_{m}") for m in ("cluster_acc", "nmi", "classification_acc")))
claim(D, "even after a Bonferroni correction over the {} tests (p <= {})",
      "figures/table1_stats.csv: the number of p-values; the largest NMI and classification p",
      lambda: (len(p_values(T1)), max(p_values(T1, ("nmi", "classification_acc")))))
claim(D, "({} % [{}, {}] against {} % [{}, {}], p = {})",
      "figures/table1_stats.csv: clustering mean and 95 % interval of the soft VQ-VAE and the VAE; the VAE's p",
      lambda: tuple(stat(T1, k, "cluster_acc", f) for k in ("soft_vqvae", "vae") for f in ("mean", "ci_low", "ci_high"))
      + (stat(T1, "vae", "cluster_acc", "p_reference_better"),))
claim(D, "Clustering accuracy spans {}-{} points over the {s} seeds",
      "results/mnist (Table 1 runs): max - min clustering accuracy over the seeds of the VAE, beta-VAE, soft VQ-VAE",
      lambda: (min(map(seed_spread, ("vae", "beta_vae", "soft_vqvae"))),
               max(map(seed_spread, ("vae", "beta_vae", "soft_vqvae"))), WORDS[len(table1_runs("vae"))]))
claim(D, "(the soft VQ-VAE's seeds 0-4 gave {}, {}, {}, {} and {} %)", "results/mnist: the soft VQ-VAE's Table 1 runs",
      lambda: tuple(metric(sorted(table1_runs("soft_vqvae"), key=lambda x: x["config"]["seed"]), "cluster_acc")))
claim(D, "(clustering {} ± {} % against {} %)", "figures/table1.csv: the VAE's clust. mean, std and paper",
      lambda: (cell(T1, "vae", "cluster_acc"), cell(T1, "vae", "cluster_acc_std"),
               cell(T1, "vae", "paper_cluster_acc")))
claim(D, "With the KL averaged over the units instead, the VAE scored {} % on the validation",
      "figures/scaling_sweep.csv: vae KL/d", lambda: (cell("scaling_sweep", "vae KL/d", "cluster_acc"),))
claim(D, "40,000 iterations: {} % / {} / {} % on the test set, "
      "`results/mnist/mnist-beta_vae-d64-it40000-s0-ec8c0ad8.json`)",
      "results/mnist/mnist-beta_vae-d64-it40000-s0-ec8c0ad8.json: metrics",
      lambda: tuple(metric([json.loads((ROOT / "results/mnist/mnist-beta_vae-d64-it40000-s0-ec8c0ad8.json")
                                       .read_text())], m)[0] for m in ("cluster_acc", "nmi", "classification_acc")))
claim(D, "the `KL/d` row shown reaches {} ± {} % against the paper's {} %",
      "figures/table1.csv: the beta-VAE's clust. mean, std and paper",
      lambda: (cell(T1, "beta_vae", "cluster_acc"), cell(T1, "beta_vae", "cluster_acc_std"),
               cell(T1, "beta_vae", "paper_cluster_acc")))
claim(D, "with its KL summed it fell to {} % (seed 0, `results/mnist/mnist-info_dropout-d64-it40000-s0-9b6c8264.json`)",
      "results/mnist/mnist-info_dropout-d64-it40000-s0-9b6c8264.json: cluster_acc",
      lambda: (100 * json.loads((ROOT / "results/mnist/mnist-info_dropout-d64-it40000-s0-9b6c8264.json")
                                .read_text())["metrics"]["cluster_acc"],))
claim(D, "clusters about {} points better than in the paper ({} ± {} % against {} %)",
      "figures/table1.csv: the AE's clust. diff, mean, std and paper",
      lambda: (cell(T1, "ae", "diff_cluster_acc"), cell(T1, "ae", "cluster_acc"), cell(T1, "ae", "cluster_acc_std"),
               cell(T1, "ae", "paper_cluster_acc")))
claim(D, "clustering {} points below the paper ({} ± {} % against {} %), NMI {} above, classification {} points above. "
      "Its 5 seeds on the AMD EPYC CPU gave {} ± {} %",
      "figures/table1.csv: the VQ-VAE's diffs, mean, std, paper; benchmarks/results/table1_cpu: its CPU seeds",
      lambda: (-cell(T1, "vqvae", "diff_cluster_acc"), cell(T1, "vqvae", "cluster_acc"),
               cell(T1, "vqvae", "cluster_acc_std"), cell(T1, "vqvae", "paper_cluster_acc"),
               cell(T1, "vqvae", "diff_nmi"), cell(T1, "vqvae", "diff_classification_acc"),
               statistics.mean(metric(runs(CPU, bottleneck="vqvae"), "cluster_acc")),
               sd(metric(runs(CPU, bottleneck="vqvae"), "cluster_acc"))))
claim(D, "lands up to {} points from its mean", "results/mnist: the largest |seed - mean| clustering accuracy of the "
      "VAE, beta-VAE and soft VQ-VAE rows",
      lambda: (max(abs(x - statistics.mean(xs)) for k in ("vae", "beta_vae", "soft_vqvae")
                   for xs in [metric(table1_runs(k), "cluster_acc")] for x in xs),))
claim(D, "{} ± {} % / {} / {} % over 5 seeds on the AMD EPYC CPU, {} ± {} % / {} / {} % over the same 5 seeds "
      "on the H100",
      "benchmarks/results/platform_compare.json (the CPU runs); figures/table1.csv (the H100 row)",
      lambda: (*[v for c in bench("platform_compare")["comparisons"] if c["row"] == "soft_vqvae"
                 for v in ((c["mean_a"], c["std_a"]) if c["metric"] == "cluster_acc" else (c["mean_a"],))],
               cell(T1, "soft_vqvae", "cluster_acc"), cell(T1, "soft_vqvae", "cluster_acc_std"),
               cell(T1, "soft_vqvae", "nmi"), cell(T1, "soft_vqvae", "classification_acc")))
claim(D, "leaves about {} of its {} codewords dead ({} ± {} used on the test set, perplexity {}, {} seeds)",
      "figures/codebook_table1.csv: the VQ-VAE's dead and used codewords, K, perplexity, seeds",
      lambda: (cell("codebook_table1", "vqvae", "dead_codewords"), cell("codebook_table1", "vqvae", "K"),
               cell("codebook_table1", "vqvae", "codewords_used"),
               cell("codebook_table1", "vqvae", "codewords_used_std"),
               cell("codebook_table1", "vqvae", "perplexity_hard"), cell("codebook_table1", "vqvae", "seeds")))
claim(D, "covers {} ± {} of them (perplexity {})", "figures/codebook_table1.csv: the soft VQ-VAE's used codewords",
      lambda: (soft_codebook("codewords_used"), soft_codebook("codewords_used_std"), soft_codebook("perplexity_hard")))
claim(D, "the largest posterior averages {}, and the posterior spreads each code over about {} codewords "
      "(entropy {} nats)",
      "figures/codebook_table1.csv: mean largest posterior; results/mnist: exp of the soft VQ-VAE runs' mean entropy",
      lambda: (soft_codebook("mean_max_posterior"),
               math.exp(statistics.mean(x["codebook"]["mean_entropy"] for x in table1_runs("soft_vqvae"))),
               statistics.mean(x["codebook"]["mean_entropy"] for x in table1_runs("soft_vqvae"))))
claim(D, "All {} ablation runs were retrained from one commit (`{s}`) through the local launcher ({} jobs",
      "results/mnist: the validation runs of the ablation's commit; their stacks",
      lambda: (len(ablation_runs()), only(x["code_version"]["commit"][:7] for x in ablation_runs()),
               len(stacks(ablation_runs()))))
claim(D, "switching the noise (p = {}), the reconstruction loss ({}) or the batch size ({})",
      "figures/ablation_stats.csv: clustering p of paper noise_std, paper recon, paper batch_size",
      lambda: tuple(stat("ablation", k, "cluster_acc", "p_reference_better")
                    for k in ("paper noise_std", "paper recon", "paper batch_size")))
claim(D, "component weighting (p = {}) and VQ loss weights ({}) cost {}-{} points",
      "figures/ablation_stats.csv and ablation.csv: their clustering p and distance to the official-code row",
      lambda: (stat("ablation", "paper weighting", "cluster_acc", "p_reference_better"),
               stat("ablation", "paper vq_weights", "cluster_acc", "p_reference_better"),
               -cell("ablation", "paper weighting", "cluster_acc") + cell("ablation", "official-code", "cluster_acc"),
               -cell("ablation", "paper vq_weights", "cluster_acc") + cell("ablation", "official-code", "cluster_acc")))
claim(D, "(`paper soft_vqvae`, {} %) lose {} points and fall below the plain AE ({} %)", "figures/ablation.csv",
      lambda: (cell("ablation", "paper soft_vqvae", "cluster_acc"),
               cell("ablation", "official-code", "cluster_acc") - cell("ablation", "paper soft_vqvae", "cluster_acc"),
               cell("ablation", "paper ae", "cluster_acc")))
claim(D, "All {s} levels were trained as one stack from commit `{s}`",
      "results/mnist: the noise sweep's soft VQ-VAE runs of its newest commit, one stack",
      lambda: (WORDS[len(table("noise_sweep"))],
               only(x["code_version"]["commit"][:7] for lv in (0.03, 0.3, 1) for x in noise_runs(lv))
               if only(x["stack_size"] for lv in (0.03, 0.3, 1) for x in noise_runs(lv)) == len(table("noise_sweep"))
               else "no"))
claim(D, "trained earlier from `{s}` in another stack (of {} models)",
      "results/mnist: commit and stack_size of the noise sweep's noise_std 0 and 0.1 runs",
      lambda: (only(x["code_version"]["commit"][:7] for lv in (0, 0.1) for x in noise_runs(lv)),
               only(x["stack_size"] for lv in (0, 0.1) for x in noise_runs(lv))))
claim(D, "0.3 and 1 cost {}-{} points of clustering", "figures/noise_sweep.csv: noise_std 0 minus noise_std 1 and 0.3",
      lambda: (cell("noise_sweep", "noise_std 0", "cluster_acc") - cell("noise_sweep", "noise_std 1", "cluster_acc"),
               cell("noise_sweep", "noise_std 0", "cluster_acc") - cell("noise_sweep", "noise_std 0.3", "cluster_acc")))
claim(D, "even the linear probe drops to {} % ({} % at 40,000 iterations on the test set)",
      "figures/scaling_sweep.csv: beta_vae sum; results/mnist/mnist-beta_vae-d64-it40000-s0-ec8c0ad8.json",
      lambda: (cell("scaling_sweep", "beta_vae sum", "classification_acc"),
               100 * json.loads((ROOT / "results/mnist/mnist-beta_vae-d64-it40000-s0-ec8c0ad8.json")
                                .read_text())["metrics"]["classification_acc"]))
claim(D, "the VAE and information dropout score {} % and {} % here, close to the paper's {} % and {} %",
      "figures/scaling_sweep.csv (KL/d rows); figures/table1.csv (paper columns)",
      lambda: (cell("scaling_sweep", "vae KL/d", "cluster_acc"),
               cell("scaling_sweep", "info_dropout KL/d", "cluster_acc"),
               cell(T1, "vae", "paper_cluster_acc"), cell(T1, "info_dropout", "paper_cluster_acc")))
claim(D, "Every row trains {} iterations (the paper's soft VQ-VAE budget; its baselines had 40,000), {} seeds.",
      "figures/table2.csv", lambda: (only(int(r["iterations"]) for r in table(T2)),
                                     only(int(r["seeds"]) for r in table(T2))))
claim(D, "were trained on an NVIDIA H100 (torch {s}); the other four rows trained on a 2-core AMD EPYC CPU (torch {s}, "
      "one thread per model, two models at a time, {}-{} minutes per model with its evaluation), all {} runs from "
      "commit `{s}`", "results/cifar10-jpeg: the 10,000-iteration runs, by device",
      lambda: (only(x["code_version"]["torch"] for x in cifar_runs(10000, device="cuda")),
               only(x["code_version"]["torch"].split("+")[0] for x in cifar_runs(10000, device="cpu")),
               min((x["train_time_s"] + x["eval_time_s"]) / 60 for x in cifar_runs(10000, device="cpu")),
               max((x["train_time_s"] + x["eval_time_s"]) / 60 for x in cifar_runs(10000, device="cpu")),
               len(cifar_runs(10000, device="cpu")), only(x["code_version"]["commit"][:7] for x in cifar_runs(10000))))
claim(D, "--launcher local    # {} runs\npython -m softvq preset table2-scaling", "results/cifar10-jpeg: the "
      "soft VQ-VAE's 2,000-iteration runs", lambda: (len(runs("results/cifar10-jpeg", bottleneck="soft_vqvae",
                                                              iterations=2000)),))
claim(D, "--launcher local  # {} runs\npython -m softvq preset table2 ", "results/cifar10-jpeg: the baselines' "
      "2,000-iteration runs", lambda: (len(cifar_runs(2000)) - len(runs("results/cifar10-jpeg", bottleneck="soft_vqvae",
                                                                             iterations=2000)),))
claim(D, "--launcher local      # {} runs\n```", "results/cifar10-jpeg: the 10,000-iteration runs",
      lambda: (len(cifar_runs(10000)),))
claim(D, "On the H100 the {} sweep runs ran as {} jobs sharing the GPU",
      "results/cifar10-jpeg: the 2,000-iteration runs and their stacks",
      lambda: (len(cifar_runs(2000)), len(stacks(cifar_runs(2000)))))
claim(D, "the ablation and the two MNIST sweeps at {} iterations on a validation split; Table 2 at {} iterations with "
      "{} seeds on a lossy CIFAR-10 copy, its settings chosen by two sweeps at {} iterations on a validation split",
      "figures/ablation.csv, noise_sweep.csv, scaling_sweep.csv, table2.csv, table2_sweep.csv and "
      "table2_scaling_sweep.csv",
      lambda: (only(int(r["iterations"]) for n in ("ablation", "noise_sweep", "scaling_sweep") for r in table(n)
                    if r["split"] == "validation"),
               only(int(r["iterations"]) for r in table(T2)), only(int(r["seeds"]) for r in table(T2)),
               only(int(r["iterations"]) for n in ("table2_sweep", "table2_scaling_sweep") for r in table(n)
                    if r["split"] == "validation")))
claim(D, "rows took {} s and {} s of training for their 3 seeds, plus {}-{} s of evaluation per run",
      "results/cifar10-jpeg: train_time_s of the H100 AE and soft VQ-VAE stacks; their eval_time_s",
      lambda: (only(x["train_time_s"] for x in row_runs(T2, "ae")),
               only(x["train_time_s"] for x in row_runs(T2, "soft_vqvae")),
               min(x["eval_time_s"] for x in cifar_runs(10000, device="cuda")),
               max(x["eval_time_s"] for x in cifar_runs(10000, device="cuda"))))
claim(D, "The AE's linear probe reaches {} ± {} %, the soft VQ-VAE's {} ± {} % (p = {} for \"soft VQ-VAE better\"; the "
      "AE leads by {} points", "figures/table2.csv and table2_stats.csv",
      lambda: (cell(T2, "ae", "classification_acc"), cell(T2, "ae", "classification_acc_std"),
               cell(T2, "soft_vqvae", "classification_acc"), cell(T2, "soft_vqvae", "classification_acc_std"),
               stat(T2, "ae", "classification_acc", "p_reference_better"),
               cell(T2, "ae", "classification_acc") - cell(T2, "soft_vqvae", "classification_acc")))
claim(D, "clusters slightly better ({} ± {} % against {} ± {} %, p = {})", "figures/table2.csv and table2_stats.csv",
      lambda: (cell(T2, "soft_vqvae", "cluster_acc"), cell(T2, "soft_vqvae", "cluster_acc_std"),
               cell(T2, "ae", "cluster_acc"), cell(T2, "ae", "cluster_acc_std"),
               stat(T2, "ae", "cluster_acc", "p_reference_better")))
claim(D, "matches its CIFAR-10 number ({} against {} %), while our AE is {} points above the paper's ({} against {} %)",
      "figures/table2.csv", lambda: (cell(T2, "soft_vqvae", "classification_acc"),
                                     cell(T2, "soft_vqvae", "paper_classification_acc"),
                                     cell(T2, "ae", "diff_classification_acc"), cell(T2, "ae", "classification_acc"),
                                     cell(T2, "ae", "paper_classification_acc")))
claim(D, "which are all {}-{} points above the paper's", "figures/table2.csv: class. diff of the four other baselines",
      lambda: (min(cell(T2, k, "diff_classification_acc") for k in ("vae", "beta_vae", "info_dropout", "vqvae")),
               max(cell(T2, k, "diff_classification_acc") for k in ("vae", "beta_vae", "info_dropout", "vqvae"))))
claim(D, "the VAE ({} ± {} %) and the beta-VAE with the KL averaged over units ({} ± {} %, the best row, also the best "
      "clustering at {} %) beat the soft VQ-VAE (p = {} and {} for", "figures/table2.csv and table2_stats.csv",
      lambda: (cell(T2, "vae", "classification_acc"), cell(T2, "vae", "classification_acc_std"),
               cell(T2, "beta_vae", "classification_acc"), cell(T2, "beta_vae", "classification_acc_std"),
               max(cell(T2, r["row"], "cluster_acc") for r in table(T2)) if max(
                   table(T2), key=lambda r: float(r["cluster_acc"]))["row"] == "beta_vae" else math.nan,
               stat(T2, "vae", "classification_acc", "p_reference_better"),
               stat(T2, "beta_vae", "classification_acc", "p_reference_better")))
claim(D, "information dropout ties with it ({} ± {} %, p = {}), though the soft VQ-VAE's codes cluster better (p = {}) "
      "and have a higher NMI (p = {})", "figures/table2.csv and table2_stats.csv",
      lambda: (cell(T2, "info_dropout", "classification_acc"), cell(T2, "info_dropout", "classification_acc_std"),
               stat(T2, "info_dropout", "classification_acc", "p_reference_better"),
               stat(T2, "info_dropout", "cluster_acc", "p_reference_better"),
               stat(T2, "info_dropout", "nmi", "p_reference_better")))
claim(D, "keep the paper's clear lead: {} against {} ± {} % (p = {}), although our VQ-VAE is also {} points above",
      "figures/table2.csv and table2_stats.csv",
      lambda: (cell(T2, "soft_vqvae", "classification_acc"), cell(T2, "vqvae", "classification_acc"),
               cell(T2, "vqvae", "classification_acc_std"),
               stat(T2, "vqvae", "classification_acc", "p_reference_better"),
               cell(T2, "vqvae", "diff_classification_acc")))
claim(D, "(about {} of {} codewords used). The soft VQ-VAE uses all {},",
      "figures/codebook_table2.csv", lambda: (cell("codebook_table2", "vqvae", "codewords_used"),
                                              cell("codebook_table2", "vqvae", "K"),
                                              cell("codebook_table2", "soft_vqvae", "codewords_used")))
claim(D, "the mean largest posterior is {}, {} times the uniform 1/{} (on MNIST it is {} with K = {}, {} times the "
      "uniform 1/{}), and the perplexity of the mean posterior is {} of {}",
      "figures/codebook_table2.csv and codebook_table1.csv: mean largest posterior, K, soft perplexity",
      lambda: (cell("codebook_table2", "soft_vqvae", "mean_max_posterior"),
               cell("codebook_table2", "soft_vqvae", "mean_max_posterior") * cell("codebook_table2", "soft_vqvae", "K"),
               cell("codebook_table2", "soft_vqvae", "K"), soft_codebook("mean_max_posterior"), soft_codebook("K"),
               soft_codebook("mean_max_posterior") * soft_codebook("K"), soft_codebook("K"),
               cell("codebook_table2", "soft_vqvae", "perplexity_soft"), cell("codebook_table2", "soft_vqvae", "K")))
claim(D, "`sigma_k` of {}-{} in {} dimensions", "figures/codebook_table2.csv: mean sigma_k min and max; table2 d",
      lambda: (cell("codebook_table2", "soft_vqvae", "sigma_min"), cell("codebook_table2", "soft_vqvae", "sigma_max"),
               only(x["config"]["d"] for x in cifar_runs(10000))))
claim(D, "The authors' SVHN code without noise ({} %) is the best soft VQ-VAE candidate, but its lead over their MNIST "
      "code ({} %) is within the seed spread (p = {}); the paper's eq. 7 read literally loses about {} points "
      "({} %, p = {})",
      "figures/table2_sweep.csv and table2_sweep_stats.csv",
      lambda: (cell("table2_sweep", "svhn-code noise 0", "classification_acc"),
               cell("table2_sweep", "mnist-code noise 0", "classification_acc"),
               stat("table2_sweep", "mnist-code noise 0", "classification_acc", "p_reference_better"),
               cell("table2_sweep", "svhn-code noise 0", "classification_acc")
               - cell("table2_sweep", "paper eq. 7 noise 0", "classification_acc"),
               cell("table2_sweep", "paper eq. 7 noise 0", "classification_acc"),
               stat("table2_sweep", "paper eq. 7 noise 0", "classification_acc", "p_reference_better")))
claim(D, "The KL averaged over the {} units", "results/cifar10-jpeg: d",
      lambda: (only(x["config"]["d"] for x in cifar_runs(2000)),))
claim(D, "the summed KL collapses the codes ({} %), and `mean` more so ({} %). For the VAE, `KL/d` and `sum` are "
      "within the spread ({} and {} %)",
      "figures/table2_scaling_sweep.csv: class. of the beta-VAE sum and mean, the VAE KL/d and sum",
      lambda: tuple(cell("table2_scaling_sweep", k, "classification_acc")
                    for k in ("beta_vae sum", "beta_vae mean", "vae KL/d", "vae sum")))
claim(D, "every CIFAR-10 model clusters close to chance ({}-{} % for {} classes); by clustering, `sum` would have won "
      "for the VAE ({} %) and information dropout ({} %)",
      "figures/table2.csv, table2_sweep.csv, table2_scaling_sweep.csv: clustering accuracies",
      lambda: (min(cifar_clusterings()), max(cifar_clusterings()), 10,
               cell("table2_scaling_sweep", "vae sum", "cluster_acc"),
               cell("table2_scaling_sweep", "info_dropout sum", "cluster_acc")))
claim(D, "the sweep JSONs (and the GPU check) record commit `{s}` with `dirty: {s}`",
      "results/cifar10-jpeg (2,000-iteration runs) and benchmarks/results/gpu_check_nvidia_h100_80gb_hbm3.json",
      lambda: (only([x["code_version"]["commit"][:7] for x in cifar_runs(2000)]
                    + [bench("gpu_check_nvidia_h100_80gb_hbm3")["code_version"]["commit"][:7]]),
               only(str(x["code_version"]["dirty"]).lower() for x in cifar_runs(2000))))
claim(D, "The Table 2 runs record `{s}`.", "results/cifar10-jpeg: the 10,000-iteration runs",
      lambda: (only(x["code_version"]["commit"][:7] for x in cifar_runs(10000)),))
claim(D, "The four runs come from one commit (`{s}`) on the 2-core AMD EPYC CPU, one thread each, {}-{} minutes of "
      "training per model (test set, clustering / NMI / classification): AE {} % / {} / {} %, VAE {} % / {} / {} %, "
      "VQ-VAE {} % / {} / {} %, soft VQ-VAE {} % / {} / {} %", "results/mnist/*-d60-it40000-s0-*.json",
      lambda: (only(figure4(b)["code_version"]["commit"][:7] for b in ("ae", "vae", "vqvae", "soft_vqvae"))
               if only(figure4(b)["code_version"]["threads"] for b in ("ae", "vae", "vqvae", "soft_vqvae")) == 1
               else "no",
               min(figure4(b)["train_time_s"] / 60 for b in ("ae", "vae", "vqvae", "soft_vqvae")),
               max(figure4(b)["train_time_s"] / 60 for b in ("ae", "vae", "vqvae", "soft_vqvae")),
               *[f4(b, m) for b in ("ae", "vae", "vqvae", "soft_vqvae")
                 for m in ("cluster_acc", "nmi", "classification_acc")]))
claim(D, "probe; each {}-seed row is one stack trained on one thread of a 2-core AMD EPYC CPU",
      "results/fashion-mnist: stack_size and threads of the Table 1 protocol runs",
      lambda: (only(x["stack_size"] for r in table(FT1) if r["row"] != "raw" for x in fashion_runs(r["row"]))
               if only(x["code_version"]["threads"] for r in table(FT1) if r["row"] != "raw"
                       for x in fashion_runs(r["row"])) == 1 else math.nan,))
claim(D, "--only ae      # one stack per row, {}-{} hours", "results/fashion-mnist: training wall time of the stacks",
      lambda: (min(t for r in table(FT1) if r["row"] != "raw" for t, _ in stacks(fashion_runs(r["row"]))) / 3600,
               max(t for r in table(FT1) if r["row"] != "raw" for t, _ in stacks(fashion_runs(r["row"]))) / 3600))
claim(D, "lead all {s} rows, by {} points of clustering accuracy over information dropout and {} over the beta-VAE, "
      "and by {} of NMI", "figures/fashion_table1.csv",
      lambda: (WORDS[len(table(FT1))],
               cell(FT1, "soft_vqvae", "cluster_acc") - cell(FT1, "info_dropout", "cluster_acc"),
               cell(FT1, "soft_vqvae", "cluster_acc") - cell(FT1, "beta_vae", "cluster_acc"),
               cell(FT1, "soft_vqvae", "nmi") - max(cell(FT1, r["row"], "nmi") for r in table(FT1)
                                                    if r["row"] != "soft_vqvae")))
claim(D, "p = {} for clustering (the test against the noisier beta-VAE) and p = {} for NMI. Against the {} tests' "
      "Bonferroni threshold (p < {})", "figures/fashion_table1_stats.csv: the largest clustering and NMI p; the tests",
      lambda: (max(p_values(FT1, ("cluster_acc",))), max(p_values(FT1, ("nmi",))), len(p_values(FT1)),
               0.05 / len(p_values(FT1))))
claim(D, "**Linear probe**: {} ± {} %, level with information dropout ({} %) and the raw pixels ({} %), and {} points "
      "below the plain AE ({} ± {} %)", "figures/fashion_table1.csv",
      lambda: (cell(FT1, "soft_vqvae", "classification_acc"), cell(FT1, "soft_vqvae", "classification_acc_std"),
               cell(FT1, "info_dropout", "classification_acc"), cell(FT1, "raw", "classification_acc"),
               cell(FT1, "ae", "classification_acc") - cell(FT1, "soft_vqvae", "classification_acc"),
               cell(FT1, "ae", "classification_acc"), cell(FT1, "ae", "classification_acc_std")))
claim(D, "(standard deviations of {} and {} points against the soft VQ-VAE's {})", "figures/fashion_table1.csv",
      lambda: (cell(FT1, "beta_vae", "cluster_acc_std"), cell(FT1, "vqvae", "cluster_acc_std"),
               cell(FT1, "soft_vqvae", "cluster_acc_std")))
claim(D, "({} ± {} of {} codewords used, perplexity {}) while nearly every one of the soft VQ-VAE's codewords is some "
      "test image's most probable ({} ± {}, perplexity {}), and its decoder sees a blend: the mean largest posterior "
      "is {}, {s} times the uniform 1/{}", "figures/fashion_codebook.csv",
      lambda: (cell("fashion_codebook", "vqvae", "codewords_used"),
               cell("fashion_codebook", "vqvae", "codewords_used_std"),
               cell("fashion_codebook", "vqvae", "K"), cell("fashion_codebook", "vqvae", "perplexity_hard"),
               cell("fashion_codebook", "soft_vqvae", "codewords_used"),
               cell("fashion_codebook", "soft_vqvae", "codewords_used_std"),
               cell("fashion_codebook", "soft_vqvae", "perplexity_hard"),
               cell("fashion_codebook", "soft_vqvae", "mean_max_posterior"),
               WORDS[round(cell("fashion_codebook", "soft_vqvae", "mean_max_posterior")
                           * cell("fashion_codebook", "soft_vqvae", "K"))],
               cell("fashion_codebook", "soft_vqvae", "K")))
QZ = "docs/quantizers.md"
VQ_ROT, VQ_ST = "vq_ema (rotation)", "vq_ema (straight-through)"
claim(QZ, "codes stay small (E||z_e||^2 = {} on the test set) and their codeword is far from them for that scale "
      "(relative distortion {}); with straight-through they grow to E||z_e||^2 = {} and the codebook, which follows "
      "them by EMA, quantizes them finely (relative distortion {}). The codes that spread out cluster by digit ({} % "
      "against {} %) and reconstruct a little better (test MSE x 1e3 {} against {}). Both use nearly every codeword "
      "({} and {} of {} on average)", "figures/quantizers_mnist.csv: the two VectorQuantize rows",
      lambda: (cell("quantizers_mnist", VQ_ROT, "z_e_power"), cell("quantizers_mnist", VQ_ROT, "rel_distortion"),
               cell("quantizers_mnist", VQ_ST, "z_e_power"), cell("quantizers_mnist", VQ_ST, "rel_distortion"),
               cell("quantizers_mnist", VQ_ST, "cluster_acc"), cell("quantizers_mnist", VQ_ROT, "cluster_acc"),
               1e3 * cell("quantizers_mnist", VQ_ST, "recon_mse"), 1e3 * cell("quantizers_mnist", VQ_ROT, "recon_mse"),
               cell("quantizers_mnist", VQ_ROT, "codewords_used"), cell("quantizers_mnist", VQ_ST, "codewords_used"),
               128))

claim(QZ, "The probe picks `sqvae ELBO var 0.1` ({} %), MNIST's choice", "figures/sqvae_sweep_fashion_mnist.csv",
      lambda: (cell("sqvae_sweep_fashion_mnist", "sqvae ELBO var 0.1", "classification_acc"),))
claim(QZ, "would have picked `sqvae ELBO var 1` ({} % against {} %)", "figures/sqvae_sweep_fashion_mnist.csv",
      lambda: (cell("sqvae_sweep_fashion_mnist", "sqvae ELBO var 1", "cluster_acc"),
               cell("sqvae_sweep_fashion_mnist", "sqvae ELBO var 0.1", "cluster_acc")))

RP = "docs/reproducibility.md"


def kernel_speed(name: str, where: str, load: int) -> float:
    """Iterations per second of one of benchmarks/results/<name>.json's four trainings."""
    return only(r["iterations_per_s"] for r in bench(name)["rows"]
                if r["where"] == where and r["busy_processes"] == load)


claim(RP, "two threads, the kernel trained at {} it/s idle and {} beside the busy processes, against the command "
      "line's {} and {}", "benchmarks/results/kernel_load_cpu_threads2.json",
      lambda: tuple(kernel_speed("kernel_load_cpu_threads2", w, n)
                    for w, n in (("JupyterLab kernel", 0), ("JupyterLab kernel", 2), ("command line", 0),
                                 ("command line", 2))))
claim(RP, "it trains at {} / {} it/s (idle / beside the busy processes) in the kernel and {} / {} on the command "
      "line: the slower within {}x of the faster idle and {}x under load", "benchmarks/results/kernel_load_cpu.json",
      lambda: (*(kernel_speed("kernel_load_cpu", w, n) for w, n in (("JupyterLab kernel", 0), ("JupyterLab kernel", 2),
                                                                  ("command line", 0), ("command line", 2))),
               bench("kernel_load_cpu")["slower_over_faster"]["0"], bench("kernel_load_cpu")["slower_over_faster"]["2"]))


def fashion_sweep_runs() -> list[dict]:
    """The runs of Fashion-MNIST's noise and scaling sweeps (not the quantizers study's, on the same split)."""
    sweeps = {**presets.noise_sweep(dataset="fashion-mnist"), **presets.scaling_sweep(dataset="fashion-mnist")}
    paths = {store.result_path(c, ROOT / "results") for configs in sweeps.values() for c in configs}
    return [json.loads(p.read_text()) for p in sorted(paths) if p.is_file()]


claim(D, "training images held out; all {} runs trained from one commit on one thread",
      "results/fashion-mnist: the noise and scaling sweeps' validation runs",
      lambda: (len(fashion_sweep_runs())
               if only(x["code_version"]["commit"] for x in fashion_sweep_runs())
               and only(x["code_version"]["threads"] for x in fashion_sweep_runs()) == 1
               else math.nan,))
claim(D, "The three lowest noise levels on Fashion-MNIST differ by at most {} points of clustering and {} of probe",
      "figures/fashion_noise_sweep.csv: range of noise_std 0, 0.03, 0.1",
      lambda: tuple(max(vs) - min(vs) for m in ("cluster_acc", "classification_acc")
                    for vs in [[cell("fashion_noise_sweep", f"noise_std {lv}", m) for lv in ("0", "0.03", "0.1")]]))
claim(D, "a 95 % interval {} points wide for clustering and {} wide for the probe, over {} seeds",
      "figures/ablation_stats.csv: the official-code row's intervals",
      lambda: (stat("ablation", "official-code", "cluster_acc", "ci_high")
               - stat("ablation", "official-code", "cluster_acc", "ci_low"),
               stat("ablation", "official-code", "classification_acc", "ci_high")
               - stat("ablation", "official-code", "classification_acc", "ci_low"),
               cell("ablation", "official-code", "seeds")))
claim(D, "scores as at noise 0 ({} ± {} % clustering, {} NMI, {} % probe) and still leads clustering (+{} points over "
      "information dropout; over every row at p = {}) and NMI (+{}; p = {})",
      "figures/fashion_table1_probe.csv and its _stats.csv",
      lambda: (cell("fashion_table1_probe", "soft_vqvae", "cluster_acc"),
               cell("fashion_table1_probe", "soft_vqvae", "cluster_acc_std"),
               cell("fashion_table1_probe", "soft_vqvae", "nmi"),
               cell("fashion_table1_probe", "soft_vqvae", "classification_acc"),
               cell("fashion_table1_probe", "soft_vqvae", "cluster_acc")
               - cell("fashion_table1_probe", "info_dropout", "cluster_acc"),
               max(p_values("fashion_table1_probe", ("cluster_acc",))),
               cell("fashion_table1_probe", "soft_vqvae", "nmi") - cell("fashion_table1_probe", "info_dropout", "nmi"),
               max(p_values("fashion_table1_probe", ("nmi",)))))
claim(D, "The `KL/d` VAE gains what the probe chose it for ({} against {} %, and {} against {} % clustering), but the "
      "plain AE still classifies best ({} %), {} points above the soft VQ-VAE.",
      "figures/fashion_table1_probe.csv and fashion_table1.csv: the VAE's and AE's rows",
      lambda: (cell("fashion_table1_probe", "vae", "classification_acc"), cell(FT1, "vae", "classification_acc"),
               cell("fashion_table1_probe", "vae", "cluster_acc"), cell(FT1, "vae", "cluster_acc"),
               cell("fashion_table1_probe", "ae", "classification_acc"),
               cell("fashion_table1_probe", "ae", "classification_acc")
               - cell("fashion_table1_probe", "soft_vqvae", "classification_acc")))


# docs/estimators.md ---------------------------------------------------------------------------------------

E = "docs/estimators.md"
claim(E, "(vq_weight 1, beta 0.25; the authors' code's 3 and 2.5 probe {} points lower)",
      "figures/estimators_sweep.csv: the argmax rows' class.",
      lambda: (cell("estimators_sweep", "argmax paper weights", "classification_acc")
               - cell("estimators_sweep", "argmax official-code weights", "classification_acc"),))
claim(E, "collapses onto a single codeword (hard perplexity {}) from s^2 = 1 or 10, and the ELBO scaling nearly does "
      "from s^2 = 10 (perplexity {})", "results/mnist: perplexity_hard of the SQ-VAE validation runs",
      lambda: (max(sqvae_val("mse_var", 1.0), sqvae_val("mse_var", 10.0)), sqvae_val("bce", 10.0)))
claim(E, "its probe is {} points above the best sample, {} above the argmax and {} above SQ-VAE, and its clustering "
      "accuracy ({} %) is above that of every chosen candidate (SQ-VAE {} %, the sample {} %, the argmax {} %)",
      "figures/estimators_sweep.csv: the mean row and each family's pick (best validation probe)",
      lambda: (*[cell("estimators_sweep", "mean", "classification_acc") - float(sweep_pick(f)["classification_acc"])
                 for f in ("sample", "argmax", "sqvae")],
               cell("estimators_sweep", "mean", "cluster_acc"),
               *[float(sweep_pick(f)["cluster_acc"]) for f in ("sqvae", "sample", "argmax")]))
claim(E, "MNIST, d = 64, K = 128, {} iterations, seeds 0-4, the test set, K-means with {} starts",
      "figures/estimators.csv", lambda: (only(int(r["iterations"]) for r in table(EST)),
                                         only(int(r["kmeans_n_init"]) for r in table(EST))))
claim(E, "All {} runs were trained on one 2-core Intel Xeon CPU, one thread per stack (the {} seeds of a row, the "
      "sample's in stacks of {} and {}), from one commit ({s})", "results/estimators/mnist: runs, stacks, commit",
      lambda: (len(records(ESTR)) if only(x["code_version"]["threads"] for x in records(ESTR)) == 1 else math.nan,
               only(n for b in ("sqvae", "vqvae") for _, n in stacks(runs(ESTR, bottleneck=b))),
               *sorted((n for _, n in stacks(estimator_runs("sample"))), reverse=True),
               only(x["code_version"]["commit"][:7] for x in records(ESTR))))
claim(E, "# trains what is missing ({}-{} CPU-core hours per row)",
      "results/estimators/mnist: the training wall time of each row's stacks (one thread each)",
      lambda: (min(estimator_row_hours()), max(estimator_row_hours())))
claim(E, "the paper's soft VQ-VAE clusters at {} ± {} % and probes at {} ± {} % over {} seeds",
      "figures/estimators.csv: the posterior mean row",
      lambda: (cell(EST, "posterior mean", "cluster_acc"), cell(EST, "posterior mean", "cluster_acc_std"),
               cell(EST, "posterior mean", "classification_acc"), cell(EST, "posterior mean", "classification_acc_std"),
               cell(EST, "posterior mean", "seeds")))
claim(E, "all three scores at one-sided p <= {}, which survives a Bonferroni correction over the {} tests (p < {})",
      "figures/estimators_stats.csv: the largest p; the number of tests; 0.05 / tests",
      lambda: (max(p_values(EST)), len(p_values(EST)), 0.05 / len(p_values(EST))))
claim(E, "SQ-VAE is the strongest rival: {} ± {} % clustering and {} ± {} % probe, {} and {} points below",
      "figures/estimators.csv",
      lambda: (cell(EST, "sqvae", "cluster_acc"), cell(EST, "sqvae", "cluster_acc_std"),
               cell(EST, "sqvae", "classification_acc"), cell(EST, "sqvae", "classification_acc_std"),
               cell(EST, "posterior mean", "cluster_acc") - cell(EST, "sqvae", "cluster_acc"),
               cell(EST, "posterior mean", "classification_acc") - cell(EST, "sqvae", "classification_acc")))
claim(E, "The posterior sample gives {} ± {} % and {} ± {} %; the argmax gives {} ± {} % and {} ± {} %, below the hard "
      "VQ-VAE's clustering ({} ± {} %) and level with its probe ({} ± {} %)", "figures/estimators.csv",
      lambda: tuple(cell(EST, k, f"{m}{s}") for k, ms in (("posterior sample", ("cluster_acc", "classification_acc")),
                                                          ("posterior argmax", ("cluster_acc", "classification_acc")),
                                                          ("vqvae", ("cluster_acc", "classification_acc")))
                    for m in ms for s in ("", "_std")))
claim(E, "close to Table 1's ({} ± {} % / {} / {} % on an NVIDIA H100): {} points of clustering accuracy",
      "figures/table1.csv: the soft VQ-VAE row; its distance to figures/estimators.csv's posterior mean",
      lambda: (cell(T1, "soft_vqvae", "cluster_acc"), cell(T1, "soft_vqvae", "cluster_acc_std"),
               cell(T1, "soft_vqvae", "nmi"), cell(T1, "soft_vqvae", "classification_acc"), platform_shifts()[0]))
claim(E, "The retrained VQ-VAE moves by the same amount ({} % against {} %). Those platform shifts are at most a {s} "
      "of the {}-{} points between the posterior mean and the rest.",
      "figures/estimators.csv and table1.csv: the VQ-VAE rows; the largest shift over the smallest gap",
      lambda: (cell(EST, "vqvae", "cluster_acc"), cell(T1, "vqvae", "cluster_acc"),
               part(max(platform_shifts()) / min(estimator_gaps())), min(estimator_gaps()), max(estimator_gaps())))
claim(E, "a mean largest posterior of {}, {} of {} codewords used, hard perplexity {}.",
      "figures/estimators_codebook.csv: the posterior mean row",
      lambda: (cell("estimators_codebook", "posterior mean", "mean_max_posterior"),
               cell("estimators_codebook", "posterior mean", "codewords_used"),
               cell("estimators_codebook", "posterior mean", "K"),
               cell("estimators_codebook", "posterior mean", "perplexity_hard")))
claim(E, "(mean largest posterior {}) and uses every codeword (hard perplexity {} of {})",
      "figures/estimators_codebook.csv: the posterior sample row",
      lambda: (cell("estimators_codebook", "posterior sample", "mean_max_posterior"),
               cell("estimators_codebook", "posterior sample", "perplexity_hard"),
               cell("estimators_codebook", "posterior sample", "codewords_used")))
claim(E, "onto a third of the codebook: {} of {} codewords used, hard perplexity {}, close to the hard VQ-VAE's {} "
      "used and perplexity {}", "figures/estimators_codebook.csv: the argmax and VQ-VAE rows",
      lambda: (cell("estimators_codebook", "posterior argmax", "codewords_used"),
               cell("estimators_codebook", "posterior argmax", "K"),
               cell("estimators_codebook", "posterior argmax", "perplexity_hard"),
               cell("estimators_codebook", "vqvae", "codewords_used"),
               cell("estimators_codebook", "vqvae", "perplexity_hard")))
claim(E, "SQ-VAE uses every codeword (perplexity {})", "figures/estimators_codebook.csv: the SQ-VAE row",
      lambda: (cell("estimators_codebook", "sqvae", "perplexity_hard")
               if cell("estimators_codebook", "sqvae", "dead_codewords") == 0 else math.nan,))
claim(E, "with a loss {} times lower when handed their own estimate ({} ± {}) than a posterior sample ({}), and {} "
      "times lower than the argmax ({})", "figures/estimators_theorem1.csv: the posterior-mean-trained rows",
      lambda: (cell_theorem1("posterior mean", "sample") / cell_theorem1("posterior mean", "mean"),
               cell_theorem1("posterior mean", "mean"), cell_theorem1("posterior mean", "mean", "recon_loss_std"),
               cell_theorem1("posterior mean", "sample"),
               cell_theorem1("posterior mean", "argmax") / cell_theorem1("posterior mean", "mean"),
               cell_theorem1("posterior mean", "argmax")))
claim(E, "posterior mean (reconstruction loss {} ± {}) than with the sample they were trained with ({} ± {}) or the "
      "argmax ({} ± {}), on all {} seeds", "figures/estimators_theorem1.csv; results/estimators/mnist (per seed)",
      lambda: (*[cell_theorem1("posterior sample", t, f) for t in ("mean", "sample", "argmax")
                 for f in ("recon_loss", "recon_loss_std")],
               sum(m < min(s, x["estimator_swap"]["argmax"]["recon_loss"])
                   for (m, s), x in zip(per_seed_swap("sample"),
                                        sorted(estimator_runs("sample"), key=lambda x: x["config"]["seed"])))))
claim(E, "only just: {} ± {} with the mean against {} ± {} with their own argmax, lower on {} of {} seeds (seed {}: {} "
      "against {})", "figures/estimators_theorem1.csv; results/estimators/mnist (per seed)",
      lambda: (cell_theorem1("posterior argmax", "mean"), cell_theorem1("posterior argmax", "mean", "recon_loss_std"),
               cell_theorem1("posterior argmax", "argmax"),
               cell_theorem1("posterior argmax", "argmax", "recon_loss_std"),
               sum(m < a for m, a in per_seed_swap("argmax")), len(per_seed_swap("argmax")),
               *[v for i, (m, a) in enumerate(per_seed_swap("argmax")) if m >= a for v in (i, m, a)]))
claim(E, "Handed a posterior sample, both reconstruct worst ({} and {})", "figures/estimators_theorem1.csv",
      lambda: (cell_theorem1("posterior sample", "sample"), cell_theorem1("posterior argmax", "sample")))

# docs/quantizer.md ----------------------------------------------------------------------------------------

Q = "docs/quantizer.md"
QS = "benchmarks/results/quantizer_speed_cpu.json"
claim(Q, "Measured on MNIST (d = 64, K = 128, {} iterations, {} seeds", "figures/estimators.csv",
      lambda: (only(int(r["iterations"]) for r in table(EST)), only(int(r["seeds"]) for r in table(EST))))
claim(Q, "posterior mean clusters at {} % and probes at {} %; a posterior sample at {} % / {} %, the argmax at "
      "{} % / {} %", "figures/estimators.csv",
      lambda: tuple(cell(EST, k, m) for k in ("posterior mean", "posterior sample", "posterior argmax")
                    for m in ("cluster_acc", "classification_acc")))
claim(Q, "Every rival is below the mean on all three scores at p <= {}.", "figures/estimators_stats.csv: the largest p",
      lambda: (max(p_values(EST)),))
claim(Q, "it uses every codeword (perplexity {} of {})", "figures/estimators_codebook.csv: the posterior sample row",
      lambda: (cell("estimators_codebook", "posterior sample", "perplexity_hard"),
               cell("estimators_codebook", "posterior sample", "codewords_used")))
claim(Q, "in the study it used {} of {} codewords", "figures/estimators_codebook.csv: the posterior argmax row",
      lambda: (cell("estimators_codebook", "posterior argmax", "codewords_used"),
               cell("estimators_codebook", "posterior argmax", "K")))
claim(Q, "its reconstruction loss is {} times lower than from a sample and {} times lower than from the argmax",
      "figures/estimators_theorem1.csv: the posterior-mean-trained rows",
      lambda: (cell_theorem1("posterior mean", "sample") / cell_theorem1("posterior mean", "mean"),
               cell_theorem1("posterior mean", "argmax") / cell_theorem1("posterior mean", "mean")))


def quantizer_table_row(shape, label, n_label):
    def values():
        r = quantizer_row(shape)
        ms, peak = r["ms_median"], r["peak_memory_mib"]
        return (r["positions"], ms["softvq"], ms["vector_quantize"], r["softvq_time_ratio"], r["softvq_flop_ratio"],
                r["softvq_full_graph_time_ratio"], r["softvq_full_graph_flop_ratio"], peak["softvq"],
                peak["softvq_full_graph"], peak["vector_quantize"])
    claim(Q, f"| {label} ({n_label}) | {{}} | {{}} | {{}} | **{{}}** | {{}} | {{}}, {{}} | {{}} / {{}} / {{}} |",
          f"{QS}: the row of shape {shape}", values)


quantizer_table_row((32, 64, 16, 16), "(32, 64, 16, 16)", "512")
quantizer_table_row((64, 256, 8, 8), "(64, 256, 8, 8)", "1,024")
quantizer_table_row((256, 64), "(256, 64)", "128")
quantizer_table_row((16, 256, 32, 32), "(16, 256, 32, 32)", "4,096")
claim(Q, "Conditions: AMD EPYC CPU (torch's {s} kernels), {} cores, torch {s}, vector-quantize-pytorch {s},\n{} threads, "
      "medians of {} interleaved blocks, commit {s}, nothing else running", f"{QS}: conditions",
      lambda: (conditions()["torch_cpu_capability"],
               *[conditions()[k] for k in ("cpu_count", "torch", "vector_quantize_pytorch", "threads", "repeats")],
               conditions()["commit"][:7]) if conditions()["machine_shared"] is None else (math.nan,))
claim(Q, "(load average {} at the start,\n{} at the end", f"{QS}: the 1-minute load averages",
      lambda: (conditions()["load_average_start"][0], conditions()["load_average_end"][0]))
claim(Q, "**Time: within 1.3x of the peer at every shape (at most {}x)**", f"{QS}: the largest softvq time ratio",
      lambda: (max(r["softvq_time_ratio"] for r in bench("quantizer_speed_cpu")["rows"]),))
claim(Q, "Both\n  paths do the same matrix products, {}-{}x the peer's", f"{QS}: the FLOP ratios of both paths",
      lambda: (min(r[f"{p}_flop_ratio"] for r in bench("quantizer_speed_cpu")["rows"] for p in ("softvq", "softvq_full_graph")),
               max(r[f"{p}_flop_ratio"] for r in bench("quantizer_speed_cpu")["rows"] for p in ("softvq", "softvq_full_graph"))))
claim(Q, "the fused posterior mean holds {} MiB, {}x the peer's {} MiB**", f"{QS}: peak memory at the large shape",
      lambda: (quantizer_row((16, 256, 32, 32))["peak_memory_mib"]["softvq"],
               quantizer_row((16, 256, 32, 32))["softvq_memory_ratio"],
               quantizer_row((16, 256, 32, 32))["peak_memory_mib"]["vector_quantize"]))
claim(Q, "the full graph would hold {} MiB and be {}x slower than the\n  fused path there", f"{QS}: the large shape",
      lambda: (quantizer_row((16, 256, 32, 32))["peak_memory_mib"]["softvq_full_graph"],
               quantizer_row((16, 256, 32, 32))["ms_median"]["softvq_full_graph"]
               / quantizer_row((16, 256, 32, 32))["ms_median"]["softvq"]))


# The other pages: the numbers issue 39 corrected -----------------------------------------------------------

P = "docs/reproducibility.md"
claim(P, "`python reproduce.py` runs the {s} notebooks in order", "notebooks/NN_*.py",
      lambda: (WORDS[len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.py")))],))
claim(P, "(`softvq/sample_data/`, {} MB:", "softvq/sample_data/: the files' bytes / 1e6", lambda: (sample_files(),))
claim(P, "on that other CPU (the committed row until the ablation was retrained) and {} % / {} / {} % on the AMD EPYC "
      "(`{s}`, the committed row)", "figures/noise_sweep.csv: the noise_std 0 row and its commit",
      lambda: (cell("noise_sweep", "noise_std 0", "cluster_acc"), cell("noise_sweep", "noise_std 0", "nmi"),
               cell("noise_sweep", "noise_std 0", "classification_acc"),
               row("noise_sweep", "noise_std 0")["trained_on"].rsplit(" at ", 1)[1]))
claim(P, "retrained from `{s}` in a stack of {}, gave metrics bit-identical to the ablation's runs of the same configs "
      "from `{s}` in a stack of {}.", "results/mnist: commit and stack_size of the noise sweep's runs",
      lambda: (only(x["code_version"]["commit"][:7] for lv in (0.03, 0.3, 1) for x in noise_runs(lv)),
               only(x["stack_size"] for lv in (0.03, 0.3, 1) for x in noise_runs(lv)),
               only(x["code_version"]["commit"][:7] for lv in (0, 0.1) for x in noise_runs(lv)),
               only(x["stack_size"] for lv in (0, 0.1) for x in noise_runs(lv))))

claim(RP, "ran the {s} notebooks in {} s", "benchmarks/results/reproduce_quick_cpu.json: notebooks, total_s",
      lambda: (WORDS[len(bench("reproduce_quick_cpu")["notebooks_s"])], bench("reproduce_quick_cpu")["total_s"])
      if not bench("reproduce_quick_cpu")["failed"] else (math.nan,))
claim(RP, "01 {} s, 02 {} s, 03 {} s, 04 {} s, 05 {} s, 06 {} s, 07 {}\ns, 08 {} s",
      "benchmarks/results/reproduce_quick_cpu.json: notebooks_s", lambda: tuple(bench("reproduce_quick_cpu")["notebooks_s"].values()))
claim(RP, "its validation sweep, {} candidates per data set,\n{} s", "reproduce_quick_cpu.json: 08's section 1",
      lambda: (len(QUANTIZER_CANDIDATES), bench("reproduce_quick_cpu")["sections_s"]["08_quantizers"][
          "1. Choosing each quantizer's settings on the validation split"]))


S = "docs/speed.md"
claim(S, "evaluation included ({}-{} s per run)", "results/mnist: eval_time_s of the Table 1 runs",
      lambda: (min(x["eval_time_s"] for x in T1R()), max(x["eval_time_s"] for x in T1R())))
claim(S, "the noise sweep's `noise_std 0` row from `{s}`, gives {} % / {} / {} %)", "figures/noise_sweep.csv",
      lambda: (row("noise_sweep", "noise_std 0")["trained_on"].rsplit(" at ", 1)[1],
               cell("noise_sweep", "noise_std 0", "cluster_acc"), cell("noise_sweep", "noise_std 0", "nmi"),
               cell("noise_sweep", "noise_std 0", "classification_acc")))

def floor_row(name):
    r = bench(name)
    return (r["models"], r["step_ms"], r["products_ms"] + r.get("convolutions_ms", 0.0), r["adam_ms"],
            r["step_over_floor"], r["step_over_products"])


claim(S, "An idle 2-core AMD EPYC (torch's {s} kernels; flags avx2, fma, avx512f, avx512_bf16, avx512_vnni, no AMX),\n"
      "{} threads, batch {}, commit {s}:", "benchmarks/results/step_vs_*_cpu.json: the CPU, threads, batch, commit",
      lambda: (only(bench(n)["torch_cpu_capability"] for n in ("step_vs_gemm_cpu", "step_vs_conv_cpu")),
               only(bench(n)["threads"] for n in ("step_vs_gemm_cpu", "step_vs_conv_cpu")),
               only(bench(n)["batch"] for n in ("step_vs_gemm_cpu", "step_vs_conv_cpu")),
               only(bench(n)["code_version"]["commit"][:7] for n in ("step_vs_gemm_cpu", "step_vs_conv_cpu")))
      if all(bench(n)["flags"] == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
             for n in ("step_vs_gemm_cpu", "step_vs_conv_cpu")) else (math.nan,))
claim(S, "| MLP (784-500-500-2000-64, AE) | {} | {} | {} | {} | **{}** | {} |", "benchmarks/results/step_vs_gemm_cpu.json",
      lambda: floor_row("step_vs_gemm_cpu"))
claim(S, "| CNN (Table 2, d = 256, AE) | {} | {} | {} | {} | **{}** | {} |", "benchmarks/results/step_vs_conv_cpu.json",
      lambda: floor_row("step_vs_conv_cpu"))
claim(S, "| CNN (Table 2, d = 256, AE), commit {s} | {} | {} | {} | {} | **{}** | {} |",
      "benchmarks/results/step_vs_conv_cpu_stack3.json",
      lambda: (bench("step_vs_conv_cpu_stack3")["code_version"]["commit"][:7], *floor_row("step_vs_conv_cpu_stack3")))
claim(S, "- **The CNN as a stack of {}** (the trainer's grouped convolutions, one model's FLOPs counted times {}): {} ms a\n"
      "  model-step against {} alone, within {}x of its floor and {}x the near-peak convolution rate ({} against\n"
      "  {} GFLOP/s). The stack shares the rest of the step ({}x over its convolutions, against {}x alone), but\n"
      "  its grouped convolutions take {} ms, against {} x {} ms for three models' convolutions alone.",
      "benchmarks/results/step_vs_conv_cpu_stack3.json and step_vs_conv_cpu.json", lambda: stack3_claims())
claim(S, "within {}x of its floor. The fused Adam step is a quarter of the floor ({} of {} ms)",
      "benchmarks/results/step_vs_gemm_cpu.json", lambda: (bench("step_vs_gemm_cpu")["step_over_floor"],
      bench("step_vs_gemm_cpu")["adam_ms"], bench("step_vs_gemm_cpu")["floor_ms"])
      if round(4 * bench("step_vs_gemm_cpu")["adam_ms"] / bench("step_vs_gemm_cpu")["floor_ms"]) == 1 else (math.nan,))
claim(S, "the products alone would put the step at {}x", "benchmarks/results/step_vs_gemm_cpu.json",
      lambda: (bench("step_vs_gemm_cpu")["step_over_products"],))
claim(S, "Its {} GFLOP per step run at {} GFLOP/s, against\n  {} GFLOP/s for the large reference convolution: {}x",
      "benchmarks/results/step_vs_conv_cpu.json", lambda: (bench("step_vs_conv_cpu")["flops_per_step"] / 1e9,
      bench("step_vs_conv_cpu")["step_gflops"], bench("step_vs_conv_cpu")["peak_conv_gflops"],
      bench("step_vs_conv_cpu")["step_over_peak_conv"]))
claim(S, "account for {}x (its convolutions and dense products alone run at {} GFLOP/s", "step_vs_conv_cpu.json",
      lambda: (bench("step_vs_conv_cpu")["peak_conv_gflops"] / conv_gflops(), conv_gflops()))
claim(S, "the rest of the step for {}x (activations", "step_vs_conv_cpu.json: step / products alone",
      lambda: (bench("step_vs_conv_cpu")["step_over_products"],))
claim(S, "Channels-last is the faster format for {} of the {} layers, by {}-{} ms", "step_vs_conv_cpu.json: per layer",
      lambda: (len(channels_last_gains()), len(bench("step_vs_conv_cpu")["conv_layers"]), min(channels_last_gains()),
               max(channels_last_gains())))


def stack3_claims():
    r, one = bench("step_vs_conv_cpu_stack3"), bench("step_vs_conv_cpu")
    m = r["models"]
    return (m, m, r["step_ms"] / m, one["step_ms"], r["step_over_floor"], r["step_over_peak_conv"], r["step_gflops"],
            r["peak_conv_gflops"], r["step_over_products"], one["step_over_products"], r["convolutions_ms"], m,
            one["convolutions_ms"])


def cpu_notrain():
    r = bench("reproduce_cpu_notrain")
    every = sorted(r["notebooks_s"]) == sorted(p.stem for p in (ROOT / "notebooks").glob("0*.py"))
    return ((len(r["notebooks_s"]), r["total_s"], r["cpu_count"]) if every and not r["failed"] and r["parallel"] == 2
            else (math.nan,))


def conv_gflops():
    r = bench("step_vs_conv_cpu")
    return r["flops_per_step"] / (r["convolutions_ms"] + r["products_ms"]) / 1e6


def channels_last_gains():
    return [x["nchw_ms"] - x["channels_last_ms"] for x in bench("step_vs_conv_cpu")["conv_layers"]
            if x["channels_last_ms"] < x["nchw_ms"]]


G = "docs/gpu.md"
claim(G, "| CPU time per operation | {} µs (measured: {}-{} µs) | an NVIDIA H100: {} ms per Table 1 soft VQ-VAE step "
      "alone, {} ms for a stack of 6, {} ms for 18",
      "softvq/gpu_run.py's CALIBRATION; benchmarks/results/gpu_check_nvidia_h100_80gb_hbm3.json: fp32 ms per "
      "model-iteration x models, over the operations per step",
      lambda: (host_us_per_op(), min(us_per_op()), max(us_per_op()), gpu_speed(1), gpu_speed(6) * 6,
               gpu_speed(18) * 18))
claim(G, "operations per step (counted on a CPU): {}, {} and {} µs per operation",
      "benchmarks/results/gpu_check_nvidia_h100_80gb_hbm3.json over the counts the page states",
      lambda: tuple(us_per_op()))
claim(G, "(on the H100 machine's CPU with sklearn: {}-{} s per Table 2 run)",
      "results/cifar10-jpeg: eval_time_s of the H100 runs",
      lambda: (min(x["eval_time_s"] for x in cifar_runs(10000, device="cuda")),
               max(x["eval_time_s"] for x in cifar_runs(10000, device="cuda"))))

RS = "docs/results-store.md"
claim(RS, "The committed records made on the H100 (commits `{s}`, `{s}` and `{s}`) predate `kmeans`",
      "results/**: the commits of the records whose code_version.device is cuda",
      lambda: tuple(sorted({x["code_version"]["commit"][:7] for f in ("mnist", "cifar10-jpeg", "fashion-mnist")
                            for x in records(f"results/{f}") if x.get("code_version", {}).get("device") == "cuda"})))


# ---------------------------------------------------------------------------------------------- the checks

def pattern(text: str) -> re.Pattern:
    out = []
    for piece in re.split(r"(\{\}|\{s\}|\s+)", text):
        if piece == "{}":
            out.append(NUMBER)
        elif piece == "{s}":
            out.append(WORD)
        elif piece and piece.isspace():
            out.append(r"\s+")
        elif piece:
            out.append(re.escape(piece))
    return re.compile("".join(out))


def half_unit(shown: str) -> float:
    """Half a unit of the last digit `shown` (the page's rounding)."""
    mantissa, _, exponent = shown.replace(",", "").partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def mismatches(c: Claim, text: str) -> list[str]:
    """What the page states against what the data gives, for every number of the claim that disagrees."""
    found = list(pattern(c.text).finditer(text))
    if len(found) != 1:
        return [f"the text is on the page {len(found)} times, not once"]
    values = c.values()
    shown = found[0].groups()
    if len(values) != len(shown):
        return [f"{len(shown)} numbers on the page, {len(values)} computed"]
    wrong = []
    for i, (s, v) in enumerate(zip(shown, values)):
        if isinstance(v, str) or isinstance(v, bool):
            ok = s == str(v)
        else:
            ok = not math.isnan(v) and abs(float(s.replace(",", "")) - v) <= half_unit(s) * (1 + 1e-9) + 1e-12
        if not ok:
            wrong.append(f"number {i + 1}: the page says {s}, the data gives {v!r}")
    return wrong


def ident(c: Claim) -> str:
    return f"{c.page}:{' '.join(c.text.split())[:60]}"


@pytest.mark.parametrize("c", CLAIMS, ids=ident)
def test_page_states_what_the_data_says(c):
    wrong = mismatches(c, prose(c.page))
    assert not wrong, f"{c.page}: {' '.join(c.text.split())!r}\nfrom {c.source}\n" + "\n".join(wrong)


def test_a_changed_number_fails():
    """Every claim notices when its first number moves by ten of the page's last units."""
    for c in CLAIMS:
        text = prose(c.page)
        m = pattern(c.text).search(text)
        if m is None or not m.groups():
            continue
        s = m.group(1)
        if re.fullmatch(NUMBER, s):
            moved = float(s.replace(",", "")) + 20 * half_unit(s)
            decimals = len(s.replace(",", "").partition("e")[0].partition(".")[2])
            new = (f"{moved:.{decimals}f}" if "e" not in s else f"{moved:.{decimals}e}".replace("e-0", "e-"))
        else:
            new = s + "x"
        changed = text[:m.start(1)] + new + text[m.end(1):]
        assert mismatches(c, changed), f"{ident(c)}: {s} -> {new} went unnoticed"


def test_no_committed_record_was_scored_by_the_torch_kmeans():
    """docs/results-store.md: every committed table uses one K-means implementation, sklearn's."""
    for folder in ("results/mnist", "results/cifar10-jpeg", "results/fashion-mnist", ESTR, CPU):
        for x in records(folder):
            assert x.get("config", {}).get("kmeans", "sklearn") == "sklearn"
            assert x.get("evaluation", {}).get("kmeans", "sklearn") == "sklearn"


def test_claims_cover_the_pages():
    """The claims table reaches every page it is meant to (README's results section, results, estimators,
    quantizer) and no two claims check the same text."""
    pages = {c.page for c in CLAIMS}
    assert {R, D, E, Q} <= pages
    assert len({(c.page, c.text) for c in CLAIMS}) == len(CLAIMS)
