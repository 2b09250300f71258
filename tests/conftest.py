import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def data_root() -> Path | None:
    """The real data root (SOFTVQ_DATA) when it holds MNIST, else None."""
    root = Path(os.environ.get("SOFTVQ_DATA", "data"))
    return root if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists() else None


@pytest.fixture
def mnist_root():
    root = data_root()
    if root is None:
        pytest.skip("offline MNIST not found: set SOFTVQ_DATA to a folder with MNIST/raw")
    return root


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real-data tests that take more than a few seconds")
