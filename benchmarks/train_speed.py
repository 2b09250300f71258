"""Training speed: the project's stacked trainer against a plain single-model PyTorch loop, on one device.

All train the paper's MNIST MLP autoencoder (784-500-500-2000-d-2000-500-500-784, ReLU, Bernoulli
reconstruction loss, Adam lr 3e-4, batch 32). The plain loops train one model as one writes it by hand
(nn.Sequential, DataLoader with shuffling, default Adam), each in a fresh Python process that does not import
softvq, so they run with PyTorch's defaults:
  - "plain": the textbook loop over torchvision's MNIST dataset with ToTensor;
  - "plain_in_memory": the same loop over a TensorDataset already in memory (no per-image decoding);
  - "plain_in_memory_ftz": the same again with denormal floats flushed to zero from the start
    (torch.set_flush_denormal(True) before the first operation), which softvq's command line does first (a CPU matter).
The trainer (`softvq.train`) trains one model alone and stacks of M models (`--stacks`), eager and, with
`--compile`, through torch.compile (on CUDA as CUDA graphs). Each is timed after a warm-up of the same model.
The last line printed is one JSON object; --out also writes it. The goals on a GPU: one model at least as fast
as the in-memory plain loop (`one_model_vs_plain` >= 1), a stack of 30 at least 10x faster per model than one
model (`stack_vs_one_model["30"]` >= 10).

    python benchmarks/train_speed.py --device cuda --out benchmarks/results/train_speed_cuda.json
    python benchmarks/train_speed.py --device cuda --compile --iterations 2000
    python benchmarks/train_speed.py --device cpu --stacks 1 2 --iterations 3     # a smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PLAIN_LOOPS = ("plain", "plain_in_memory", "plain_in_memory_ftz")
WIDTHS = (784, 500, 500, 2000)
WARMUP = 10                                         # iterations before each timed run


def synchronize() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_worker(kind: str, iterations: int, d: int, device: str, root: str) -> float:
    """Seconds the plain loop `kind` takes for `iterations` of one model, in this process (torch only)."""
    import torch
    if kind.endswith("_ftz"):
        torch.set_flush_denormal(True)              # before the first operation: reaches every thread
    import torch.nn.functional as F
    from torch import nn
    from torchvision.datasets import MNIST
    from torchvision.transforms import ToTensor

    if kind == "plain":                             # images decoded per item, as in the PyTorch tutorials
        dataset = MNIST(root, train=True, transform=ToTensor())
    else:
        dataset = torch.utils.data.TensorDataset(MNIST(root, train=True).data.float().div(255))

    def run(seed: int, n: int) -> None:
        torch.manual_seed(seed)
        sizes = [*WIDTHS, d, *reversed(WIDTHS)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        model = nn.Sequential(*layers).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, drop_last=True)
        done = 0
        while done < n:
            for batch, *_ in loader:
                batch = batch.flatten(1).to(device)
                loss = F.binary_cross_entropy_with_logits(model(batch), batch, reduction="sum") / len(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
                if done == n:
                    break

    run(0, WARMUP)                                  # not timed
    synchronize()
    began = time.perf_counter()
    run(1, iterations)
    synchronize()
    return time.perf_counter() - began


def plain_ms(kind: str, args, root: str) -> float:
    """ms per iteration of the plain loop `kind`, run in a fresh interpreter."""
    command = [sys.executable, __file__, "--worker", kind, "--iterations", str(args.iterations), "--d", str(args.d),
               "--device", args.device, "--data-root", root]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return 1e3 * float(out.strip().splitlines()[-1]) / args.iterations


def trainer_row(x, models: int, compile: bool, args) -> dict:
    """Time `args.iterations` steps of a stack of `models` autoencoders (after a warm-up of the same stack)."""
    from softvq import build_model
    from softvq.train import train
    seeds = list(range(models))
    model = build_model(x.shape[1:], "ae", args.d, seeds=seeds)
    options = dict(device=args.device, progress=False, compile=compile)
    train(model, x, seeds, iterations=WARMUP, **options)               # also compiles
    synchronize()
    began = time.perf_counter()
    train(model, x, seeds, iterations=args.iterations, **options)
    synchronize()
    step_ms = 1e3 * (time.perf_counter() - began) / args.iterations
    row = {"models": models, "compile": compile, "ms_per_step": round(step_ms, 3),
           "ms_per_model_iteration": round(step_ms / models, 4)}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 6, 18, 30], help="stack sizes (1: one model)")
    parser.add_argument("--iterations", type=int, default=1000, help="timed iterations per run")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--compile", action="store_true", help="also time the compiled trainer (CUDA graphs on CUDA)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--worker", choices=PLAIN_LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:                                 # a child process: time one plain loop, print seconds
        print(plain_worker(args.worker, args.iterations, args.d, args.device, args.data_root))
        return {}

    from softvq.train import flush_to_zero
    flush_to_zero()                                 # as softvq's command line does, before the first operation
    import torch
    from softvq.data import data_root, load_dataset
    from softvq.io import write_json
    from softvq.provenance import code_version
    from softvq.train import default_device

    args.device = args.device or str(default_device())
    root = str(data_root(args.data_root))
    x, _ = load_dataset("mnist", "train", args.data_root)
    plain = {kind: round(plain_ms(kind, args, root), 4) for kind in PLAIN_LOOPS}
    print(json.dumps({"plain_ms_per_iteration": plain}), flush=True)
    rows = [trainer_row(x, m, c, args) for m in args.stacks for c in ([False, True] if args.compile else [False])]
    best = {m: min(r["ms_per_model_iteration"] for r in rows if r["models"] == m) for m in args.stacks}
    result = {
        "benchmark": "train_speed", "model": f"MNIST MLP autoencoder, d = {args.d}, batch 32",
        "device": args.device, "iterations": args.iterations, "plain_ms_per_iteration": plain, "trainer": rows,
        "one_model_vs_plain": round(plain["plain_in_memory"] / best[1], 2) if 1 in best else None,
        "stack_vs_one_model": {str(m): round(best[1] / best[m], 2) for m in args.stacks} if 1 in best else None,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "code_version": code_version(args.device),
    }
    if args.out:
        write_json(result, args.out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
