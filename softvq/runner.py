"""Stacks of configs -> trained, scored and written: `run(configs)` gives one results JSON per run.

Configs that differ only in the STACKABLE fields (seed, beta, noise_std, ...) train together as one stack
(see `softvq.train`). A run whose results JSON exists is skipped, and never trained again for anything else
(`latents`). Each run is scored on the device it trained on, in strict float32 (TF32 off), with the K-means
implementation its Config names; its record says how (`evaluation.downstream`). Everything is read and
written through `softvq.store`, which holds a lock per run while it trains: two processes asked for the same
run on the same results folder train it once, the second waiting and then using the first one's result.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

from . import codebook, data, launch, store
from .config import ALL_BOTTLENECKS, PEER_FIELDS, QUANTIZERS, STACKABLE, Config
from .estimator_swap import swap as swap_estimators
from .evaluation import downstream, splits
from .model import build_model
from .peers import PEERS
from .presets import flatten
from .provenance import code_version
from .store import CHECKPOINT_DIR, RESULTS_DIR
from .train import default_device, log_interval, tf32_allowed, train

MAX_STACK = 8


def group_stacks(configs: Iterable[Config]) -> list[list[Config]]:
    """Split configs into stacks that can train together (same everything except STACKABLE fields)."""
    groups: dict[tuple, list[Config]] = {}
    for c in configs:
        groups.setdefault(c.stack_key(), []).append(c)
    return list(groups.values())


def build_stack(configs: Sequence[Config], x_train: torch.Tensor):
    """The stacked model of compatible configs, per-model beta / noise_std from each config."""
    first = configs[0]
    kwargs = first.bottleneck_kwargs()
    if first.bottleneck not in ("ae", "sqvae"):
        kwargs["beta"] = [c.beta for c in configs]
    per_model_fields = {"soft_vqvae": ("noise_std", "vq_weight", "temperature", "sigma_floor"),
                        "sqvae": ("vq_weight", "temperature", "var_init"),
                        **dict.fromkeys(PEERS, tuple(f for f in STACKABLE if f in PEER_FIELDS))}
    for name in per_model_fields.get(first.bottleneck, ()):
        kwargs[name] = [getattr(c, name) for c in configs]
    return build_model(x_train.shape[1:], ALL_BOTTLENECKS[first.bottleneck], first.d, net=first.net,
                       seeds=[c.seed for c in configs], recon=first.recon, pixel_var=float(x_train.var()), **kwargs)


def run_stack(configs: Sequence[Config], root=None, device=None, results_dir: str | Path = RESULTS_DIR,
              checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True, keep_model: bool = False,
              checkpoint_every: int = 2_000):
    """Train one stack of compatible configs together, evaluate each model, write one JSON per config.
    The training state is saved every `checkpoint_every` iterations in the stack's checkpoint, which names all
    of its runs (`store.checkpoint_path`); a rerun of the same stack continues from it. The runs' locks are
    held throughout (`store.locked`).

    Returns the records (and the trained model and its history when keep_model)."""
    if any(c.stack_key() != configs[0].stack_key() for c in configs):
        raise ValueError("configs in one stack may differ only in " + ", ".join(STACKABLE))
    with store.locked(configs, results_dir):
        return _train_stack(configs, root, device, results_dir, checkpoint_dir, progress, keep_model,
                            checkpoint_every)


def train_missing(configs: Sequence[Config], root=None, device=None, results_dir: str | Path = RESULTS_DIR,
                  checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True, keep_model: bool = False):
    """`run`'s job for one stack: with the runs' locks held, train those of `configs` whose results JSON is still
    missing (another process asked for the same runs may have written some while this one waited). Returns what
    `run_stack` returns for the runs it trained (with `keep_model`, the model and its history too), or None when
    every run was finished: a finished run's results JSON is never written again."""
    with store.locked(configs, results_dir):
        missing = [c for c in configs if store.read_result(c, results_dir) is None]
        if missing:
            return _train_stack(missing, root, device, results_dir, checkpoint_dir, progress, keep_model)
    return None


