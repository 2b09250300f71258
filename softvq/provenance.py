"""What produced a result: the code version and the numerics it ran with, stored in every results JSON.

A rerun gives bit-identical metrics only with the same commit, torch build, device, CPU or GPU type (kernels
are chosen by instruction set) and thread count, so all of them are recorded.
"""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else platform.processor()): kernels differ by CPU type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_features() -> dict:
    """The CPU's model, the vector extension torch's kernels dispatch to, and the instruction-set flags that
    decide float32 and bfloat16 speed (from /proc/cpuinfo on Linux; none elsewhere)."""
    flags: set[str] = set()
    try:
        line = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
        flags = set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
    return {"cpu": cpu_model(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "flags": [f for f in wanted if f in flags]}


def code_version(device: torch.device | str = "cpu") -> dict:
    """commit: git HEAD of the softvq source (None outside a git checkout, e.g. installed from a wheel);
    dirty: whether softvq/ had uncommitted changes; torch, python, machine, cpu, threads (torch's intra-op threads),
    device and, on CUDA, the GPU's name."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".") if commit else None
    device = torch.device(device)
    record = {"commit": commit, "dirty": None if status is None else bool(status), "torch": torch.__version__,
              "python": platform.python_version(), "machine": platform.machine(), "cpu": cpu_model(),
              "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record
