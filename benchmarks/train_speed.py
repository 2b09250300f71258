"""Training speed: the project's stacked trainer against a plain single-model PyTorch loop.

All train the paper's MNIST MLP autoencoder (784-500-500-2000-d-2000-500-500-784, ReLU, Bernoulli
reconstruction loss, Adam lr 3e-4, batch 32) for the same total work: `--models` models x `--iterations`
iterations each. Two plain loops train the models one after the other, as one writes it by hand
(nn.Sequential, DataLoader with shuffling, default Adam):
  - "plain": the textbook loop over torchvision's MNIST dataset with ToTensor (the baseline of `speedup`);
  - "plain_in_memory": the same loop over a TensorDataset already in memory (no per-image decoding).
The trainer trains the models as one stack (`softvq.train`). The last line printed is one JSON object.

    python benchmarks/train_speed.py --quick          # < 3 minutes on a 2-core CPU
    python benchmarks/train_speed.py --iterations 1000 --models 6 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn
import torch.nn.functional as F

from softvq import build_model, train
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

from softvq.data import data_root, load_dataset
from softvq.train import default_device

WIDTHS = (784, 500, 500, 2000)


def plain_model(d: int) -> nn.Sequential:
    sizes = [*WIDTHS, d, *reversed(WIDTHS)]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def textbook_dataset(root) -> torch.utils.data.Dataset:
    """torchvision's MNIST with ToTensor, images decoded per item, as in the PyTorch tutorials."""
    return MNIST(str(data_root(root)), train=True, transform=ToTensor())


def plain_loop(dataset: torch.utils.data.Dataset, iterations: int, d: int, seed: int, device: torch.device) -> None:
    """The straightforward loop: one model, DataLoader batches, default Adam."""
    torch.manual_seed(seed)
    model = plain_model(d).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, drop_last=True)
    done = 0
    while done < iterations:
        for batch, *_ in loader:
            batch = batch.flatten(1).to(device)
            loss = F.binary_cross_entropy_with_logits(model(batch), batch, reduction="sum") / len(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == iterations:
                break


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    began = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=1000, help="per model")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="150 iterations per model")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    iterations = 150 if args.quick else args.iterations
    device = torch.device(args.device) if args.device else default_device()
    x, _ = load_dataset("mnist", "train", args.data_root)
    seeds = list(range(args.models))

    textbook, in_memory = textbook_dataset(args.data_root), torch.utils.data.TensorDataset(x)
    warm = 10                                                     # one warm-up of each path, not timed
    plain_loop(in_memory, warm, args.d, 0, device)
    train(build_model(x.shape[1:], "ae", args.d, seeds=seeds), x, seeds, iterations=warm, device=device,
          progress=False)

    plain_s = timed(lambda: [plain_loop(textbook, iterations, args.d, s, device) for s in seeds])
    memory_s = timed(lambda: [plain_loop(in_memory, iterations, args.d, s, device) for s in seeds])
    model = build_model(x.shape[1:], "ae", args.d, seeds=seeds)
    trainer_s = timed(lambda: train(model, x, seeds, iterations=iterations, device=device, progress=False))
    single = build_model(x.shape[1:], "ae", args.d, seeds=[0])
    single_s = timed(lambda: train(single, x, [0], iterations=iterations, device=device, progress=False))
    total = args.models * iterations
    result = {
        "speedup": round(plain_s / trainer_s, 2),
        "speedup_vs_plain_in_memory": round(memory_s / trainer_s, 2),
        "plain_it_per_s_per_model": round(total / plain_s / args.models, 2),
        "plain_in_memory_it_per_s_per_model": round(total / memory_s / args.models, 2),
        "trainer_it_per_s_per_model": round(total / trainer_s / args.models, 2),
        "plain_ms_per_model_iteration": round(1e3 * plain_s / total, 2),
        "plain_in_memory_ms_per_model_iteration": round(1e3 * memory_s / total, 2),
        "trainer_ms_per_model_iteration": round(1e3 * trainer_s / total, 2),
        "trainer_alone_ms_per_iteration": round(1e3 * single_s / iterations, 2),   # M = 1: fused Adam etc. only
        "models": args.models, "iterations_per_model": iterations, "batch_size": 32, "d": args.d,
        "device": str(device), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
