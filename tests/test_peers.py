"""Today's quantizers (softvq.peers): the bottleneck interface, training in a stack, a stack equal to its models
trained alone, the k-means initialisation on 1,024 latents, their Config fields, and a scored run."""
import pytest
import torch

pytest.importorskip("vector_quantize_pytorch")

from conftest import make_record  # noqa: E402
from softvq import build_model, experiments, quantizer_table, runner, verdicts  # noqa: E402
from softvq.config import Config  # noqa: E402
from softvq.peers import PEER_KINDS, PEERS  # noqa: E402
from softvq.train import DATA_INIT_SIZE, train  # noqa: E402

OPTIONS = {"vq_ema": dict(dead_code=0.05), "fsq": dict(levels="4-4-4", num_codes=64, input_scale=2.0),
           "simvq": {}, "diveq": dict(dead_code=0.05)}


def tiny(kind, seeds=(0, 1), **extra):
    options = {"num_codes": 16, **OPTIONS[kind], **extra}
    return build_model((1, 8, 8), PEERS[kind], 4, seeds=seeds, widths=(16, 16, 16), **options)


def images(n=1200, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)).round()


def parameters_and_buffers(model):
    return {**{k: v.detach().clone() for k, v in model.bottleneck.quantizers.named_parameters()},
            **{k: v.clone() for k, v in model.bottleneck.quantizers.named_buffers() if v.is_floating_point()}}


@pytest.mark.parametrize("kind", PEER_KINDS)
def test_a_stack_trains_and_its_quantizers_move(kind):
    model = tiny(kind)
    x = images()
    out = model(x[:5].expand(2, 5, 1, 8, 8))
    assert out["logits"].shape == (2, 5, 1, 8, 8) and out["z_e"].shape == (2, 5, 4)
    for name, loss in out["losses"].items():
        assert loss.shape == (2,) and torch.isfinite(loss).all(), name
    expected_terms = {"vq_ema": {"recon", "commitment"}, "simvq": {"recon", "vq"}}.get(kind, {"recon"})
    assert set(out["losses"]) == expected_terms
    before = parameters_and_buffers(model)
    history = train(model, x, [0, 1], iterations=20, batch_size=8, log_every=10, progress=False)
    assert len(history["iteration"]) == 2
    after = parameters_and_buffers(model)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved, f"nothing of the {kind} quantizers changed in training"
    z_e, z_q, index = model.bottleneck.codes(model.encoder(x[:7].expand(2, 7, 1, 8, 8)))
    assert z_q.shape == (2, 7, 4) and index.shape == (2, 7) and int(index.max()) < model.bottleneck.num_codes
    assert index.dtype == torch.int64                           # FSQ's own indices are int32


@pytest.mark.parametrize("kind", ["vq_ema", "diveq"])
def test_a_model_trained_in_a_stack_equals_the_model_trained_alone(kind):
    """Every random draw of the library (k-means, dead-code replacement, DiVeQ's noise) comes from the model's
    own generators: model 1 of a stack of two is model 1 trained alone."""
    x = images()
    stack, alone = tiny(kind, seeds=(3, 4)), tiny(kind, seeds=(4,))
    train(stack, x, [3, 4], iterations=15, batch_size=8, progress=False)
    train(alone, x, [4], iterations=15, batch_size=8, progress=False)
    probe = x[:50]
    torch.testing.assert_close(stack.encode(probe, decoder_input=True)[1], alone.encode(probe, decoder_input=True)[0],
                               rtol=1e-5, atol=1e-5)


def test_kmeans_initialisation_uses_1024_training_latents_not_the_first_batch():
    model = tiny("vq_ema", seeds=(0,))
    x = images(3000)
    seen = []
    original = type(model.bottleneck.quantizers[0]._codebook).init_embed_

    def spy(self, data, mask=None):                 # the library calls it every step: it returns once initialised
        if not self.initted:
            seen.append(data.shape)
        return original(self, data, mask)
    type(model.bottleneck.quantizers[0]._codebook).init_embed_ = spy
    try:
        train(model, x, [0], iterations=2, batch_size=8, progress=False)
    finally:
        type(model.bottleneck.quantizers[0]._codebook).init_embed_ = original
    assert seen == [torch.Size([1, DATA_INIT_SIZE, 4])]
    codebook = model.bottleneck.quantizers[0]._codebook.embed[0]
    assert len(torch.unique(codebook.round(decimals=5), dim=0)) == 16       # 16 distinct k-means centres


def test_peer_fields_are_checked_and_leave_old_run_ids_alone():
    assert Config().run_id == "mnist-soft_vqvae-d64-it40000-s0-ec21f1d6"     # unchanged by the new fields
    with pytest.raises(ValueError, match="rotation_trick"):
        Config(bottleneck="vqvae", rotation_trick=False)
    with pytest.raises(ValueError, match="levels"):
        Config(bottleneck="fsq")
    with pytest.raises(ValueError, match="K = 128"):
        Config(bottleneck="fsq", levels="5-5-5")
    with pytest.raises(ValueError, match="dead_code"):
        Config(bottleneck="diveq")
    with pytest.raises(ValueError, match="levels"):
        Config(bottleneck="fsq", levels="8-2-8", K=128)
    a, b = Config(bottleneck="vq_ema", rotation_trick=False), Config(bottleneck="vq_ema", ema_decay=0.99)
    assert len({a.run_id, b.run_id, Config(bottleneck="vq_ema").run_id}) == 3
    assert a.stack_key() == b.stack_key()                         # per-model settings: one stack


