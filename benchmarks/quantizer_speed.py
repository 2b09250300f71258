"""The drop-in soft quantizer against vector-quantize-pytorch's hard `VectorQuantize`: forward + backward time,
peak memory and FLOPs on the same feature maps.

Contenders, each on the same input (requires_grad, as an encoder's output) and the same loss,
`quantized.square().mean() + loss`:
  - "softvq": `SoftVectorQuantizer(dim, K)`, the paper's posterior mean with one learned sigma_k per codeword,
    at its default chunk_size: the fused path (eq. 5-7 and their gradients by hand, 2^22 // K positions at a time, the
    backward reusing the returned posterior);
  - "softvq_full_graph": the same with chunk_size=None (autograd's operations, every (N, K) intermediate kept);
  - "vector_quantize": `VectorQuantize(dim, K, learnable_codebook=True, ema_update=False)`, the peer's hard
    quantizer with a codebook learned by gradient (no EMA), commitment weight 1.
The three are timed interleaved in one process (the order rotated every repeat), so that a busy machine slows
them alike: the ratios are the result, the milliseconds are the machine's. FLOPs are counted by
torch.utils.flop_counter (matrix products only) over one forward + backward. Peak memory is the most memory one
forward + backward holds above its inputs and modules: on CUDA torch's allocator peak, on a CPU the resident-set
high-water mark of a fresh process that runs one step.

Needs the `bench` extra (pip install -e ".[bench]"). The committed JSON, on an idle machine:

    python benchmarks/quantizer_speed.py --out benchmarks/results/quantizer_speed_cpu.json     # docs/quantizer.md
    python benchmarks/quantizer_speed.py --device cuda --out benchmarks/results/quantizer_speed_cuda.json
    python benchmarks/quantizer_speed.py --shapes 0 2 --repeats 1     # a smoke test
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from softvq.provenance import cpu_features

# (input shape, K): the three shapes, then a large one where the (N, K) posterior dominates
SHAPES = [((32, 64, 16, 16), 512), ((64, 256, 8, 8), 1024), ((256, 64), 128), ((16, 256, 32, 32), 4096)]
CONTENDERS = ("softvq", "softvq_full_graph", "vector_quantize")


def build(name: str, shape: tuple[int, ...], num_codes: int, device: str) -> torch.nn.Module:
    image = len(shape) == 4
    if name == "vector_quantize":
        from vector_quantize_pytorch import VectorQuantize
        return VectorQuantize(shape[1] if image else shape[-1], num_codes, accept_image_fmap=image,
                              learnable_codebook=True, ema_update=False).to(device)
    from softvq import SoftVectorQuantizer
    kwargs = {"chunk_size": None} if name == "softvq_full_graph" else {}
    return SoftVectorQuantizer(shape[1] if image else shape[-1], num_codes, channel_dim=1 if image else -1,
                               **kwargs).to(device)


def step(module: torch.nn.Module, x: torch.Tensor) -> None:
    """One forward + backward: the decoder stand-in quantized^2 plus the quantizer's loss."""
    module.zero_grad(set_to_none=True)
    x.grad = None
    quantized, _, loss = module(x)
    (quantized.square().mean() + loss.sum()).backward()


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def inputs(shape: tuple[int, ...], device: str) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(device).requires_grad_()


