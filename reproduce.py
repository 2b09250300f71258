"""Run the notebooks in order with papermill: the paper's figures and tables, from scratch or from finished runs.

    python reproduce.py --budget quick                  # minutes on a CPU: 50 iterations, 1 seed; no data needed
    python reproduce.py --budget cpu --no-train         # rebuild the committed figures from the committed results
    python reproduce.py --budget cpu                    # what the README reports: CPU hours
    python reproduce.py --budget paper                  # 40,000 iterations, 3 seeds (a GPU helps)
    python reproduce.py --only 04_tables --budget paper # one notebook (name, number or part of it)
    python reproduce.py --results /tmp/r --figures /tmp/f --checkpoints /tmp/c   # folders of your choice
    python reproduce.py --budget paper --no-download    # never download: stop with one message if data is missing
    python reproduce.py --budget paper --launcher slurm --partition gpu --gpus-per-job 1   # stacks as Slurm jobs

The "cpu" budget reads and writes the committed figures/ and results/ (and copies the tables into the marked
blocks of README.md and docs/*.md); every other budget writes under outputs/<budget>/ (git-ignored), so a quick
run never touches the committed files. Executed notebooks go to outputs/<budget>/notebooks/, their timings to
outputs/<budget>/reproduce_timings.json (outputs/<budget>-sample/ when the embedded sample is read). Training
runs whose results JSON exists are skipped, so a second call only redoes the tables and plots; --no-train trains
nothing at all. With --launcher local or slurm, each notebook runs its training stacks as submitit jobs and
waits for them (--no-wait: submits and goes on; a later --no-train call builds the tables).

Before any notebook starts, one check finds the data sets the chosen budget and notebooks train on in the data
folder (--data-root, else $SOFTVQ_DATA, else ./data). At the quick budget the sample embedded in the package
stands in for a missing MNIST or lossy CIFAR-10 copy (its outputs then go to outputs/quick-sample/, and every
table and figure says so in its first line); full data is used wherever it is present. Any other missing data
set is downloaded with torchvision (mnist, svhn, cifar10; --no-download forbids it). What is still missing is
listed in one message, with the paths expected and how to get it, and no notebook runs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
from pathlib import Path

from softvq import budgets, data, launch
from softvq.config import field_type
from softvq.io import write_atomic, write_json
from softvq.provenance import code_version
from softvq.train import PRECISIONS

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ["01_theorem1", "02_train", "03_figure4", "04_tables", "05_codebook", "06_estimators"]
TABLE2_DATA = "the budget's Table 2 data sets"
NOTEBOOK_DATA = {"02_train": ("mnist",), "03_figure4": ("mnist",), "04_tables": ("mnist", TABLE2_DATA),
                 "05_codebook": ("mnist", TABLE2_DATA), "06_estimators": ("mnist",)}   # what each notebook trains on


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=["quick", "cpu", "paper"], default="quick")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this notebook (repeatable): a name like 04_tables, its number 04, or 'tables'")
    parser.add_argument("--seeds", type=field_type("seed"), nargs="+", default=None,
                        help="seeds of the tables (default: the budget's)")
    parser.add_argument("--iterations", type=field_type("iterations"), default=None,
                        help="training iterations (default: the budget's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
    parser.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                        help="download a missing mnist, svhn or cifar10 into the data folder first (the default; "
                             "--no-download: never)")
    parser.add_argument("--results", default=None, help="results JSONs folder (default: the budget's)")
    parser.add_argument("--figures", default=None, help="figures and tables folder (default: the budget's)")
    parser.add_argument("--checkpoints", default=None, help="checkpoints and latents folder (default: the budget's)")
    parser.add_argument("--outputs", default=None, help="executed notebooks folder (default: outputs/<budget>/notebooks)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="training numerics (default fp32; tf32 and bf16 are for a GPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step (for a GPU)")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: build every figure and table from the results and figure data that exist")
    parser.add_argument("--cell-progress", action="store_true", help="show papermill's per-cell progress bar")
    parser.add_argument("--train-progress", action="store_true",
                        help="keep the training progress bars in the executed notebooks (long at the paper budget)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    launch.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.launcher_fields = launch.from_arguments(args)
    except ValueError as err:
        parser.error(str(err))
    return args


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


def folders(args: argparse.Namespace) -> dict[str, Path]:
    """The figures, results, checkpoints and executed-notebooks folders: given ones, else the budget's."""
    figures, results, checkpoints = budgets.output_dirs(args.budget, args.figures, args.results, args.checkpoints,
                                                        base=ROOT)
    executed = ROOT / "outputs" / budgets.outputs_name(args.budget) / "notebooks"
    outputs = Path(args.outputs) if args.outputs else executed
    return {"figures_dir": figures.resolve(), "results_dir": results.resolve(),
            "checkpoint_dir": checkpoints.resolve(), "outputs": outputs.resolve()}


def parameters(args: argparse.Namespace) -> dict:
    """Parameters offered to every notebook (each takes those its parameters cell declares)."""
    where = folders(args)
    given = dict(budget=args.budget, seeds=args.seeds, iterations=args.iterations, device=args.device,
                 data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
                 results_dir=str(where["results_dir"]), figures_dir=str(where["figures_dir"]),
                 checkpoint_dir=str(where["checkpoint_dir"]), progress=args.train_progress,
                 precision=args.precision, torch_compile=args.compile or None)
    if args.no_train:
        given["train_missing"] = False
    given["download"] = False                       # check_data has fetched what the notebooks need
    if args.launcher_fields:
        given["launcher"] = args.launcher_fields
    return {k: v for k, v in given.items() if v is not None}


