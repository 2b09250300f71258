"""Training loop for a stack of M autoencoders (M = 1 trains one model).

The M models of a stack are independent: each has its own weights (a slice of every stacked tensor), its
own data order and noise (one generator each, derived from its seed) and its own Adam moments (Adam is
element-wise). The loss that is differentiated is the sum of the M models' losses, so each model gets
exactly the gradient it gets alone. The speed comes from running the M models as one batched computation
with a fused Adam step over a few large tensors (see benchmarks/train_speed.py).

Checkpoints hold everything needed to continue bit-for-bit: weights, Adam state, iteration, the data
order and every generator state. They are written atomically; an interrupted run resumes from the last one.

On a GPU the host never waits for the device between two log steps: the batch indices of a window of steps
(up to the next log step or checkpoint) are drawn on the host at once and sent in one transfer, non-finite
losses are recorded on the device (`NonFiniteWatch`) and the loss sums stay there; all of it is read back
once per log step. The numbers are those of a loop that does everything step by step.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm            # a widget in JupyterLab and Colab, text in a terminal

from . import store
from .model import AutoEncoder

STREAMS = {"init": 0, "data": 1, "noise": 2, "data_init": 3}
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}     # the precisions that autocast the forward pass
DENORMAL_SWEEP = 100            # iterations between two flush_denormals_ on a CPU
DATA_INIT_SIZE = 1024           # training images per model for a data-dependent initialisation (`data_init`)


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def card_precision(device: torch.device | str) -> str:
    """The fastest precision of `device` that keeps the quantizer and the losses in float32: "bf16" on a GPU with
    fast bfloat16 (compute capability 8.0 and later: Ampere, Hopper), "fp16" (float16 autocast with a gradient
    scaler) on one with float16 tensor cores only (7.x: Volta, Turing, e.g. Colab's T4), else "fp32"; "fp32" on a
    CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return "fp32"
    capability = torch.cuda.get_device_capability(device)
    if capability >= (8, 0) and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp16" if capability >= (7, 0) else "fp32"


def stream_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream ("data", "noise") of a run with seed `seed`."""
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler:
    """Mini-batch indices for one model: a fresh random permutation per epoch, the last partial batch dropped."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} is larger than the data set ({n})")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(stream_seed(seed, "data"))
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
        self.pos += self.batch_size
        return self.perm[self.pos - self.batch_size:self.pos]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], state["pos"]


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with the fused (single-kernel) update where this PyTorch supports it on the device."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def flush_to_zero() -> None:
    """Make the CPU flush denormal floats (below 1.2e-38 in float32) to zero in this thread and every thread it
    creates later (Linux threads inherit the flag), for the rest of the process.

    Tiny gradients and activations decay into that range after a few hundred MNIST iterations, where CPU
    arithmetic is slow (an MLP step went from 6.7 to 8.5-12.7 ms). It changes a process's numerics, so importing
    softvq never sets it: the places where softvq trains do, as early as they can (`python -m softvq`,
    reproduce.py and the notebooks before torch starts its thread pool; `train` itself, which reaches the
    calling thread and any pool it starts)."""
    torch.set_flush_denormal(True)


def free_cores(samples: int = 5, stat: Path = Path("/proc/stat")) -> int:
    """The CPU cores that no other process keeps busy, at least 1: the cores less the median count of other running
    tasks over `samples` reads of `stat` (Linux's /proc/stat) 10 ms apart; all cores where it is missing.

    A notebook kernel with as many threads as cores, beside busy processes, trains 4-6x slower than with the cores left
    free (docs/reproducibility.md, benchmarks/kernel_load.py): torch's threads wait on each other at every
    operation while the busy processes hold the cores. Where softvq trains (the command line without
    $OMP_NUM_THREADS, a notebook's setup) it sets torch's threads to this."""
    cores = os.cpu_count() or 1
    try:
        running = []
        for _ in range(samples):
            text = Path(stat).read_text()
            running.append(int(text.split("procs_running", 1)[1].split()[0]) - 1)     # less this thread
            time.sleep(0.01)
    except (OSError, IndexError, ValueError):
        return cores
    return max(1, cores - int(statistics.median(running)))


