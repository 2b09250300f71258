"""Stacked-trainer speed by stack size, precision and torch.compile, on one device.

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
import time
from pathlib import Path

import softvq  # noqa: F401  (first: flush-to-zero on every torch thread)
import torch

from softvq import experiments
from softvq.experiments import Config
from softvq.io import write_json
from softvq.provenance import code_version
from softvq.train import PRECISIONS, default_device, train


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PRESETS = {1: dict(dataset="mnist", d=64, **experiments.TABLE1["soft_vqvae"]),
           2: dict(dataset="cifar10-jpeg", d=256, **experiments.TABLE2["soft_vqvae"])}
MODELS = {1: "Table 1 soft VQ-VAE (MNIST MLP, batch 64)", 2: "Table 2 soft VQ-VAE (CNN, d = 256, K = 32, batch 64)"}


def ms_per_model_iteration(x: torch.Tensor, models: int, precision: str, compile: bool, iterations: int,
                           warmup: int, device: torch.device, table: int = 1) -> float:
    """Time `iterations` steps of a stack of `models` (after `warmup` steps of the same stack)."""
    configs = [Config(seed=s, precision=precision, compile=compile, **PRESETS[table]) for s in range(models)]
    model = experiments.build_stack(configs, x)
    options = dict(batch_size=configs[0].batch_size, device=device, progress=False, precision=precision,
                   compile=compile)
    train(model, x, list(range(models)), iterations=warmup, **options)
    synchronize(device)
    began = time.perf_counter()
    train(model, x, list(range(models)), iterations=iterations, **options)
    synchronize(device)
    return 1e3 * (time.perf_counter() - began) / (iterations * models)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=int, choices=sorted(PRESETS), default=1, help="1: MNIST MLP; 2: CNN")
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
    rows = []
    for models in args.models:
        for precision in args.precisions:
            for compile in compiles:
                ms = ms_per_model_iteration(x, models, precision, compile, args.iterations, args.warmup, device,
                                            args.table)
                rows.append({"models": models, "precision": precision, "compile": compile,
                             "ms_per_model_iteration": round(ms, 3)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"benchmark": "stack_speed", "model": MODELS[args.table],
              "iterations": args.iterations, "warmup": args.warmup, "rows": rows, "code_version": code_version(device)}
    if args.out:
        write_json(result, args.out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
