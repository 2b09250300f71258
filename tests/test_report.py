"""Fast tests of softvq.report and softvq.paper on hand-made records (no training)."""
import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from softvq import experiments, paper, report
from softvq.bottlenecks import BOTTLENECKS


def fake_record(config, cluster_acc, nmi, classification_acc):
    return {"config": dict(vars(config)) if not isinstance(config, dict) else config, "run_id": config.run_id,
            "metrics": {"cluster_acc": cluster_acc, "nmi": nmi, "classification_acc": classification_acc},
            "history": {"iteration": [10, 20], "recon": [200.0, 150.0], "total": [210.0, 151.0]}}


@pytest.fixture
def table1_dir(tmp_path):
    """Results of the Table 1 preset at 20 iterations: AE with seeds 0, 1; soft VQ-VAE seed 0; rest missing."""
    configs = experiments.table1(seeds=(0, 1), iterations=20)
    values = {("ae", 0): (0.50, 0.50, 0.90), ("ae", 1): (0.54, 0.52, 0.92), ("soft_vqvae", 0): (0.80, 0.70, 0.95)}
    for c in configs:
        if (c.bottleneck, c.seed) in values:
            experiments.write_json(fake_record(c, *values[c.bottleneck, c.seed]), experiments.result_path(c, tmp_path))
    return configs, tmp_path


def test_paper_numbers_cover_every_bottleneck():
    assert set(paper.TABLE1) == set(BOTTLENECKS) | {"raw"}
    for dataset in ("svhn", "cifar10", "cifar10-jpeg"):
        assert set(paper.reported("table2", dataset)) == set(BOTTLENECKS)
    assert paper.value("table1", "soft_vqvae", "cluster_acc") == 77.64
    assert paper.value("table2", "soft_vqvae", "classification_acc", "cifar10-jpeg") == 44.54
    assert math.isnan(paper.value("table2", "ae", "nmi", "svhn"))
    with pytest.raises(ValueError):
        paper.reported("table3")


def test_collect_mean_std_seeds_and_missing(table1_dir):
    configs, results = table1_dir
    df = report.collect(configs, results)
    assert list(df.index) == ["ae", "vae", "beta_vae", "info_dropout", "vqvae", "soft_vqvae"]
    ae = df.loc["ae"]
    assert ae["cluster_acc"] == pytest.approx(52.0)                        # percent
    assert ae["cluster_acc_std"] == pytest.approx(np.std([50, 54], ddof=1))
    assert ae["nmi"] == pytest.approx(0.51)
    assert (ae["seeds"], ae["missing"], ae["iterations"], ae["seed_list"]) == (2, 0, 20, "0,1")
    soft = df.loc["soft_vqvae"]
    assert soft["seeds"] == 1 and soft["missing"] == 1 and math.isnan(soft["cluster_acc_std"])
    assert df.loc["vae", "seeds"] == 0 and math.isnan(df.loc["vae", "cluster_acc"])
    assert len(df.attrs["missing"]) == 2 * 4 + 1


def test_collect_extra_records_and_mapping(table1_dir):
    configs, results = table1_dir
    raw = {"config": {"dataset": "mnist", "bottleneck": "raw", "validation": False, "seed": 0,
                      "kmeans_n_init": 100, "iterations": 0},
           "metrics": {"cluster_acc": 0.55, "nmi": 0.5, "classification_acc": 0.92}}
    rows = {"AE": [c for c in configs if c.bottleneck == "ae"]}
    df = report.collect(rows, results, records={"raw": [raw]})
    assert list(df.index) == ["raw", "AE"]
    assert df.loc["raw", "iterations"] == 0 and df.loc["raw", "cluster_acc"] == pytest.approx(55.0)


def test_compare_with_paper_differences(table1_dir):
    configs, results = table1_dir
    df = report.compare_with_paper(report.collect(configs, results), "table1")
    assert df.loc["ae", "paper_cluster_acc"] == 52.61
    assert df.loc["ae", "diff_cluster_acc"] == pytest.approx(52.0 - 52.61)
    assert df.loc["soft_vqvae", "diff_nmi"] == pytest.approx(0.70 - 0.7188)
    cols = list(df.columns)
    assert cols.index("paper_nmi") == cols.index("nmi_std") + 1 and cols.index("diff_nmi") == cols.index("nmi_std") + 2
    assert df.attrs["missing"]                                           # attrs survive


def test_compare_table2_lossy_cifar_uses_cifar10_column(tmp_path):
    configs = experiments.table2("cifar10-jpeg", seeds=(0,), iterations=20)
    soft = [c for c in configs if c.bottleneck == "soft_vqvae"][0]
    experiments.write_json(fake_record(soft, 0.25, 0.1, 0.45), experiments.result_path(soft, tmp_path))
    df = report.compare_with_paper(report.collect(configs, tmp_path), "table2")
    assert df.loc["soft_vqvae", "diff_classification_acc"] == pytest.approx(45.0 - 44.54)
    assert math.isnan(df.loc["soft_vqvae", "paper_nmi"])
    assert "LOSSY JPEG" in report.budget_note(df) and "paper's CIFAR-10 numbers" in report.budget_note(df)


