"""Plots: training curves, reconstructions, t-SNE embeddings, ours against the paper, the Theorem 1 check
and codebook usage, the quantizers study. Each returns a matplotlib figure; `save_figure` writes one atomically.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import paper
from .io import write_atomic
from .quantize import nearest_codeword
from .theorem1 import posterior

METRICS = paper.METRICS
METRIC_LABELS = {"cluster_acc": "clustering acc. %", "nmi": "NMI", "classification_acc": "classification acc. %"}


def save_figure(fig: matplotlib.figure.Figure, path, dpi: int = 120) -> Path:
    """Save `fig` atomically (temporary file, then rename) and return the path. A PNG whose pixels match the file
    already at `path` but for rendering noise (`same_picture`) leaves that file as it is: a figure redrawn from
    the same numbers on another CPU, whose last-digit float differences can move an anti-aliased edge, is the
    same file byte for byte."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
    if path.suffix == ".png" and path.is_file() and same_picture(path.read_bytes(), buffer.getvalue()):
        return path
    write_atomic(path, lambda f: f.write(buffer.getvalue()))
    return path


def same_picture(png: bytes, other: bytes, max_share: float = 1e-4, max_step: int = 4) -> bool:
    """Whether two PNGs show the same picture: the same size, and at most a `max_share` of the pixels differ, each
    channel by at most `max_step` of 255 levels (anti-aliasing noise; a moved point or a changed digit of a
    label differs by far more)."""
    from PIL import Image
    a, b = (np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.int16) for data in (png, other))
    if a.shape != b.shape:
        return False
    step = np.abs(a - b).max(-1)
    return int(step.max()) <= max_step and float((step > 0).mean()) <= max_share


def title_lines(*lines: str) -> str:
    """A figure title of the non-empty `lines`, one per line (e.g. `data.sample_note(...)` first)."""
    return "\n".join(filter(None, lines))


def plot_history(history: Mapping[str, Sequence[float]], title: str = "") -> matplotlib.figure.Figure:
    """Training curves of a record's "history": one panel per loss term against the iteration."""
    terms = [k for k in history if k != "iteration"]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 2.8), squeeze=False)
    for ax, term in zip(axes[0], terms):
        values = np.asarray(history[term], dtype=float)
        ax.plot(history["iteration"], values)
        if values.min() > 0 and values.max() > 20 * values.min():    # a term that falls by orders of magnitude
            ax.set_yscale("log")
        ax.set(title=term, xlabel="iteration")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> an array imshow takes."""
    x = torch.as_tensor(x).detach().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def plot_reconstructions(x: torch.Tensor, x_hat: torch.Tensor, title: str = "") -> matplotlib.figure.Figure:
    """Inputs (top row) above their reconstructions (bottom row); x, x_hat (N, C, H, W) in [0, 1], tensors
    or arrays."""
    n = len(x)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 2.0), squeeze=False)
    for i in range(n):
        for row, images in enumerate((x, x_hat)):
            axes[row, i].imshow(_image(images[i]), cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    fig.suptitle(title)
    return fig


def subsample(n_total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Indices of n random points out of n_total (all of them when n is None or too large), sorted."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def tsne(z, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE embedding (N, 2) of latents z (N, d) (sklearn, PCA initialisation)."""
    from sklearn.manifold import TSNE
    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    return TSNE(n_components=2, perplexity=min(perplexity, (len(z) - 1) / 3), init="pca",
                random_state=seed).fit_transform(z.astype(np.float32))


