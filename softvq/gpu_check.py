"""The GPU check: the CUDA self-tests, the stacked trainer's speed and a short Table 1, recorded in one JSON.

    python -m softvq gpu-check                 # writes ./gpu_check_<gpu>.json
    python -m softvq gpu-check --quick         # fewer timing iterations and a shorter Table 1 run

It ships in the package, so it runs after a plain `pip install` from any folder (benchmarks/gpu_check.py
runs it from a checkout and writes into benchmarks/results/). Without CUDA it says so and exits 0. On CUDA
it runs, and records in one JSON:
  1. the CUDA self-tests (`self_test_cases`; tests/test_cuda.py runs the same functions under pytest): the soft
     quantizer stays finite in float32, training on the GPU matches the CPU in fp32, tf32 and bf16, and a run on
     the GPU writes its record;
  2. ms per model-iteration for stacks of 1, 6 and 18 soft VQ-VAEs in fp32, tf32 and bf16 (and compiled, bf16,
     for 6), from which the paper budget's wall time is estimated;
  3. a short Table 1 (six bottlenecks, seed 0) on the GPU: its three metrics and wall times.
MNIST is read from the data folder (--data-root, else $SOFTVQ_DATA, else ./data), else from the embedded
sample; the JSON's "data" entry says which. The exit status is 1 when a self-test failed.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from . import data, experiments, speed
from .experiments import Config
from .io import write_json
from .model import build_model
from .provenance import code_version
from .quantize import soft_quantize
from .train import train

PAPER_MODEL_ITERATIONS = {"table1": 6 * 3 * 40_000, "figure4": 4 * 40_000, "ablation": 8 * 3 * 40_000}
PRECISION_RTOL = {"fp32": 1e-3, "tf32": 2e-2, "bf16": 5e-2}    # GPU against CPU loss after 20 iterations
SHAPE = (1, 28, 28)


# --------------------------------------------------------------------------------------------- self-tests
def check_soft_quantize_extremes() -> None:
    """The soft quantizer on the GPU stays finite in float32 at distances of 1e3 and log variances of +-20."""
    z = torch.tensor([[1e3] * 8, [0.0] * 8], device="cuda")
    codebook = torch.randn(16, 8, device="cuda")
    for value in (-20.0, 20.0):
        z_hat, post = soft_quantize(z, codebook, torch.full((2, 16), value, device="cuda"))
        assert z_hat.dtype == torch.float32 and torch.isfinite(z_hat).all() and torch.isfinite(post).all()
        torch.testing.assert_close(post.sum(-1), torch.ones(2, device="cuda"))


def check_training_matches_the_cpu(precision: str) -> None:
    """A stack of two small soft VQ-VAEs trained 20 iterations on the GPU at `precision` ends with the CPU's
    fp32 loss, within `PRECISION_RTOL`."""
    x = torch.rand(256, *SHAPE, generator=torch.Generator().manual_seed(0))
    losses = {}
    for device in ("cpu", "cuda"):
        model = build_model(SHAPE, "soft_vqvae", 8, seeds=[0, 1], widths=(32, 32, 64), num_codes=8, noise_std=0.1)
        history = train(model, x, [0, 1], iterations=20, batch_size=16, log_every=10, progress=False, device=device,
                        precision="fp32" if device == "cpu" else precision)
        losses[device] = torch.tensor(history["total"][-1])
        assert all(p.device.type == device and p.dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(losses["cuda"], losses["cpu"], rtol=PRECISION_RTOL[precision], atol=0)


def check_a_run_writes_its_record(root, folder) -> None:
    """A 50-iteration MNIST run on the GPU writes a record that names the GPU and holds its scores."""
    config = Config(bottleneck="soft_vqvae", d=8, K=8, iterations=50, kmeans_n_init=2)
    record = experiments.run_stack([config], root, "cuda", folder, folder, progress=False)[0]
    assert record["code_version"]["device"].startswith("cuda") and "gpu" in record["code_version"]
    assert 0 < record["metrics"]["classification_acc"] <= 1 and record["codebook"]["K"] == 8


def self_test_cases(root, folder) -> dict[str, Callable[[], None]]:
    """Every self-test by name, ready to call: MNIST from `root`, files into `folder`."""
    return {"soft_quantize_extremes": check_soft_quantize_extremes,
            **{f"training_matches_the_cpu_{p}": functools.partial(check_training_matches_the_cpu, p)
               for p in PRECISION_RTOL},
            "a_run_writes_its_record": functools.partial(check_a_run_writes_its_record, root, folder)}


def self_tests(root) -> dict:
    """Run every self-test; the names passed, each failure's last traceback line, and the seconds taken."""
    began, passed, failed = time.perf_counter(), [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, test in self_test_cases(root, tmp).items():
            try:
                test()
                passed.append(name)
            except Exception:           # a failed check is recorded, and the others still run
                failed[name] = traceback.format_exc().strip().splitlines()[-1]
    return {"passed": passed, "failed": failed, "seconds": round(time.perf_counter() - began, 1)}


# --------------------------------------------------------------------------------- speed and Table 1
def table1_smoke(iterations: int, root) -> dict:
    """Table 1 with seed 0 at `iterations` on the GPU, into a temporary folder: metrics and times per row."""
    configs = experiments.table1(seeds=(0,), iterations=iterations, kmeans_n_init=10)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        records = experiments.run(configs, root=root, device="cuda", results_dir=tmp, checkpoint_dir=tmp,
                                  progress=False)
        total = time.perf_counter() - began
    return {"iterations": iterations, "seconds": round(total, 1),
            "rows": {r["config"]["bottleneck"]: {**{k: round(v, 4) for k, v in r["metrics"].items()},
                                                 "train_s": round(r["train_time_s"], 1)} for r in records}}


def estimate_hours(measured: dict) -> dict:
    """Paper-budget wall time (hours, training only) from the fastest fp32 ms per model-iteration measured."""
    fp32 = [r["ms_per_model_iteration"] for r in measured["rows"] if r["precision"] == "fp32" and not r["compile"]]
    best = min(fp32)
    return {name: round(n * best / 3.6e6, 2) for name, n in PAPER_MODEL_ITERATIONS.items()} | {
        "basis_ms_per_model_iteration": best}


# ------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The check's options, for `python -m softvq gpu-check` and benchmarks/gpu_check.py."""
    parser.add_argument("--quick", action="store_true", help="fewer timing iterations, a shorter Table 1 run")
    parser.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON (default: gpu_check_<gpu>.json here)")


def run(args: argparse.Namespace, folder: Path | None = None) -> int:
    """The check with parsed `args`; the JSON goes to --out, else into `folder` (default: the working folder).
    Returns the exit status."""
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (the CPU path is covered by the test suite)")
        return 0
    if data.missing(["mnist"], args.data_root):     # this process and its jobs read the embedded sample
        os.environ["SOFTVQ_SAMPLE"] = ",".join(dict.fromkeys([*data.sampled(), "mnist"]))
    gpu = torch.cuda.get_device_name(0)
    its = 100 if args.quick else 300
    result = {"gpu": gpu, "cuda": torch.version.cuda, "code_version": code_version("cuda"),
              "data": data.sample_note(["mnist"]) or f"MNIST from {data.data_root(args.data_root).resolve()}"}
    result["tests"] = self_tests(args.data_root)
    print(json.dumps(result["tests"]), flush=True)
    x = experiments.splits("mnist", False, args.data_root)[0]
    device = torch.device("cuda")
    result["speed"] = speed.stack_speed(x, [1, 6, 18], ["fp32", "tf32", "bf16"], [False], its, 20, device)
    result["speed_compiled"] = speed.stack_speed(x, [6], ["bf16"], [True], its, 20, device)
    result["paper_budget_hours_estimate"] = estimate_hours(result["speed"])
    result["table1_smoke"] = table1_smoke(500 if args.quick else 2_000, args.data_root)
    slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")
    out = args.out or Path(folder or Path.cwd()) / f"gpu_check_{slug}.json"
    write_json(result, out)
    print(f"wrote {out}")
    return int(bool(result["tests"]["failed"]))


def main(argv=None, folder: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softvq gpu-check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv), folder)
