"""Verdict sentences computed from a section's own numbers, for the notebooks' prose.

A verdict says, per metric, which row leads, by how much over the runner-up, and whether the lead survives
the seed statistics of `tables.seed_statistics`: the reference row beats every other row at one-sided
p < ALPHA (Welch's t-test over seeds), or the leader's 95 % interval clears the reference's. With one seed
a verdict says that there is no interval, so that a small lead reads as a hint and not a result.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from . import paper
from .estimator_swap import SCORES
from .tables import METRICS, format_metric

ALPHA = 0.05
ONE_SEED = "\n\nNo seed statistics for this sweep: a lead of a few points is a hint, not a result."
METRIC_NAMES = {"cluster_acc": "clustering accuracy", "nmi": "NMI", "classification_acc": "classification accuracy"}


def label(row: str) -> str:
    return paper.LABELS.get(str(row), str(row))


def _gap(metric: str, value: float) -> str:
    return f"{value:.2f} points" if metric in paper.PERCENT else f"{value:.4f}"


def _value(metric: str, value: float) -> str:
    return format_metric(value, metric) + (" %" if metric in paper.PERCENT else "")


def ranked(values: Mapping[str, float], higher_is_better: bool = True) -> list[tuple[str, float]]:
    """(row, value) pairs with a finite value, best first."""
    finite = [(k, float(v)) for k, v in values.items() if v is not None and np.isfinite(v)]
    return sorted(finite, key=lambda kv: -kv[1] if higher_is_better else kv[1])


def lead(values: Mapping[str, float], what: str, show: Callable[[float], str] = "{:.3g}".format,
         higher_is_better: bool = True) -> str:
    """'<what>: <leader> leads with <value>, <gap> ahead of <runner-up> (<value>)' for one set of numbers."""
    order = ranked(values, higher_is_better)
    if not order:
        return f"{what}: no numbers yet."
    (best, v1), rest = order[0], order[1:]
    if not rest:
        return f"{what}: only {label(best)} so far ({show(v1)})."
    second, v2 = rest[0]
    return (f"{what}: {label(best)} leads with {show(v1)}, {show(abs(v1 - v2))} "
            f"{'ahead of' if higher_is_better else 'below'} {label(second)} ({show(v2)}).")


def _statistics(stats: pd.DataFrame, metric: str) -> pd.DataFrame:
    return stats[stats["metric"] == metric].set_index("row")


def _survival(metric: str, leader: str, runner_up: str, stats: pd.DataFrame | None) -> str:
    """Whether the lead survives the seed statistics, in one clause."""
    if stats is None:
        return ""
    part, reference = _statistics(stats, metric), stats.attrs["reference"]
    if leader not in part.index or not np.isfinite(part.loc[leader, "ci_low"]):
        return " Too few seeds for an interval."
    if leader == reference:
        p = part["p_reference_better"].drop(reference).dropna()
        if p.empty:
            return ""
        worst, n = p.idxmax(), len(p)
        if p.max() < ALPHA:
            return (f" It beats each of the {n} other rows at one-sided p <= {p.max():.2g} (Welch over "
                    f"{int(part.loc[leader, 'seeds'])} seeds; the weakest test is against {label(worst)}).")
        return (f" That lead is within the seed noise against {label(worst)} (one-sided p = {p.max():.2g}; "
                f"{int((p < ALPHA).sum())} of {n} rows are beaten at p < {ALPHA:g}).")
    if reference not in part.index or not np.isfinite(part.loc[reference, "mean"]):
        return ""
    p = part.loc[leader, "p_reference_better"]
    clear = part.loc[leader, "ci_low"] > part.loc[reference, "ci_high"]
    clause = (f"the leader's 95 % interval {'clears' if clear else 'overlaps'} the {label(reference)}'s"
              + (f" (one-sided p = {p:.2g} that the {label(reference)} is better)." if np.isfinite(p) else "."))
    if runner_up == reference:
        return f" {clause[0].upper()}{clause[1:]}"
    return f" {label(reference)} is {_gap(metric, part.loc[leader, 'mean'] - part.loc[reference, 'mean'])} behind; {clause}"


def _bullets(df: pd.DataFrame, stats: pd.DataFrame | None, metrics, skip) -> list[str]:
    lines = []
    for m in [m for m in (metrics or METRICS) if m in df]:
        values = {row: df.loc[row, m] for row in df.index if row not in skip and df.loc[row, "seeds"] > 0}
        order = ranked(values)
        if len(order) < 2:
            lines.append(f"- {METRIC_NAMES[m]}: fewer than two rows with results.")
            continue
        (best, v1), (second, v2) = order[:2]
        several = stats is not None and df.loc[best, "seeds"] > 1
        lines.append(f"- **{METRIC_NAMES[m]}**: {label(best)} leads with {_value(m, v1)}, {_gap(m, v1 - v2)} ahead "
                     f"of {label(second)} ({_value(m, v2)})." + _survival(m, best, second, stats if several else None))
    return lines


def table_verdict(df: pd.DataFrame, stats: pd.DataFrame | None = None, metrics=None, skip=("raw",),
                  by: str | None = None) -> str:
    """Markdown bullets, one per metric of a `tables.collect` table: the leader, its margin over the
    runner-up, and (with `stats` from `tables.seed_statistics`) whether that survives the seeds. Rows in
    `skip` (the raw pixels: not a model) are left out of the race. `by` names a column (e.g. "bottleneck")
    whose groups race separately, as in a sweep that chooses a setting per bottleneck."""
    groups = df.groupby(by, sort=False) if by else [(None, df)]
    blocks = ["\n".join(([f"**{label(name)}**", ""] if by else []) + _bullets(part, stats, metrics, skip))
              for name, part in groups]
    return "\n\n".join(blocks) + (ONE_SEED if stats is None else "")


def reference_verdict(stats: pd.DataFrame, metrics=None) -> str:
    """Markdown bullets from `tables.seed_statistics`: per metric, each row's difference to the reference
    row, split into rows the reference beats at one-sided p < ALPHA and the rest (an ablation's question:
    which change matters)."""
    reference, lines = stats.attrs["reference"], []
    for m in [m for m in (metrics or METRICS) if m in set(stats["metric"])]:
        part = _statistics(stats, m)
        if reference not in part.index or not np.isfinite(part.loc[reference, "mean"]):
            lines.append(f"- {METRIC_NAMES[m]}: no results for {label(reference)} yet.")
            continue
        others = part.drop(reference).dropna(subset=["mean"])
        diff = (others["mean"] - part.loc[reference, "mean"]).sort_values()
        show = lambda rows: ", ".join(f"{label(r)} ({'+' if diff[r] >= 0 else '-'}{_gap(m, abs(diff[r]))})"
                                      for r in rows) or "none"
        beaten = [r for r in diff.index if others.loc[r, "p_reference_better"] < ALPHA]
        rest = [r for r in diff.index if r not in beaten]
        lines.append(f"- **{METRIC_NAMES[m]}** ({label(reference)}: {_value(m, part.loc[reference, 'mean'])}): "
                     f"worse at one-sided p < {ALPHA:g}: {show(beaten)}; not shown to differ: {show(rest)}.")
    return "\n".join(lines)


def codebook_verdict(df: pd.DataFrame) -> str:
    """Markdown bullets from a `tables.codebook_table`: codewords used, hard perplexity and, for the soft
    VQ-VAE, how often the decoder sees one codeword rather than a blend."""
    lines = []
    for row in df.index:
        r = df.loc[row]
        if not r["seeds"]:
            continue
        text = (f"- **{label(row)}** uses {r['codewords_used']:.0f} of its K = {r['K']:.0f} codewords "
                f"({r['codewords_used'] / r['K']:.0%}); the hard perplexity is {r['perplexity_hard']:.3g}, "
                f"so {r['perplexity_hard'] / r['K']:.0%} of K is in effective use")
        if np.isfinite(r.get("mean_max_posterior", math.nan)):
            text += (f"; its mean largest posterior is {r['mean_max_posterior']:.3f}"
                     f" ({'nearly a hard choice' if r['mean_max_posterior'] > 0.9 else 'a blend of codewords'})")
        lines.append(text + f" (mean over {int(r['seeds'])} seed{'s' if r['seeds'] > 1 else ''}).")
    return "\n".join(lines) or "- no codebook statistics yet."


def swap_verdict(swaps: pd.DataFrame, score: str = "recon_loss") -> str:
    """Markdown bullets from `estimator_swap.swap_table`: per trained row, the test-time estimator that decodes
    the test set with the lowest mean `score` (lower is better), how much more the runner-up gives, and whether
    that gap is within the larger of the two standard deviations over seeds."""
    lines = []
    for trained, part in swaps.groupby("trained", sort=False):
        part = part.set_index("tested")
        order = ranked(part[score].to_dict(), higher_is_better=False)
        if len(order) < 2:
            continue
        (best, v1), (second, v2) = order[:2]
        ratio = v2 / v1 if v1 > 0 else math.inf
        more = f"{ratio:.3g} times as much" if ratio >= 2 else f"{ratio - 1:.1%} more"
        spread = part.loc[[best, second], f"{score}_std"].max()
        noise = ", within the spread over seeds" if np.isfinite(spread) and v2 - v1 <= spread else ""
        seeds = int(part["seeds"].iloc[0])
        lines.append(f"- **{label(trained)}**, tested with each estimator: the posterior {best} gives the lowest "
                     f"{SCORES[score]} ({v1:.4g}); the runner-up, the {second}, gives {more} ({v2:.4g}{noise}; "
                     f"means over {seeds} seed{'s' if seeds > 1 else ''}).")
    return "\n".join(lines) or "- no estimator swaps yet."


def rotation_verdict(df: pd.DataFrame) -> str:
    """Markdown bullets from `rotation_effect`, one per quantizer: the mean change of each score, of the codewords
    used and of the test MSE when the rotation trick replaces straight-through, over its settings, and in how many
    settings the clustering accuracy rises."""
    lines = []
    for quantizer, part in df.groupby("quantizer", sort=False):
        n = len(part)
        change = lambda key, digits=2: f"{part[f'{key}_diff'].mean():+.{digits}f}"
        up = int((part["cluster_acc_diff"] > 0).sum())
        lines.append(
            f"- **{quantizer}**, rotation trick instead of straight-through (mean over {n} setting"
            f"{'s' if n > 1 else ''}, each averaged over {int(part['seeds'].min())} seeds): clustering accuracy "
            f"{change('cluster_acc')} points (higher in {up} of {n}), NMI {change('nmi', 4)}, linear probe "
            f"{change('classification_acc')} points; codewords used {part['codewords_used_off'].mean():.3g} -> "
            f"{part['codewords_used_on'].mean():.3g}, test MSE x 1e3 {1e3 * part['recon_mse_off'].mean():.2f} -> "
            f"{1e3 * part['recon_mse_on'].mean():.2f}.")
    return "\n".join(lines) or "- no pair of rows with and without the rotation trick yet."


def leads_sentence(stats: pd.DataFrame, what: str) -> str:
    """One sentence from `tables.seed_statistics`: per metric, whether the reference row beats every other row
    (its p the largest of the one-sided Welch tests, the meaning of "leads" everywhere in this project), else the
    row with the higher mean that it trails or does not beat."""
    reference, parts = stats.attrs["reference"], []
    for m in [m for m in METRICS if m in set(stats["metric"])]:
        part = _statistics(stats, m).dropna(subset=["mean"])
        if reference not in part.index or len(part) < 2:
            continue
        others = part.drop(reference)
        best = others["mean"].idxmax()
        p = others["p_reference_better"]
        shown = (f"{_value(m, part.loc[reference, 'mean'])} against {label(best)}'s "
                 f"{_value(m, others.loc[best, 'mean'])}")
        top, tested, untested = part["mean"].idxmax() == reference, p.dropna(), list(p.index[p.isna()])
        if top and not untested and tested.max() < ALPHA:
            parts.append(f"leads every other row on {METRIC_NAMES[m]} ({shown}; largest one-sided p = {p.max():.2g})")
        elif top and tested.empty:                                          # one seed a row: no test
            parts.append(f"has the highest mean {METRIC_NAMES[m]} ({shown}; one seed, so no test)")
        elif top and tested.max() < ALPHA:                                  # some rows with one seed so far
            parts.append(f"has the highest mean {METRIC_NAMES[m]} ({shown}), beating every row with two seeds or "
                         f"more (largest one-sided p = {tested.max():.2g}; {'; '.join(label(r) for r in untested)}: "
                         f"one seed, so no test)")
        elif top:
            parts.append(f"has the highest mean {METRIC_NAMES[m]} but does not beat {label(tested.idxmax())} at p < "
                         f"{ALPHA:g} ({shown}; p = {tested.max():.2g})")
        else:
            parts.append(f"trails {label(best)} on {METRIC_NAMES[m]} ({shown})")
    if not parts:
        return f"{what}: no seed statistics yet."
    body = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    waiting = list(dict.fromkeys(stats.loc[stats["seeds"] == 0, "row"]))
    caveat = (f" So far: {'; '.join(label(r) for r in waiting)} {'has' if len(waiting) == 1 else 'have'} no "
              f"results yet, and the sentence covers only the rows that do." if waiting else "")
    return f"{what}: the {label(reference)} {body}.{caveat}"
