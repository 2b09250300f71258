"""One prepared command for a short GPU slot: Table 2 at the paper's budget, plus a validation sweep.

    python -m softvq gpu-run table2                  # plan, then train and evaluate; results under outputs/paper/
    python -m softvq gpu-run table2 --plan-only      # the time plan alone

It trains Table 2 on the data set present (the first of PREFERRED_DATASETS in the data folder) at the paper's
budget, as notebooks/04_tables.py does at budget "paper" (the rows `presets.table2_for` picks; baselines
40,000 iterations, the soft VQ-VAE 10,000; 3 seeds), and a validation sweep of the soft VQ-VAE's codebook size K
(SWEEP_K) and of a floor on its sigma_k (SIGMA_FLOORS, at K = 32): is the nearly flat posterior of the soft
VQ-VAE on CIFAR-10 (mean largest posterior 0.072 with K = 32) a matter of K or of sigma_k?

It refuses to start without CUDA (one `error:` line, exit status 2) unless `--device cpu` asks for a smoke run
on the CPU. The precision is the card's fastest (`train.card_precision`: bf16 from Ampere on, fp16 with a
gradient scaler on Volta and Turing, e.g. Colab's T4, else fp32) unless `--precision` names one; K-means is the
batched torch implementation on the device (`--kmeans`); both are part of every run's Config, so of its record.

Before it starts it prints a time plan: per stack (configs that train together), host and GPU time per step
from a calibration table (CALIBRATION; docs/gpu.md derives it), and the start and end of each stack when
`--workers` processes (default: one per stack) take the stacks in order, longest first, sharing the GPU. Each
stack runs in its own process and writes its results JSONs when it finishes (`runner.run`), with
checkpoints every 2,000 iterations, so a slot cut short keeps every finished stack and a rerun skips them and
resumes the others. A summary JSON beside the results (gpu_run_table2_<dataset>.json) records the plan and each
stack's measured times, for the next calibration.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from . import budgets, data, presets, runner, store
from .config import EVALUATION, Config
from .io import write_json
from .provenance import code_version
from .metrics import KMEANS
from .train import PRECISIONS, card_precision

PREFERRED_DATASETS = ("cifar10", "svhn", "cifar10-jpeg")
SWEEP_K = (32, 128, 512)
SIGMA_FLOORS = (0.5, 2.0)            # sigma_k^2 + floor^2; the Table 2 runs learned sigma_k of 2.1-2.5
BUDGET_S = 480                      # what one H100-class GPU slot affords this command (8 minutes)
SMOKE_EVALUATION = tuple(n for n in EVALUATION if n != "kmeans")   # numbers a smoke run may change

# Time per training step of a stack on an H100-class GPU: the host's (kernel launches, eager PyTorch) and the
# GPU's, which processes share. Derived in docs/gpu.md from the H100 measurements in benchmarks/results and
# results/ and from counts made on a CPU; the rates marked assumed are not measured yet.
CALIBRATION = {
    "host_us_per_op": 17.5,          # H100 host: 5.37 ms per Table 1 soft VQ-VAE step of 301 ops (gpu_check JSON)
    "ops_per_step": {"ae": 143, "vae": 202, "beta_vae": 202, "info_dropout": 197, "vqvae": 221, "soft_vqvae": 329},
    "gflop_per_image": {"cnn": 0.183},   # forward + backward of the d = 256 CNN (torch.utils.flop_counter)
    "tflops": {"fp32": 4.5,          # H100, Table 2 AE and soft VQ-VAE stacks sharing the GPU (results/cifar10-jpeg)
               "tf32": 9.0,          # assumed: 2x fp32
               "bf16": 13.5,         # assumed: 3x fp32 (channels-last tensor-core convolutions)
               "fp16": 13.5},        # assumed: as bf16 (an H100 figure; a T4 is several times slower)
    "eval_s_per_model": 5.0,         # assumed: encoding, K-means with 100 starts and the probe on the GPU
    "start_s": 20.0,                 # assumed: a worker's start (interpreter, CUDA context, data)
}


def present_dataset(root=None) -> str:
    """The first of PREFERRED_DATASETS whose files are in the data folder (or that is read from the sample)."""
    for name in PREFERRED_DATASETS:
        if not data.missing([name], root):
            return name
    raise FileNotFoundError(f"none of {', '.join(PREFERRED_DATASETS)} is in {data.data_root(root).resolve()}; "
                            + data.how_to_get(PREFERRED_DATASETS))


def table2_work(dataset: str, results_dir, iterations: int | None = None, **fields) -> dict[str, list[Config]]:
    """The runs of `gpu-run table2`, by row: Table 2 at the paper budget ("table2 <bottleneck>") and the
    validation sweep of the soft VQ-VAE ("sweep K <K>", "sweep sigma_floor <floor>"). `fields` (evaluation,
    numerics; for a smoke run a batch size) go to every Config; `iterations` replaces every row's budget."""
    settings = budgets.budget("paper")
    rows = presets.table2_for(dataset, settings["table2_sweep_seeds"], settings["table2_sweep_iterations"],
                                  results_dir, **fields)
    work = {f"table2 {name}": presets.table2(dataset, settings["table2_seeds"], iterations, rows={name: row},
                                                 **fields)
            for name, row in rows.items()}
    soft = rows["soft_vqvae"]
    sweep = {**{f"sweep K {k}": {**soft, "K": k} for k in SWEEP_K},
             **{f"sweep sigma_floor {f:g}": {**soft, "K": 32, "sigma_floor": f} for f in SIGMA_FLOORS}}
    for name, row in sweep.items():
        work[name] = presets.table2(dataset, settings["table2_sweep_seeds"], iterations, rows={name: row},
                                        validation=True, **fields)
    return work