def flush_denormals_(optimizer: torch.optim.Optimizer) -> None:
    """Set Adam moments below the smallest normal float32 (1.2e-38) to zero.

    The moments of parameters whose gradients vanish decay geometrically into the denormal range, where
    CPU arithmetic is slow: after 14,000 MNIST iterations 6 % of them were denormal and a step took 21 ms
    instead of 7 ms. `flush_to_zero` prevents this on the threads it reaches; when torch's thread pool
    existed before it was called, only the calling thread flushes, and this sweep keeps the fused Adam
    kernel's operands normal. An update m / (sqrt(v) + 1e-8) with such moments is below
    float32 resolution of any weight, so this changes nothing that can be measured.
    """
    tiny = torch.finfo(torch.float32).tiny
    with torch.no_grad():
        for state in optimizer.state.values():
            for name in ("exp_avg", "exp_avg_sq"):
                moment = state[name]
                moment.masked_fill_(moment.abs() < tiny, 0)


def tf32_flags() -> tuple[list[tuple[object, str]], tuple]:
    """The switches of TF32 for CUDA matrix products and cuDNN convolutions, as (object, attribute) pairs, and
    their (TF32, strict float32) values, in the one API this torch has: `fp32_precision` ("tf32" / "ieee", torch
    2.9 and later), else the legacy `allow_tf32`. Never both: torch refuses to read flags set through a mix."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return [(torch.backends.cuda.matmul, "fp32_precision"), (torch.backends.cudnn.conv, "fp32_precision")], \
            ("tf32", "ieee")
    return [(torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32")], (True, False)


@contextlib.contextmanager
def tf32_allowed(allowed: bool):
    """CUDA matrix products and convolutions in TF32 (`allowed`) or strict float32 inside the block (cuDNN's own
    default lets float32 convolutions use TF32); the previous settings are restored after it. No effect on a
    CPU."""
    flags, (tf32, strict) = tf32_flags()
    saved = [getattr(owner, name) for owner, name in flags]
    for owner, name in flags:
        setattr(owner, name, tf32 if allowed else strict)
    try:
        yield
    finally:
        for (owner, name), value in zip(flags, saved):
            setattr(owner, name, value)


def place(model: AutoEncoder, device: torch.device, precision: str) -> None:
    """Move `model` to `device` in training mode; with an autocast on CUDA its 4-D convolution weights
    channels-last (NHWC kernels)."""
    model.to(device).train()
    if device.type == "cuda" and precision in AUTOCAST:
        model.to(memory_format=torch.channels_last)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast of the forward pass at `precision` (off for fp32 and tf32)."""
    return torch.autocast(device.type, dtype=AUTOCAST.get(precision, torch.bfloat16), enabled=precision in AUTOCAST)


