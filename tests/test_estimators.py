"""The estimator option (posterior mean, sample, argmax), the drop-in quantizer on feature maps, and SQ-VAE."""
import math
import pytest
import torch

from softvq import SoftVectorQuantizer, build_model, nearest_codeword, soft_quantize
from softvq.bottlenecks import SoftVectorQuantized, StochasticQuantized
from softvq.nets import reset_stacked
from softvq.quantize import ESTIMATORS, estimate, gumbel_like, posterior_logits


def problem(seed=0, n=6, k=5, d=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(k, d, generator=g), 0.5 * torch.randn(n, k, generator=g)


def test_mean_estimator_is_soft_quantize_bit_for_bit():
    z, codebook, log_var = problem()
    z_hat, post = estimate(posterior_logits(z, codebook, log_var), codebook, "mean")
    expected, expected_post = soft_quantize(z, codebook, log_var)
    assert torch.equal(z_hat, expected) and torch.equal(post, expected_post)


def test_sample_frequencies_match_the_posterior():
    z, codebook, log_var = problem(1, n=2)
    logits = posterior_logits(z, codebook, log_var)
    posterior = torch.softmax(logits, -1)
    draws = 40_000
    g = torch.Generator().manual_seed(0)
    gumbel = gumbel_like(logits.expand(draws, *logits.shape), g)
    _, weights = estimate(logits.expand(draws, *logits.shape), codebook, "sample", gumbel=gumbel)
    frequencies = weights.mean(0)                               # one-hot in the forward pass
    # binomial standard error at 40,000 draws is at most 0.0025; 4.5 of them
    torch.testing.assert_close(frequencies, posterior, atol=0.012, rtol=0)


def test_sample_and_argmax_hand_the_decoder_a_codeword_and_gradients_to_the_posterior():
    z, codebook, log_var = problem(2)
    for estimator in ("sample", "argmax"):
        lv = log_var.clone().requires_grad_()
        z_hat, weights = estimate(posterior_logits(z, codebook, lv), codebook, estimator)
        assert torch.equal(weights.detach().sum(-1), torch.ones(len(z)))
        assert set(weights.detach().unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(z_hat.detach(), codebook[weights.detach().argmax(-1)])
        z_hat.pow(2).sum().backward()
        assert lv.grad.abs().sum() > 0, estimator


def test_argmax_is_the_nearest_codeword_when_all_sigmas_are_equal():
    z, codebook, _ = problem(3, n=200, k=16)
    for value in (-3.0, 0.0, 4.0):
        log_var = torch.full((16,), value)
        z_hat, _ = estimate(posterior_logits(z, codebook, log_var), codebook, "argmax")
        torch.testing.assert_close(z_hat, nearest_codeword(z, codebook)[0], rtol=0, atol=0)


def test_unknown_estimator_is_refused():
    z, codebook, log_var = problem()
    with pytest.raises(ValueError, match="estimator"):
        estimate(posterior_logits(z, codebook, log_var), codebook, "mode")
    with pytest.raises(ValueError, match="estimator"):
        SoftVectorQuantizer(4, 8, estimator="mode")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_quantizer_on_channel_first_feature_maps(estimator):
    torch.manual_seed(0)
    vq = SoftVectorQuantizer(dim=8, num_codes=16, estimator=estimator, channel_dim=1)
    features = torch.randn(2, 8, 5, 7, requires_grad=True)       # (B, C, H, W)
    out = vq(features)
    assert out.quantized.shape == features.shape
    assert out.posterior.shape == (2, 16, 5, 7) and out.indices.shape == (2, 5, 7)
    assert out.codebook_loss.shape == () and 1 <= float(out.perplexity) <= 16
    # the same codes laid out as (N, dim) give the same answer
    flat = SoftVectorQuantizer(dim=8, num_codes=16, estimator="mean")
    flat.load_state_dict(vq.state_dict())
    if estimator == "mean":
        out_flat = flat(features.detach().movedim(1, -1).reshape(-1, 8))
        torch.testing.assert_close(out.quantized.detach().movedim(1, -1).reshape(-1, 8), out_flat.quantized)
        torch.testing.assert_close(out.perplexity, out_flat.perplexity)
    (out.quantized.sum() + out.loss).backward()
    assert features.grad.shape == features.shape and vq.codebook.grad is not None


def test_quantizer_is_float32_under_bfloat16_autocast():
    vq = SoftVectorQuantizer(dim=4, num_codes=8)
    z = torch.randn(10, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z.bfloat16())
    assert out.posterior.dtype == torch.float32 and out.loss.dtype == torch.float32
    assert out.quantized.dtype == torch.bfloat16                 # the input's dtype


def test_estimator_bottleneck_trains_and_the_mean_is_unchanged():
    x = torch.rand(2, 4, 1, 28, 28)
    kwargs = dict(num_codes=8, seeds=[0, 1], widths=[16, 16, 16])
    outs = {}
    for estimator in ESTIMATORS:
        model = build_model((1, 28, 28), "soft_vqvae", 4, estimator=estimator, temperature=[0.5, 2.0], **kwargs)
        out = model(x)
        out["total"].sum().backward()
        assert all(torch.isfinite(v).all() for v in out["losses"].values())
        outs[estimator] = out
    default = build_model((1, 28, 28), "soft_vqvae", 4, **kwargs)(x)
    assert torch.equal(default["total"], outs["mean"]["total"])


def test_sigma_floor_floors_every_sigma_and_zero_changes_nothing():
    h = torch.randn(2, 5, 16)
    kwargs = dict(in_features=16, dim=4, n_models=2, num_codes=8)
    plain = SoftVectorQuantized(**kwargs)
    reset_stacked(torch.nn.ModuleList([plain]), [torch.Generator().manual_seed(s) for s in (0, 1)])
    floored = SoftVectorQuantized(**kwargs, sigma_floor=[0.0, 0.5])
    floored.load_state_dict({k: v for k, v in plain.state_dict().items() if k != "sigma_floor"}, strict=False)
    lv_plain, lv_floor = plain.log_variances(h), floored.log_variances(h)
    assert torch.equal(lv_plain[0], lv_floor[0])
    assert (lv_floor[1].exp().sqrt() >= 0.5 - 1e-6).all()
    torch.testing.assert_close(lv_floor[1].exp(), lv_plain[1].exp() + 0.25)


def test_sqvae_loss_is_the_closed_form_expectation_and_evaluation_is_hard():
    bn = StochasticQuantized(16, 4, n_models=2, num_codes=8, var_init=[0.5, 2.0])
    reset_stacked(torch.nn.ModuleList([bn]), [torch.Generator().manual_seed(s) for s in (0, 1)])
    h = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(0))
    z_q, z, losses = bn(h)
    s2 = torch.tensor([0.5, 2.0])[:, None, None].double()
    dist = ((z.double()[:, :, None] - bn.codebook.double()[:, None]) ** 2).sum(-1)
    log_p = torch.log_softmax(-dist / (2 * s2), -1)
    expected = ((log_p.exp() * dist).sum(-1) / (2 * s2[..., 0]) + (log_p.exp() * log_p).sum(-1)).mean(-1)
    assert torch.isfinite(losses["sq"]).all()
    torch.testing.assert_close(losses["sq"].double(), expected, rtol=1e-5, atol=1e-5)
    # training: a convex combination of codewords, with gradients to the variance and the codebook
    (z_q.sum() + losses["sq"].sum()).backward()
    assert bn.log_var.grad.abs().sum() > 0 and bn.codebook.grad.abs().sum() > 0
    bn.eval()
    z_eval, _, _ = bn(h)
    torch.testing.assert_close(z_eval, nearest_codeword(z, bn.codebook)[0])


def test_estimator_swap_on_a_trained_stack_is_recorded(tmp_path, mnist_root):
    """Theorem 1 at test time: every soft VQ-VAE results JSON carries the swap of its estimator."""
    from softvq.experiments import Config, run_stack
    configs = [Config(iterations=20, train_size=200, eval_size=100, kmeans_n_init=2, probe_iterations=5,
                      noise_std=0.1, seed=s, K=8, d=4) for s in (0, 1)]
    records = run_stack(configs, root=mnist_root, results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c",
                        progress=False)
    for record in records:
        swap = record["estimator_swap"]
        assert set(swap) == set(ESTIMATORS)
        assert all(v >= 0 and math.isfinite(v) for s in swap.values() for v in s.values())


def test_estimator_swap_mean_is_the_trained_decoder_input():
    """Without noise the swap's "mean" decodes exactly what the trained model decodes at evaluation."""
    from softvq.estimator_swap import swap
    model = build_model((1, 28, 28), "soft_vqvae", 4, seeds=[0], num_codes=8, widths=[16, 16, 16])
    x = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    scores = swap(model, x)[0]
    with model.evaluating():
        (xb,) = model.stacked_batches(x, len(x))
        expected = model(xb)["losses"]["recon"]
    assert math.isclose(scores["mean"]["recon_loss"], float(expected), rel_tol=1e-5)


def test_committed_estimator_choices_are_what_the_committed_sweep_chooses():
    from softvq import experiments
    assert experiments.choose_estimators() == experiments.ESTIMATOR_CHOICES


def test_cli_presets_of_the_estimators_study():
    from softvq import __main__ as cli
    args = cli.build_parser().parse_args(["preset", "estimators-sweep"])
    sweep = cli.build_configs(args)
    assert len(sweep) == 12 and all(c.validation and c.iterations == 5_000 for c in sweep)
    fashion = cli.build_configs(cli.build_parser().parse_args(
        ["preset", "estimators-sweep", "--dataset", "fashion-mnist", "--seeds", "0", "1", "--only", "sqvae"]))
    assert len(fashion) == 12 and {(c.dataset, c.bottleneck, c.validation) for c in fashion} == {
        ("fashion-mnist", "sqvae", True)} and {c.var_init for c in fashion} == {0.1, 1.0, 10.0}
    table = cli.build_configs(cli.build_parser().parse_args(["preset", "estimators", "--seeds", "0", "1"]))
    assert {c.bottleneck for c in table} == {"soft_vqvae", "sqvae", "vqvae"} and len(table) == 10
    assert {c.estimator for c in table} == {"mean", "sample", "argmax"}
