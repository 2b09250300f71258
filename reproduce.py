"""Run the notebooks in order with papermill: the paper's figures and tables, from scratch or from finished runs.

    python reproduce.py --budget quick                  # minutes on a CPU: small iterations, 1 seed
    python reproduce.py --budget cpu                    # what the README reports: one 2-core CPU session
    python reproduce.py --budget paper                  # 40,000 iterations, 3 seeds (a GPU helps)
    python reproduce.py --only 04_tables --budget paper # one notebook (name, number or part of it)
    python reproduce.py --results /tmp/r --figures /tmp/f --checkpoints /tmp/c   # leave the real folders alone

Executed notebooks go to outputs/ (git-ignored). Training runs whose results JSON exists are skipped
(softvq.experiments.run does that), so a second call only redoes the tables and plots.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ["01_theorem1", "02_train", "03_figure4", "04_tables", "05_codebook"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=["quick", "cpu", "paper"], default="quick")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this notebook (repeatable): a name like 04_tables, its number 04, or 'tables'")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds of the tables (default: the budget's)")
    parser.add_argument("--iterations", type=int, default=None, help="training iterations (default: the budget's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
    parser.add_argument("--results", default=str(ROOT / "results"), help="results JSONs folder")
    parser.add_argument("--figures", default=str(ROOT / "figures"), help="figures and tables folder")
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"), help="checkpoints and latents folder")
    parser.add_argument("--outputs", default=str(ROOT / "outputs"), help="executed notebooks folder")
    parser.add_argument("--no-train", action="store_true", help="tables: only collect the results that exist")
    parser.add_argument("--cell-progress", action="store_true", help="show papermill's per-cell progress bar")
    parser.add_argument("--train-progress", action="store_true",
                        help="keep the training progress bars in the executed notebooks (long at the paper budget)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    return parser.parse_args(argv)


def select(only: list[str] | None) -> list[str]:
    """The notebooks to run, in dependency order; each --only value must match one of them."""
    if not only:
        return list(NOTEBOOKS)
    chosen = set()
    for key in only:
        matches = [n for n in NOTEBOOKS if n == key or n.split("_", 1)[0] == key or key in n]
        if len(matches) != 1:
            raise SystemExit(f"--only {key!r} matches {matches or 'no notebook'}; choose from {NOTEBOOKS}")
        chosen.add(matches[0])
    return [n for n in NOTEBOOKS if n in chosen]


def parameters(args: argparse.Namespace) -> dict:
    """Parameters offered to every notebook (each takes those its parameters cell declares)."""
    given = dict(budget=args.budget, seeds=args.seeds, iterations=args.iterations, device=args.device,
                 data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
                 results_dir=str(Path(args.results).resolve()), figures_dir=str(Path(args.figures).resolve()),
                 checkpoint_dir=str(Path(args.checkpoints).resolve()), progress=args.train_progress)
    if args.no_train:
        given["train_missing"] = False
    return {k: v for k, v in given.items() if v is not None}


def run_notebook(name: str, params: dict, args: argparse.Namespace) -> float:
    """Execute notebooks/<name>.ipynb into the outputs folder; returns seconds taken."""
    import papermill
    source = ROOT / "notebooks" / f"{name}.ipynb"
    declared = papermill.inspect_notebook(str(source))
    began = time.perf_counter()
    papermill.execute_notebook(str(source), str(Path(args.outputs) / f"{name}.ipynb"),
                               parameters={k: v for k, v in params.items() if k in declared},
                               kernel_name=args.kernel, progress_bar=args.cell_progress, cwd=str(ROOT))
    return time.perf_counter() - began


def summary(figures: Path, since: float) -> str:
    """The files in the figures folder written since `since`, with sizes and times."""
    files = sorted(p for p in figures.glob("*") if p.is_file() and not p.name.startswith("."))
    new = [p for p in files if p.stat().st_mtime >= since]
    lines = [f"{len(new)} of {len(files)} files in {figures} written by this run:"]
    for p in new:
        stamp = time.strftime("%H:%M:%S", time.localtime(p.stat().st_mtime))
        lines.append(f"  {p.name:<42} {p.stat().st_size / 1024:8.1f} KiB  {stamp}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm
    names = select(args.only)
    params = parameters(args)
    Path(args.outputs).mkdir(parents=True, exist_ok=True)
    started, timings, failures = time.time(), {}, {}
    bar = tqdm(names, desc=f"notebooks ({args.budget})", unit="nb")
    for name in bar:
        bar.set_postfix_str(name)
        try:
            timings[name] = run_notebook(name, params, args)
        except Exception as err:   # report, go on with the others (they do not need each other's outputs)
            failures[name] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    print()
    for name in names:
        status = f"{timings[name]:7.1f} s" if name in timings else f"FAILED  {failures[name]}"
        print(f"  {name:<14} {status}   -> {Path(args.outputs) / (name + '.ipynb')}")
    print(f"total {time.time() - started:.0f} s\n")
    print(summary(Path(args.figures), started))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
