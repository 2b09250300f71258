"""Atomic file writes: a file is either the old one or the complete new one, never half-written (what is
written where, and how it is read back, is `softvq.store`'s)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

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
