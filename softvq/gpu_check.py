"""The GPU self-check for a first GPU slot: every GPU path once, in at most 4 minutes, recorded in one JSON.

    python -m softvq gpu-check                    # on CUDA: writes ./gpu_check_<gpu>.json
    python -m softvq gpu-check --device cpu       # the same checks on the CPU at a tiny size (a test of the check)

It ships in the package, so it runs after a plain `pip install` from any folder (benchmarks/gpu_check.py runs it
from a checkout and writes into benchmarks/results/). The checks (`CHECKS`), the most needed first:
  resume         a stack of two Table 2 CNN soft VQ-VAEs in the card's precision (`train.card_precision`)
                 trained, checkpointed, interrupted and resumed on the device ends as the same stack trained
                 without a break (bit for bit on a CPU; within PRECISION_RTOL on a GPU, whose kernels do not
                 add in a fixed order);
  kmeans         torch K-means (`softvq.kmeans_torch`) on the device finds sklearn's best inertia (or a lower
                 one) on that stack's latents;
  gpu_run        `python -m softvq gpu-run table2` at a tiny size (one iteration a run, the embedded CIFAR-10
                 sample, a temporary folder): every run writes its record, trained and scored on the device;
  soft_quantize  the soft quantizer on the device stays finite in float32 at extreme distances and variances;
  precisions     small soft VQ-VAE stacks trained on the GPU in fp32, tf32 and the card's precision end with
                 the CPU's fp32 loss (GPU only);
  graphs         how many graphs torch.compile makes of the training step, and why it breaks
                 (`train.step_graphs`);
  compiled       the CNN stack trained compiled (CUDA graphs on CUDA) ends with the eager losses.
A check that would end after BUDGET_S (as ESTIMATE_S expects) is skipped, and the JSON says so. Data come from
the embedded sample, so nothing needs downloading. Without CUDA it says what it skipped and exits 0, writing
nothing; with `--device cpu` it runs every check that needs no GPU at a tiny size (TINY) and names the others
as skipped in its JSON. The exit status is 1 when a check failed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sklearn.cluster import KMeans

from . import data, gpu_run, kmeans_torch, store
from .io import write_json
from .metrics import cluster_accuracy
from .model import AutoEncoder, build_model
from .provenance import code_version
from .quantize import soft_quantize
from .train import card_precision, step_graphs, tf32_allowed, tf32_flags, train

BUDGET_S = 240                      # the whole check on one GPU: 4 minutes
CNN = "cifar10-jpeg"                # its embedded sample: 2,000 training and 500 test images
PRECISION_DATA = "mnist"            # the precision check's real digits, from the embedded sample
SEEDS = [0, 1]                      # the stack of two models every check trains
PRECISION_RTOL = {"fp32": 1e-3, "tf32": 2e-2, "bf16": 5e-2, "fp16": 2e-2}   # GPU against CPU, after 20 iterations
KMEANS_RTOL = 0.01                  # how much above sklearn's best inertia torch K-means' may end
# The sizes: the Table 2 CNN (d = 256, K = 32) on a GPU; a tiny one on a CPU.
FULL = dict(widths=None, d=256, K=32, batch_size=32, iterations=200, checkpoint_every=50, interrupt_at=130,
            eval_images=500, n_init=100)
TINY = dict(widths=(8, 8, 8, 8), d=8, K=8, batch_size=8, iterations=6, checkpoint_every=3, interrupt_at=5,
            eval_images=100, n_init=20)
GPU_RUN_TINY = dict(iterations=1, batch_size=4, train_size=16, eval_size=20, kmeans_n_init=2, probe_iterations=3)


class Interrupted(Exception):
    """Raised from `train`'s on_step to cut a run short, as a lost GPU slot does."""