def plot_embeddings(embeddings: Mapping[str, tuple[np.ndarray, np.ndarray]], ncols: int = 2,
                    title: str = "", classes: Sequence[str] | None = None) -> matplotlib.figure.Figure:
    """Scatter plots of 2-D embeddings {name: (points (N, 2), labels (N,))}, coloured by label; the legend
    names label k `classes[k]` (e.g. `data.CLASS_NAMES[dataset]`), or by its digit without `classes`."""
    import seaborn as sns
    n = len(embeddings)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
    palette = sns.color_palette("tab10", 10)
    for ax, (name, (points, labels)) in zip(axes.flat, embeddings.items()):
        labels = np.asarray(labels)
        for k in np.unique(labels):
            sel = labels == k
            ax.scatter(points[sel, 0], points[sel, 1], s=2, color=palette[int(k) % 10],
                       label=classes[int(k)] if classes else str(k))
        ax.set_title(paper.LABELS.get(name, name))
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(markerscale=5, fontsize=7, ncol=2, loc="best", title="class" if classes else "digit")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_vs_paper(df: pd.DataFrame, metrics: Sequence[str] | None = None,
                  title: str = "") -> matplotlib.figure.Figure:
    """Ours (mean, error bar = std over seeds) beside the paper's number, one panel per metric; `df` from
    compare_with_paper."""
    metrics = [m for m in (metrics or METRICS) if f"paper_{m}" in df and df[f"paper_{m}"].notna().any()]
    labels = [paper.LABELS.get(str(i), str(i)) for i in df.index]
    x = np.arange(len(df))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        ax.errorbar(x - 0.1, df[m], yerr=df[f"{m}_std"].fillna(0), fmt="o", label="ours", capsize=3)
        ax.plot(x + 0.1, df[f"paper_{m}"], "x", color="C3", markersize=8, label="paper")
        ax.set_xticks(x, labels, rotation=45, ha="right")
        ax.set_title(METRIC_LABELS[m])
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_theorem1(codebook, noisy, sigma: float, curves: Mapping[str, tuple], descent: Mapping,
                  n_arrows: int = 15) -> matplotlib.figure.Figure:
    """Three panels: 2-D noisy codes with their hard and soft (posterior-mean) estimates; the MSE of the
    tempered posterior mean relative to t = 1 for each curve {name: (t, mse)}; the KL descent distance."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axes[0]
    pts = noisy[:1500]
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.25, color="grey", label="noisy codes")
    ax.scatter(codebook[:, 0], codebook[:, 1], marker="*", s=150, color="k", label="codewords", zorder=3)
    z_hat, weights = posterior(codebook, noisy, sigma ** 2)
    shown = (weights.max(-1).values < 0.9).nonzero()[:n_arrows, 0]      # ambiguous codes: the interesting ones
    hard = nearest_codeword(noisy[shown], codebook)[0]
    for z, s, h in zip(noisy[shown], z_hat[shown], hard):
        ax.plot(*zip(z.tolist(), h.tolist()), ls="--", lw=0.8, color="C3")
        ax.annotate("", xy=s.tolist(), xytext=z.tolist(), arrowprops=dict(arrowstyle="->", color="C0", lw=1.2))
    ax.scatter(noisy[shown, 0], noisy[shown, 1], s=12, marker="x", color="k", label="ambiguous noisy code")
    ax.scatter(z_hat[shown, 0], z_hat[shown, 1], s=14, color="C0", label="its posterior mean", zorder=4)
    ax.plot([], [], ls="--", color="C3", label="its nearest codeword")
    ax.set(title=f"2-D mixture, sigma = {sigma:g}", aspect="equal")
    ax.legend(fontsize=7, loc="best")
    ax = axes[1]
    for name, (t, mse) in curves.items():
        ax.plot(t, mse / np.interp(1.0, t, mse), label=name)
    ax.axvline(1.0, color="k", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="assumed variance / true variance (t)",
           ylabel="MSE / MSE at t = 1", title="tempered posterior mean: best at t = 1")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.semilogy(np.maximum(descent["distance"], 1e-16))
    ax.set(xlabel="gradient step", ylabel="||m - sum_k p_k mu_k||",
           title="argmin_m sum_k p_k KL(N(mu_k,I) || N(m,I))")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_codebook(records: Mapping[str, Sequence[dict]], title: str = "") -> matplotlib.figure.Figure:
    """How quantizers use their codebooks, from the "codebook" entry of results records {row: records} (records
    without one are skipped):
    hard usage by codeword rank (every seed), the soft VQ-VAE's mean posterior by rank, and its learned
    sigma_k against that usage."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for colour, (row, recs) in enumerate(records.items()):
        label = paper.LABELS.get(row, row)
        for i, stats in enumerate(r["codebook"] for r in recs if "codebook" in r):
            rank = np.arange(1, stats["K"] + 1)
            axes[0].plot(rank, np.sort(stats["hard_usage"])[::-1], color=f"C{colour}", alpha=0.7,
                         label=label if i == 0 else None)
            if "soft_usage" in stats:
                axes[1].plot(rank, np.sort(stats["soft_usage"])[::-1], color=f"C{colour}", alpha=0.7,
                             label=label if i == 0 else None)
                axes[2].scatter(stats["soft_usage"], stats["sigma"], s=6, color=f"C{colour}", alpha=0.6)
    axes[0].set(xlabel="codeword rank", ylabel="share of test inputs", yscale="log",
                title="hard usage (nearest / most probable codeword)")
    axes[1].set(xlabel="codeword rank", ylabel="mean posterior", yscale="log", title="soft usage")
    axes[2].set(xlabel="soft usage", ylabel="sigma_k (mean over inputs)", xscale="log", yscale="log",
                title="learned sigma_k")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_intervals(stats: pd.DataFrame, title: str = "") -> matplotlib.figure.Figure:
    """One panel per metric of a `tables.seed_statistics` table: each row's mean over seeds (dot) and 95 %
    t-interval (bar), the reference row in black."""
    metrics = list(dict.fromkeys(stats["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        part = stats[stats["metric"] == m].reset_index(drop=True)
        y = np.arange(len(part))[::-1]
        for i, row in part.iterrows():
            colour = "black" if row["row"] == stats.attrs.get("reference") else f"C{i}"
            if np.isfinite(row["ci_low"]):
                ax.plot([row["ci_low"], row["ci_high"]], [y[i]] * 2, color=colour, lw=3, alpha=0.5)
            ax.plot(row["mean"], y[i], "o", color=colour)
        ax.set_yticks(y, [paper.LABELS.get(r, r) for r in part["row"]])
        ax.set(xlabel=m.replace("_", " ") + (" (%)" if m in paper.PERCENT else ""))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_quantizers(df: pd.DataFrame, title: str = "") -> matplotlib.figure.Figure:
    """The quantizers study (`quantizer_table.quantizer_table`): one panel per score, each row's mean over seeds
    with its standard deviation for z_e (dark) and for the decoder's input z_q (light, where recorded), and a
    panel of the test reconstruction error."""
    fig, axes = plt.subplots(1, len(METRICS) + 1, figsize=(4.2 * (len(METRICS) + 1), 0.45 * len(df) + 1.6),
                             sharey=True)
    y = np.arange(len(df))[::-1]
    for ax, m in zip(axes, METRICS):
        ax.barh(y + 0.2, df[m], 0.4, xerr=df[f"{m}_std"].fillna(0), color="C0", label="z_e")
        ax.barh(y - 0.2, df[f"q_{m}"], 0.4, xerr=df[f"q_{m}_std"].fillna(0), color="C0", alpha=0.4, label="z_q")
        ax.set(xlabel=METRIC_LABELS[m])
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[-1].barh(y, 1e3 * df["recon_mse"], 0.6, xerr=1e3 * df["recon_mse_std"].fillna(0), color="C3")
    axes[-1].set(xlabel="test MSE per pixel x 1e3 (lower is better)")
    axes[-1].grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [paper.LABELS.get(str(r), str(r)) for r in df.index])
    fig.suptitle(title, wrap=True)                  # wrapped at the figure's width (the budget note is long)
    fig.tight_layout()
    return fig