def test_a_peer_run_is_scored_on_both_codes(tmp_path, monkeypatch):
    """A scored run of a peer quantizer records the scores of z_e and of the decoder's input, its test
    reconstruction and its codebook usage."""
    x, y = images(400), torch.arange(400) % 10
    monkeypatch.setattr(experiments.data, "load_dataset", lambda name, split, root=None: (x, y))
    config = Config(bottleneck="vq_ema", d=4, K=16, iterations=10, dead_code=0.05, kmeans_n_init=2,
                    probe_iterations=5, batch_size=8)
    monkeypatch.setattr(runner, "build_stack", lambda configs, x_train: tiny("vq_ema", seeds=[c.seed for c in configs]))
    (record,) = runner.run_stack([config], results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c", progress=False)
    assert set(record["metrics_quantized"]) == set(record["metrics"]) == {"cluster_acc", "nmi", "classification_acc"}
    assert record["reconstruction"]["mse"] > 0 and record["reconstruction"]["recon"] > 0
    assert 1 <= record["codebook"]["codewords_used"] <= 16


def write_sweep(tmp_path, scores):
    """Records of the quantizers sweep's runs (2 seeds) with clustering accuracy scores[row] (default 0.5)."""
    sweep = experiments.quantizers_sweep((0, 1), 100)
    for name, configs in sweep.items():
        for c in configs:
            record = make_record(c, scores.get(name, 0.5), 0.5, 0.9)
            experiments.write_json(record, experiments.result_path(c, tmp_path))
    return sweep


def test_choose_quantizers_keeps_the_rotation_default_and_names_a_better_straight_through(tmp_path):
    write_sweep(tmp_path, {"vq_ema rotation beta 1 decay 0.8": 0.6, "vq_ema straight-through beta 0.25 decay 0.99": 0.7,
                           "simvq straight-through beta 1": 0.6, "fsq levels 5-5-5 scale 0.25": 0.6,
                           "diveq variance 0.05": 0.6})
    chosen = experiments.choose_quantizers("mnist", (0, 1), 100, tmp_path)
    assert chosen == {"vq_ema (rotation)": "vq_ema rotation beta 1 decay 0.8",
                      "vq_ema (straight-through)": "vq_ema straight-through beta 0.25 decay 0.99",
                      "simvq (straight-through)": "simvq straight-through beta 1",
                      "fsq": "fsq levels 5-5-5 scale 0.25", "diveq": "diveq variance 0.05", "pending": []}
    rows = experiments.quantizers("mnist", (0,), 100, chosen)
    assert rows["fsq"][0].K == 125 and rows["vq_ema (straight-through)"][0].rotation_trick is False
    assert {c.bottleneck for cs in rows.values() for c in cs} == {"soft_vqvae", "vqvae", "sqvae", *PEER_KINDS}
    assert all(not c.validation and c.iterations == 100 for cs in rows.values() for c in cs)


def test_a_quantizer_whose_sweep_is_incomplete_is_named_pending_not_chosen(tmp_path):
    sweep = write_sweep(tmp_path, {})
    for c in sweep["fsq levels 8-4-4 scale 0.01"]:
        experiments.result_path(c, tmp_path).unlink()
    chosen = experiments.choose_quantizers("mnist", (0, 1), 100, tmp_path)
    assert "fsq" not in chosen and chosen["pending"] == ["fsq"] and "diveq" in chosen
    assert "pending" not in experiments.quantizers("mnist", (0,), 100, chosen)


def test_choose_quantizers_keeps_one_vectorquantize_row_when_the_default_wins(tmp_path):
    write_sweep(tmp_path, {"vq_ema rotation beta 0.25 decay 0.8": 0.7})
    chosen = experiments.choose_quantizers("mnist", (0, 1), 100, tmp_path)
    assert [k for k in chosen if k.startswith("vq_ema")] == ["vq_ema (rotation)"]


def test_the_rotation_effect_pairs_rows_that_differ_only_in_the_estimator(tmp_path):
    sweep = write_sweep(tmp_path, {"vq_ema rotation beta 1 decay 0.8": 0.6, "vq_ema straight-through beta 1 decay 0.8": 0.4})
    df, _ = quantizer_table.quantizer_table(sweep, [tmp_path])
    effect = quantizer_table.rotation_effect(df)
    assert len(effect) == 7 and set(effect["quantizer"]) == {"vq_ema", "simvq"}        # 5 + 2 pairs
    line = effect[(effect["quantizer"] == "vq_ema") & (effect["setting"] == "beta 1 decay 0.8")].iloc[0]
    assert (line["cluster_acc_on"], line["cluster_acc_off"], line["cluster_acc_diff"]) == pytest.approx((60, 40, 20))
    text = verdicts.rotation_verdict(effect)
    assert "**vq_ema**" in text and "clustering accuracy +4.00 points (higher in 1 of 5)" in text


@pytest.mark.parametrize("dataset", sorted(experiments.QUANTIZER_CHOICES))
def test_the_committed_choices_are_what_the_committed_sweeps_choose(dataset):
    chosen = experiments.choose_quantizers(dataset)
    assert {k: v for k, v in chosen.items() if k != "pending"} == experiments.QUANTIZER_CHOICES[dataset]


@pytest.mark.parametrize("dataset", sorted(experiments.SQVAE_CHOICES))
def test_the_committed_sqvae_choices_are_what_the_committed_sweeps_choose(dataset):
    chosen = experiments.choose_estimators(experiments.SQVAE_SWEEP_SEEDS[dataset], dataset=dataset,
                                           families=("sqvae",))
    assert chosen == {"sqvae": experiments.SQVAE_CHOICES[dataset]}