def _train_stack(configs: Sequence[Config], root, device, results_dir, checkpoint_dir, progress: bool,
                 keep_model: bool = False, checkpoint_every: int = 2_000):
    """The body of `run_stack`, for a caller that holds the runs' locks."""
    first = configs[0]
    device = torch.device(device) if device is not None else default_device()
    version = code_version(device)          # before training: the code this process runs
    x_tr, y_tr, x_ev, y_ev = splits(first.dataset, first.validation, root, first.train_size, first.eval_size)
    model = build_stack(configs, x_tr)
    checkpoint = store.checkpoint_path(configs, checkpoint_dir)
    history = train(model, x_tr, [c.seed for c in configs], iterations=first.iterations, batch_size=first.batch_size,
                    lr=first.lr, device=device, log_every=log_interval(first.iterations), checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, progress=progress, precision=first.precision,
                    compile=first.compile, identity=[c.run_id for c in configs])
    with tf32_allowed(False):
        records = _evaluate(configs, model, history, (x_tr, y_tr, x_ev, y_ev), device, version, results_dir,
                            checkpoint_dir)
    store.finish_checkpoint(checkpoint)
    return (records, model, history) if keep_model else records


def _evaluate(configs: Sequence[Config], model, history: dict, data_splits: tuple, device: torch.device,
              version: dict, results_dir, checkpoint_dir) -> list[dict]:
    """Score every model of the trained stack `model` on `device`, save its latents and write its record."""
    first = configs[0]
    x_tr, y_tr, x_ev, y_ev = data_splits
    codes = codebook.assignments(model, x_ev) if first.bottleneck in QUANTIZERS else None
    swaps = (swap_estimators(model, x_ev, [c.noise_std for c in configs], first.seed)
             if first.bottleneck == "soft_vqvae" else None)
    z_dec_tr, z_tr = (t.cpu() for t in model.encode_both(x_tr))                 # both views from one pass
    z_ev = codes["z_e"] if codes is not None else model.encode(x_ev).cpu()      # the same z_e, encoded once
    quantized = (z_dec_tr, codes["z_q"]) if codes is not None else None
    error = model.reconstruction_error(x_ev)
    terms = [k for k in history if k not in ("iteration", "wall_time")]
    records = []
    for m, c in enumerate(configs):
        began = time.perf_counter()
        scores, how = downstream(z_tr[m], y_tr, z_ev[m], y_ev, c.kmeans_n_init, c.seed, c.probe_iterations,
                                 c.kmeans, device)
        extra = {"reconstruction": {k: float(v[m]) for k, v in error.items()}}
        if quantized is not None:        # the second view: the scores of the code the decoder gets
            extra["metrics_quantized"] = downstream(quantized[0][m], y_tr, quantized[1][m], y_ev, c.kmeans_n_init,
                                                    c.seed, c.probe_iterations, c.kmeans, device)[0]
        store.write_latents(z_ev[m].clone(), y_ev, c, checkpoint_dir)
        record = {"config": dataclasses.asdict(c), "run_id": c.run_id, "metrics": scores, "evaluation": how,
                  "data": {"name": data.data_name(c.dataset), "source": data.source(c.dataset)},
                  "final_losses": {k: history[k][-1][m] for k in terms},
                  "history": {"iteration": history["iteration"], **{k: [v[m] for v in history[k]] for k in terms}},
                  "train_time_s": history["wall_time"], "stack_size": len(configs),
                  "eval_time_s": time.perf_counter() - began, "code_version": version, **extra}
        if codes is not None:
            record["codebook"] = codebook.statistics(codes, m)
        if swaps is not None:
            record["estimator_swap"] = swaps[m]
        store.write_result(record, c, results_dir)
        records.append(record)
    return records


class LatentsMissing(FileNotFoundError):
    """A finished run's outputs (latents, reconstructions) are gone and no checkpoint holds its trained model."""


