"""Where results JSONs, checkpoints, latents and cached figure data live, and the one place that reads and
writes them.

    results/<dataset>/<run_id>.json           a run's record (config, metrics, history); the raw-pixel rows
    checkpoints/<first run id>-x<M>-<hash of all M run ids>.pt   a stack's training state (and its .prev)
    checkpoints/<run_id>.latents.pt           a run's evaluation latents z_e and labels
    results/.locks/<run_id>.lock              held while a process trains the run (and .holder: by whom)

Writes are atomic (`softvq.io`): a file is the old one or the complete new one. A file that cannot be read
(cut short, not JSON, not a zip archive) is named in one warning line with what is wrong, moved aside to
`<name>.corrupt` (`.corrupt.1`, ... when that is taken; never deleted) and treated as missing, so the run
that made it is done again. A checkpoint keeps the one before it as `<name>.prev`, which a damaged
checkpoint falls back to. Once a stack's records are written its checkpoint is cut to what a finished run is
read for (`finish_checkpoint`: the weights, no optimizer state, no .prev), about a sixth of the disk.

`locked(configs)` holds one lock per run (filelock: an OS lock, released when its process dies, however it
dies), so that processes asked for the same run on the same results folder train it once: the others wait,
saying once by whom.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from filelock import FileLock, Timeout

from .data import data_name
from .io import save_atomic, write_atomic, write_json

RESULTS_DIR = Path("results")
CHECKPOINT_DIR = Path("checkpoints")
# not a damaged file, raised as they are: out of memory, and a file that is there but may not be read
NOT_DAMAGE = (MemoryError, torch.cuda.OutOfMemoryError, PermissionError, IsADirectoryError)
ON_DEVICE = ("model", "running")        # the parts of a training state that live on the training device


# ------------------------------------------------------------------------------------------------- paths
def results_file(dataset: str, name: str, results_dir: str | Path = RESULTS_DIR) -> Path:
    """results/<dataset>/<name>.json: the file of a record named `name` (a run id, or a raw-pixel row)."""
    return Path(results_dir) / dataset / f"{name}.json"


def result_path(config, results_dir: str | Path = RESULTS_DIR) -> Path:
    """Where the results JSON of `config` (a `softvq.config.Config`) is kept: under its data set's path-safe name
    (`softvq.data.data_name`; an image folder's path never makes nested folders)."""
    return results_file(data_name(config.dataset), config.run_id, results_dir)


def latents_path(config, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> Path:
    """Where a run's evaluation latents z_e (and labels) are kept (git-ignored, like checkpoints)."""
    return Path(checkpoint_dir) / f"{config.run_id}.latents.pt"


def stack_id(configs) -> str:
    """A short hash of every run id of a stack, in order: two stacks share it only if they hold the same runs."""
    return hashlib.sha1("\n".join(c.run_id for c in configs).encode()).hexdigest()[:8]


def checkpoint_path(configs, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> Path:
    """Where the training state of the stack `configs` is kept: named after its first run, its size and the hash
    of all its run ids (`stack_id`), so that a stack whose other members changed never finds it."""
    return Path(checkpoint_dir) / f"{configs[0].run_id}-x{len(configs)}-{stack_id(configs)}.pt"


def previous(path: str | Path) -> Path:
    """<name>.prev: the checkpoint written before the one at `path`."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def lock_path(config, results_dir: str | Path = RESULTS_DIR) -> Path:
    """The lock of a run: <results_dir>/.locks/<run_id>.lock."""
    return Path(results_dir) / ".locks" / f"{config.run_id}.lock"


# ------------------------------------------------------------------------------------------ damaged files
def _identity(path: Path) -> tuple | None:
    """What tells two files at `path` apart (inode, size, modification time); None when there is none."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def set_aside(path: str | Path, problem: BaseException, read: tuple | None = None) -> None:
    """Move the unreadable file `path` to <name>.corrupt (or .corrupt.1, .corrupt.2, ... when taken), saying so in
    one warning line with what is wrong. Nothing is deleted or overwritten. With `read` (the `_identity` of the
    file that failed to read), a file that another process has written there since is left alone."""
    path = Path(path)
    if read is not None and _identity(path) != read:        # rewritten (or set aside) since it was read
        return
    aside, n = path.with_name(path.name + ".corrupt"), 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt.{n}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:                           # another process has just set it aside (and said so)
        return
    what = " ".join(f"{type(problem).__name__}: {problem}".split())
    print(f"warning: cannot read {path} ({what}); moved to {aside.name}, treated as missing", file=sys.stderr)


def _read(path: str | Path, load):
    """load(path), or None when the file does not exist or cannot be parsed (then set aside). Errors that say
    nothing about the file (NOT_DAMAGE: out of memory, no permission) propagate; so must whatever the caller does
    with what it read (a checkpoint moved to a GPU: `read_checkpoint`)."""
    path = Path(path)
    read = _identity(path)
    if read is None:
        return None
    try:
        return load(path)
    except NOT_DAMAGE:
        raise
    except FileNotFoundError:                           # removed between the check and the read
        return None
    except Exception as err:                            # whatever a damaged file makes the loader raise
        set_aside(path, err, read)
        return None


# ------------------------------------------------------------------------------------------------ records
def _load_json(path: Path) -> dict:
    record = json.loads(path.read_text())
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    return record


def read_json(path: str | Path) -> dict | None:
    """The JSON object at `path`; None when it does not exist or cannot be read (then set aside)."""
    return _read(path, _load_json)


def read_result(config, results_dir: str | Path = RESULTS_DIR) -> dict | None:
    """The results record of `config`; None when that run has not been done or its file is damaged."""
    return read_json(result_path(config, results_dir))


def write_result(record: dict, config, results_dir: str | Path = RESULTS_DIR) -> Path:
    """Write the results record of `config` atomically; returns its path."""
    path = result_path(config, results_dir)
    write_json(record, path)
    return path


# --------------------------------------------------------------------------------- checkpoints, latents
def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[dict | None, Path | None]:
    """(training state, the file it came from): the checkpoint at `path`, else its previous copy (`previous`),
    else (None, None). A copy that cannot be read is set aside and the next one tried.

    Every tensor is read on the CPU, where the generator states (which `torch.Generator.set_state` takes as a
    CPU ByteTensor, for a CUDA generator too) and the data orders belong; then the model's weights and the
    running loss sums (`ON_DEVICE`) are moved to `device`, the device training continues on. The optimizer's
    state follows its parameters when `Optimizer.load_state_dict` reads it."""
    for candidate in (Path(path), previous(path)):
        state = _read(candidate, lambda p: torch.load(p, map_location="cpu", weights_only=False))
        if state is not None:          # moved outside `_read`: a device's error is not the file's damage
            for part in ON_DEVICE:
                state[part] = {name: t.to(device) for name, t in state.get(part, {}).items()}
            return state, candidate
    return None, None


def find_final_checkpoint(config, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> tuple[dict | None, Path | None]:
    """(training state, its file) of a stack that trained the run `config` to its end: a checkpoint in
    `checkpoint_dir` whose identity names the run and whose iteration is the run's last; (None, None) when
    there is none. Read on the CPU and memory-mapped, so that looking through the folder reads little more
    than each checkpoint's header."""
    for path in sorted(Path(checkpoint_dir).glob("*.pt")):
        state = _read(path, lambda p: torch.load(p, map_location="cpu", mmap=True, weights_only=False))
        if state is not None and config.run_id in (state.get("identity") or ()) and \
                state["iteration"] == config.iterations:
            return state, path
    return None, None


def write_checkpoint(state: dict, path: str | Path) -> None:
    """Write a training state atomically at `path`, the checkpoint there before kept as <name>.prev."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, previous(path))
    save_atomic(state, path)


FINISHED = ("model", "iteration", "seeds", "identity", "device", "history")   # what a finished stack keeps


def finish_checkpoint(path: str | Path) -> None:
    """Cut the checkpoint of a stack whose records are written to the parts of `FINISHED`: the weights its
    reconstructions and latents are read from (`softvq.runner.finished_model`), its identity and history; no
    optimizer moments, generator states or data orders (a finished run is never continued), and no .prev. An
    MLP stack's checkpoint and its .prev take about six times what the weights alone take. A checkpoint that
    cannot be read is left to `read_checkpoint` (set aside); its .prev, an earlier state, is never cut."""
    state, source = read_checkpoint(path)
    if state is not None and source == Path(path):
        save_atomic({part: state[part] for part in FINISHED if part in state}, path)   # an old one: no device
        previous(path).unlink(missing_ok=True)


def read_latents(config, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The saved evaluation latents z_e (N, d) and labels (N,) of a run; None when missing or damaged."""
    saved = _read(latents_path(config, checkpoint_dir), lambda p: torch.load(p, weights_only=True))
    return (saved["z"], saved["y"]) if saved is not None else None


def write_latents(z: torch.Tensor, y: torch.Tensor, config, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> None:
    """Save a run's evaluation latents and labels atomically."""
    save_atomic({"z": z, "y": y}, latents_path(config, checkpoint_dir))


# ------------------------------------------------------------------------------------- cached figure data
def _load_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as saved:
        return {k: saved[k] for k in saved.files}


def read_arrays(path: str | Path) -> dict | None:
    """The arrays of an .npz written by `write_arrays`; None when missing or damaged."""
    return _read(path, _load_arrays)


def write_arrays(path: str | Path, **arrays) -> None:
    """numpy arrays as one compressed .npz, atomically (the small data a committed figure is drawn from)."""
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


# ------------------------------------------------------------------------------------------------- locks
def _holder(path: Path) -> str:
    """What a lock's holder wrote in `path` (its process, host and start), or "another process"."""
    with contextlib.suppress(OSError):
        return path.read_text()
    return "another process"


@contextlib.contextmanager
def locked(configs: Iterable, results_dir: str | Path = RESULTS_DIR) -> Iterator[None]:
    """Hold the lock of every run of `configs` (in run-id order, so that two processes never wait for each
    other). A lock held elsewhere is waited for, with one line saying by whom (as its holder wrote it in
    <lock>.holder)."""
    with contextlib.ExitStack() as held:
        for run_id, path in sorted({(c.run_id, lock_path(c, results_dir)) for c in configs}):
            path.parent.mkdir(parents=True, exist_ok=True)
            lock, holder = FileLock(path), path.with_name(path.name + ".holder")
            try:
                held.enter_context(lock.acquire(timeout=0))
            except Timeout:
                print(f"waiting for {run_id}: held by {_holder(holder)}", file=sys.stderr)
                held.enter_context(lock.acquire())
            me = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            write_atomic(holder, lambda f: f.write(me.encode()))
        yield
