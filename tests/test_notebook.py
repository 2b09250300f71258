"""softvq.notebook: a notebook's setup from its parameters, the section pattern (train what is missing, tabulate,
seed statistics) and the figure data kept beside the figures (t-SNE maps, reconstructions), with no training:
the runner is replaced by recorders wherever a test would train."""
import numpy as np
import pytest
import torch

from softvq import experiments, notebook, runner, store
from conftest import make_record


@pytest.fixture
def quick(tmp_path):
    """A quick-budget setup whose folders are under tmp_path."""
    folders = {k: str(tmp_path / k) for k in ("figures_dir", "results_dir", "checkpoint_dir")}
    return notebook.setup("quick", folders)


@pytest.fixture
def trainings(monkeypatch):
    """runner.run replaced by a recorder: the run ids and keywords of each call."""
    calls = []
    monkeypatch.setattr(runner, "run", lambda configs, **kw: calls.append(([c.run_id for c in configs], kw)))
    return calls


def test_overrides_hold_options_and_budget_settings_and_the_settings_in_view_win(tmp_path):
    s = notebook.setup("quick", {"kmeans_n_init": 7, "iterations": 30, "device": "cpu", "launcher": {"kind": "local"},
                                 "figures_dir": str(tmp_path / "f")}, iterations=40, seeds=None)
    assert s.settings["kmeans_n_init"] == 7 and s.settings["iterations"] == 40 and s.settings["seeds"] == (0,)
    assert s.options["device"] == "cpu" and s.options["launcher"] == {"kind": "local"}
    assert s.options["precision"] == "fp32" and s.figures == tmp_path / "f" and s.figures.is_dir()
    assert s.presets == {**s.evaluation, "precision": "fp32", "compile": False}
    assert s.evaluation["kmeans_n_init"] == 7
    with pytest.raises(ValueError, match=r"unknown overrides \['n', 'sigma'\]"):
        notebook.setup("quick", {"n": 5, "sigma": 1.0})


def test_a_notebook_that_may_not_train_never_calls_the_runner(quick, trainings, monkeypatch):
    fetched = []
    monkeypatch.setattr(notebook.data, "download", lambda names, root=None: fetched.append(list(names)))
    configs = experiments.table1((0,), 20)
    quick.train_missing = False
    quick.run(configs)
    assert trainings == [] and fetched == []
    quick.train_missing = True
    quick.options.update(download=True, launcher={"kind": "local"})
    quick.run(configs)
    (run_ids, kw), = trainings
    assert run_ids == [c.run_id for c in configs] and kw["launcher"] == {"kind": "local"}
    assert kw["results_dir"] == quick.results and kw["checkpoint_dir"] == quick.checkpoints
    assert fetched == [["mnist"]]                                       # the data of the runs, once, first


def write_results(configs, results, scores):
    for c in configs:
        if (c.bottleneck, c.seed) in scores:
            store.write_json(make_record(c, *scores[c.bottleneck, c.seed]), store.result_path(c, results))


def test_tabulate_writes_the_table_and_its_statistics_and_names_the_missing_runs(quick, trainings, capsys):
    configs = experiments.table1((0, 1), 20)
    write_results(configs, quick.results, {("ae", 0): (0.5, 0.5, 0.9), ("ae", 1): (0.54, 0.52, 0.92),
                                           ("soft_vqvae", 0): (0.8, 0.7, 0.95), ("soft_vqvae", 1): (0.82, 0.72, 0.96)})
    df, stats = quick.tabulate(configs, "table1", reference="soft_vqvae", statistics=True)
    assert len(trainings) == 1                                       # asked to train what is missing
    assert (quick.figures / "table1.md").exists() and (quick.figures / "table1_stats.md").exists()
    assert df.loc["ae", "seeds"] == 2 and len(df.attrs["missing"]) == 8
    printed = capsys.readouterr().out
    assert printed.startswith("missing runs (8):\n  ") and str(store.result_path(configs[4], quick.results)) in printed
    assert stats.attrs["reference"] == "soft_vqvae"
    assert "model" in printed                                        # both tables shown (printed outside IPython)


def test_a_codebook_section_tabulates_the_stored_statistics_and_says_what_they_mean(quick, trainings, monkeypatch):
    verdicts = []
    monkeypatch.setattr(notebook, "verdict", lambda title, text: verdicts.append((title, text)))
    configs = [c for c in experiments.table1((0, 1), 20) if c.bottleneck in ("vqvae", "soft_vqvae")]
    for c, used in zip(configs, (2, 4, 3)):                          # the soft VQ-VAE's seed 1 is missing
        record = make_record(c, 0.5, 0.5, 0.9)
        record["codebook"] = {"K": 4, "codewords_used": used, "dead_codewords": 4 - used, "perplexity_hard": 2.0}
        store.write_json(record, store.result_path(c, quick.results))
    df, records = quick.codebook(configs, "cb", note="a note", title="Codebooks.")
    assert len(trainings) == 1 and [len(records[row]) for row in ("vqvae", "soft_vqvae")] == [2, 1]
    assert df.loc["vqvae", "codewords_used"] == 3 and df.loc["soft_vqvae", "seeds"] == 1
    assert "a note" in (quick.figures / "cb.md").read_text()
    (title, text), = verdicts
    assert title == "Codebooks." and "uses 3 of its K = 4 codewords (75%)" in text


