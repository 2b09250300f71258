"""Training precision (fp32, tf32, bf16) and torch.compile on the CPU: close to fp32, and refused when unknown."""
import pytest
import torch

from softvq import build_model, train
from softvq.experiments import Config

SHAPE = (1, 8, 8)


def final_losses(precision="fp32", compile=False, iterations=30):
    x = torch.rand(256, *SHAPE, generator=torch.Generator().manual_seed(0))
    model = build_model(SHAPE, "soft_vqvae", 4, widths=(16, 16, 16), num_codes=5, seeds=[0, 1], noise_std=0.1)
    history = train(model, x, [0, 1], iterations=iterations, batch_size=16, log_every=10, progress=False,
                    device="cpu", precision=precision, compile=compile)
    return torch.tensor(history["total"][-1]), model


def test_bf16_stays_close_to_fp32_and_keeps_float32_weights():
    fp32, _ = final_losses("fp32")
    bf16, model = final_losses("bf16")
    torch.testing.assert_close(bf16, fp32, rtol=0.02, atol=0)          # bfloat16 keeps 8 bits of mantissa
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_tf32_is_fp32_on_a_cpu_and_leaves_the_global_settings_alone():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    assert torch.equal(final_losses("tf32")[0], final_losses("fp32")[0])
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.slow
def test_compiled_training_matches_eager():
    eager, _ = final_losses("fp32", iterations=10)
    compiled, _ = final_losses("fp32", compile=True, iterations=10)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=0)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        final_losses("fp8")
    with pytest.raises(ValueError, match="Config.precision"):
        Config(precision="half")
