"""SoftVectorQuantizer as a drop-in layer: dtypes, evaluation mode, layouts, the result, compile, memory."""
import pytest
import torch
from torch import nn

from softvq import SoftVectorQuantizer, soft_quantize
from softvq.quantize import ESTIMATORS, WEIGHTINGS, QuantizerOutput

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def codes(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class QuantizedOnly(nn.Module):
    """The quantizer as one layer of an nn.Sequential: its `quantized` only."""

    def __init__(self, dim, num_codes):
        super().__init__()
        self.vq = SoftVectorQuantizer(dim, num_codes)

    def forward(self, z):
        return self.vq(z).quantized


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_model_cast_to_any_float_dtype_runs_without_autocast(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), QuantizedOnly(4, 8), nn.Linear(4, 6)).to(dtype)
    x = codes(16, 6, dtype=dtype)
    y = model(x)                                         # the next layer gets the dtype it holds
    assert y.dtype == dtype
    (y.float().pow(2).mean() + model[1].vq(model[0](x)).loss).backward()
    for p in (model[0].weight, model[1].vq.codebook):
        assert p.grad.dtype == dtype and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", FLOATS)
def test_output_dtype_is_the_input_dtype_and_the_posterior_is_computed_in_float32_or_float64(dtype):
    vq = SoftVectorQuantizer(4, 8).to(dtype)
    z = codes(10, 4, dtype=dtype)
    out = vq(z)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    assert out.quantized.dtype == dtype and out.posterior.dtype == compute and out.loss.dtype == compute
    reference = SoftVectorQuantizer(4, 8).double()
    reference.load_state_dict(vq.state_dict())
    expected = reference(z.double())
    torch.testing.assert_close(out.posterior.double(), expected.posterior, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.quantized.double(), expected.quantized.to(dtype).double())


def test_the_codebook_may_be_kept_in_float32_in_a_bfloat16_model():
    vq = SoftVectorQuantizer(4, 8).bfloat16().float()
    out = vq(codes(10, 4).bfloat16())
    assert vq.codebook.dtype == torch.float32 and out.quantized.dtype == torch.bfloat16


@pytest.mark.parametrize("source,target", [(torch.float32, torch.bfloat16), (torch.bfloat16, torch.float64),
                                           (torch.float64, torch.float16)])
def test_state_dicts_load_across_dtypes(source, target):
    saved = SoftVectorQuantizer(4, 8).to(source)
    loaded = SoftVectorQuantizer(4, 8).to(target)
    loaded.load_state_dict(saved.state_dict())
    assert loaded.codebook.dtype == target
    torch.testing.assert_close(loaded.codebook, saved.codebook.to(target))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_evaluation_is_deterministic_for_every_estimator(estimator):
    vq = SoftVectorQuantizer(4, 8, noise_std=0.5, estimator=estimator).eval()
    z = codes(20, 4)
    first, second = vq(z), vq(z)
    assert torch.equal(first.quantized, second.quantized) and torch.equal(first.indices, second.indices)
    vq.train()
    assert not torch.equal(vq(z).quantized, vq(z).quantized)      # training draws noise (and Gumbel noise)


def test_a_sample_gives_way_to_the_mean_or_the_argmax_in_evaluation_and_can_be_asked_for():
    z = codes(30, 4)
    sample = SoftVectorQuantizer(4, 8, estimator="sample").eval()
    mean, argmax = SoftVectorQuantizer(4, 8).eval(), SoftVectorQuantizer(4, 8, estimator="argmax").eval()
    for other in (mean, argmax):
        other.load_state_dict(sample.state_dict())
    assert torch.equal(sample(z).quantized, mean(z).quantized)
    sample.eval_estimator = "argmax"
    assert torch.equal(sample(z).quantized, argmax(z).quantized)
    with pytest.raises(ValueError, match="eval_estimator"):
        SoftVectorQuantizer(4, 8, estimator="sample", eval_estimator="sample")
    # asked for explicitly, with fixed Gumbel noise: the Gumbel-max draw, a codeword
    gumbel = -torch.empty(30, 8).exponential_(generator=torch.Generator().manual_seed(1)).log()
    drawn = sample(z, gumbel=gumbel, estimator="sample")
    assert torch.equal(drawn.indices, (sample(z).posterior.log() + gumbel).argmax(-1))
    torch.testing.assert_close(drawn.quantized, sample.codebook[drawn.indices].detach())


