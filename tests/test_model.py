import pytest
import torch

from softvq import build_model
from softvq.bottlenecks import BOTTLENECKS
from softvq.nets import CNNDecoder, CNNEncoder, MLPDecoder, MLPEncoder

KWARGS = {"vqvae": {"num_codes": 16}, "soft_vqvae": {"num_codes": 16, "noise_std": 0.1},
          "sqvae": {"num_codes": 16, "var_init": 0.5}}
EXPECTED_TERMS = {"ae": set(), "vae": {"kl"}, "beta_vae": {"kl"}, "info_dropout": {"kl"},
                  "vqvae": {"codebook", "commitment"}, "soft_vqvae": {"codebook", "commitment"}, "sqvae": {"sq"}}


@pytest.mark.parametrize("name", sorted(BOTTLENECKS))
def test_bottleneck_shapes_and_losses(name):
    model = build_model((1, 28, 28), name, 8, seeds=[0, 1, 2], **KWARGS.get(name, {}))
    x = torch.rand(3, 5, 1, 28, 28)
    out = model(x)
    assert out["logits"].shape == x.shape
    assert out["z_e"].shape == (3, 5, 8)
    assert set(out["losses"]) == {"recon"} | EXPECTED_TERMS[name]
    for value in out["losses"].values():
        assert value.shape == (3,) and torch.isfinite(value).all()
    torch.testing.assert_close(out["total"], sum(out["losses"].values()))
    out["total"].sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters()), \
        [n for n, p in model.named_parameters() if p.grad is None]


def test_paper_architecture_sizes():
    enc, dec = MLPEncoder((1, 28, 28)), MLPDecoder(64, (1, 28, 28))
    assert [l.weight.shape[1:] for l in enc.net if hasattr(l, "weight")] == [(784, 500), (500, 500), (500, 2000)]
    assert [l.weight.shape[1:] for l in dec.net if hasattr(l, "weight")] == [(64, 2000), (2000, 500), (500, 500), (500, 784)]
    cnn = CNNEncoder((3, 32, 32), n_models=2)
    assert [m.conv.out_channels // 2 for m in cnn.net if hasattr(m, "conv")] == [64, 128, 256, 512]
    assert cnn(torch.rand(2, 4, 3, 32, 32)).shape == (2, 4, 2048)
    assert CNNDecoder(256, (3, 32, 32), n_models=2)(torch.rand(2, 4, 256)).shape == (2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="divisible by 16"):
        CNNEncoder((3, 28, 28))


def test_glorot_uniform_bounds_and_zero_bias():
    model = build_model((1, 28, 28), "ae", 64, seeds=[0])
    first = model.encoder.net[0]
    bound = (6 / (784 + 500)) ** 0.5
    assert first.weight.abs().max() <= bound and first.weight.abs().max() > 0.95 * bound
    assert first.bias.abs().sum() == 0


def test_stack_initialisation_equals_alone():
    stack = build_model((3, 32, 32), "soft_vqvae", 16, net="cnn", seeds=[3, 7], num_codes=8)
    alone = build_model((3, 32, 32), "soft_vqvae", 16, net="cnn", seeds=[7], num_codes=8)
    for (name, p_stack), p_alone in zip(stack.named_parameters(), alone.parameters()):
        if p_stack.dim() == 4:                                   # grouped conv: models along dim 0 in blocks
            p_stack = p_stack.unflatten(0, (2, -1))
        torch.testing.assert_close(p_stack[1], p_alone[0] if p_alone.dim() != 4 else p_alone, msg=name)


@pytest.mark.parametrize("name", ["vae", "info_dropout"])
def test_evaluation_decodes_z_e_and_training_a_noisy_code(name):
    model = build_model((1, 28, 28), name, 8, seeds=[0])
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        from_z_e = model.decoder(model.encode(x))                    # (1, 4, 1, 28, 28): the mean's decoding
        model.eval()
        torch.testing.assert_close(model(x[None])["logits"], from_z_e)
        model.train()
        assert (model(x[None])["logits"] - from_z_e).abs().max() > 1e-3


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown bottleneck"):
        build_model((1, 28, 28), "gan", 8)
    with pytest.raises(ValueError, match="unknown network"):
        build_model((1, 28, 28), "ae", 8, net="transformer")
    with pytest.raises(ValueError, match="reconstruction"):
        build_model((1, 28, 28), "ae", 8, recon="l1")
    with pytest.raises(ValueError, match="expected 1 or 2 values"):
        build_model((1, 28, 28), "vae", 8, seeds=[0, 1], beta=[1.0, 2.0, 3.0])
