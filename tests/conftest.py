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
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")


def make_record(config, cluster_acc, nmi, classification_acc) -> dict:
    """A results record of `config` with the given scores and a two-point history (no training)."""
    return {"config": dict(vars(config)), "run_id": config.run_id,
            "metrics": {"cluster_acc": cluster_acc, "nmi": nmi, "classification_acc": classification_acc},
            "history": {"iteration": [10, 20], "recon": [200.0, 150.0], "total": [210.0, 151.0]}}


@pytest.fixture
def table1_dir(tmp_path):
    """Results of the Table 1 preset at 20 iterations: AE with seeds 0, 1; soft VQ-VAE seed 0; rest missing."""
    from softvq import experiments
    configs = experiments.table1(seeds=(0, 1), iterations=20)
    values = {("ae", 0): (0.50, 0.50, 0.90), ("ae", 1): (0.54, 0.52, 0.92), ("soft_vqvae", 0): (0.80, 0.70, 0.95)}
    for c in configs:
        if (c.bottleneck, c.seed) in values:
            experiments.write_json(make_record(c, *values[c.bottleneck, c.seed]), experiments.result_path(c, tmp_path))
    return configs, tmp_path


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` run only where CUDA is (`python -m softvq gpu-check` runs their checks on a GPU)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (`python -m softvq gpu-check` runs them on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
