"""Training speed: the project's stacked trainer against a plain single-model PyTorch loop.

All train the paper's MNIST MLP autoencoder (784-500-500-2000-d-2000-500-500-784, ReLU, Bernoulli
reconstruction loss, Adam lr 3e-4, batch 32) for the same total work: `--models` models x `--iterations`
iterations each. The plain loops train the models one after the other, as one writes it by hand
(nn.Sequential, DataLoader with shuffling, default Adam), each in a fresh Python process that does not
import softvq, so they run with PyTorch's defaults:
  - "plain": the textbook loop over torchvision's MNIST dataset with ToTensor (the baseline of `speedup`);
  - "plain_in_memory": the same loop over a TensorDataset already in memory (no per-image decoding);
  - "plain_in_memory_ftz": the same again with denormal floats flushed to zero from the start
    (torch.set_flush_denormal(True) before the first operation), which softvq does on import.
The trainer trains the models as one stack (`softvq.train`). The last line printed is one JSON object.

Denormals appear after a few hundred iterations, so only runs longer than that show their cost:

    python benchmarks/train_speed.py --quick          # 150 iterations per model, < 3 minutes on a 2-core CPU
    python benchmarks/train_speed.py                  # 1,000 iterations per model: the steady state
    python benchmarks/train_speed.py --iterations 1000 --models 6 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PLAIN_LOOPS = ("plain", "plain_in_memory", "plain_in_memory_ftz")
WIDTHS = (784, 500, 500, 2000)


def synchronize() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_worker(kind: str, models: int, iterations: int, d: int, device: str, root: str) -> float:
    """Seconds the plain loop `kind` takes for `models` x `iterations`, in this process (torch only)."""
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

    run(0, 10)                                      # warm-up, not timed
    synchronize()
    began = time.perf_counter()
    for seed in range(models):
        run(seed, iterations)
    synchronize()
    return time.perf_counter() - began


def plain_seconds(kind: str, args, root: str) -> float:
    """Run plain_worker in a fresh interpreter and return its seconds."""
    command = [sys.executable, __file__, "--worker", kind, "--models", str(args.models), "--iterations",
               str(args.iterations), "--d", str(args.d), "--device", args.device, "--data-root", root]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=1000, help="per model")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="150 iterations per model")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--worker", choices=PLAIN_LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.iterations = 150
    if args.worker:                                 # a child process: time one plain loop, print seconds
        print(plain_worker(args.worker, args.models, args.iterations, args.d, args.device, args.data_root))
        return

    from softvq import build_model, train           # sets flush-to-zero for this process (see softvq/__init__)
    from softvq.data import data_root, load_dataset
    from softvq.train import default_device
    import torch

    args.device = args.device or str(default_device())
    root = str(data_root(args.data_root))
    x, _ = load_dataset("mnist", "train", args.data_root)
    seeds = list(range(args.models))
    plain = {kind: plain_seconds(kind, args, root) for kind in PLAIN_LOOPS}

    def trainer(stack: list[int]) -> float:
        train(build_model(x.shape[1:], "ae", args.d, seeds=stack), x, stack, iterations=10, device=args.device,
              progress=False)                       # warm-up, not timed
        model = build_model(x.shape[1:], "ae", args.d, seeds=stack)
        synchronize()
        began = time.perf_counter()
        train(model, x, stack, iterations=args.iterations, device=args.device, progress=False)
        synchronize()
        return time.perf_counter() - began

    trainer_s, single_s = trainer(seeds), trainer([0])
    total = args.models * args.iterations
    result = {
        "speedup": round(plain["plain"] / trainer_s, 2),
        **{f"speedup_vs_{kind}": round(plain[kind] / trainer_s, 2) for kind in PLAIN_LOOPS[1:]},
        **{f"{kind}_ms_per_model_iteration": round(1e3 * s / total, 2) for kind, s in plain.items()},
        "trainer_ms_per_model_iteration": round(1e3 * trainer_s / total, 2),
        "trainer_alone_ms_per_iteration": round(1e3 * single_s / args.iterations, 2),   # M = 1
        "plain_it_per_s_per_model": round(total / plain["plain"] / args.models, 2),
        "trainer_it_per_s_per_model": round(total / trainer_s / args.models, 2),
        "models": args.models, "iterations_per_model": args.iterations, "batch_size": 32, "d": args.d,
        "device": args.device, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
