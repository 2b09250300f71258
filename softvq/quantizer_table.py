"""The quantizers study's table: beside the three scores of z_e (`tables.collect`), what each quantizer transmits
and costs, from the results records:

    the three scores of the decoder's input, the quantized code ("metrics_quantized": for FSQ or a rotation-trick
    VQ that, not z_e, is what the model transmits),
    the test reconstruction error (mean squared error per pixel of the decoded image, the same measure for every
    loss and bottleneck),
    the codewords used, the hard perplexity and the relative distortion E||z_e - z_q||^2 / E||z_e||^2 on the test
    set (the "codebook" statistics),
    the training time per model-iteration: the stack's wall time / (iterations x models in the stack), on the
    machine the table names.

A record made before a column existed (the reference rows predate the second view and the reconstruction error;
a soft VQ-VAE record has the latter from its estimator swap) shows "–" there.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import budgets, tables
from .io import write_atomic
from .tables import METRICS, SHORT_LABELS, format_metric

EXTRAS = {"recon_mse": "test MSE x 1e3", "codewords_used": "codewords used", "perplexity_hard": "perplexity",
          "rel_distortion": "rel. distortion", "z_e_power": "E||z_e||^2", "ms_per_iteration": "ms / model-it."}


def _values(records: Sequence[dict], value) -> np.ndarray:
    """value(record) over the records where it is not None, as floats."""
    found = [value(r) for r in records]
    return np.asarray([v for v in found if v is not None], dtype=float)


def _recon_mse(record: dict) -> float | None:
    """The test reconstruction's MSE per pixel: recorded since the quantizers study, and before it by every soft
    VQ-VAE record's estimator swap (the decoder handed the estimator it was trained with: the same measure)."""
    if "reconstruction" in record:
        return record["reconstruction"]["mse"]
    own = record.get("estimator_swap", {}).get(record["config"].get("estimator", "mean"))
    return own["pixel_mse"] if own else None


def extras_table(records: Mapping[str, Sequence[dict]]) -> pd.DataFrame:
    """Per row of {row: records}: mean and std over seeds of the quantized view's scores (q_<metric>, accuracies in
    percent), the reconstruction error (recon_mse, per pixel), the codewords used, the hard perplexity, the
    relative distortion, the codes' mean squared norm (z_e_power) and the ms per model-iteration; NaN where no
    record has it."""
    scale = {m: 100.0 if m != "nmi" else 1.0 for m in METRICS}
    getters = {
        **{f"q_{m}": (lambda r, m=m: scale[m] * r["metrics_quantized"][m] if "metrics_quantized" in r else None)
           for m in METRICS},
        "recon_mse": _recon_mse,
        "codewords_used": lambda r: r["codebook"]["codewords_used"] if "codebook" in r else None,
        "perplexity_hard": lambda r: r["codebook"]["perplexity_hard"] if "codebook" in r else None,
        "rel_distortion": lambda r: (r["codebook"]["distortion"] / r["codebook"]["z_e_power"]
                                     if "distortion" in r.get("codebook", {}) else None),
        "z_e_power": lambda r: r["codebook"]["z_e_power"] if "z_e_power" in r.get("codebook", {}) else None,
        "ms_per_iteration": lambda r: (1000 * r["train_time_s"] / (r["config"]["iterations"] * r.get("stack_size", 1))
                                       if "train_time_s" in r else None),
    }
    rows = {}
    for name, recs in records.items():
        row = {}
        for key, get in getters.items():
            values = _values(recs, get)
            row[key] = float(values.mean()) if len(values) else math.nan
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows[name] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "row"
    return df


def _mean_std(value: float, std: float, show) -> str:
    if not np.isfinite(value):
        return "–"
    return show(value) + (f" ± {show(std)}" if np.isfinite(std) else "")


def format_quantizer_table(df: pd.DataFrame) -> pd.DataFrame:
    """The display of `quantizer_table`: the z_e scores as `tables.format_table`, then the quantized view's scores,
    the reconstruction error x 1e3, codewords used, perplexity and ms per model-iteration."""
    out = tables.format_table(df)
    for m in METRICS:
        out[f"{SHORT_LABELS[m]} (z_q)"] = [_mean_std(v, s, lambda x, m=m: format_metric(x, m))
                                           for v, s in zip(df[f"q_{m}"], df[f"q_{m}_std"])]
    out[EXTRAS["recon_mse"]] = [_mean_std(1e3 * v, 1e3 * s, "{:.2f}".format)
                                for v, s in zip(df["recon_mse"], df["recon_mse_std"])]
    for key in ("codewords_used", "perplexity_hard", "rel_distortion", "z_e_power"):
        out[EXTRAS[key]] = [_mean_std(v, s, "{:.3g}".format) for v, s in zip(df[key], df[f"{key}_std"])]
    out[EXTRAS["ms_per_iteration"]] = ["–" if not np.isfinite(v) else f"{v:.1f}" for v in df["ms_per_iteration"]]
    return out