def stacks(work: Mapping[str, Sequence[Config]], results_dir) -> list[tuple[str, list[Config]]]:
    """The stacks that still have runs without results, each named by its rows, longest first (so that the
    last stacks to finish are short ones)."""
    row_of = {c.run_id: name for name, configs in work.items() for c in configs}
    todo = [c for configs in work.values() for c in configs if not store.result_path(c, results_dir).exists()]
    named = [(" + ".join(dict.fromkeys(row_of[c.run_id] for c in stack)), stack)
             for stack in runner.group_stacks(todo)]
    return sorted(named, key=lambda s: -step_seconds(s[1]) * s[1][0].iterations)


def step_seconds(configs: Sequence[Config], calibration: Mapping = CALIBRATION) -> float:
    """A stack's time per step alone: the longer of the host's and the GPU's."""
    return max(host_gpu_seconds(configs, calibration))


def host_gpu_seconds(configs: Sequence[Config], calibration: Mapping = CALIBRATION) -> tuple[float, float]:
    """(host, GPU) seconds per training step of the stack `configs`, from the calibration table."""
    first = configs[0]
    host = calibration["ops_per_step"][first.bottleneck] * calibration["host_us_per_op"] * 1e-6
    images = len(configs) * first.batch_size
    gpu = images * calibration["gflop_per_image"][first.net] / calibration["tflops"][first.precision] * 1e-3
    return host, gpu


def simulate(jobs: Sequence[Sequence[tuple[float, float]]], workers: int) -> list[tuple[float, float]]:
    """(start, end) in seconds of each job when `workers` processes take the jobs in order.

    A job is a sequence of phases (seconds alone, share of the GPU it uses meanwhile, 0 for a phase that does not
    use it). When the running phases together ask for more than the whole GPU, each is slowed by that total."""
    queue, running, times, now = list(range(len(jobs))), {}, [(0.0, 0.0)] * len(jobs), 0.0
    while queue or running:
        while queue and len(running) < workers:
            j = queue.pop(0)
            running[j], times[j] = [0, jobs[j][0][0]], (now, 0.0)      # phase index, seconds alone left in it
        slow = max(1.0, sum(jobs[j][phase][1] for j, (phase, _) in running.items()))
        dt = min(left * (slow if jobs[j][phase][1] else 1.0) for j, (phase, left) in running.items())
        now += dt
        for j in list(running):
            phase, left = running[j]
            left -= dt / (slow if jobs[j][phase][1] else 1.0)
            while left <= 1e-9 and phase + 1 < len(jobs[j]):
                phase, left = phase + 1, left + jobs[j][phase + 1][0]
            if left <= 1e-9:
                del running[j]
                times[j] = (times[j][0], now)
            else:
                running[j] = [phase, left]
    return times


