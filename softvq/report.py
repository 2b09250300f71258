"""Tables and figures from results JSONs; the library side of the notebooks (they hold no logic).

Sections: budgets and output folders; tables (collect -> compare_with_paper -> write_table); plots (loss
curves, reconstructions, t-SNE, ours vs the paper); the Theorem 1 check; codebook diagnostics.
Accuracies in tables are in percent and NMI a fraction, as in the paper.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import experiments, paper
from .experiments import Config
from .io import write_atomic
from .quantize import nearest_codeword, perplexity, soft_quantize

METRICS = paper.METRICS
METRIC_LABELS = {"cluster_acc": "clustering acc. %", "nmi": "NMI", "classification_acc": "classification acc. %"}
SHORT_LABELS = {"cluster_acc": "clust. %", "nmi": "NMI", "classification_acc": "class. %"}
DATASET_LABELS = {"mnist": "MNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
                  "cifar10-jpeg": "CIFAR-10, LOSSY JPEG copy (quality 75; not the original pixels)"}

# ------------------------------------------------------------------------------ budgets and folders
BUDGETS = {
    # minutes on a CPU: every notebook runs, numbers far from converged
    "quick": dict(iterations=300, seeds=(0,), table2_seeds=(0,), table2_iterations=300, figure4_iterations=300,
                  train_iterations=300, ablation_iterations=300, ablation_seeds=(0,), kmeans_n_init=10,
                  tsne_points=2000),
    # what a 2-core CPU affords in a few hours (the README's tables): Table 1 and Figure 4 at the paper's
    # 40,000 iterations with 3 seeds (Figure 4: one), the ablation at 5,000 with two, Table 2 at 500 with one
    "cpu": dict(iterations=40_000, seeds=(0, 1, 2), table2_seeds=(0,), table2_iterations=500,
                figure4_iterations=40_000, train_iterations=2_000, ablation_iterations=5_000, ablation_seeds=(0, 1),
                kmeans_n_init=100, tsne_points=10_000),
    # the paper's budget, for a GPU: 40,000 iterations (Table 2 soft VQ-VAE: 10,000), 3 seeds
    "paper": dict(iterations=40_000, seeds=(0, 1, 2), table2_seeds=(0, 1, 2), table2_iterations=None,
                  figure4_iterations=40_000, train_iterations=40_000, ablation_iterations=40_000,
                  ablation_seeds=(0, 1, 2), kmeans_n_init=100, tsne_points=10_000),
}


def budget(name: str = "quick", **overrides) -> dict:
    """The settings of budget `name` ("quick": minutes on a CPU; "cpu": a few hours on a CPU; "paper": the
    paper's 40,000 iterations, 3 seeds). Overrides that are not None replace them; given `seeds` also
    replace `table2_seeds`. table2_iterations None keeps the paper's per-row budget (40,000; 10,000 for the
    soft VQ-VAE)."""
    if name not in BUDGETS:
        raise ValueError(f"unknown budget {name!r}; expected one of {sorted(BUDGETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "seeds" in given:                            # seeds chosen by the caller apply to Table 2 as well
        given.setdefault("table2_seeds", given["seeds"])
    chosen = {**BUDGETS[name], **given}
    for key in ("seeds", "table2_seeds", "ablation_seeds"):
        chosen[key] = tuple(int(s) for s in chosen[key])
    return chosen


def project_dir() -> Path:
    """The working folder, or its parent when a notebook runs inside notebooks/."""
    cwd = Path.cwd()
    return cwd.parent if cwd.name == "notebooks" else cwd


def output_dirs(figures_dir=None, results_dir=None, checkpoint_dir=None) -> tuple[Path, Path, Path]:
    """(figures, results, checkpoints) folders; None gives the project's figures/, results/, checkpoints/."""
    base = project_dir()
    dirs = [Path(p) if p is not None else base / name for p, name in
            ((figures_dir, "figures"), (results_dir, "results"), (checkpoint_dir, "checkpoints"))]
    dirs[0].mkdir(parents=True, exist_ok=True)
    return tuple(dirs)


