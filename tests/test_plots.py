"""softvq.plots: every plot draws the data it is given (no training), and saves as a PNG."""
import matplotlib
import numpy as np
import pandas as pd
import torch

matplotlib.use("Agg")

from softvq import data, paper, plots, tables


def test_history_has_one_panel_per_loss_term(tmp_path):
    history = {"iteration": [10, 20, 30], "recon": [100.0, 10.0, 1.0], "kl": [1.0, 2.0, 3.0]}
    fig = plots.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["recon", "kl"]
    for ax, term in zip(fig.axes, ("recon", "kl")):
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == history["iteration"] and list(line.get_ydata()) == history[term]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]      # only the term that falls 100x
    path = plots.save_figure(fig, tmp_path / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reconstructions_show_inputs_above_outputs():
    x = torch.rand(3, 1, 28, 28)
    fig = plots.plot_reconstructions(x, 1 - x)
    images = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert len(images) == 6
    np.testing.assert_allclose(images[0], x[0, 0].numpy())                    # row 1: the inputs
    np.testing.assert_allclose(images[3], 1 - x[0, 0].numpy(), rtol=1e-6)   # row 2: their reconstructions


def test_embeddings_scatter_every_point_once_per_label():
    pts, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 10
    fig = plots.plot_embeddings({"ae": (pts, y), "soft_vqvae": (pts, y), "vae": (pts, y)})
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == [paper.LABELS[n] for n in ("ae", "soft_vqvae", "vae")]
    for ax in shown:
        assert len(ax.collections) == 10
        drawn = np.concatenate([c.get_offsets() for c in ax.collections])
        assert sorted(map(tuple, drawn)) == sorted(map(tuple, pts))
    legend = shown[0].get_legend()
    assert legend.get_title().get_text() == "digit" and legend.get_texts()[3].get_text() == "3"
    named = plots.plot_embeddings({"ae": (pts, y)}, classes=data.CLASS_NAMES["fashion-mnist"]).axes[0].get_legend()
    assert named.get_title().get_text() == "class" and [t.get_text() for t in named.get_texts()][8:] == \
        ["bag", "ankle boot"]
    assert plots.tsne(torch.randn(40, 5)).shape == (40, 2)
    assert len(plots.subsample(100, 10)) == 10 and len(plots.subsample(5, 10)) == 5


def test_vs_paper_draws_ours_and_the_papers_numbers(table1_dir):
    configs, results = table1_dir
    df = tables.compare_with_paper(tables.collect(configs, results), "table1")
    fig = plots.plot_vs_paper(df)
    for ax, metric in zip(fig.axes, ("cluster_acc", "nmi", "classification_acc")):
        ours, theirs = ax.get_lines()[0], ax.get_lines()[-1]
        np.testing.assert_allclose(np.asarray(ours.get_ydata(), float), df[metric].to_numpy(float))
        np.testing.assert_allclose(np.asarray(theirs.get_ydata(), float), df[f"paper_{metric}"].to_numpy(float))


def test_codebook_plot_from_records():
    hard = {"K": 4, "hard_usage": [0.5, 0.5, 0.0, 0.0]}
    soft = {"K": 4, "hard_usage": [0.1, 0.4, 0.2, 0.3], "soft_usage": [0.4, 0.3, 0.2, 0.1], "sigma": [0.1, 0.2, 0.3, 0.4]}
    fig = plots.plot_codebook({"vqvae": [{"codebook": hard}, {"metrics": {}}],      # a run without statistics
                               "soft_vqvae": [{"codebook": soft}, {"codebook": soft}]})
    usage, soft_usage, sigma = fig.axes
    assert len(usage.get_lines()) == 3 and len(soft_usage.get_lines()) == 2   # one line per seed with statistics
    assert list(usage.get_lines()[0].get_ydata()) == [0.5, 0.5, 0.0, 0.0]
    assert list(usage.get_lines()[1].get_ydata()) == [0.4, 0.3, 0.2, 0.1]    # sorted by rank
    np.testing.assert_allclose(sigma.collections[0].get_offsets(), np.c_[soft["soft_usage"], soft["sigma"]])


def test_a_figure_redrawn_with_rendering_noise_leaves_the_file_as_it_is(tmp_path):
    """An edge pixel off by a level (another CPU's last float digit) keeps the saved PNG byte for byte; a moved
    point is a new figure."""
    import io
    import matplotlib.pyplot as plt
    from PIL import Image

    def scatter(x):
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.scatter([0.0, x], [0.0, 1.0])
        return fig
    path = plots.save_figure(scatter(1.0), tmp_path / "a.png")
    before = path.read_bytes()
    pixels = np.asarray(Image.open(io.BytesIO(before))).copy()
    pixels[10, 10, 0] = pixels[10, 10, 0] - 1 if pixels[10, 10, 0] else 1
    noisy = io.BytesIO()
    Image.fromarray(pixels).save(noisy, format="png")
    assert noisy.getvalue() != before and plots.same_picture(before, noisy.getvalue())
    assert plots.save_figure(scatter(1.0), path).read_bytes() == before
    plots.save_figure(scatter(0.5), path)
    assert path.read_bytes() != before and not plots.same_picture(before, path.read_bytes())


def test_quantizers_draw_each_row_and_wrap_a_long_title(tmp_path):
    from PIL import Image
    rows = ["soft_vqvae", "vqvae", "fsq"]
    df = pd.DataFrame({**{c: [0.8, 0.5, 0.3] for m in plots.METRICS for c in (m, f"q_{m}")},
                       **{f"{p}{m}_std": [0.01, 0.02, np.nan] for m in plots.METRICS for p in ("", "q_")},
                       "recon_mse": [0.01, np.nan, 0.04], "recon_mse_std": [0.001, np.nan, 0.002]}, index=rows)
    fig = plots.plot_quantizers(df, title="Trained on: " + "a long budget note, " * 40)
    assert len(fig.axes) == len(plots.METRICS) + 1
    for ax in fig.axes[:-1]:
        assert len(ax.patches) == 2 * len(rows)                  # z_e and z_q, one bar each per row
    path = plots.save_figure(fig, tmp_path / "q.png", dpi=50)
    width = Image.open(path).size[0]
    assert width <= 1.05 * fig.get_figwidth() * 50            # the title wraps instead of widening the PNG