def plan(named: Sequence[tuple[str, list[Config]]], workers: int, calibration: Mapping = CALIBRATION) -> list[dict]:
    """Per stack: its rows, runs, models, iterations, host and GPU ms per step, and planned start and end (s)."""
    per_step = [host_gpu_seconds(configs, calibration) for _, configs in named]
    jobs = [[(calibration["start_s"], 0.0), (configs[0].iterations * max(host, gpu), gpu / max(host, gpu)),
             (len(configs) * calibration["eval_s_per_model"], 0.0)]
            for (_, configs), (host, gpu) in zip(named, per_step)]
    return [{"rows": label, "run_ids": [c.run_id for c in configs], "models": len(configs),
             "iterations": configs[0].iterations, "host_ms_per_step": round(1e3 * host, 2),
             "gpu_ms_per_step": round(1e3 * gpu, 2), "planned_start_s": round(start), "planned_end_s": round(end)}
            for (label, configs), (host, gpu), (start, end) in zip(named, per_step, simulate(jobs, workers))]


def print_plan(steps: Sequence[dict], header: str, budget_s: float) -> None:
    print(header)
    print(f"{'stack':56s} {'models':>6s} {'its':>6s} {'host ms':>8s} {'GPU ms':>7s} {'start s':>8s} {'end s':>6s}")
    for s in steps:
        late = "  (after the budget)" if s["planned_end_s"] > budget_s else ""
        print(f"{s['rows']:56s} {s['models']:6d} {s['iterations']:6d} {s['host_ms_per_step']:8.2f} "
              f"{s['gpu_ms_per_step']:7.2f} {s['planned_start_s']:8d} {s['planned_end_s']:6d}{late}")
    total = max((s["planned_end_s"] for s in steps), default=0)
    print(f"planned: {total} s with evaluation, budget {budget_s:g} s", flush=True)


def start_worker(threads: int) -> None:
    """A worker process's torch threads (the host's cores shared between the workers)."""
    torch.set_num_threads(threads)


