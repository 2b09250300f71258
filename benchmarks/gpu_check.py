"""One command that checks a GPU: the CUDA tests, the stacked trainer's speed, a short Table 1 run.

    python benchmarks/gpu_check.py                 # writes benchmarks/results/gpu_check_<gpu>.json
    python benchmarks/gpu_check.py --quick         # fewer timing iterations and a shorter Table 1 run

Without CUDA it says so and exits 0. On CUDA it runs, and records in one JSON:
  1. the tests marked `cuda` (pytest -m cuda): the soft quantizer, training and a run on the GPU;
  2. benchmarks/stack_speed.py: ms per model-iteration for stacks of 1, 6 and 18 soft VQ-VAEs in fp32, tf32
     and bf16 (and compiled, bf16, for 6), from which the paper budget's wall time is estimated;
  3. a short Table 1 (six bottlenecks, seed 0) on the GPU: its three metrics and wall times.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import softvq  # noqa: F401  (first: flush-to-zero on every torch thread)
import torch

from softvq import experiments
from softvq.io import write_json
from softvq.provenance import code_version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import stack_speed  # noqa: E402  (a sibling script)

PAPER_MODEL_ITERATIONS = {"table1": 6 * 3 * 40_000, "figure4": 4 * 40_000, "ablation": 8 * 3 * 40_000}


def cuda_tests() -> dict:
    """pytest -m cuda in a subprocess: exit status and pytest's summary line."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", str(ROOT / "tests")], cwd=ROOT,
                          capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", ln)]
    return {"returncode": done.returncode, "summary": lines[-1] if lines else done.stdout[-500:],
            "seconds": round(time.perf_counter() - began, 1)}


def table1_smoke(iterations: int, data_root) -> dict:
    """Table 1 with seed 0 at `iterations` on the GPU, into a temporary folder: metrics and times per row."""
    configs = experiments.table1(seeds=(0,), iterations=iterations, kmeans_n_init=10)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        records = experiments.run(configs, root=data_root, device="cuda", results_dir=tmp, checkpoint_dir=tmp,
                                  progress=False)
        total = time.perf_counter() - began
    return {"iterations": iterations, "seconds": round(total, 1),
            "rows": {r["config"]["bottleneck"]: {**{k: round(v, 4) for k, v in r["metrics"].items()},
                                                 "train_s": round(r["train_time_s"], 1)} for r in records}}


def estimate_hours(speed: dict) -> dict:
    """Paper-budget wall time (hours, training only) from the fastest fp32 ms per model-iteration measured."""
    fp32 = [r["ms_per_model_iteration"] for r in speed["rows"] if r["precision"] == "fp32" and not r["compile"]]
    best = min(fp32)
    return {name: round(n * best / 3.6e6, 2) for name, n in PAPER_MODEL_ITERATIONS.items()} | {
        "basis_ms_per_model_iteration": best}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/gpu_check_<gpu>.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (the CPU path is covered by the test suite)")
        return 0
    gpu = torch.cuda.get_device_name(0)
    its = 100 if args.quick else 300
    result = {"gpu": gpu, "cuda": torch.version.cuda, "code_version": code_version("cuda")}
    result["tests"] = cuda_tests()
    print(json.dumps(result["tests"]), flush=True)
    common = ["--device", "cuda", "--iterations", str(its)] + (["--data-root", args.data_root] if args.data_root else [])
    result["speed"] = stack_speed.main([*common, "--models", "1", "6", "18", "--precisions", "fp32", "tf32", "bf16"])
    result["speed_compiled"] = stack_speed.main([*common, "--models", "6", "--precisions", "bf16", "--compile", "on"])
    result["paper_budget_hours_estimate"] = estimate_hours(result["speed"])
    result["table1_smoke"] = table1_smoke(500 if args.quick else 2_000, args.data_root)
    slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")
    out = args.out or ROOT / "benchmarks" / "results" / f"gpu_check_{slug}.json"
    write_json(result, out)
    print(f"wrote {out}")
    return int(result["tests"]["returncode"] != 0)


if __name__ == "__main__":
    sys.exit(main())