def latents(config: Config, root=None, device=None, results_dir: str | Path = RESULTS_DIR,
            checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation-set latents z_e (N, d) and labels (N,) of a run (saved in `checkpoint_dir` when it was
    scored). A run without a results JSON is trained first. A finished run is never trained again and its
    results JSON never rewritten: when its latents are missing they are encoded again, on `device`, from the
    final checkpoint of its stack, and without one `LatentsMissing` says how to get them."""
    saved = store.read_latents(config, checkpoint_dir)
    if saved is None:
        train_missing([config], root, device, results_dir, checkpoint_dir, progress)     # only when unfinished
        saved = store.read_latents(config, checkpoint_dir)
    return saved if saved is not None else encode_again(config, root, device, checkpoint_dir)


def finished_model(config: Config, root=None, checkpoint_dir: str | Path = CHECKPOINT_DIR):
    """(the stacked model that trained the finished run `config`, on the CPU, loaded from its stack's final
    checkpoint (`store.find_final_checkpoint`); the run's index in the stack). `LatentsMissing` without one,
    saying what to do: a finished run is never trained again for its outputs."""
    state, _ = store.find_final_checkpoint(config, checkpoint_dir)
    if state is None:
        raise LatentsMissing(f"{config.run_id} is finished but neither its saved outputs nor its final checkpoint "
                             f"are in {checkpoint_dir}: move its results JSON aside and run it again, or train it "
                             f"into another results folder")
    x_tr = splits(config.dataset, config.validation, root, config.train_size, config.eval_size)[0]
    model = build_stack([config] * len(state["identity"]), x_tr)     # the stack's own settings: in its state
    model.load_state_dict(state["model"])
    return model, state["identity"].index(config.run_id)


def encode_again(config: Config, root=None, device=None, checkpoint_dir: str | Path = CHECKPOINT_DIR
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents of the finished run `config` encoded on `device` from its stack's final checkpoint
    (`finished_model`) in strict float32, saved for next time."""
    model, index = finished_model(config, root, checkpoint_dir)
    device = torch.device(device) if device is not None else default_device()
    x_ev, y_ev = splits(config.dataset, config.validation, root, config.train_size, config.eval_size)[2:]
    with tf32_allowed(False):
        z = model.to(device).encode(x_ev)[index].cpu()
    store.write_latents(z, y_ev, config, checkpoint_dir)
    return z, y_ev


def stack_limit(config: Config, device=None) -> int:
    """How many models one stack of `config`'s kind trains together on `device`: MAX_STACK, but 1 for the CNN
    on a CPU, where the grouped convolutions of a stack of 4 ran 1.6x slower per model than one model alone
    (578 against 370 ms per model-iteration, benchmarks/results/stack_speed_cnn_cpu.json)."""
    device = torch.device(device) if device is not None else default_device()
    return 1 if config.net == "cnn" and device.type == "cpu" else MAX_STACK


def run(configs: Iterable[Config] | Mapping[str, Sequence[Config]], root=None, device=None,
        results_dir: str | Path = RESULTS_DIR, checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True,
        max_stack: int | None = None, launcher: launch.Launcher | Mapping | str | None = None) -> list[dict]:
    """Run every config (of a list or a {row: configs} mapping) whose results JSON does not exist yet (or cannot
    be read: it is set aside, see `softvq.store`), stacked where possible (at most `max_stack` models a stack;
    None: `stack_limit`), and return the records that exist afterwards (all of them unless a launcher that does
    not wait was used).

    `launcher` (see `softvq.launch`): None or "inline" trains the stacks one after another in this process;
    "local" / "slurm" (or a `launch.Launcher`, or a dict of its fields) runs each stack as a submitit job,
    waits for all of them and raises `launch.JobsFailed` after they end if any failed."""
    configs = flatten(configs)
    found = {c: store.read_result(c, results_dir) for c in configs}
    folders = dict(root=str(Path(root).resolve()) if root is not None else None, device=device, progress=progress,
                   results_dir=Path(results_dir).resolve(), checkpoint_dir=Path(checkpoint_dir).resolve())
    chunks = []
    for stack in group_stacks(c for c, record in found.items() if record is None):
        size = max_stack or stack_limit(stack[0], device)
        chunks += [stack[i:i + size] for i in range(0, len(stack), size)]
    tasks = [launch.Task(", ".join(c.run_id for c in chunk), train_missing, dict(configs=chunk, **folders))
             for chunk in chunks]
    launch.run_tasks(tasks, launcher, progress)
    records = (found[c] if found[c] is not None else store.read_result(c, results_dir) for c in configs)
    return [r for r in records if r is not None]
