"""The same Table 1 rows trained on two platforms: does the platform move a row's seed statistics?

Reads the results JSONs of the same configs (same run ids, seeds 0-4) from two folders, e.g. the CPU runs
(commit 42b8d19) kept in benchmarks/results/table1_cpu and their reruns on an H100 in results/mnist, and reports
per row and metric each platform's mean ± std over seeds and the two-sided Welch p-value of "the means differ".
Writes benchmarks/results/platform_compare.json and .md.

    python benchmarks/platform_compare.py benchmarks/results/table1_cpu results/mnist
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scipy import stats

from softvq import store, tables
from softvq.io import write_json

ROOT = Path(__file__).resolve().parent


def load(folder: Path) -> dict[str, dict]:
    """The results records of a folder by run id (a damaged one is set aside by the store and left out)."""
    records = {p.stem: store.read_json(p) for p in folder.glob("*.json")}
    return {run_id: r for run_id, r in records.items() if r is not None}


def compare(first: Path, second: Path) -> list[dict]:
    """One entry per row (bottleneck) and metric, for every run id found in both folders."""
    in_first, in_second = load(first), load(second)
    rows: dict[str, list[str]] = {}
    for run_id in sorted(in_first.keys() & in_second.keys()):
        rows.setdefault(in_second[run_id]["config"]["bottleneck"], []).append(run_id)
    out = []
    for row, run_ids in rows.items():
        a, b = [in_first[r] for r in run_ids], [in_second[r] for r in run_ids]
        for metric in tables.METRICS:
            x, y = tables.metric_values(a, metric), tables.metric_values(b, metric)
            out.append({"row": row, "metric": metric, "seeds": len(run_ids),
                        "platform_a": tables.trained_on(a[0]), "mean_a": x.mean(), "std_a": x.std(ddof=1),
                        "platform_b": tables.trained_on(b[0]), "mean_b": y.mean(), "std_b": y.std(ddof=1),
                        "p_two_sided": float(stats.ttest_ind(x, y, equal_var=False).pvalue)})
    return out


def markdown(entries: list[dict]) -> str:
    lines = ["| row | metric | seeds | A | A mean ± std | B | B mean ± std | p (Welch, two-sided) |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['row']} | {e['metric']} | {e['seeds']} | {e['platform_a']} | {e['mean_a']:.3f} ± "
                     f"{e['std_a']:.3f} | {e['platform_b']} | {e['mean_b']:.3f} ± {e['std_b']:.3f} | "
                     f"{e['p_two_sided']:.2g} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "platform_compare")
    args = parser.parse_args(argv)
    entries = compare(args.first, args.second)
    write_json({"first": str(args.first), "second": str(args.second), "comparisons": entries},
               args.out.with_suffix(".json"))
    text = markdown(entries)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