@dataclass
class Setup:
    """What the checks share: the device, its precision, the size, a temporary folder, and the stack that
    `resume` trained (which `kmeans` encodes)."""
    device: torch.device
    precision: str
    size: dict
    folder: Path
    trained: AutoEncoder | None = field(default=None, repr=False)

    def images(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The CNN data set's images and labels of `split` (the embedded sample while the checks run)."""
        return data.load_dataset(CNN, split)

    def cnn_stack(self) -> AutoEncoder:
        """A fresh stack of two Table 2 soft VQ-VAEs (CNN) at this size."""
        return build_model(data.dataset_shape(CNN), "soft_vqvae", self.size["d"], net="cnn", seeds=SEEDS,
                           widths=self.size["widths"], num_codes=self.size["K"], noise_std=0.1)

    def train(self, model: AutoEncoder, **options) -> dict:
        """`train` the CNN stack on the sample at this size, device and precision."""
        s = self.size
        return train(model, self.images("train")[0], SEEDS, iterations=s["iterations"], batch_size=s["batch_size"],
                     log_every=s["checkpoint_every"], progress=False, device=self.device, precision=self.precision,
                     **options)


def _relative_difference(a, b) -> float:
    """The largest |a - b| / |b| over two nested lists of losses."""
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return float(((a - b).abs() / b.abs()).max())


# ------------------------------------------------------------------------------------------------ checks
def check_resume(setup: Setup) -> dict:
    """A stack interrupted after its checkpoint and resumed in a fresh model ends as the stack trained whole."""
    s = setup.size
    began = time.perf_counter()
    whole = setup.train(setup.cnn_stack())
    seconds = time.perf_counter() - began
    checkpoint = setup.folder / "resume.pt"

    def interrupt(iteration: int) -> None:
        if iteration == s["interrupt_at"]:
            raise Interrupted
    with contextlib.suppress(Interrupted):
        setup.train(setup.cnn_stack(), checkpoint=checkpoint, checkpoint_every=s["checkpoint_every"],
                    on_step=interrupt)
    state, _ = store.read_checkpoint(checkpoint, setup.device)
    setup.trained, steps = setup.cnn_stack(), []
    resumed = setup.train(setup.trained, checkpoint=checkpoint, checkpoint_every=s["checkpoint_every"],
                          on_step=steps.append)
    difference = _relative_difference(resumed["total"], whole["total"])
    tolerance = 0.0 if setup.device.type == "cpu" else PRECISION_RTOL[setup.precision]
    # the second training continued from the checkpoint: it ran the steps after it, and only those (one that
    # ignores its checkpoint restarts from step 1 with the same seeds and may end with the very same losses)
    assert steps == list(range(state["iteration"] + 1, s["iterations"] + 1)), \
        f"the resumed training ran steps {steps[:1]}..{steps[-1:]}, not {state['iteration'] + 1}..{s['iterations']}"
    assert resumed["iteration"] == whole["iteration"], (resumed["iteration"], whole["iteration"])
    assert difference <= tolerance, f"resumed losses differ by {difference:.2e} (tolerance {tolerance:g})"
    return {"precision": setup.precision, "iterations": s["iterations"], "resumed_from": state["iteration"],
            "steps_after_resume": len(steps), "max_relative_difference": difference,
            "ms_per_iteration": round(1e3 * seconds / s["iterations"], 2)}


def check_kmeans(setup: Setup) -> dict:
    """torch K-means on the device against sklearn's (random starts, the CPU) on the latents of the stack
    `resume` trained: its best inertia at most KMEANS_RTOL above sklearn's; the accuracies are recorded."""
    if setup.trained is None:
        raise RuntimeError("needs the stack that the check 'resume' trains")
    s = setup.size
    x, y = (t[:s["eval_images"]] for t in setup.images("test"))
    with tf32_allowed(False):
        z = setup.trained.encode(x)[0].cpu().numpy()
    began = time.perf_counter()
    reference = KMeans(10, init="random", n_init=s["n_init"], random_state=0).fit(z)
    sklearn_s, began = time.perf_counter() - began, time.perf_counter()
    labels, inertia = kmeans_torch.kmeans(z, 10, s["n_init"], seed=0, device=setup.device)
    torch_s = time.perf_counter() - began
    ratio = inertia / reference.inertia_ - 1
    assert ratio <= KMEANS_RTOL, f"torch K-means' best inertia is {ratio:.2%} above sklearn's"
    return {"latents": list(z.shape), "n_init": s["n_init"], "inertia_vs_sklearn": ratio,
            "accuracy_torch": cluster_accuracy(y, labels.numpy()), "accuracy_sklearn": cluster_accuracy(
                y, reference.labels_), "sklearn_s": round(sklearn_s, 2), "torch_s": round(torch_s, 2)}


def check_gpu_run(setup: Setup) -> dict:
    """`gpu-run table2` end to end at a tiny size on the device, into the temporary folder; its output is kept
    out of this check's (the JSON holds its last line)."""
    results = setup.folder / "gpu_run" / "results"
    argv = ["table2", "--data-root", str(setup.folder / "no-data"), "--results", str(results), "--checkpoints",
            str(setup.folder / "gpu_run" / "checkpoints"), "--device", str(setup.device),
            *(f"--{k.replace('_', '-')}={v}" for k, v in GPU_RUN_TINY.items())]
    parser = argparse.ArgumentParser()
    gpu_run.add_arguments(parser)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = gpu_run.run(parser.parse_args(argv))
    assert status == 0, output.getvalue()[-2000:]
    summary = json.loads(next(results.parent.glob("gpu_run_table2_*.json")).read_text())
    records = [json.loads(p.read_text()) for p in results.glob("*/*.json")]
    devices = {r["evaluation"]["device"] for r in records} | {r["code_version"]["device"] for r in records}
    assert not summary["failed"] and len(records) == sum(s["models"] for s in summary["plan"]), summary
    assert devices == {str(setup.device)} and {r["config"]["precision"] for r in records} == {setup.precision}
    return {"runs": len(records), "precision": records[0]["config"]["precision"],
            "kmeans": records[0]["evaluation"]["kmeans"], "last_line": output.getvalue().strip().splitlines()[-1]}


def check_soft_quantize(setup: Setup) -> dict:
    """The soft quantizer on the device stays finite in float32 at distances of 1e3 and log variances of
    +-20, and its posterior sums to one."""
    z = torch.tensor([[1e3] * 8, [0.0] * 8], device=setup.device)
    codebook = torch.randn(16, 8, device=setup.device, generator=torch.Generator(setup.device).manual_seed(0))
    for value in (-20.0, 20.0):
        z_hat, post = soft_quantize(z, codebook, torch.full((2, 16), value, device=setup.device))
        assert z_hat.dtype == torch.float32 and torch.isfinite(z_hat).all() and torch.isfinite(post).all()
        torch.testing.assert_close(post.sum(-1), torch.ones(2, device=setup.device))
    return {"log_variances": [-20.0, 20.0], "distance": 1e3}


def precision_losses(device: torch.device, precision: str, **overrides) -> dict[str, list]:
    """{loss term: its final value per model} of a stack of two small soft VQ-VAEs trained 20 iterations on 256
    real digits (MNIST, the embedded sample) on `device` in `precision`; `overrides` change the model (a check
    broken on purpose)."""
    x = data.load_dataset(PRECISION_DATA, "train")[0][:256]
    model = build_model((1, 28, 28), "soft_vqvae", 8, seeds=SEEDS, widths=(32, 32, 64),
                        **{"num_codes": 8, "noise_std": 0.1, **overrides})
    history = train(model, x, SEEDS, iterations=20, batch_size=16, log_every=10, progress=False, device=device,
                    precision=precision)
    assert all(p.device.type == device.type and p.dtype == torch.float32 for p in model.parameters())
    return {term: values[-1] for term, values in history.items() if term not in ("iteration", "wall_time")}


def term_difference(losses: dict[str, list], reference: dict[str, list]) -> float:
    """The largest relative difference of any loss term of any model between two `precision_losses`. Term by
    term, not the total: the reconstruction term is hundreds of times the VQ terms, and a total moves by 0.2 % when
    the VQ loss is dropped or the noise raised 30-fold, while those terms change by 40 % or more."""
    return max(_relative_difference(losses[term], reference[term]) for term in reference)


def check_precisions(setup: Setup) -> dict:
    """Stacks of two small soft VQ-VAEs trained 20 iterations on real digits on the GPU in fp32, tf32 and the card's
    precision end with the CPU's fp32 losses, every term within PRECISION_RTOL."""
    cpu = precision_losses(torch.device("cpu"), "fp32")
    differences = {}
    for precision in dict.fromkeys(["fp32", "tf32", setup.precision]):
        differences[precision] = term_difference(precision_losses(setup.device, precision), cpu)
        assert differences[precision] <= PRECISION_RTOL[precision], (precision, differences[precision])
    return {"relative_difference_to_the_cpu": differences}


def check_graphs(setup: Setup) -> dict:
    """The graphs torch.compile makes of the CNN stack's training step in the card's precision."""
    s = setup.size
    return step_graphs(setup.cnn_stack(), setup.images("train")[0], SEEDS, s["batch_size"], setup.precision,
                       setup.device)


def check_compiled(setup: Setup) -> dict:
    """The CNN stack trained compiled ends with the eager losses (within PRECISION_RTOL); seconds of each,
    compilation included."""
    seconds, losses = {}, {}
    for compiled in (False, True):
        began = time.perf_counter()
        losses[compiled] = setup.train(setup.cnn_stack(), compile=compiled)["total"]
        seconds["compiled" if compiled else "eager"] = round(time.perf_counter() - began, 1)
    difference = _relative_difference(losses[True], losses[False])
    assert difference <= PRECISION_RTOL[setup.precision], f"compiled losses differ by {difference:.2e}"
    return {"max_relative_difference": difference, "seconds": seconds}


CHECKS: dict[str, Callable[[Setup], dict]] = {
    "resume": check_resume, "kmeans": check_kmeans, "gpu_run": check_gpu_run, "soft_quantize": check_soft_quantize,
    "precisions": check_precisions, "graphs": check_graphs, "compiled": check_compiled}
NEEDS_CUDA = {"precisions": "compares the GPU with the CPU"}
# Seconds each check is expected to take on an H100 machine (assumed: compilation and gpu-run's nine worker
# processes dominate); a check starts only when it would end within the budget.
ESTIMATE_S = {"resume": 15, "kmeans": 10, "gpu_run": 60, "soft_quantize": 1, "precisions": 15, "graphs": 5,
              "compiled": 90}


def run_checks(setup: Setup, skip: dict[str, str], budget_s: float = BUDGET_S) -> dict:
    """Run every check not in `skip` ({name: why}), in CHECKS' order, each only when it would end within
    `budget_s` (ESTIMATE_S): each one's measurements and seconds, or its failure (the last line of its
    traceback); the checks not run and why."""
    began, checks, skipped = time.perf_counter(), {}, dict(skip)
    for name, check in CHECKS.items():
        if name in skipped:
            continue
        if time.perf_counter() - began + ESTIMATE_S.get(name, 0) > budget_s:
            skipped[name] = f"would end after the budget of {budget_s:g} s"
            continue
        started = time.perf_counter()
        try:
            checks[name] = {"passed": True, **check(setup)}
        except Exception:           # a failed check is recorded, and the others still run
            checks[name] = {"passed": False, "error": traceback.format_exc().strip().splitlines()[-1]}
        checks[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {'passed' if checks[name]['passed'] else 'FAILED: ' + checks[name]['error']} "
              f"({checks[name]['seconds']} s)", flush=True)
    return {"checks": checks, "skipped": skipped, "seconds": round(time.perf_counter() - began, 1)}


@contextlib.contextmanager
def sample_data():
    """The CNN data set and the precision check's digits read from the embedded sample inside the block (here and
    in processes started in it)."""
    saved = os.environ.get("SOFTVQ_SAMPLE")
    os.environ["SOFTVQ_SAMPLE"] = ",".join(dict.fromkeys([*data.sampled(), CNN, PRECISION_DATA]))
    try:
        yield
    finally:
        if saved is None:
            del os.environ["SOFTVQ_SAMPLE"]
        else:
            os.environ["SOFTVQ_SAMPLE"] = saved


# ------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The check's options, for `python -m softvq gpu-check` and benchmarks/gpu_check.py."""
    parser.add_argument("--device", default="cuda", help="default cuda; cpu runs the checks at a tiny size")
    parser.add_argument("--skip", nargs="+", default=[], choices=list(CHECKS), metavar="CHECK",
                        help=f"checks not to run: {', '.join(CHECKS)}")
    parser.add_argument("--out", type=Path, default=None, help="the JSON (default: gpu_check_<gpu>.json here)")


def run(args: argparse.Namespace, folder: Path | None = None) -> int:
    """The check with parsed `args`; the JSON goes to --out, else into `folder` (default: the working folder).
    Returns the exit status."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"no CUDA device: skipped every check ({', '.join(CHECKS)}); --device cpu runs them on the CPU at a "
              f"tiny size")
        return 0
    skip = {name: "--skip" for name in args.skip}
    if not cuda:
        skip.update({name: f"needs CUDA ({why})" for name, why in NEEDS_CUDA.items() if name not in skip})
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    result = {"device": str(device), "gpu": name if cuda else None, "cuda": torch.version.cuda,
              "precision": card_precision(device), "size": "full" if cuda else "tiny",
              "tf32_api": tf32_flags()[0][0][1], "budget_s": BUDGET_S, "code_version": code_version(device)}
    with sample_data(), tempfile.TemporaryDirectory() as tmp:
        result["data"] = data.sample_note([CNN])
        setup = Setup(device, result["precision"], FULL if cuda else TINY, Path(tmp))
        result.update(run_checks(setup, skip))
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    out = args.out or Path(folder or Path.cwd()) / f"gpu_check_{slug}.json"
    write_json(result, out)
    print(f"skipped: {json.dumps(result['skipped'])}\nwrote {out}")
    return int(not all(c["passed"] for c in result["checks"].values()))


def main(argv=None, folder: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softvq gpu-check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv), folder)