def noise_generators(model: AutoEncoder, seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One noise generator per model of the stack on `device`, seeded from its seed, handed to the bottleneck."""
    model.bottleneck.generators = [torch.Generator(device).manual_seed(stream_seed(s, "noise")) for s in seeds]
    return model.bottleneck.generators


@torch.no_grad()
def data_init(model: AutoEncoder, x_train: torch.Tensor, seeds: Sequence[int], size: int = DATA_INIT_SIZE) -> None:
    """The data-dependent initialisation of a bottleneck that has one (`init_from_data`, e.g. the k-means codebook
    of `softvq.peers`), before the first step: it gets the encoder features of `size` training images per model,
    model m's drawn without replacement by a generator of its own seed (stream "data_init"); nothing otherwise."""
    if not hasattr(model.bottleneck, "init_from_data"):
        return
    index = torch.stack([torch.randperm(len(x_train), generator=torch.Generator().manual_seed(
        stream_seed(s, "data_init")))[:size] for s in seeds])                    # (M, size)
    model.bottleneck.init_from_data(model.encoder(x_train[index.to(x_train.device)]))


def step_graphs(model: AutoEncoder, x_train: torch.Tensor, seeds: Sequence[int], batch_size: int = 32,
                precision: str = "fp32", device: torch.device | str = "cpu") -> dict:
    """How torch.compile splits the training step of the stack `model` (`torch._dynamo.explain` of its forward
    pass, on a batch and with noise generators as `train` sets them up, under its autocast; the backward pass
    is traced from the same graphs): {"graphs", "graph_breaks", "break_reasons"}, each reason with the line
    it broke at. One graph is one CUDA graph per step under mode "reduce-overhead". The weights are unchanged;
    the noise drawn is thrown away."""
    device = torch.device(device)
    place(model, device, precision)
    noise_generators(model, seeds, device)
    index = torch.stack([EpochSampler(len(x_train), batch_size, s).next() for s in seeds])
    with autocast(device, precision):
        explained = torch._dynamo.explain(model)(x_train[index].to(device))
    reasons = [f"{str(b.reason).splitlines()[0]} at {Path(b.user_stack[-1].filename).name}:"
               f"{b.user_stack[-1].lineno}" if b.user_stack else str(b.reason).splitlines()[0]
               for b in explained.break_reasons]
    return {"graphs": explained.graph_count, "graph_breaks": explained.graph_break_count,
            "break_reasons": reasons}


def draw_window(samplers: Sequence[EpochSampler], steps: int, device: torch.device) -> torch.Tensor:
    """The batch indices of the next `steps` steps, (steps, M, B), drawn on the host (each model's sampler in
    the order a step-by-step loop draws them) and moved to `device` in one non-blocking transfer."""
    window = torch.stack([torch.stack([s.next() for s in samplers]) for _ in range(steps)])
    if device.type == "cuda":
        window = window.pin_memory()
    return window.to(device, non_blocking=True)


def window_end(done: int, iterations: int, log_every: int, checkpoint_every: int | None) -> int:
    """The next iteration after `done` at which the loop logs, checkpoints or ends."""
    ends = [iterations, (done // log_every + 1) * log_every]
    if checkpoint_every is not None:
        ends.append((done // checkpoint_every + 1) * checkpoint_every)
    return min(ends)


class NonFiniteWatch:
    """Where the losses first turned non-finite, recorded on the device without waiting for it.

    `update` keeps, per loss term and model, the first iteration at which the term was NaN or infinite and
    its value then; `check` reads that record back (one transfer) and raises an error that names the
    earliest such iteration, its term (the first in the loss dict's order) and model.
    """

    def __init__(self):
        self.names: list[str] = []
        self.first: torch.Tensor | None = None      # (terms, M) iteration, 0 while finite
        self.value: torch.Tensor | None = None      # (terms, M) the loss then

    def update(self, losses: dict[str, torch.Tensor], iteration: int) -> None:
        values = torch.stack([v.detach().float() for v in losses.values()])       # (terms, M)
        if self.first is None:
            self.names = list(losses)
            self.first, self.value = torch.zeros_like(values, dtype=torch.int64), torch.zeros_like(values)
        new = ~torch.isfinite(values) & (self.first == 0)
        self.first = torch.where(new, iteration, self.first)
        self.value = torch.where(new, values, self.value)

    def check(self, seeds: Sequence[int]) -> None:
        if self.first is None:
            return
        first = self.first.tolist()
        bad = [(it, t, m) for t, row in enumerate(first) for m, it in enumerate(row) if it > 0]
        if bad:
            it, t, m = min(bad)
            raise FloatingPointError(f"non-finite loss at iteration {it}: term '{self.names[t]}' = "
                                     f"{self.value[t, m].item()} (model {m}, seed {seeds[m]})")


def written_on(state: dict) -> str:
    """The device type ("cpu", "cuda") a training state was written on: recorded in it, or for an older one told by
    its noise generators' states (a CPU generator's state has the size of torch.Generator()'s; a CUDA one's is
    16 bytes). A generator's state restores only onto a generator of the same device type."""
    if "device" in state:
        return state["device"]
    cpu = torch.Generator().get_state().numel()
    return "cpu" if all(s.numel() == cpu for s in state["noise"]) else "cuda"


def log_interval(iterations: int, points: int = 50, most: int = 100) -> int:
    """The iterations between two logged losses of a run of `iterations`: every `most` (the committed runs'
    interval) at 5,000 iterations and more, often enough below that for `points` points, so that a short run's
    loss curves have a shape. Logging reads the losses and changes no training step."""
    return max(1, min(most, iterations // points))


def train(model: AutoEncoder, x_train: torch.Tensor, seeds: Sequence[int], iterations: int = 40_000,
          batch_size: int = 32, lr: float = 3e-4, device: torch.device | str | None = None,
          checkpoint: str | Path | None = None, checkpoint_every: int = 2_000, log_every: int = 100,
          progress: bool = True, on_step: Callable[[int], None] | None = None, precision: str = "fp32",
          compile: bool = False, identity: Sequence[str] | None = None) -> dict:
    """Train the stack `model` (M = len(seeds) models) on x_train (N, ...) in [0, 1].

    Model m draws its batches and its noise from generators seeded by seeds[m] (its weights were
    initialised from seeds[m] by `build_model`). With `checkpoint` set, the state is saved every
    `checkpoint_every` iterations and at the end, and a run that finds a checkpoint there continues from it
    (one cut to a finished training's weights, `store.finish_checkpoint`, is only loaded).
    `identity` (the stack's run ids) is stored in the checkpoint; one written for other seeds or another
    identity is refused, and so is one written on another device type (`written_on`: its noise generators'
    states restore only there), each with one line that says why. Checkpoints are read and written by
    `softvq.store` (a damaged one: its previous copy).
    `on_step(iteration)` is called after every step (e.g. to interrupt in tests).

    `precision`: "fp32" strict float32 (TF32 off on CUDA); "tf32" TF32 matrix products and convolutions
    (CUDA; on a CPU the same as fp32); "bf16" bfloat16 autocast of the forward pass, in which the
    bottleneck, the posterior and the losses stay float32 (see `AutoEncoder.forward`); "fp16" the same in
    float16, with a gradient scaler (`torch.amp.GradScaler`, whose state the checkpoint keeps) so that small
    gradients do not underflow; `card_precision` picks the fastest for a device. With an autocast on CUDA the
    convolutions run channels-last (NHWC, the layout of cuDNN's tensor-core kernels).
    `compile` runs the forward and backward pass through torch.compile; on CUDA in mode "reduce-overhead",
    which replays them as CUDA graphs (one launch per graph instead of one per kernel; the same kernels as
    the default mode).

    A non-finite loss stops the run at the next log step (or checkpoint), with an error that names the
    iteration at which it first appeared, the loss term and the model.

    Returns the history: {"iteration": [...], "<term>": [[M values] per logged step], "wall_time": s}.
    """
    device = torch.device(device) if device is not None else default_device()
    flush_to_zero()
    if len(seeds) != model.bottleneck.n_models:
        raise ValueError(f"{len(seeds)} seeds for a stack of {model.bottleneck.n_models} models")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    place(model, device, precision)
    forward = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None) if compile else model
    x_train = x_train.to(device)
    samplers = [EpochSampler(len(x_train), batch_size, s) for s in seeds]
    noise = noise_generators(model, seeds, device)
    optimizer = make_optimizer(model, lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")     # disabled: a pass-through
    history: dict = {"iteration": [], "wall_time": 0.0}
    running: dict[str, torch.Tensor] = {}          # loss sums since the last logged iteration
    start = 0
    identity = list(identity) if identity is not None else None
    state, source = store.read_checkpoint(checkpoint, device) if checkpoint is not None else (None, None)
    if state is not None:
        if list(state["seeds"]) != list(seeds) or state.get("identity") != identity:
            raise ValueError(f"checkpoint {source} was written for seeds {state['seeds']} of {state.get('identity')}, "
                             f"not {list(seeds)} of {identity}")
        finished = "optimizer" not in state          # cut to its weights by `store.finish_checkpoint`
        if finished and state["iteration"] < iterations:
            raise ValueError(f"checkpoint {source} holds only the weights of a finished training of "
                             f"{state['iteration']} iterations, which cannot continue to {iterations}: move it "
                             f"aside to train from the start")
        saved_on = None if finished else written_on(state)
        if saved_on not in (None, device.type):
            raise ValueError(f"checkpoint {source} was written on {saved_on}, whose noise generators continue only "
                             f"there: resume it on {saved_on}, or move it aside to train from the start on "
                             f"{device.type}")
        model.load_state_dict(state["model"])
        if not finished:                              # a finished one: the loop below does not run
            optimizer.load_state_dict(state["optimizer"])
            if "scaler" in state:
                scaler.load_state_dict(state["scaler"])
            for sampler, s in zip(samplers, state["samplers"]):
                sampler.load_state_dict(s)
            for g, s in zip(noise, state["noise"]):
                g.set_state(s)
        start, history, running = state["iteration"], state["history"], state.get("running", {})
        if progress:
            tqdm.write(f"resuming from {source} at iteration {start}", file=sys.stderr)
    else:
        data_init(model, x_train, seeds)

    def save(iteration: int) -> None:
        store.write_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scaler": scaler.state_dict(), "iteration": iteration, "seeds": list(seeds),
                                "identity": identity, "device": device.type,
                                "samplers": [s.state_dict() for s in samplers], "noise": [g.get_state() for g in noise],
                                "history": history, "running": running}, checkpoint)

    def log(done: int) -> None:
        """Append the mean losses since the last log step to the history (one transfer from the device)."""
        nonlocal running
        count = log_every if done % log_every == 0 else done % log_every
        history["iteration"].append(done)
        for name, means in zip(running, (torch.stack(list(running.values())) / count).tolist()):
            history.setdefault(name, []).append(means)
        running = {}
        bar.set_postfix(loss=f"{np.mean(history['total'][-1]):.3f}")

    watch = NonFiniteWatch()
    began = time.perf_counter() - history["wall_time"]
    bar = tqdm(initial=start, total=iterations, disable=not progress, desc=f"training {len(seeds)} model(s)",
               unit="it", mininterval=1.0)
    done = start
    with tf32_allowed(precision == "tf32"), bar:     # TF32 for the whole loop, restored after it; the bar closed
        while done < iterations:
            end = window_end(done, iterations, log_every, checkpoint_every if checkpoint is not None else None)
            for index in draw_window(samplers, end - done, device):                 # index: (M, B)
                if compile:
                    torch.compiler.cudagraph_mark_step_begin()
                with autocast(device, precision):
                    out = forward(x_train[index])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(out["total"].sum()).backward()
                scaler.step(optimizer)
                scaler.update()
                done += 1
                watch.update(out["losses"], done)
                if device.type == "cpu" and done % DENORMAL_SWEEP == 0:
                    flush_denormals_(optimizer)
                for name, value in {**out["losses"], "total": out["total"]}.items():
                    running[name] = running.get(name, 0) + value.detach()
                if done == end:                                                   # the host reads the device
                    watch.check(seeds)
                    if done % log_every == 0 or done == iterations:
                        log(done)
                    if checkpoint is not None and (done % checkpoint_every == 0 or done == iterations):
                        history["wall_time"] = time.perf_counter() - began
                        save(done)
                history["wall_time"] = time.perf_counter() - began
                bar.update(1)
                if on_step is not None:
                    on_step(done)
    model.eval()
    return history
