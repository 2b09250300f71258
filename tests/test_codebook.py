"""softvq.codebook and softvq.provenance on tiny models (no training)."""
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
    stats = [codebook.statistics(codes, m) for m in range(2)]
    for s in stats:
        assert s["K"] == 5 and s["codewords_used"] + s["dead_codewords"] == 5
        assert sum(s["hard_usage"]) == pytest.approx(1.0, abs=1e-5)
        assert 1.0 <= s["perplexity_hard"] <= s["codewords_used"] + 1e-5
    if bottleneck == "soft_vqvae":
        assert all(sum(s["soft_usage"]) == pytest.approx(1.0, abs=1e-5) for s in stats)
        assert all(0.2 <= s["mean_max_posterior"] <= 1.0 and s["sigma_min"] <= s["sigma_max"] for s in stats)
    else:
        assert codes["posterior"].max(-1).values.eq(1).all() and "sigma" not in stats[0]


def test_hard_usage_counts_nearest_codewords():
    codes = {"posterior": torch.tensor([[[1., 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1]]])}
    s = codebook.statistics(codes)
    assert s["hard_usage"] == [0.5, 0.0, 0.5] and s["codewords_used"] == 2 and s["dead_codewords"] == 1
    assert s["perplexity_hard"] == pytest.approx(2.0)


def test_statistics_need_a_quantizer():
    with pytest.raises(ValueError, match="vqvae"):
        codebook.assignments(build_model((1, 8, 8), "ae", 4, widths=(16, 16, 16)), torch.rand(3, 1, 8, 8))


def test_code_version_names_the_commit_and_threads():
    version = code_version()
    assert version["threads"] == torch.get_num_threads() and version["device"] == "cpu"
    assert version["commit"] is None or len(version["commit"]) == 40
    assert version["dirty"] in (None, True, False)
