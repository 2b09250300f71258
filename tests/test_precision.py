"""Training precision (fp32, tf32, bf16) and torch.compile on the CPU: close to fp32, and refused when unknown.
The CUDA TF32 settings are read through torch's current API (`fp32_precision`), the one the trainer sets."""
import pytest
import torch

from softvq import build_model
from softvq.train import train
from softvq.experiments import Config

SHAPE = (1, 8, 8)


def final_losses(precision="fp32", compile=False, iterations=30, seen=None):
    """The last logged total loss of a small stack; `seen` (a list) collects, at every forward pass, the
    encoder output's dtype, the bottleneck input's dtype and the CUDA TF32 flags in force."""
    x = torch.rand(256, *SHAPE, generator=torch.Generator().manual_seed(0))
    model = build_model(SHAPE, "soft_vqvae", 4, widths=(16, 16, 16), num_codes=5, seeds=[0, 1], noise_std=0.1)
    if seen is not None:
        flags = lambda: (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
        model.encoder.register_forward_hook(lambda m, i, out: seen.append(("encoder", out.dtype, flags())))
        model.bottleneck.register_forward_pre_hook(lambda m, i: seen.append(("bottleneck", i[0].dtype, flags())))
    history = train(model, x, [0, 1], iterations=iterations, batch_size=16, log_every=10, progress=False,
                    device="cpu", precision=precision, compile=compile)
    return torch.tensor(history["total"][-1]), model


def test_bf16_runs_the_encoder_in_bfloat16_and_stays_close_to_fp32():
    fp32, _ = final_losses("fp32")
    seen = []
    bf16, model = final_losses("bf16", seen=seen)
    assert {dtype for part, dtype, _ in seen if part == "encoder"} == {torch.bfloat16}
    assert {dtype for part, dtype, _ in seen if part == "bottleneck"} == {torch.float32}   # quantizer: float32
    assert not torch.equal(bf16, fp32)                                  # the autocast really changed the sums
    torch.testing.assert_close(bf16, fp32, rtol=0.02, atol=0)          # bfloat16 keeps 8 bits of mantissa
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("before", [("ieee", "ieee"), ("tf32", "tf32")])
def test_tf32_is_allowed_only_while_training_and_only_when_asked(before):
    owners = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = [owner.fp32_precision for owner in owners]
    try:
        for owner, value in zip(owners, before):
            owner.fp32_precision = value
        for precision, during in (("tf32", ("tf32", "tf32")), ("fp32", ("ieee", "ieee"))):
            seen = []
            final_losses(precision, iterations=2, seen=seen)
            assert {f for _, _, f in seen} == {during}, precision
            assert tuple(owner.fp32_precision for owner in owners) == before
    finally:
        for owner, value in zip(owners, saved):
            owner.fp32_precision = value


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
