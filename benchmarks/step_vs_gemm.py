"""How close the trainer's CPU step is to its floor: a training step against the float32 matrix products or
convolutions of the same step plus one Adam update, all timed in the same run.

The floor of a step, per net:
  - products / convolutions: every layer's forward and its two backward operations (the gradients of its input
    and of its weights), on the layer's own shapes, timed alone. MLP: per StackedLinear the three batched
    products (`torch.bmm`). CNN: per convolution `aten.convolution` forward and `aten.convolution_backward`
    (input and weight gradients), in the faster of the two memory formats (NCHW or channels-last; the
    faster is recorded), plus the dense layers' products;
  - the optimizer's memory floor: one fused Adam step (`torch.optim.Adam(fused=True)`) over parameters of the
    model's sizes with random gradients.
The ratio step / (products + Adam) is everything else the step does (activations, losses, the bottleneck, the
loop) over 1. For reference the CNN's FLOPs are counted (torch.utils.flop_counter) and set against the rate of
one large convolution (64 -> 64 channels, 3x3, 64 x 64 pixels, batch 32), the CPU's near-peak convolution rate.
Trainer and floor alternate in rounds; medians are kept. The CPU's model and vector extensions are recorded.

    python benchmarks/step_vs_gemm.py --out benchmarks/results/step_vs_gemm_cpu.json            # MLP AE, 6 models
    python benchmarks/step_vs_gemm.py --net cnn --models 1 --iterations 20 --warmup 5 \\
        --out benchmarks/results/step_vs_conv_cpu.json                                     # Table 2's CNN AE
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from softvq import build_model
from softvq.io import write_json
from softvq.nets import StackedConv, StackedLinear
from softvq.provenance import code_version, cpu_features
from softvq.train import flush_to_zero, make_optimizer, train

NETS = {"mlp": dict(image_shape=(1, 28, 28), dim=64), "cnn": dict(image_shape=(3, 32, 32), dim=256)}
PEAK_CONV = dict(batch=32, channels=64, side=64)      # the reference convolution of the CPU's near-peak rate


def step_ms(model, x, seeds, iterations: int, warmup: int) -> float:
    """Milliseconds per training step of `model` (the stack) after `warmup` steps."""
    marks = {}
    train(model, x, seeds, iterations=warmup + iterations, batch_size=32, progress=False, device="cpu",
          on_step=lambda i: marks.setdefault(i, time.perf_counter()) if i in (warmup, warmup + iterations) else None)
    return (marks[warmup + iterations] - marks[warmup]) * 1e3 / iterations


def timed(ops: list, repeats: int) -> float:
    """Milliseconds per pass over the zero-argument callables `ops`, after one warm-up pass."""
    for op in ops:
        op()
    began = time.perf_counter()
    for _ in range(repeats):
        for op in ops:
            op()
    return (time.perf_counter() - began) * 1e3 / repeats


def product_ops(model, batch: int, gen: torch.Generator) -> list:
    """Per StackedLinear: the forward, input-gradient and weight-gradient batched products, as callables."""
    ops = []
    for layer in (m for m in model.modules() if isinstance(m, StackedLinear)):
        n_models, fan_in, fan_out = layer.weight.shape
        x, w, g = (torch.randn(n_models, *shape, generator=gen) for shape in
                   ((batch, fan_in), (fan_in, fan_out), (batch, fan_out)))
        ops += [lambda x=x, w=w: torch.bmm(x, w), lambda g=g, w=w: torch.bmm(g, w.transpose(1, 2)),
                lambda x=x, g=g: torch.bmm(x.transpose(1, 2), g)]
    return ops


def conv_ops(conv: torch.nn.Module, x_shape: tuple, channels_last: bool, gen: torch.Generator) -> list:
    """One (transposed) convolution's forward and backward (input and weight gradients) on its own shapes."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(*x_shape, generator=gen).contiguous(memory_format=fmt)
    w = conv.weight.detach().clone().contiguous(memory_format=fmt)
    b = conv.bias.detach().clone()
    args = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, transposed=conv.transposed,
                output_padding=conv.output_padding, groups=conv.groups)
    forward = lambda: torch.ops.aten.convolution(x, w, b, **args)      # noqa: E731
    g = torch.randn(forward().shape, generator=gen).contiguous(memory_format=fmt)
    backward = lambda: torch.ops.aten.convolution_backward(                 # noqa: E731
        g, x, w, [b.shape[0]], args["stride"], args["padding"], args["dilation"], args["transposed"],
        args["output_padding"], args["groups"], [True, True, True])
    return [forward, backward]