def test_write_table_csv_and_markdown(table1_dir, tmp_path):
    configs, results = table1_dir
    df = report.compare_with_paper(report.collect(configs, results), "table1")
    csv, md = report.write_table(df, "table1", tmp_path / "figs", note="(test)")
    text = md.read_text().splitlines()
    assert text[0].startswith("Budget: 20 training iterations") and "seeds: 0, 1" in text[0]
    assert "test set" in text[0] and text[0].endswith("(test)")
    body = "\n".join(text)
    assert "52.00 ± 2.83" in body and "52.61" in body and "-0.61" in body
    assert "missing" in body and "baseline AE" in body
    assert csv.read_text().startswith("row,bottleneck")
    assert not list((tmp_path / "figs").glob(".*tmp"))                 # no temporary files left


def test_budget_and_preset_config():
    assert report.budget("paper")["iterations"] == 40_000 and report.budget("paper")["seeds"] == (0, 1, 2)
    quick = report.budget("quick", iterations=20, seeds=[3], kmeans_n_init=None)
    assert quick["iterations"] == 20 and quick["seeds"] == (3,) and quick["kmeans_n_init"] == 10
    assert quick["table2_seeds"] == (3,)                                # the caller's seeds reach Table 2
    assert report.budget("cpu")["table2_seeds"] == (0,) and report.budget("cpu")["seeds"] == (0, 1, 2)
    with pytest.raises(ValueError):
        report.budget("huge")
    c = report.preset_config("beta_vae", iterations=50, seed=2, beta=None)
    assert (c.beta, c.d, c.iterations, c.seed) == (20.0 / 64, 64, 50, 2)     # KL/d, see scaling_sweep
    assert report.preset_config("soft_vqvae", "cifar10").K == 32


def test_plots_save(tmp_path, table1_dir):
    configs, results = table1_dir
    rec = report.load_record(configs[0], results)
    report.save_figure(report.plot_history(rec["history"]), tmp_path / "loss.png")
    x = torch.rand(4, 1, 28, 28)
    report.save_figure(report.plot_reconstructions(x, x), tmp_path / "rec.png")
    pts, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 10
    report.save_figure(report.plot_embeddings({"ae": (pts, y), "soft_vqvae": (pts, y)}), tmp_path / "emb.png")
    df = report.compare_with_paper(report.collect(configs, results), "table1")
    report.save_figure(report.plot_vs_paper(df), tmp_path / "vs.png")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("loss.png", "rec.png", "emb.png", "vs.png"))
    assert report.tsne(torch.randn(40, 5)).shape == (40, 2)
    assert len(report.subsample(100, 10)) == 10 and len(report.subsample(5, 10)) == 5


def test_theorem1_posterior_mean_is_best_and_kl_minimiser():
    codebook, clean, noisy = report.mixture_samples(K=6, d=2, n=20_000, sigma=0.6, seed=1)
    mse = report.estimator_mse(codebook, clean, noisy, 0.6)
    best = mse.pop("posterior mean (Theorem 1)")
    assert all(best < v for v in mse.values())
    t, curve = report.temperature_curve(codebook, clean, noisy, 0.6, temperatures=[0.1, 1.0, 10.0])
    assert curve.argmin() == 1
    post = torch.softmax(torch.randn(6, dtype=torch.float64), 0)
    out = report.kl_descent(codebook, post, steps=60, lr=0.5)
    assert torch.allclose(out["m"], post @ codebook, atol=1e-8)
    assert out["distance"][-1] < 1e-8 < out["distance"][0]


def test_codebook_diagnostics_on_a_small_model():
    from softvq import build_model
    model = build_model((1, 8, 8), "soft_vqvae", 4, widths=(16, 16, 16), num_codes=5)
    codes = report.soft_codes(model, torch.rand(30, 1, 8, 8), batch_size=7)
    assert codes["posterior"].shape == (1, 30, 5) and codes["z_e"].shape == (1, 30, 4)
    per_code, summary = report.codebook_stats(codes)
    assert per_code["soft_usage"].sum() == pytest.approx(1.0) and per_code["hard_usage"].sum() == pytest.approx(1.0)
    assert 1.0 <= summary["perplexity_soft"] <= 5.0 and summary["K"] == 5
    report.plot_codebook(per_code, codes)
    with pytest.raises(ValueError):
        report.soft_codes(build_model((1, 8, 8), "ae", 4, widths=(16, 16, 16)), torch.rand(3, 1, 8, 8))
