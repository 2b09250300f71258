"""softvq.codebook and softvq.provenance on tiny models (no training)."""
import math

import pytest
import torch

from softvq import build_model, codebook
from softvq.provenance import code_version


@pytest.mark.parametrize("bottleneck", ["vqvae", "soft_vqvae"])
def test_statistics_of_a_small_stack(bottleneck):
    model = build_model((1, 8, 8), bottleneck, 4, widths=(16, 16, 16), num_codes=5, seeds=[0, 1])
    codes = codebook.assignments(model, torch.rand(30, 1, 8, 8), batch_size=7)
    assert codes["posterior"].shape == (2, 30, 5) and codes["z_e"].shape == (2, 30, 4)
    assert torch.allclose(codes["posterior"].sum(-1), torch.ones(2, 30))
    if bottleneck == "vqvae":                 # the one-hot nearest codeword of z_e (eq. 1), found here directly
        nearest = torch.cdist(codes["z_e"], model.bottleneck.codebook).argmin(-1)       # (2, 30)
        assert torch.equal(codes["posterior"], torch.nn.functional.one_hot(nearest, 5).float())
    for m in range(2):
        s = codebook.statistics(codes, m)
        usage = torch.bincount(codes["posterior"][m].argmax(-1), minlength=5) / 30
        assert s["hard_usage"] == pytest.approx(usage.tolist(), abs=1e-6)
        assert s["codewords_used"] == int((usage > 0).sum()) and s["dead_codewords"] == 5 - s["codewords_used"]
        assert ("sigma" in s) == (bottleneck == "soft_vqvae")


def test_statistics_of_a_known_posterior():
    post = torch.tensor([[[0.5, 0.5, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]]])   # (1, 4, 3)
    sigma = torch.tensor([1.0, 2.0, 3.0])
    s = codebook.statistics({"posterior": post, "log_var": (2 * sigma.log()).expand(1, 4, 3)})
    assert s["hard_usage"] == [0.5, 0.0, 0.5] and s["codewords_used"] == 2 and s["dead_codewords"] == 1
    assert s["perplexity_hard"] == pytest.approx(2.0)
    assert s["soft_usage"] == pytest.approx([0.4, 0.2, 0.4])
    assert s["perplexity_soft"] == pytest.approx(math.exp(-(0.8 * math.log(0.4) + 0.2 * math.log(0.2))))
    assert s["mean_max_posterior"] == pytest.approx(0.75)
    entropies = [2 * 0.5 * math.log(2), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), 0.0,
                 -(0.4 * math.log(0.2) + 0.6 * math.log(0.6))]
    assert s["mean_entropy"] == pytest.approx(sum(entropies) / 4, rel=1e-5)
    assert s["sigma"] == pytest.approx([1.0, 2.0, 3.0]) and (s["sigma_min"], s["sigma_max"]) == pytest.approx((1, 3))


def test_statistics_need_a_quantizer():
    with pytest.raises(ValueError, match="vqvae"):
        codebook.assignments(build_model((1, 8, 8), "ae", 4, widths=(16, 16, 16)), torch.rand(3, 1, 8, 8))


def test_code_version_names_the_commit_and_threads():
    version = code_version()
    assert version["threads"] == torch.get_num_threads() and version["device"] == "cpu"
    assert version["commit"] is None or len(version["commit"]) == 40
    assert version["dirty"] in (None, True, False)