def preset_config(bottleneck: str = "soft_vqvae", dataset: str = "mnist", **fields) -> Config:
    """The preset row of `bottleneck` (experiments.TABLE1 on MNIST, TABLE2 otherwise) with the given
    fields replaced; fields that are None keep the preset's value."""
    table = experiments.TABLE1 if dataset == "mnist" else experiments.TABLE2
    if bottleneck not in table:
        raise ValueError(f"unknown bottleneck {bottleneck!r}; expected one of {sorted(table)}")
    given = {k: v for k, v in fields.items() if v is not None}
    defaults = {"d": 64 if dataset == "mnist" else 256}
    return Config(dataset=dataset, **{**defaults, **table[bottleneck], **given})


# ------------------------------------------------------------------------------------------- tables
def group_configs(configs: Iterable[Config] | Mapping[str, Sequence[Config]]) -> dict[str, list[Config]]:
    """Rows of a table: a mapping {row: configs} as given, or a list grouped by bottleneck (in order)."""
    if isinstance(configs, Mapping):
        return {name: list(cs) for name, cs in configs.items()}
    rows: dict[str, list[Config]] = {}
    for c in configs:
        rows.setdefault(c.bottleneck, []).append(c)
    return rows


def load_record(config: Config, results_dir=experiments.RESULTS_DIR) -> dict | None:
    """The results JSON of `config`, or None when that run has not been done."""
    path = experiments.result_path(config, results_dir)
    return json.loads(path.read_text()) if path.exists() else None


def find_records(results_dir=experiments.RESULTS_DIR, **fields) -> list[dict]:
    """The records under results_dir whose config has every given field value (e.g. bottleneck="raw")."""
    return [r for r in experiments.load_results(results_dir)
            if all(r.get("config", {}).get(k) == v for k, v in fields.items())]


def summarize(records: Sequence[dict]) -> dict:
    """Mean and sample std (NaN for one seed) of each metric over records, accuracies in percent."""
    out: dict = {}
    for m in METRICS:
        values = [r["metrics"][m] for r in records if m in r.get("metrics", {})]
        scale = 100.0 if m in paper.PERCENT else 1.0
        arr = scale * np.asarray(values, dtype=float)
        out[m] = float(arr.mean()) if len(arr) else math.nan
        out[f"{m}_std"] = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
    return out


def _row(config: dict, records: Sequence[dict], expected: int) -> dict:
    """One table row: what was run (from a config dict), how many seeds were found, the summary."""
    seeds = sorted(int(r["config"].get("seed", 0)) for r in records)
    return {"bottleneck": config["bottleneck"], "dataset": config["dataset"],
            "split": "validation" if config.get("validation") else "test",
            "iterations": int(config.get("iterations", 0)), "kmeans_n_init": config.get("kmeans_n_init"),
            "seeds": len(records), "seed_list": ",".join(map(str, seeds)), "missing": expected - len(records),
            **summarize(records)}


def collect(configs: Iterable[Config] | Mapping[str, Sequence[Config]],
            results_dir=experiments.RESULTS_DIR, records: Mapping[str, Sequence[dict]] | None = None) -> pd.DataFrame:
    """A table with one row per bottleneck (or per key of a {row: configs} mapping): mean and std over
    the seeds whose results JSON exists in `results_dir`, the number of seeds found and missing.

    Missing runs are not an error: their row keeps NaN metrics, and df.attrs["missing"] lists their run
    ids. `records` adds rows given as records (e.g. {"raw": [experiments.evaluate_raw(...)]}) first.
    """
    rows, missing = {}, []
    for name, recs in (records or {}).items():
        rows[name] = _row(recs[0]["config"], recs, len(recs))
    for name, cs in group_configs(configs).items():
        found = [load_record(c, results_dir) for c in cs]
        missing += [c.run_id for c, r in zip(cs, found) if r is None]
        rows[name] = _row(dataclasses.asdict(cs[0]), [r for r in found if r is not None], len(cs))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "row"
    df.attrs["missing"] = missing
    return df


def compare_with_paper(df: pd.DataFrame, table: str = "table1") -> pd.DataFrame:
    """Add paper_<metric> (the paper's number for the row's bottleneck and dataset; the lossy CIFAR-10
    copy is compared with CIFAR-10) and diff_<metric> = ours - paper after each metric's columns."""
    out = df.copy()
    for m in METRICS:
        reported = [paper.value(table, b, m, ds) for b, ds in zip(df["bottleneck"], df["dataset"])]
        at = out.columns.get_loc(f"{m}_std") + 1
        out.insert(at, f"paper_{m}", reported)
        out.insert(at + 1, f"diff_{m}", out[m] - out[f"paper_{m}"])
    out.attrs = dict(df.attrs, table=table)
    return out


