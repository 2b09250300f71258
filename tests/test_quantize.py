import math

import pytest
import torch

from softvq import SoftVectorQuantizer, soft_quantize, nearest_codeword
from softvq.quantize import perplexity, squared_distances


def direct_posterior(z, codebook, log_var):
    """Eq. 7 straight from the Gaussian densities, in float64."""
    z, codebook, log_var = z.double(), codebook.double(), log_var.double()
    d = z.shape[-1]
    var = log_var.exp()                                          # (N, K)
    dist = ((z[:, None, :] - codebook[None]) ** 2).sum(-1)
    density = (2 * math.pi * var) ** (-d / 2) * torch.exp(-dist / (2 * var))
    return density / density.sum(-1, keepdim=True)


def test_matches_direct_float64_computation():
    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(50, 4, generator=g), torch.randn(6, 4, generator=g)
    log_var = torch.randn(50, 6, generator=g) * 0.5
    z_hat, post = soft_quantize(z, codebook, log_var)
    expected = direct_posterior(z, codebook, log_var)
    torch.testing.assert_close(post.double(), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z_hat.double(), expected @ codebook.double(), atol=1e-5, rtol=1e-4)
    assert torch.allclose(post.sum(-1), torch.ones(50))


def test_per_component_log_var_broadcasts():
    g = torch.Generator().manual_seed(1)
    z, codebook, lv = torch.randn(7, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, generator=g)
    a, _ = soft_quantize(z, codebook, lv)
    b, _ = soft_quantize(z, codebook, lv.expand(7, 5))
    torch.testing.assert_close(a, b)


def test_small_sigma_gives_hard_quantizer():
    g = torch.Generator().manual_seed(2)
    z, codebook = torch.randn(100, 8, generator=g), torch.randn(16, 8, generator=g)
    z_hat, _ = soft_quantize(z, codebook, torch.full((16,), -20.0))
    z_q, _ = nearest_codeword(z, codebook)
    torch.testing.assert_close(z_hat, z_q)


def test_equal_large_sigma_gives_codebook_mean():
    g = torch.Generator().manual_seed(3)
    z, codebook = torch.randn(10, 8, generator=g), torch.randn(16, 8, generator=g)
    z_hat, post = soft_quantize(z, codebook, torch.full((16,), 20.0))
    torch.testing.assert_close(z_hat, codebook.mean(0).expand(10, 8), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(post, torch.full_like(post, 1 / 16), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("log_var", [-20.0, 0.0, 20.0])
@pytest.mark.parametrize("scale", [1.0, 1e3])   # squared distances up to ~1e6 and more
def test_finite_at_extremes(log_var, scale):
    g = torch.Generator().manual_seed(4)
    z = (torch.randn(20, 64, generator=g) * scale).requires_grad_()
    codebook = (torch.randn(32, 64, generator=g)).requires_grad_()
    lv = torch.full((20, 32), log_var, requires_grad=True)
    z_hat, post = soft_quantize(z, codebook, lv)
    assert torch.isfinite(z_hat).all() and torch.isfinite(post).all()
    z_hat.pow(2).sum().backward()
    for t in (z, codebook, lv):
        assert torch.isfinite(t.grad).all()


def test_squared_distances_are_exact_and_nonnegative():
    g = torch.Generator().manual_seed(5)
    z, codebook = torch.randn(30, 5, generator=g), torch.randn(9, 5, generator=g)
    torch.testing.assert_close(squared_distances(z, codebook), torch.cdist(z, codebook) ** 2, atol=1e-4, rtol=1e-4)
    assert (squared_distances(codebook, codebook) >= 0).all()


def test_official_weighting_uses_plus_log_sigma():
    z, codebook = torch.zeros(1, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    lv = torch.tensor([0.0, 2.0])                             # equal distances, different variances
    _, post = soft_quantize(z, codebook, lv, weighting="official")
    logits = -0.5 * torch.exp(-lv) + 0.5 * lv
    torch.testing.assert_close(post[0], torch.softmax(logits, -1))
    with pytest.raises(ValueError, match="weighting"):
        soft_quantize(z, codebook, lv, weighting="other")


def test_svhn_code_weighting_scales_the_posterior_by_sigma():
    g = torch.Generator().manual_seed(8)
    z, codebook, lv = torch.randn(5, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(5, 4, generator=g)
    z_hat, post = soft_quantize(z, codebook, lv, weighting="svhn_code")
    _, official = soft_quantize(z, codebook, lv, weighting="official")
    torch.testing.assert_close(post, official)                    # the same (normalised) posterior
    torch.testing.assert_close(z_hat, (official * torch.exp(0.5 * lv)) @ codebook)
    weights = official * torch.exp(0.5 * lv)
    assert not torch.allclose(weights.sum(-1), torch.ones(5))     # the weights of z_hat do not sum to one


def test_shape_errors():
    with pytest.raises(ValueError, match="dimension"):
        soft_quantize(torch.zeros(3, 4), torch.zeros(5, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="components"):
        soft_quantize(torch.zeros(3, 4), torch.zeros(5, 4), torch.zeros(3, 6))


def test_stacked_codebook_matches_per_model():
    g = torch.Generator().manual_seed(6)
    z, codebook, lv = torch.randn(3, 10, 4, generator=g), torch.randn(3, 6, 4, generator=g), torch.randn(3, 10, 6, generator=g)
    z_hat, _ = soft_quantize(z, codebook, lv)
    for m in range(3):
        torch.testing.assert_close(z_hat[m], soft_quantize(z[m], codebook[m], lv[m])[0])
    z_q, idx = nearest_codeword(z, codebook)
    for m in range(3):
        torch.testing.assert_close(z_q[m], nearest_codeword(z[m], codebook[m])[0])


def test_quantizer_module_gradients_reach_encoder_codebook_and_variances():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(10, 4)
    log_var_head = torch.nn.Linear(10, 8)
    decoder = torch.nn.Linear(4, 10)
    vq = SoftVectorQuantizer(4, 8, noise_std=0.1, learned_log_var=False)
    x = torch.randn(16, 10)
    z_e = encoder(x)
    z_dec, _, loss = vq(z_e, log_var_head(x))
    (decoder(z_dec) - x).pow(2).mean().add(loss).backward()
    for p in (encoder.weight, log_var_head.weight, vq.codebook, decoder.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_quantizer_learned_variances_and_errors():
    vq = SoftVectorQuantizer(4, 8)
    out = vq(torch.randn(5, 4))
    assert out.quantized.shape == (5, 4) and out.posterior.shape == (5, 8)
    with pytest.raises(ValueError, match="log_var"):
        SoftVectorQuantizer(4, 8, learned_log_var=False)(torch.randn(5, 4))


def test_perplexity():
    assert perplexity(torch.full((10, 4), 0.25)).item() == pytest.approx(4.0)
    assert perplexity(torch.zeros(10, dtype=torch.int64), 4).item() == pytest.approx(1.0)
