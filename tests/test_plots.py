"""softvq.plots: every plot renders and saves (no training)."""
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")

from softvq import plots, store, tables


def test_plots_save(tmp_path, table1_dir):
    configs, results = table1_dir
    rec = store.read_result(configs[0], results)
    plots.save_figure(plots.plot_history(rec["history"]), tmp_path / "loss.png")
    x = torch.rand(4, 1, 28, 28)
    plots.save_figure(plots.plot_reconstructions(x, x), tmp_path / "rec.png")
    pts, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 10
    plots.save_figure(plots.plot_embeddings({"ae": (pts, y), "soft_vqvae": (pts, y)}), tmp_path / "emb.png")
    df = tables.compare_with_paper(tables.collect(configs, results), "table1")
    plots.save_figure(plots.plot_vs_paper(df), tmp_path / "vs.png")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("loss.png", "rec.png", "emb.png", "vs.png"))
    assert plots.tsne(torch.randn(40, 5)).shape == (40, 2)
    assert len(plots.subsample(100, 10)) == 10 and len(plots.subsample(5, 10)) == 5


def test_codebook_plot_from_records(tmp_path):
    hard = {"K": 4, "hard_usage": [0.5, 0.5, 0.0, 0.0]}
    soft = {"K": 4, "hard_usage": [0.4, 0.3, 0.2, 0.1], "soft_usage": [0.4, 0.3, 0.2, 0.1], "sigma": [0.1, 0.2, 0.3, 0.4]}
    fig = plots.plot_codebook({"vqvae": [{"codebook": hard}, {"metrics": {}}],      # a run without statistics
                               "soft_vqvae": [{"codebook": soft}, {"codebook": soft}]})
    assert plots.save_figure(fig, tmp_path / "cb.png").stat().st_size > 1000