def datasets_needed(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The data sets the notebooks `names` train on at the chosen budget; none with --no-train."""
    if args.no_train:
        return []
    table2 = budgets.budget(args.budget)["table2_datasets"]
    needed = [d for name in names for d in NOTEBOOK_DATA.get(name, ())]
    return list(dict.fromkeys(d for n in needed for d in (table2 if n == TABLE2_DATA else [n])))


def check_data(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The one data check before any notebook runs: every data set the notebooks `names` need is in the data
    folder, or read from the embedded sample (quick budget), or downloaded into the folder (unless
    --no-download). Returns the data sets to read from the sample.

    Raises:
        SystemExit: one message naming each data set still missing, the paths expected and how to get it.
    """
    absent = data.missing(datasets_needed(args, names), args.data_root)
    sample = [n for n in absent if n in data.SAMPLE_FILES] if args.budget == "quick" else []
    absent = {n: paths for n, paths in absent.items() if n not in sample}
    fetch = [n for n in absent if n in data.DOWNLOADABLE]
    failed = ""
    if fetch and args.download:
        print(f"downloading {', '.join(fetch)} into {data.data_root(args.data_root).resolve()} with torchvision")
        try:
            with contextlib.redirect_stdout(io.StringIO()):        # torchvision's line per mirror tried
                data.download(fetch, args.data_root)
        except (RuntimeError, OSError) as err:
            failed = f"Downloading failed: {str(err).strip().splitlines()[-1]}\n"     # the last mirror's error
        absent = data.missing(absent, args.data_root)
    if absent:
        raise SystemExit(failed + data.missing_message(absent))
    return sample


def run_notebook(name: str, params: dict, args: argparse.Namespace, outputs: Path) -> float:
    """Execute notebooks/<name>.ipynb into the `outputs` folder; returns seconds taken."""
    import papermill
    source = ROOT / "notebooks" / f"{name}.ipynb"
    declared = papermill.inspect_notebook(str(source))
    began = time.perf_counter()
    papermill.execute_notebook(str(source), str(outputs / f"{name}.ipynb"),
                               parameters={k: v for k, v in params.items() if k in declared},
                               kernel_name=args.kernel, progress_bar=args.cell_progress, cwd=str(ROOT))
    return time.perf_counter() - began


def write_timings(path: Path, args: argparse.Namespace, timings: dict, failures: dict, total: float) -> None:
    """Seconds per notebook and in all, with the code version and the command's options, as JSON."""
    write_json({"budget": args.budget, "no_train": args.no_train,
                "notebooks_s": {k: round(v, 1) for k, v in timings.items()}, "failed": failures,
                "total_s": round(total, 1), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "cpu_count": os.cpu_count(), "code_version": code_version()}, path)


def summary(figures: Path, since: float) -> str:
    """The files in the figures folder written since `since`, with sizes and times."""
    files = sorted(p for p in figures.glob("*") if p.is_file() and not p.name.startswith("."))
    new = [p for p in files if p.stat().st_mtime >= since]
    lines = [f"{len(new)} of {len(files)} files in {figures} written by this run:"]
    for p in new:
        stamp = time.strftime("%H:%M:%S", time.localtime(p.stat().st_mtime))
        lines.append(f"  {p.name:<42} {p.stat().st_size / 1024:8.1f} KiB  {stamp}")
    return "\n".join(lines)


def pages() -> list[Path]:
    """The pages that hold generated tables: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def update_pages(figures: Path, targets: list[Path] | None = None) -> dict[str, list[str]]:
    """Replace each `<!-- name -->` ... `<!-- /name -->` block of every page (default: `pages()`) with
    figures/<name>.md (the committed budget's tables); returns the names replaced, by page."""
    replaced = {}
    for page in targets or pages():
        text, names = page.read_text(), []
        for name in re.findall(r"^<!-- (\w+) -->$", text, flags=re.MULTILINE):
            table = figures / f"{name}.md"
            if table.exists():
                block = f"<!-- {name} -->\n{table.read_text().strip()}\n<!-- /{name} -->"
                text = re.sub(rf"^<!-- {name} -->$.*?^<!-- /{name} -->$", lambda _: block, text,
                              flags=re.MULTILINE | re.DOTALL)
                names.append(name)
        if text != page.read_text():
            write_atomic(page, lambda f: f.write(text.encode()))
        replaced[page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)] = names
    return replaced


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm
    names = select(args.only)
    sample = check_data(args, names)
    if sample:                                      # for this process, the notebooks' kernels and their jobs
        os.environ["SOFTVQ_SAMPLE"] = ",".join(dict.fromkeys([*data.sampled(), *sample]))
        print(f"{', '.join(sample)}: not in {data.data_root(args.data_root).resolve()}, read from the embedded "
              f"data sample")
    params, where = parameters(args), folders(args)
    where["outputs"].mkdir(parents=True, exist_ok=True)
    started, timings, failures = time.time(), {}, {}
    bar = tqdm(names, desc=f"notebooks ({args.budget})", unit="nb")
    for name in bar:
        bar.set_postfix_str(name)
        try:
            timings[name] = run_notebook(name, params, args, where["outputs"])
        except Exception as err:   # report, go on with the others (they do not need each other's outputs)
            failures[name] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    print()
    for name in names:
        status = f"{timings[name]:7.1f} s" if name in timings else f"FAILED  {failures[name]}"
        print(f"  {name:<14} {status}   -> {where['outputs'] / (name + '.ipynb')}")
    total = time.time() - started
    print(f"total {total:.0f} s\n")
    write_timings(where["outputs"].parent / "reproduce_timings.json", args, timings, failures, total)
    print(summary(where["figures_dir"], started))
    if where["figures_dir"] == (ROOT / "figures").resolve():     # the committed tables: into README and docs too
        for page, names in update_pages(where["figures_dir"]).items():
            print(f"{page} tables updated:", ", ".join(names) or "none")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