def conv_inputs(model, x: torch.Tensor) -> dict:
    """{StackedConv: the shape of its grouped input} from one forward pass of `model` on x (M, B, ...)."""
    shapes, hooks = {}, []
    for layer in (m for m in model.modules() if isinstance(m, StackedConv)):
        hooks.append(layer.register_forward_pre_hook(lambda mod, args: shapes.update({mod: tuple(args[0].shape)})))
    with torch.no_grad():
        model.encoder(x)
        model.decoder(torch.zeros(*x.shape[:2], NETS["cnn"]["dim"]))
    for hook in hooks:
        hook.remove()
    return shapes


def floor_ms(model, net: str, batch: int, repeats: int) -> dict:
    """The parts of the step's floor, in ms: the products, per convolution layer (CNN) both memory formats,
    and one fused Adam step."""
    gen = torch.Generator().manual_seed(0)
    result = {"products_ms": timed(product_ops(model, batch, gen), repeats)}
    if net == "cnn":
        x = torch.rand(model.bottleneck.n_models, batch, *NETS["cnn"]["image_shape"], generator=gen)
        per_layer = []
        for conv, shape in conv_inputs(model, x).items():
            formats = {cl: timed(conv_ops(conv.conv, shape, cl, gen), repeats) for cl in (False, True)}
            per_layer.append({"input": list(shape), "transposed": conv.conv.transposed,
                              "nchw_ms": formats[False], "channels_last_ms": formats[True]})
        result["conv_layers"] = per_layer
    params = [torch.zeros_like(p, requires_grad=True) for p in model.parameters()]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    adam = torch.optim.Adam(params, lr=3e-4, fused=True)
    result["adam_ms"] = timed([adam.step], repeats)
    return result


def step_flops(model, image_shape: tuple, batch: int) -> int:
    """FLOPs of one forward + backward of `model` on a batch (matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.rand(model.bottleneck.n_models, batch, *image_shape)
    with FlopCounterMode(display=False) as counter:
        model(x)["total"].sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_conv_gflops(repeats: int) -> float:
    """GFLOP/s of the reference convolution's forward and backward, the better memory format."""
    c, side, batch = PEAK_CONV["channels"], PEAK_CONV["side"], PEAK_CONV["batch"]
    conv = torch.nn.Conv2d(c, c, 3, padding=1)
    flops = 3 * 2 * batch * c * c * 9 * side * side
    gen = torch.Generator().manual_seed(0)
    best = min(timed(conv_ops(conv, (batch, c, side, side), cl, gen), repeats) for cl in (False, True))
    return flops / best / 1e6


def main(argv=None) -> dict:
    flush_to_zero()             # as the command line does, before torch's first operation
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", choices=sorted(NETS), default="mlp")
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=200, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds, spec = list(range(args.models)), NETS[args.net]
    x = torch.rand(2_048, *spec["image_shape"], generator=torch.Generator().manual_seed(0))  # random pixels
    steps, floors = [], []
    for _ in range(args.rounds):
        model = build_model(spec["image_shape"], "ae", spec["dim"], net=args.net, seeds=seeds)
        steps.append(step_ms(model, x, seeds, args.iterations, args.warmup))
        floors.append(floor_ms(model, args.net, 32, args.iterations))
    median = {key: statistics.median(f[key] for f in floors) for key in ("products_ms", "adam_ms")}
    if args.net == "cnn":               # per layer the median over rounds, then the faster memory format
        median["conv_layers"] = [{**layer, **{key: statistics.median(f["conv_layers"][i][key] for f in floors)
                                              for key in ("nchw_ms", "channels_last_ms")}}
                                 for i, layer in enumerate(floors[0]["conv_layers"])]
        median["convolutions_ms"] = sum(min(r["nchw_ms"], r["channels_last_ms"]) for r in median["conv_layers"])
    median["floor_ms"] = median["products_ms"] + median.get("convolutions_ms", 0.0) + median["adam_ms"]
    row = {"net": args.net, "models": args.models, "batch": 32, "step_ms": statistics.median(steps), **median,
           "rounds": {"step_ms": steps, "floors": floors}, "threads": torch.get_num_threads(),
           **cpu_features(), "code_version": code_version(torch.device("cpu"))}
    row["step_over_floor"] = row["step_ms"] / row["floor_ms"]
    row["step_over_products"] = row["step_ms"] / (row["products_ms"] + row.get("convolutions_ms", 0.0))
    if args.net == "cnn":
        # one model's, times the stack's size: torch's counter miscounts grouped (transposed) convolutions
        flops = args.models * step_flops(build_model(spec["image_shape"], "ae", spec["dim"], net="cnn"),
                                         spec["image_shape"], 32)
        row |= {"flops_per_step": flops, "peak_conv_gflops": peak_conv_gflops(max(3, args.iterations // 4))}
        row["step_gflops"] = flops / row["step_ms"] / 1e6
        row["step_over_peak_conv"] = row["peak_conv_gflops"] / row["step_gflops"]
    print(json.dumps({k: v for k, v in row.items() if k not in ("rounds",)}))
    if args.out:
        write_json(row, args.out)
    return row


if __name__ == "__main__":
    main()