def budget_note(df: pd.DataFrame) -> str:
    """One line: training iterations, seeds, evaluation split and data set, K-means initialisations."""
    trained = df[df["iterations"] > 0]
    its = sorted({int(i) for i in trained["iterations"]})
    seeds = sorted({s for sl in trained["seed_list"] for s in str(sl).split(",") if s})
    datasets = ", ".join(DATASET_LABELS.get(d, d) for d in dict.fromkeys(df["dataset"]))
    split = ("validation split (10,000 images held out of the training set)" if (df["split"] == "validation").all()
             else "test set")
    n_init = sorted({int(n) for n in df["kmeans_n_init"].dropna()})
    paper_its = "40,000" if (df["dataset"] == "mnist").all() else "40,000; soft VQ-VAE 10,000"
    return (f"Budget: {' / '.join(f'{i:,}' for i in its) or 'n/a'} training iterations per run (the paper: "
            f"{paper_its}); seeds: {', '.join(seeds) or 'none found'}; evaluation: {datasets}, {split}; "
            f"K-means initialisations: {', '.join(map(str, n_init))}.{_paper_column_note(df)}")


def _paper_column_note(df: pd.DataFrame) -> str:
    """' Paper columns: CIFAR-10 ...' when a data set is compared with another one's paper column."""
    other = {d: paper.PAPER_DATASET[d] for d in df["dataset"] if d in paper.PAPER_DATASET}
    if not other or not any(c.startswith("paper_") for c in df.columns):
        return ""
    names = ", ".join(DATASET_LABELS.get(p, p) for p in dict.fromkeys(other.values()))
    return f" Paper columns: the paper's {names} numbers (original pixels)."


