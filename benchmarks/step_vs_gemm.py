"""How close the trainer's CPU step is to its floor: a Table 1 AE stack against the float32 matrix products of
the same step.

Each stacked linear layer (M models, batch B, in -> out features) costs three batched products per step: the
forward (M, B, in) x (M, in, out), and in the backward the gradients of its input and of its weights. This
times `softvq.train` on the Table 1 AE (MLP 784-500-500-2000-64 and back, batch 32, M = 6 by default) and those
products alone (`torch.bmm`, the same shapes and threads), in alternating rounds, and prints the ratio of the
medians: everything else the step does (activations, losses, Adam, the loop) is the excess over 1.

    python benchmarks/step_vs_gemm.py --out benchmarks/results/step_vs_gemm_cpu.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from softvq import build_model
from softvq.io import write_json
from softvq.nets import StackedLinear
from softvq.provenance import code_version
from softvq.train import flush_to_zero, train


def step_ms(model, x, seeds, iterations: int, warmup: int) -> float:
    """Milliseconds per training step of `model` (the stack) after `warmup` steps."""
    marks = {}
    train(model, x, seeds, iterations=warmup + iterations, batch_size=32, progress=False, device="cpu",
          on_step=lambda i: marks.setdefault(i, time.perf_counter()) if i in (warmup, warmup + iterations) else None)
    return (marks[warmup + iterations] - marks[warmup]) * 1e3 / iterations


def gemm_ms(model, batch: int, repeats: int) -> float:
    """Milliseconds of the step's float32 products: per StackedLinear, forward, input gradient, weight gradient."""
    gen = torch.Generator().manual_seed(0)
    operands = []
    for layer in (m for m in model.modules() if isinstance(m, StackedLinear)):
        n_models, fan_in, fan_out = layer.weight.shape
        x, w, g = (torch.randn(n_models, *shape, generator=gen) for shape in
                   ((batch, fan_in), (fan_in, fan_out), (batch, fan_out)))
        operands += [(x, w), (g, w.transpose(1, 2)), (x.transpose(1, 2), g)]
    began = time.perf_counter()
    for _ in range(repeats):
        for a, b in operands:
            torch.bmm(a, b)
    return (time.perf_counter() - began) * 1e3 / repeats


def main(argv=None) -> dict:
    flush_to_zero()             # as the command line does, before torch's first operation
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=200, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    seeds = list(range(args.models))
    x = torch.rand(2_048, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # speed only: random pixels
    steps, gemms = [], []
    for _ in range(args.rounds):
        model = build_model((1, 28, 28), "ae", 64, seeds=seeds)
        steps.append(step_ms(model, x, seeds, args.iterations, args.warmup))
        gemms.append(gemm_ms(model, 32, args.iterations))
    row = {"models": args.models, "batch": 32, "step_ms": statistics.median(steps),
           "gemm_ms": statistics.median(gemms), "rounds": {"step_ms": steps, "gemm_ms": gemms},
           "threads": torch.get_num_threads(), "code_version": code_version(torch.device("cpu"))}
    row["step_over_gemm"] = row["step_ms"] / row["gemm_ms"]
    print(json.dumps(row))
    if args.out:
        write_json(row, args.out)
    return row


if __name__ == "__main__":
    main()
