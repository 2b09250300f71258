"""Wall time of a small preset trained inline (one stack after another, all cores) against the local launcher
(one submitit process per stack, the cores shared between them).

By default the Table 1 preset's AE and VAE rows, seed 0, 2,000 iterations: two stacks, so two local jobs. Each
way trains into its own temporary folders. The last line printed is one JSON object; --out also writes it.

    python benchmarks/launcher_speed.py --iterations 2000 --out benchmarks/results/launcher_local_cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from softvq import experiments, launch
from softvq.train import flush_to_zero
from softvq.io import write_json
from softvq.provenance import code_version


def timed_run(configs, root, folder: Path, launcher) -> tuple[float, list[dict]]:
    """Seconds to train and score `configs` into `folder` (results, checkpoints, job logs) with `launcher`."""
    began = time.perf_counter()
    records = experiments.run(configs, root, "cpu", folder / "results", folder / "checkpoints", progress=False,
                              launcher=launcher)
    return time.perf_counter() - began, records


def main(argv=None) -> dict:
    flush_to_zero()             # before torch's first operation: reaches every thread it starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=["ae", "vae"], help="Table 1 rows: one stack each")
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--smoke", action="store_true", help="500 training and 200 test images, a short evaluation")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    small = dict(train_size=500, eval_size=200, kmeans_n_init=1, probe_iterations=10) if args.smoke else {}
    configs = [c for c in experiments.table1(seeds=(0,), iterations=args.iterations, **small)
               if c.bottleneck in args.rows]
    stacks = len(experiments.group_stacks(configs))
    with tempfile.TemporaryDirectory() as tmp:
        inline_s, inline = timed_run(configs, args.data_root, Path(tmp) / "inline", None)
        spec = launch.Launcher("local", folder=str(Path(tmp) / "jobs"), poll_s=1.0)
        local_s, local = timed_run(configs, args.data_root, Path(tmp) / "local", spec)
    result = {"benchmark": "launcher_speed", "rows": args.rows, "iterations": args.iterations, "smoke": args.smoke,
              "stacks": stacks,
              "inline_s": round(inline_s, 1), "inline_threads": torch.get_num_threads(),
              "local_s": round(local_s, 1), "local_jobs": stacks, "local_threads_per_job": launch.threads(spec, stacks),
              "speedup": round(inline_s / local_s, 2), "cpu_count": os.cpu_count(),
              "metrics_inline": {r["run_id"]: r["metrics"] for r in inline},
              "metrics_local": {r["run_id"]: r["metrics"] for r in local}, "code_version": code_version()}
    if args.out:
        write_json(result, args.out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
