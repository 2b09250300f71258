"""Stacked-trainer speed by stack size, precision and torch.compile, on one device (`softvq.speed`).

Trains the paper's MNIST soft VQ-VAE (Table 1 preset: MLP 784-500-500-2000-64, K = 128, batch 64), or with
--table 2 its CNN soft VQ-VAE (Table 2 preset: d = 256, K = 32, batch 64, on random 32x32 colour images), as a
stack of M models for a few hundred iterations after a warm-up (which also absorbs compilation), and reports
milliseconds per model-iteration. The last line printed is one JSON object; --out also writes it.

    python benchmarks/stack_speed.py --models 1 6 18 --precisions fp32 tf32 bf16 --device cuda
    python benchmarks/stack_speed.py --models 3 --precisions fp32 bf16 --compile both --iterations 200
    python benchmarks/stack_speed.py --table 2 --models 1 4 --precisions fp32 --iterations 20 --warmup 3
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from softvq import experiments, speed
from softvq.io import write_json
from softvq.train import PRECISIONS, default_device, flush_to_zero


def main(argv=None) -> dict:
    flush_to_zero()             # before torch's first operation: reaches every thread it starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=int, choices=sorted(speed.PRESETS), default=1, help="1: MNIST MLP; 2: CNN")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--device", default=None)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else default_device()
    x = (experiments.splits("mnist", False, args.data_root)[0] if args.table == 1 else
         torch.rand(5_000, 3, 32, 32, generator=torch.Generator().manual_seed(0)))     # the CNN's speed only
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    result = speed.stack_speed(x, args.models, args.precisions, compiles, args.iterations, args.warmup, device,
                               args.table)
    if args.out:
        write_json(result, args.out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
