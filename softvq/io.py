"""Atomic file writes: a file is either the old one or the complete new one, never half-written (what is
written where, and how it is read back, is `softvq.store`'s)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

import torch


def umask() -> int:
    """The process's file mode creation mask, read without changing it where Linux shows it (/proc/self/status),
    else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it into place. The file gets the mode any
    new file gets under the umask (0644 under the usual 022), not the owner-only mode of a temporary file, so that
    a results folder shared with others stays readable to them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
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