def test_a_chosen_reference_waits_for_every_run(quick, trainings):
    sweep = {"low": experiments.table1((0,), 20)[:1], "high": experiments.table1((0,), 20)[1:2]}   # ae, vae
    write_results(sweep["high"], quick.results, {("vae", 0): (0.6, 0.6, 0.93)})
    assert quick.tabulate(sweep, "sweep", reference=lambda rows, results: "high")[1].attrs["reference"] == "low"
    write_results(sweep["low"], quick.results, {("ae", 0): (0.5, 0.5, 0.9)})
    chosen = quick.tabulate(sweep, "sweep", reference=lambda rows, results: sorted(rows)[0])[1]
    assert chosen.attrs["reference"] == "high" and (quick.figures / "sweep_stats.csv").exists()


def test_one_of_several_table2_data_sets_names_its_files(tmp_path):
    s = notebook.setup("paper", {"figures_dir": str(tmp_path)})
    assert s.stem("table2_sweep", "svhn") == "table2_svhn_sweep" and s.stem("table2", None) == "table2"
    assert notebook.setup("cpu", {"figures_dir": str(tmp_path)}).stem("table2", "cifar10-jpeg") == "table2"


def latents_of(configs, n=40, d=6):
    """Fake saved codes of each run: (z (n, d), labels (n,)), different per run."""
    return {c.run_id: (torch.randn(n, d, generator=torch.Generator().manual_seed(i)), torch.arange(n) % 4)
            for i, c in enumerate(configs)}


def test_tsne_maps_are_made_once_from_the_saved_codes_and_then_reused(quick, trainings, monkeypatch):
    configs = experiments.figure4((0,), 20)
    write_results(configs, quick.results, {(c.bottleneck, 0): (0.5, 0.5, 0.9) for c in configs})
    codes = latents_of(configs)
    monkeypatch.setattr(runner, "latents", lambda c, *a, **kw: codes[c.run_id])
    monkeypatch.setattr(notebook.plots, "tsne", lambda z, seed, perplexity: np.asarray(z[:, :2]))
    maps = notebook.tsne_maps(quick, configs, points=10)
    assert list(maps) == ["ae", "vae", "vqvae", "soft_vqvae"]
    points, labels = maps["vae"]
    assert points.shape == (10, 2) and labels.shape == (10,)
    assert (quick.figures / "data" / "figure4_tsne.npz").exists()

    def never(*args, **kw):
        raise AssertionError("the maps were made again")
    monkeypatch.setattr(runner, "latents", never)
    monkeypatch.setattr(runner, "run", never)
    np.testing.assert_array_equal(notebook.tsne_maps(quick, configs, points=10)["vae"][0], points)   # reused
    monkeypatch.setattr(runner, "latents", lambda c, *a, **kw: codes[c.run_id])
    monkeypatch.setattr(runner, "run", lambda configs, **kw: None)
    assert len(notebook.tsne_maps(quick, configs, points=20)["vae"][1]) == 20          # other points: made again


def test_tsne_maps_say_what_is_missing(quick, trainings, monkeypatch, capsys):
    configs = experiments.figure4((0,), 20)
    quick.train_missing = False
    assert notebook.tsne_maps(quick, configs, points=10) is None and trainings == []
    assert "missing: the runs" in capsys.readouterr().out
    write_results(configs, quick.results, {(c.bottleneck, 0): (0.5, 0.5, 0.9) for c in configs})

    def gone(c, *args, **kw):
        raise FileNotFoundError(f"{c.run_id} is finished but its latents are gone")
    monkeypatch.setattr(runner, "latents", gone)
    assert notebook.tsne_maps(quick, configs, points=10) is None
    assert "is finished but its latents are gone" in capsys.readouterr().out
    assert not (quick.figures / "data" / "figure4_tsne.npz").exists()


def test_reconstructions_are_read_without_training_and_missing_ones_are_named(quick, monkeypatch, capsys):
    config = experiments.table1((0,), 20)[-1]
    monkeypatch.setattr(runner, "run_stack", lambda *a, **kw: pytest.fail("trained"))
    quick.train_missing = False
    assert notebook.reconstructions(quick, config) == (None, None)
    assert capsys.readouterr().out.startswith("missing: ")
    write_results([config], quick.results, {(config.bottleneck, 0): (0.5, 0.5, 0.9)})
    saved = {"x": np.zeros((2, 1, 28, 28)), "x_hat": np.ones((2, 1, 28, 28))}
    store.write_arrays(quick.figures / "data" / f"train_{config.run_id}_reconstructions.npz", **saved)
    quick.train_missing = True
    record, shown = notebook.reconstructions(quick, config)
    assert record["run_id"] == config.run_id and shown["x_hat"].sum() == 2 * 28 * 28


def test_the_raw_row_is_computed_only_where_the_notebook_may_train(quick, monkeypatch):
    asked = []
    monkeypatch.setattr(notebook, "evaluate_raw", lambda dataset, **kw: asked.append((dataset, kw)) or
                        ({"config": {"dataset": dataset}} if kw["compute"] else None))
    monkeypatch.setattr(notebook.data, "download", lambda names, root=None: pytest.fail("downloaded"))
    quick.train_missing = False
    assert quick.raw_row("mnist") is None
    quick.train_missing = True
    assert quick.raw_row("mnist") == {"raw": [{"config": {"dataset": "mnist"}}]}
    assert [kw["compute"] for _, kw in asked] == [False, True]
    assert asked[0][1]["results_dir"] == quick.results and asked[0][1]["train_size"] == quick.settings["train_size"]