def test_channel_first_log_var_and_gumbel_maps_match_the_flat_layout():
    torch.manual_seed(0)
    first = SoftVectorQuantizer(dim=6, num_codes=5, channel_dim=1, learned_log_var=False, estimator="sample")
    flat = SoftVectorQuantizer(dim=6, num_codes=5, learned_log_var=False, estimator="sample")
    flat.load_state_dict(first.state_dict())
    z, log_var, gumbel = codes(2, 6, 3, 4, seed=1), codes(2, 5, 3, 4, seed=2), codes(2, 5, 3, 4, seed=3)
    out = first(z, log_var, gumbel=gumbel)                               # (B, K, H, W) maps, as the issue's
    last = lambda t: t.movedim(1, -1).reshape(-1, t.shape[1])           # noqa: E731
    expected = flat(last(z), last(log_var), gumbel=last(gumbel))
    torch.testing.assert_close(last(out.quantized), expected.quantized)
    torch.testing.assert_close(last(out.posterior), expected.posterior)
    assert out.posterior.shape == (2, 5, 3, 4) and out.indices.shape == (2, 3, 4)
    assert torch.equal(out.indices.reshape(-1), expected.indices)
    with pytest.raises(ValueError, match=r"\(2, 5, 3, 4\)"):
        first(z, log_var.movedim(1, -1))                                 # channel-last log_var for channel-first z


@pytest.mark.parametrize("shape,channel_dim", [((3, 7, 4), -1), ((2, 3, 5, 4), -1), ((3, 4, 7), 1),
                                               ((2, 4, 3, 2, 2), 1), ((3, 4, 7), -2)])
def test_any_number_of_leading_axes(shape, channel_dim):
    vq = SoftVectorQuantizer(4, 8, channel_dim=channel_dim)
    flat = SoftVectorQuantizer(4, 8)
    flat.load_state_dict(vq.state_dict())
    z = codes(*shape)
    out = vq(z)
    positions = z.movedim(channel_dim, -1).shape[:-1]
    assert out.quantized.shape == z.shape and out.indices.shape == positions
    assert out.posterior.movedim(channel_dim, -1).shape == (*positions, 8)
    expected = flat(z.movedim(channel_dim, -1).reshape(-1, 4))
    torch.testing.assert_close(out.quantized.movedim(channel_dim, -1).reshape(-1, 4), expected.quantized)
    torch.testing.assert_close(out.loss, expected.loss)


def test_the_result_unpacks_as_quantized_indices_loss_and_carries_the_extras():
    vq = SoftVectorQuantizer(4, 8, commitment_weight=0.5, codebook_weight=2.0)
    out = vq(codes(12, 4))
    quantized, indices, loss = out
    assert isinstance(out, QuantizerOutput) and quantized is out.quantized and indices is out.indices
    assert loss.shape == () and indices.dtype == torch.int64
    torch.testing.assert_close(loss, 2.0 * out.codebook_loss + 0.5 * out.commitment_loss)
    z_hat = out.posterior @ vq.codebook.detach()
    torch.testing.assert_close(out.codebook_loss, (codes(12, 4) - z_hat).pow(2).sum(-1).mean())
    assert 1 <= float(out.perplexity) <= 8 and not out.posterior.requires_grad


def test_a_stack_has_one_loss_per_model():
    vq = SoftVectorQuantizer(4, 8, n_models=3, learned_log_var=False)
    out = vq(codes(3, 10, 4), codes(3, 10, 8, seed=1))
    assert out.loss.shape == out.perplexity.shape == (3,) and out.indices.shape == (3, 10)
    assert torch.equal(vq.get_codes_from_indices(out.indices)[1], vq.codebook[1][out.indices[1]])