def _fmt(value: float, metric: str, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    digits = 4 if metric == "nmi" else 2
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_table(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """A display table: model label, iterations, seeds, 'mean ± std' per metric, the paper and the
    difference beside it where compare_with_paper added them; 'missing' where no seed was found."""
    metrics = [m for m in (metrics or METRICS) if m in df]
    out = pd.DataFrame(index=[paper.LABELS.get(str(i), str(i)) for i in df.index])
    out.index.name = "model"
    out["iterations"] = [f"{int(i):,}" if i else "–" for i in df["iterations"]]
    out["seeds"] = [f"{n}" + (f" ({k} missing)" if k else "") for n, k in zip(df["seeds"], df["missing"])]
    for m in metrics:
        label = SHORT_LABELS[m]
        out[label] = ["missing" if n == 0 else _fmt(v, m) + (f" ± {_fmt(s, m)}" if np.isfinite(s) else "")
                      for n, v, s in zip(df["seeds"], df[m], df[f"{m}_std"])]
        if f"paper_{m}" in df:
            out[f"{label.split()[0]} paper"] = [_fmt(v, m) for v in df[f"paper_{m}"]]
            out[f"{label.split()[0]} diff"] = [_fmt(v, m, signed=True) for v in df[f"diff_{m}"]]
    return out


def make_table(configs: Iterable[Config] | Mapping[str, Sequence[Config]], stem: str, figures_dir="figures",
               results_dir=experiments.RESULTS_DIR, paper_table: str | None = None,
               records: Mapping[str, Sequence[dict]] | None = None, note: str = "",
               metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """collect -> compare_with_paper (when `paper_table` names one) -> write_table: figures/<stem>.csv and
    .md from the results that exist. Returns the table; df.attrs["missing"] lists the runs not found."""
    df = collect(configs, results_dir, records)
    if paper_table is not None:
        df = compare_with_paper(df, paper_table)
    write_table(df, stem, figures_dir, note, metrics)
    return df


def write_table(df: pd.DataFrame, stem: str, figures_dir="figures", note: str = "",
                metrics: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write figures/<stem>.csv (all numbers) and figures/<stem>.md (a budget line, `note`, then the
    display table), each atomically. Returns both paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    write_atomic(csv_path, lambda f: f.write(df.to_csv().encode()))
    header = budget_note(df) + (f" {note}" if note else "")
    markdown = header + "\n\n" + format_table(df, metrics).to_markdown(disable_numparse=True) + "\n"
    write_atomic(md_path, lambda f: f.write(markdown.encode()))
    return csv_path, md_path


# -------------------------------------------------------------------------------------------- plots
def save_figure(fig: matplotlib.figure.Figure, path, dpi: int = 120) -> Path:
    """Save `fig` atomically (temporary file, then rename) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: fig.savefig(f, dpi=dpi, bbox_inches="tight", format=path.suffix[1:]))
    return path


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
    x = x.detach().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def plot_reconstructions(x: torch.Tensor, x_hat: torch.Tensor, title: str = "") -> matplotlib.figure.Figure:
    """Inputs (top row) above their reconstructions (bottom row); x, x_hat (N, C, H, W) in [0, 1]."""
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
                    title: str = "") -> matplotlib.figure.Figure:
    """Scatter plots of 2-D embeddings {name: (points (N, 2), labels (N,))}, coloured by label."""
    import seaborn as sns
    n = len(embeddings)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
    palette = sns.color_palette("tab10", 10)
    for ax, (name, (points, labels)) in zip(axes.flat, embeddings.items()):
        labels = np.asarray(labels)
        for k in np.unique(labels):
            sel = labels == k
            ax.scatter(points[sel, 0], points[sel, 1], s=2, color=palette[int(k) % 10], label=str(k))
        ax.set_title(paper.LABELS.get(name, name))
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(markerscale=5, fontsize=7, ncol=2, loc="best", title="digit")
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


# -------------------------------------------------------------------------------- Theorem 1 check
def mixture_samples(K: int = 8, d: int = 2, n: int = 20_000, sigma: float = 0.5, seed: int = 0):
    """Codewords mu_k ~ N(0, I) (K, d); clean codes z_q = mu_c with c uniform (n, d); noisy codes
    z_q + sigma * eps (n, d). Float64."""
    g = torch.Generator().manual_seed(seed)
    codebook = torch.randn(K, d, generator=g, dtype=torch.float64)
    clean = codebook[torch.randint(K, (n,), generator=g)]
    return codebook, clean, clean + sigma * torch.randn(n, d, generator=g, dtype=torch.float64)


def posterior(codebook: torch.Tensor, noisy: torch.Tensor, variance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """softvq.soft_quantize with one (assumed) variance for every component: the posterior mean
    sum_k mu_k p(mu_k | z) (N, d) and the posterior p(mu_k | z) (N, K)."""
    log_var = torch.full((codebook.shape[0],), math.log(variance), dtype=codebook.dtype)
    return soft_quantize(noisy, codebook, log_var)


def posterior_mean(codebook: torch.Tensor, noisy: torch.Tensor, variance: float) -> torch.Tensor:
    """sum_k mu_k p(mu_k | z) under the mixture with (assumed) component variance `variance`."""
    return posterior(codebook, noisy, variance)[0]


def estimator_mse(codebook, clean, noisy, sigma: float, temperatures: Sequence[float] = (0.25, 0.5, 2.0, 4.0)) -> dict:
    """Mean squared error per dimension of estimators of the clean code from the noisy one: the posterior
    mean (the true sigma), tempered posteriors (variance t * sigma^2), the hard nearest codeword, the
    codebook mean and the noisy code itself."""
    d = codebook.shape[1]
    estimates = {"posterior mean (Theorem 1)": posterior_mean(codebook, noisy, sigma ** 2)}
    estimates.update({f"tempered posterior, t = {t:g}": posterior_mean(codebook, noisy, t * sigma ** 2)
                      for t in temperatures})
    estimates["hard nearest codeword"] = nearest_codeword(noisy, codebook)[0]
    estimates["codebook mean"] = codebook.mean(0).expand_as(noisy)
    estimates["noisy code"] = noisy
    return {name: float((est - clean).pow(2).sum(-1).mean() / d) for name, est in estimates.items()}


def temperature_curve(codebook, clean, noisy, sigma: float, temperatures=np.logspace(-2, 2, 41)):
    """(temperatures, MSE per dimension) of the tempered posterior mean (variance t * sigma^2) over t."""
    d = codebook.shape[1]
    mse = [float((posterior_mean(codebook, noisy, t * sigma ** 2) - clean).pow(2).sum(-1).mean() / d)
           for t in temperatures]
    return np.asarray(temperatures), np.asarray(mse)


def kl_descent(codebook: torch.Tensor, weights: torch.Tensor, steps: int = 60, lr: float = 0.5) -> dict:
    """Minimise sum_k p_k KL(N(mu_k, I) || N(m, I)) over m by gradient descent from m = 0.

    Returns the minimiser m, the posterior mean sum_k p_k mu_k, and per step the objective and the
    distance ||m - sum_k p_k mu_k||."""
    from torch.distributions import Independent, Normal, kl_divergence
    target = weights @ codebook
    m = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.SGD([m], lr=lr)
    components = Independent(Normal(codebook, torch.ones_like(codebook)), 1)
    objective, distance = [], []
    for _ in range(steps):
        loss = (weights * kl_divergence(components, Independent(Normal(m, torch.ones_like(m)), 1))).sum()
        objective.append(float(loss.detach()))
        distance.append(float((m.detach() - target).norm()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"m": m.detach(), "target": target, "objective": np.asarray(objective), "distance": np.asarray(distance)}


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


# ------------------------------------------------------------------------------ codebook diagnostics
@torch.no_grad()
def soft_codes(model, x: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """Evaluation-mode z_e (M, N, d), log sigma_k^2 (M, N, K) and posterior p(mu_k | z_e) (M, N, K) of a
    soft VQ-VAE stack for inputs x (N, ...), on the CPU."""
    bn = model.bottleneck
    if not hasattr(bn, "quantizer"):
        raise ValueError("codebook diagnostics need a soft VQ-VAE (bottleneck 'soft_vqvae')")
    parts: dict[str, list] = {"z_e": [], "log_var": [], "posterior": []}
    with model.evaluating():
        for xb in model.stacked_batches(x, batch_size):
            h = model.encoder(xb)
            z, log_var = bn.head(h), bn.log_variances(h)
            post = soft_quantize(z, bn.quantizer.codebook, log_var, bn.quantizer.weighting)[1]
            for k, v in zip(parts, (z, log_var, post)):
                parts[k].append(v.cpu())
    return {k: torch.cat(v, dim=1) for k, v in parts.items()}


def codebook_stats(codes: Mapping[str, torch.Tensor], model_index: int = 0) -> tuple[pd.DataFrame, dict]:
    """Per codeword: soft usage (mean posterior), hard usage (share of inputs whose largest posterior it
    is), mean sigma_k over inputs; and a summary: K, soft and hard perplexity, mean largest posterior,
    mean posterior entropy (nats), codewords used by at least one input."""
    post, log_var = codes["posterior"][model_index], codes["log_var"][model_index]
    K = post.shape[-1]
    hard = post.argmax(-1)
    per_code = pd.DataFrame({"soft_usage": post.mean(0).numpy(),
                             "hard_usage": torch.bincount(hard, minlength=K).double().div(len(hard)).numpy(),
                             "sigma": log_var.mul(0.5).exp().mean(0).numpy()})
    per_code.index.name = "codeword"
    entropy = -(post * post.clamp_min(1e-12).log()).sum(-1)
    summary = {"K": K, "perplexity_soft": float(perplexity(post)), "perplexity_hard": float(perplexity(hard, K)),
               "mean_max_posterior": float(post.max(-1).values.mean()), "mean_entropy": float(entropy.mean()),
               "codewords_used": int((per_code["hard_usage"] > 0).sum())}
    return per_code, summary


def plot_codebook(per_code: pd.DataFrame, codes: Mapping[str, torch.Tensor], model_index: int = 0,
                  title: str = "") -> matplotlib.figure.Figure:
    """Codeword usage sorted (soft and hard), sigma_k against usage, and the largest posterior per input."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    rank = np.arange(1, len(per_code) + 1)
    axes[0].plot(rank, np.sort(per_code["soft_usage"].to_numpy())[::-1], label="soft (mean posterior)")
    axes[0].plot(rank, np.sort(per_code["hard_usage"].to_numpy())[::-1], ".", color="C3", label="hard (argmax)")
    axes[0].set(xlabel="codeword rank", ylabel="share of inputs", yscale="log", title="codebook usage")
    axes[0].legend(fontsize=8)
    axes[1].scatter(per_code["soft_usage"], per_code["sigma"], s=10)
    axes[1].set(xlabel="soft usage", ylabel="mean sigma_k", xscale="log", title="learned sigma_k")
    axes[2].hist(codes["posterior"][model_index].max(-1).values.numpy(), bins=50)
    axes[2].set(xlabel="largest posterior p(mu_k | z_e)", ylabel="inputs", title="how soft is the quantizer")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