def peak_memory(name: str, index: int, device: str) -> int:
    """Bytes one forward + backward of contender `name` on SHAPES[index] holds above its inputs and module."""
    if device == "cuda":
        shape, num_codes = SHAPES[index]
        module, x = build(name, shape, num_codes, device), inputs(shape, device)
        step(module, x)                                           # gradients allocated: part of the baseline
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(module, x)
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    # glibc: every block over 128 KiB its own mapping, given back when freed, so that the resident set follows
    # what torch holds (and not what the allocator keeps after the warm-up step)
    command = [sys.executable, __file__, "--probe-memory", name, str(index)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    return int(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout.split()[-1])


def probe_memory(name: str, index: int) -> None:
    """In a fresh process: print the resident-set high-water mark of one step above the state before it, after a
    warm-up step (Linux: the mark is reset through /proc/self/clear_refs, so imports and code pages do not count)."""
    shape, num_codes = SHAPES[index]
    module, x = build(name, shape, num_codes, "cpu"), inputs(shape, "cpu")
    quantized, _, loss = module(x)
    (quantized.square().mean() + loss.sum()).backward()        # gradients allocated: part of the baseline
    del quantized, loss
    Path("/proc/self/clear_refs").write_text("5")
    before = rss_kib("VmRSS")
    quantized, _, loss = module(x)
    (quantized.square().mean() + loss.sum()).backward()
    print(1024 * (rss_kib("VmHWM") - before))


def rss_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB: VmRSS now, VmHWM its high-water mark."""
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1])


def flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    def baddbmm_(self_shape, a_shape, b_shape, *args, **kwargs) -> int:
        """The in-place batched product the fused backward accumulates with, which torch does not count."""
        return 2 * math.prod(a_shape) * b_shape[-1]
    with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.baddbmm_: baddbmm_}) as counter:
        step(module, x)
    return counter.get_total_flops()


def time_shape(index: int, device: str, repeats: int, block_s: float) -> dict:
    """ms per forward + backward of every contender on SHAPES[index], interleaved; FLOPs and peak memory."""
    shape, num_codes = SHAPES[index]
    x = inputs(shape, device)
    modules = {name: build(name, shape, num_codes, device) for name in CONTENDERS}
    counted, steps = {}, {}
    for name, module in modules.items():                       # warm-up, FLOP count, steps per timed block
        counted[name] = flops(module, x)
        synchronize(device)
        began = time.perf_counter()
        step(module, x)
        synchronize(device)
        steps[name] = max(1, round(block_s / (time.perf_counter() - began)))
    assert all(p.grad is not None for m in modules.values() for p in m.parameters()), "every codebook learns"
    ms: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for r in range(repeats):
        for name in CONTENDERS[r % len(CONTENDERS):] + CONTENDERS[:r % len(CONTENDERS)]:
            synchronize(device)
            began = time.perf_counter()
            for _ in range(steps[name]):
                step(modules[name], x)
            synchronize(device)
            ms[name].append(1e3 * (time.perf_counter() - began) / steps[name])
    del modules, x
    memory = {name: peak_memory(name, index, device) for name in CONTENDERS}
    median = {name: sorted(v)[len(v) // 2] for name, v in ms.items()}
    peer = "vector_quantize"
    row = {"shape": list(shape), "K": num_codes, "positions": math.prod(shape) // (shape[1] if len(shape) == 4 else shape[-1]),
           "ms_median": median, "ms_all": ms, "steps_per_block": steps, "flops": counted,
           "peak_memory_mib": {name: round(b / 2 ** 20, 1) for name, b in memory.items()}}
    for name in ("softvq", "softvq_full_graph"):
        row[f"{name}_time_ratio"] = round(median[name] / median[peer], 3)
        row[f"{name}_flop_ratio"] = round(counted[name] / counted[peer], 3)
        row[f"{name}_memory_ratio"] = round(memory[name] / max(memory[peer], 1), 3)
    return row


def conditions(args: argparse.Namespace) -> dict:
    import importlib.metadata as metadata
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]), "commit": commit,
            "device": torch.cuda.get_device_name() if args.device == "cuda" else cpu, **cpu_features(),
            "torch": torch.__version__, "vector_quantize_pytorch": metadata.version("vector-quantize-pytorch"),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "repeats": args.repeats,
            "block_seconds": args.block, "machine_shared": args.shared,
            "load_average_start": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--shapes", type=int, nargs="+", default=list(range(len(SHAPES))),
                        help="indices into SHAPES")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per contender (the median is kept)")
    parser.add_argument("--block", type=float, default=0.5, help="seconds per timed block (at least one step)")
    parser.add_argument("--shared", default=None,
                        help="what else ran on the machine meanwhile (recorded; numbers are then ratios only)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--probe-memory", nargs=2, metavar=("CONTENDER", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe_memory:
        probe_memory(args.probe_memory[0], int(args.probe_memory[1]))
        return {}
    result = {"conditions": conditions(args), "rows": []}
    for index in args.shapes:
        row = time_shape(index, args.device, args.repeats, args.block)
        result["rows"].append(row)
        print(json.dumps({k: row[k] for k in ("shape", "K", "ms_median", "peak_memory_mib")}
                         | {k: v for k, v in row.items() if k.endswith("ratio")}), flush=True)
    result["conditions"]["load_average_end"] = list(os.getloadavg())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