def train_stack(configs: list[Config], folders: dict) -> dict:
    """Train, evaluate and write one stack (in a worker process); its measured times."""
    began = time.perf_counter()
    records = runner.run(configs, progress=False, max_stack=len(configs), **folders)
    return {"wall_s": round(time.perf_counter() - began, 1), "train_time_s": round(records[0]["train_time_s"], 1),
            "eval_time_s": round(sum(r["eval_time_s"] for r in records), 1)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m softvq gpu-run`."""
    parser.add_argument("what", choices=["table2"], help="table2: Table 2 at the paper's budget and the K / "
                                                          "sigma_k floor sweep")
    parser.add_argument("--dataset", default=None, help=f"default: the first present of {PREFERRED_DATASETS}")
    parser.add_argument("--precision", choices=PRECISIONS, default=None, help="default: the card's fastest, bf16 "
                        "or fp16 (quantizer and losses stay float32)")
    parser.add_argument("--kmeans", choices=KMEANS, default="torch", help="K-means implementation (default torch: "
                        "all starts at once on the device)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step (CUDA graphs on CUDA)")
    parser.add_argument("--workers", type=int, default=None, help="stacks training at once, one process each "
                                                                  "(default: all, up to one per core)")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="the slot's seconds, for the plan")
    parser.add_argument("--plan-only", action="store_true", help="print the time plan and stop")
    parser.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
    parser.add_argument("--device", default="cuda", help="default cuda; cpu for a smoke run")
    parser.add_argument("--results", type=Path, default=None, help="default: outputs/paper/results")
    parser.add_argument("--checkpoints", type=Path, default=None, help="default: outputs/paper/checkpoints")
    smoke = parser.add_argument_group("a smoke run (not the paper's budget)")
    smoke.add_argument("--iterations", type=int, default=None, help="every row's iterations")
    smoke.add_argument("--batch-size", type=int, default=None, help="every row's batch size")
    for name in SMOKE_EVALUATION:
        smoke.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)


def refuse(problem: str) -> int:
    """Say in one `error:` line why `gpu-run` does not start; its exit status, 2."""
    print(f"python -m softvq gpu-run: error: {problem}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """`gpu-run` with parsed `args`: plan, then train every stack; returns the exit status (1: a stack failed,
    2: no CUDA device, or no data set)."""
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        return refuse(f"no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                      f"--device cpu makes a smoke run on the CPU")
    try:
        dataset = args.dataset or present_dataset(args.data_root)
    except FileNotFoundError as e:
        return refuse(str(e))
    args.precision = args.precision or card_precision(args.device)
    _, results, checkpoints = budgets.output_dirs("paper", results_dir=args.results, checkpoint_dir=args.checkpoints)
    evaluation = budgets.evaluation({"kmeans": args.kmeans, **{k: getattr(args, k) for k in SMOKE_EVALUATION
                                                               if getattr(args, k)}})
    smoke = {"batch_size": args.batch_size} if args.batch_size else {}
    work = table2_work(dataset, results, args.iterations, precision=args.precision, compile=args.compile,
                       **evaluation, **smoke)
    named = stacks(work, results)
    runs = sum(len(c) for c in work.values())
    args.workers = args.workers or max(1, min(len(named), os.cpu_count() or 1))
    steps = plan(named, args.workers)
    header = (f"gpu-run table2 on {dataset}: {len(named)} stacks ({sum(s['models'] for s in steps)} of {runs} runs "
              f"to train), {args.workers} workers on {args.device}, precision {args.precision}, "
              f"compile {'on' if args.compile else 'off'}, K-means {args.kmeans}; results in {results}")
    print_plan(steps, header, args.budget_s)
    summary_path = Path(results).parent / f"gpu_run_table2_{dataset}.json"
    summary = {"command": "gpu-run table2", "dataset": dataset, "precision": args.precision, "compile": args.compile,
               "workers": args.workers, "budget_s": args.budget_s, "calibration": CALIBRATION, "plan": steps,
               "kmeans": args.kmeans, "done": [], "failed": [], "code_version": code_version(args.device)}
    if args.plan_only or not named:
        return 0
    write_json(summary, summary_path)
    folders = dict(root=args.data_root, device=args.device, results_dir=results, checkpoint_dir=checkpoints)
    began = time.perf_counter()
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    with concurrent.futures.ProcessPoolExecutor(args.workers, multiprocessing.get_context("spawn"),
                                                initializer=start_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(train_stack, configs, folders): step for (_, configs), step in zip(named, steps)}
        for future in concurrent.futures.as_completed(futures):
            step, elapsed = futures[future], round(time.perf_counter() - began)
            try:
                summary["done"].append({"rows": step["rows"], "finished_s": elapsed, **future.result()})
                print(f"done at {elapsed} s (planned {step['planned_end_s']} s): {step['rows']} "
                      f"({step['models']} runs)", flush=True)
            except Exception as e:                      # the other stacks go on; this one resumes on a rerun
                summary["failed"].append({"rows": step["rows"], "error": f"{type(e).__name__}: {e}"})
                print(f"failed at {elapsed} s: {step['rows']}: {type(e).__name__}: {e}", flush=True)
            summary["elapsed_s"] = elapsed
            write_json(summary, summary_path)
    print(f"finished in {round(time.perf_counter() - began)} s: {len(summary['done'])} stacks done, "
          f"{len(summary['failed'])} failed; summary in {summary_path}")
    return int(bool(summary["failed"]))