def quantizer_table(rows, results_dirs) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """The table of {row: configs}, each run's record from the first of `results_dirs` that holds it: the columns
    of `tables.collect` and of `extras_table`. Returns it and the records by row."""
    df = tables.collect(rows, results_dirs)
    records = tables.records_by_row(rows, results_dirs)
    out = df.join(extras_table(records))
    out.attrs = dict(df.attrs)
    return out, records


def write_quantizer_table(df: pd.DataFrame, stem: str, figures_dir="figures", note: str = "",
                          budget: str = budgets.COMMITTED):
    """figures/<stem>.csv (every number) and .md (banner, budget line, what the extra columns are, `note`, the
    display table)."""
    explain = ("z_q: the same three scores of the decoder's input (the quantized code). Test MSE: mean squared "
               "error per pixel of the decoded test image x 1e3. Codewords used and perplexity: of the hard "
               "assignments on the test set; rel. distortion: E||z_e - z_q||^2 / E||z_e||^2 there; E||z_e||^2: the "
               "scale of the codes the codebook covers. ms / "
               "model-it.: training wall time per model-iteration (stack time / models in the stack) on the "
               "machine named above. –: not recorded by that run.")
    return tables.write_csv_md(df, format_quantizer_table(df), stem, figures_dir,
                               [budgets.banner(budget, df["dataset"]),
                                f"{tables.budget_note(df)} {explain}" + (f" {note}" if note else "")])


# ------------------------------------------------------------------------------------- the rotation trick
ROTATION_MEASURES = {**{m: SHORT_LABELS[m] for m in METRICS}, "codewords_used": "codewords used",
                     "perplexity_hard": "perplexity", "recon_mse": "test MSE x 1e3"}
ON, OFF = " rotation ", " straight-through "


def rotation_effect(df: pd.DataFrame) -> pd.DataFrame:
    """From a sweep's `quantizer_table`: one line per pair of rows that differ only in the gradient estimator
    ("... rotation ..." and its "... straight-through ..." twin), with each measure of ROTATION_MEASURES with the
    rotation trick (<measure>_on), without it (<measure>_off) and their difference (on - off). Accuracies in
    percent; test MSE per pixel."""
    lines = []
    for name in df.index:
        twin = name.replace(ON, OFF)
        if ON not in name or twin not in df.index:
            continue
        line = {"quantizer": name.split(ON)[0], "setting": name.split(ON)[1], "seeds": int(df.loc[name, "seeds"])}
        for key in ROTATION_MEASURES:
            line[f"{key}_on"], line[f"{key}_off"] = df.loc[name, key], df.loc[twin, key]
            line[f"{key}_diff"] = df.loc[name, key] - df.loc[twin, key]
        lines.append(line)
    return pd.DataFrame(lines)


def format_rotation_effect(df: pd.DataFrame) -> pd.DataFrame:
    """The display of `rotation_effect`: per measure 'on / off'."""
    out = pd.DataFrame(index=[f"{q} {s}" for q, s in zip(df["quantizer"], df["setting"])])
    out.index.name = "quantizer, setting"
    out["seeds"] = df["seeds"].astype(str).to_list()
    for key, label in ROTATION_MEASURES.items():
        scale, show = (1e3, "{:.2f}".format) if key == "recon_mse" else (1.0, (
            (lambda v, k=key: format_metric(v, k)) if key in METRICS else "{:.3g}".format))
        out[f"{label}: rotation / straight-through"] = [
            f"{'–' if not np.isfinite(a) else show(scale * a)} / {'–' if not np.isfinite(b) else show(scale * b)}"
            for a, b in zip(df[f"{key}_on"], df[f"{key}_off"])]
    return out


def write_rotation_effect(df: pd.DataFrame, stem: str, figures_dir="figures", verdict: str = "",
                          budget: str = budgets.COMMITTED):
    """figures/<stem>.csv and .md of `rotation_effect`: banner, what the lines are, `verdict` (its sentences), the
    display table."""
    explain = (f"The rotation trick on and off: pairs of sweep rows that differ only in the gradient estimator, on "
               f"the validation split ({int(df['seeds'].min())} seeds each; 'rotation / straight-through').")
    return tables.write_csv_md(df.set_index("quantizer"), format_rotation_effect(df), stem, figures_dir,
                               [budgets.banner(budget), explain, verdict])


def write_verdict(sentences: Sequence[str], stem: str, figures_dir="figures", budget: str = budgets.COMMITTED):
    """figures/<stem>.md: the banner and `sentences`, one paragraph each (the README's verdict of the study)."""
    text = "\n\n".join(filter(None, [budgets.banner(budget), *sentences])) + "\n"
    path = Path(figures_dir) / f"{stem}.md"
    write_atomic(path, lambda f: f.write(text.encode()))
    return path
