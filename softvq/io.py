"""Atomic file writes (a file is either the old one or the complete new one, never half-written) and the
small .npz files committed figures are drawn from."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

import numpy as np
import torch


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_atomic(obj, path: str | Path) -> None:
    """torch.save, atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def write_json(record: dict, path: str | Path) -> None:
    """JSON (indented, trailing newline), atomically."""
    write_atomic(path, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))


def save_arrays(path: str | Path, **arrays) -> None:
    """numpy arrays as one compressed .npz, atomically (the small data a committed figure is drawn from)."""
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def load_arrays(path: str | Path) -> dict | None:
    """The arrays of an .npz written by `save_arrays`, or None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as saved:
        return {k: saved[k] for k in saved.files}