@pytest.mark.parametrize("channel_dim", [-1, 1])
def test_output_from_indices_is_the_forward_value_of_a_hard_estimator(channel_dim):
    vq = SoftVectorQuantizer(4, 8, estimator="argmax", channel_dim=channel_dim)
    z = codes(2, 4, 3, 3) if channel_dim == 1 else codes(2, 3, 4)
    out = vq(z)
    assert vq.get_codes_from_indices(out.indices).shape == (*out.indices.shape, 4)
    torch.testing.assert_close(vq.get_output_from_indices(out.indices), out.quantized.detach())


def test_repr_names_every_setting():
    vq = SoftVectorQuantizer(16, 32, noise_std=0.1, weighting="official", learned_log_var=False, estimator="sample",
                             temperature=0.5, channel_dim=1, eval_estimator="argmax", commitment_weight=0.3,
                             codebook_weight=2.0, chunk_size=128)
    text = repr(vq)
    for setting in ("dim=16", "num_codes=32", "n_models=None", "estimator='sample'", "eval_estimator='argmax'",
                    "temperature=0.5", "noise_std=0.1", "weighting='official'", "learned_log_var=False",
                    "channel_dim=1", "codebook_weight=2.0", "commitment_weight=0.3", "chunk_size=128"):
        assert setting in text, setting


def test_forward_mutates_no_state():
    """DDP-safe: no buffers, and a training forward pass changes nothing in the state dict."""
    vq = SoftVectorQuantizer(4, 8, noise_std=0.1, estimator="sample")
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(codes(10, 4))
    assert list(vq.buffers()) == []
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items())


class TinyAutoencoder(nn.Module):
    def __init__(self, chunk_size):
        super().__init__()
        self.encoder, self.log_var = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 16, 1)
        self.decoder = nn.Conv2d(8, 3, 3, padding=1)
        self.vq = SoftVectorQuantizer(8, 16, channel_dim=1, noise_std=0.1, learned_log_var=False,
                                      chunk_size=chunk_size)

    def forward(self, x):
        quantized, indices, loss = self.vq(self.encoder(x), self.log_var(x))
        return (self.decoder(quantized) - x).pow(2).mean() + loss, indices


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_without_graph_breaks(backend):
    torch.manual_seed(0)
    model = TinyAutoencoder(chunk_size=32 * 16)       # 72 positions, 32 a chunk: the custom backward traced
    compiled = torch.compile(model, backend=backend, fullgraph=True)   # fullgraph: a graph break is an error
    x = codes(2, 3, 6, 6)
    loss, _ = compiled(x)
    loss.backward()
    assert model.vq.codebook.grad is not None and torch.isfinite(model.vq.codebook.grad).all()
    model.eval()
    (eager, eager_idx), (comp, comp_idx) = model(x), compiled(x)
    torch.testing.assert_close(comp, eager)
    assert torch.equal(comp_idx, eager_idx)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("per_input", [True, False])
@pytest.mark.parametrize("lead", [(), (2,)])
def test_chunked_estimator_passes_float64_gradcheck_and_matches_the_full_graph(weighting, per_input, lead):
    z = codes(*lead, 7, 3, dtype=torch.float64).requires_grad_()
    codebook = codes(*lead, 5, 3, seed=1, dtype=torch.float64).requires_grad_()
    log_var = (0.5 * codes(*lead, *((7, 5) if per_input else (5,)), seed=2, dtype=torch.float64)).requires_grad_()
    chunked = lambda *t: soft_quantize(*t, weighting, chunk_size=3 * 5)[0]  # noqa: E731  chunks of 3 inputs
    assert torch.autograd.gradcheck(chunked, (z, codebook, log_var))
    weights = codes(*lead, 7, 3, seed=3, dtype=torch.float64)
    got = torch.autograd.grad((chunked(z, codebook, log_var) * weights).sum(), (z, codebook, log_var))
    full = soft_quantize(z, codebook, log_var, weighting)[0]
    expected = torch.autograd.grad((full * weights).sum(), (z, codebook, log_var))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


