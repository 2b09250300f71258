"""Rerun the first iterations of committed runs and compare their logged loss history bit for bit.

A results JSON made before code versions were recorded can be tied to today's code this way: the training
history (losses averaged over every 100 iterations) of a rerun with the same config, seeds and stack is
identical only if the numerics are. Writes benchmarks/results/rerun_check.json.

    python benchmarks/rerun_check.py results/mnist/mnist-ae-d64-it40000-s1-*.json --iterations 2000
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from softvq import experiments, store
from softvq.experiments import Config
from softvq.io import write_json
from softvq.provenance import code_version
from softvq.train import flush_to_zero, train

ROOT = Path(__file__).resolve().parent


def stacks(paths: list[Path]) -> list[list[dict]]:
    """Records grouped as they were trained: same stack key and the recorded stack size (a damaged file is set
    aside by the store and left out)."""
    groups: dict[tuple, list[dict]] = {}
    for rec in filter(None, map(store.read_json, paths)):
        cfg = Config(**rec["config"])
        groups.setdefault((cfg.stack_key(), rec["stack_size"]), []).append(rec)
    return list(groups.values())


def check(records: list[dict], iterations: int, root=None, device: str = "cpu") -> dict:
    configs = [Config(**r["config"]) for r in records]
    if len(configs) != records[0]["stack_size"]:
        return {"runs": [c.run_id for c in configs], "skipped": "the other models of its stack are not given"}
    first = configs[0]
    x_tr = experiments.splits(first.dataset, first.validation, root)[0]
    model = experiments.build_stack(configs, x_tr)
    history = train(model, x_tr, [c.seed for c in configs], iterations=iterations, batch_size=first.batch_size,
                    lr=first.lr, device=device, progress=False)
    terms = [k for k in history if k not in ("iteration", "wall_time")]
    n = len(history["iteration"])
    identical = all(history[t][i][m] == r["history"][t][i] for m, r in enumerate(records) for t in terms
                    for i in range(n))
    worst = max(abs(history[t][i][m] - r["history"][t][i]) / max(abs(r["history"][t][i]), 1e-30)
                for m, r in enumerate(records) for t in terms for i in range(n))
    return {"runs": [c.run_id for c in configs], "iterations": iterations, "identical": identical,
            "max_relative_difference": worst}


def main(argv=None) -> None:
    flush_to_zero()             # before torch's first operation: reaches every thread it starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda: rerun on this device")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "rerun_check.json")
    args = parser.parse_args(argv)
    checks = []
    for group in stacks(args.results):
        checks.append(check(group, args.iterations, args.data_root, args.device))
        print(json.dumps(checks[-1]))
    write_json({"code_version": code_version(args.device), "checks": checks}, args.out)


if __name__ == "__main__":
    main()
