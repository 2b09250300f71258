"""The GPU path (marked `cuda`: skipped without CUDA; benchmarks/gpu_check.py runs them on a GPU)."""
import pytest
import torch

from softvq import build_model, experiments, soft_quantize, train
from softvq.experiments import Config

pytestmark = pytest.mark.cuda
SHAPE = (1, 28, 28)


def test_soft_quantize_is_finite_in_float32_at_extreme_distances_and_variances():
    z = torch.tensor([[1e3] * 8, [0.0] * 8], device="cuda")
    codebook = torch.randn(16, 8, device="cuda")
    for value in (-20.0, 20.0):
        z_hat, post = soft_quantize(z, codebook, torch.full((2, 16), value, device="cuda"))
        assert z_hat.dtype == torch.float32 and torch.isfinite(z_hat).all() and torch.isfinite(post).all()
        torch.testing.assert_close(post.sum(-1), torch.ones(2, device="cuda"))


@pytest.mark.parametrize("precision,rtol", [("fp32", 1e-3), ("tf32", 2e-2), ("bf16", 5e-2)])
def test_gpu_training_matches_the_cpu(precision, rtol):
    x = torch.rand(256, *SHAPE, generator=torch.Generator().manual_seed(0))
    losses = {}
    for device in ("cpu", "cuda"):
        model = build_model(SHAPE, "soft_vqvae", 8, seeds=[0, 1], widths=(32, 32, 64), num_codes=8, noise_std=0.1)
        history = train(model, x, [0, 1], iterations=20, batch_size=16, log_every=10, progress=False, device=device,
                        precision="fp32" if device == "cpu" else precision)
        losses[device] = torch.tensor(history["total"][-1])
        assert all(p.device.type == device and p.dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(losses["cuda"], losses["cpu"], rtol=rtol, atol=0)


def test_a_run_on_the_gpu_writes_its_record(mnist_root, tmp_path):
    config = Config(bottleneck="soft_vqvae", d=8, K=8, iterations=50, kmeans_n_init=2)
    record = experiments.run_stack([config], mnist_root, "cuda", tmp_path, tmp_path, progress=False)[0]
    assert record["code_version"]["device"].startswith("cuda") and "gpu" in record["code_version"]
    assert 0 < record["metrics"]["classification_acc"] <= 1 and record["codebook"]["K"] == 8