# (z, codebook, log_var) shapes with a model axis of 2 that the full path takes: per-model per-input log variances
# with one shared codebook, stacked codebooks with one shared set of variances, a shared z against stacked codebooks
MIXED_SHAPES = [((2, 7, 3), (5, 3), (2, 7, 5)), ((2, 7, 3), (2, 5, 3), (5,)), ((7, 3), (2, 5, 3), (2, 7, 5)),
                ((2, 7, 3), (2, 5, 3), (2, 5))]


@pytest.mark.parametrize("shapes", MIXED_SHAPES, ids=str)
def test_chunked_estimator_takes_every_shape_the_full_path_takes(shapes):
    tensors = [(0.5 * codes(*shape, seed=i, dtype=torch.float64)).requires_grad_() for i, shape in enumerate(shapes)]
    weights = codes(2, 7, 3, seed=9, dtype=torch.float64)
    full = soft_quantize(*tensors)[0]
    expected = torch.autograd.grad((full * weights).sum(), tensors)
    chunked = soft_quantize(*tensors, chunk_size=3 * 5)[0]
    torch.testing.assert_close(chunked, full)
    for g, e in zip(torch.autograd.grad((chunked * weights).sum(), tensors), expected):
        torch.testing.assert_close(g, e)


def test_chunked_backward_recomputes_in_float32_under_an_autocast():
    """A backward pass started inside a bfloat16 autocast (as a training step's may be) recomputes the posterior in
    the forward's float32, giving the gradients computed without the autocast."""
    tensors = [codes(2, 40, 8, seed=0).requires_grad_(), codes(2, 16, 8, seed=1).requires_grad_(),
               (0.5 * codes(2, 40, 16, seed=2)).requires_grad_()]
    out = soft_quantize(*tensors, chunk_size=10 * 16)[0]
    expected = torch.autograd.grad(out.pow(2).sum(), tensors)
    out = soft_quantize(*tensors, chunk_size=10 * 16)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = torch.autograd.grad(out.pow(2).sum(), tensors)
    for g, e in zip(got, expected):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("log_var", [-20.0, 0.0, 20.0])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_chunked_estimator_is_finite_at_extremes(log_var, scale):
    z = (codes(20, 64) * scale).requires_grad_()
    codebook = codes(32, 64, seed=1).requires_grad_()
    lv = torch.full((20, 32), log_var, requires_grad=True)
    z_hat, post = soft_quantize(z, codebook, lv, chunk_size=7 * 32)
    assert torch.isfinite(z_hat).all() and torch.isfinite(post).all()
    z_hat.pow(2).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (z, codebook, lv))


def saved_for_backward(fn) -> tuple[list[torch.Tensor], object]:
    """The tensors autograd keeps for the backward pass of fn(), and fn()'s result."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        result = fn()
    return saved, result


def test_memory_is_bounded_by_the_chunk_not_by_n_times_k():
    """Beyond its inputs, the fused path keeps for backward only the (N, K) posterior it returns (the same
    storage, not a copy), where the full graph keeps every (N, K) intermediate."""
    n, k, d = 600, 64, 8
    z, log_var = codes(n, d), torch.zeros(k)
    full, chunked = SoftVectorQuantizer(d, k, chunk_size=None), SoftVectorQuantizer(d, k, chunk_size=100 * k)
    big = lambda tensors: [t for t in tensors if t.numel() >= n * k]      # noqa: E731
    assert len(big(saved_for_backward(lambda: full(z, log_var))[0])) > 1   # the whole (N, K) graph is kept
    saved, out = saved_for_backward(lambda: chunked(z, log_var))
    assert [t.untyped_storage().data_ptr() for t in big(saved)] == [out.posterior.untyped_storage().data_ptr()]
    assert max(t.numel() for t in saved if t.numel() < n * k) <= max(n * d, 100 * k)

