"""The stacked trainer's speed: milliseconds per model-iteration by stack size, precision and torch.compile.

Trains the paper's MNIST soft VQ-VAE (Table 1 preset: MLP 784-500-500-2000-64, K = 128, batch 64), or for
table 2 its CNN soft VQ-VAE (Table 2 preset: d = 256, K = 32, batch 64), as a stack of M models for some
iterations after a warm-up (which also absorbs compilation). benchmarks/stack_speed.py is its command line;
the GPU check (`python -m softvq gpu-check`) uses it too.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence

import torch

from .config import Config
from .presets import TABLE1, TABLE2
from .runner import build_stack
from .provenance import code_version
from .train import train

PRESETS = {1: dict(dataset="mnist", d=64, **TABLE1["soft_vqvae"]),
           2: dict(dataset="cifar10-jpeg", d=256, **TABLE2["soft_vqvae"])}
MODELS = {1: "Table 1 soft VQ-VAE (MNIST MLP, batch 64)", 2: "Table 2 soft VQ-VAE (CNN, d = 256, K = 32, batch 64)"}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ms_per_model_iteration(x: torch.Tensor, models: int, precision: str, compile: bool, iterations: int,
                           warmup: int, device: torch.device, table: int = 1) -> float:
    """Time `iterations` steps of a stack of `models` (after `warmup` steps of the same stack)."""
    configs = [Config(seed=s, precision=precision, compile=compile, **PRESETS[table]) for s in range(models)]
    model = build_stack(configs, x)
    options = dict(batch_size=configs[0].batch_size, device=device, progress=False, precision=precision,
                   compile=compile)
    train(model, x, list(range(models)), iterations=warmup, **options)
    synchronize(device)
    began = time.perf_counter()
    train(model, x, list(range(models)), iterations=iterations, **options)
    synchronize(device)
    return 1e3 * (time.perf_counter() - began) / (iterations * models)


def stack_speed(x: torch.Tensor, models: Sequence[int], precisions: Sequence[str], compiles: Sequence[bool],
                iterations: int, warmup: int, device: torch.device, table: int = 1) -> dict:
    """ms per model-iteration for every stack size, precision and compile setting (each row printed as one JSON
    line when measured), with the settings and the code version."""
    rows = []
    for m in models:
        for precision in precisions:
            for compile in compiles:
                ms = ms_per_model_iteration(x, m, precision, compile, iterations, warmup, device, table)
                rows.append({"models": m, "precision": precision, "compile": compile,
                             "ms_per_model_iteration": round(ms, 3)})
                print(json.dumps(rows[-1]), flush=True)
    return {"benchmark": "stack_speed", "model": MODELS[table], "iterations": iterations, "warmup": warmup,
            "rows": rows, "code_version": code_version(device)}
