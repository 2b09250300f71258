"""Run the notebooks with papermill: the paper's figures and tables, from scratch or from finished runs.

    python reproduce.py --budget quick                  # minutes on a CPU: 50 iterations, 1 seed; no data needed
    python reproduce.py --budget cpu --no-train         # rebuild the committed figures from the committed results
    python reproduce.py --budget cpu --publish          # the same, and refresh the executed notebooks in notebooks/
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

Each notebook is executed from its .py source (Jupytext), one progress bar per notebook. Two run at once where
there are two cores or more (--parallel), each kernel with its share of the cores; a notebook that reads another
one's choices (05 reads 04's) starts once that one has ended. --publish (committed budget only; implies
--no-train) also writes each executed notebook over notebooks/<name>.ipynb as its reading copy: the outputs of
the committed results, without papermill's injected parameters, timings or kernel metadata, with relative paths
and stable cell ids (`reading_copy`).

Before any notebook starts, one check finds the data sets the chosen budget and notebooks train on in the data
folder (--data-root, else $SOFTVQ_DATA, else ./data). At the quick budget the sample embedded in the package
stands in for a missing MNIST, Fashion-MNIST or lossy CIFAR-10 copy (its outputs then go to outputs/quick-sample/, and every
table and figure says so in its first line); full data is used wherever it is present. Any other missing data
set is downloaded with torchvision (mnist, svhn, cifar10; --no-download forbids it). What is still missing is
listed in one message, with the paths expected and how to get it, and no notebook runs.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import io
import json
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import NamedTuple

from softvq import budgets, data, launch
from softvq.train import flush_to_zero
from softvq.config import field_type
from softvq.io import write_atomic, write_json
from softvq.provenance import code_version
from softvq.train import PRECISIONS

ROOT = Path(__file__).resolve().parent
TABLE2_DATA = "the budget's Table 2 data sets"


class Notebook(NamedTuple):
    data: tuple[str, ...] = ()      # the data sets it trains on (TABLE2_DATA: the budget's Table 2 data sets)
    after: tuple[str, ...] = ()     # the notebooks whose choices it reads: it starts once they have ended


# The notebooks, in the order of the story. A new notebook is one entry here beside its .py/.ipynb pair in
# notebooks/. Those that share runs (02, 04 and 05 all train Table 1's soft VQ-VAE at the quick budget) may run
# at once: a run is trained once, under its lock (softvq.store), the others waiting for its results.
NOTEBOOKS = {"01_theorem1": Notebook(), "02_train": Notebook(("mnist",)), "03_figure4": Notebook(("mnist",)),
             "04_tables": Notebook(("mnist", TABLE2_DATA)),
             "05_codebook": Notebook(("mnist", TABLE2_DATA), after=("04_tables",)),   # Table 2's rows as 04 chose them
             "06_estimators": Notebook(("mnist",)),
             # its claims read the tables of 04 and 08
             "07_generalization": Notebook(("fashion-mnist",), after=("04_tables", "08_quantizers")),
             "08_quantizers": Notebook(("mnist", "fashion-mnist"))}
WIDTH = max(map(len, NOTEBOOKS))                        # of the notebook names in the log
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]    # not the kernel's startup warnings about its transport
IMAGE = re.compile(r"^image/")


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
    parser.add_argument("--publish", action="store_true",
                        help=f"with --budget {budgets.COMMITTED} (implies --no-train): also write each executed "
                             f"notebook's reading copy over notebooks/<name>.ipynb")
    parser.add_argument("--train-progress", action="store_true",
                        help="keep the training progress bars in the executed notebooks (long at the paper budget)")
    parser.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="notebooks executed at once, their kernels sharing the cores (default: 2, or 1 on one "
                             "core)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    launch.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.publish and args.budget != budgets.COMMITTED:
        parser.error(f"--publish shows the committed results: it needs --budget {budgets.COMMITTED}")
    args.no_train = args.no_train or args.publish
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
            raise SystemExit(f"--only {key!r} matches {matches or 'no notebook'}; choose from {list(NOTEBOOKS)}")
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


def shown(path: Path) -> str:
    """`path` as a notebook run from the project folder is given it: relative inside the project, so that no
    output of the notebook names this machine's folders."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def parameters(args: argparse.Namespace) -> dict:
    """Parameters offered to every notebook (each takes those its parameters cell declares): the budget, the
    settings in view, and `overrides` (softvq.notebook's options)."""
    where = folders(args)
    overrides = dict(figures_dir=shown(where["figures_dir"]), results_dir=shown(where["results_dir"]),
                     checkpoint_dir=shown(where["checkpoint_dir"]),
                     data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
                     device=args.device, precision=args.precision, compile=args.compile or None,
                     progress=args.train_progress, launcher=args.launcher_fields or None,
                     download=False)                # check_data has fetched what the notebooks need
    given = dict(budget=args.budget, seeds=args.seeds, iterations=args.iterations,
                 train_missing=False if args.no_train else None,
                 overrides={k: v for k, v in overrides.items() if v is not None})
    return {k: v for k, v in given.items() if v is not None}


def datasets_needed(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The data sets the notebooks `names` train on at the chosen budget; none with --no-train."""
    if args.no_train:
        return []
    table2 = budgets.budget(args.budget)["table2_datasets"]
    needed = [d for name in names for d in NOTEBOOKS[name].data]
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


# ----------------------------------------------------------------------------------------- executing notebooks
def source(name: str):
    """notebooks/<name>.py, the source of the notebook, read by Jupytext."""
    import jupytext
    return jupytext.read(ROOT / "notebooks" / f"{name}.py")


def cell_ids(cells) -> list[str]:
    """An id per cell from its type and source (8 hex digits, '-2', '-3' ... for repeats): the same on every
    run, and unchanged when other cells are edited."""
    ids, seen = [], {}
    for cell in cells:
        base = hashlib.sha1(f"{cell['cell_type']}\n{cell['source']}".encode()).hexdigest()[:8]
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def declared(notebook) -> set[str]:
    """The names the notebook's parameters cell assigns."""
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return {target.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def run_notebook(name: str, params: dict, args: argparse.Namespace, output: Path, cwd: Path = ROOT,
                 position: int = 0):
    """Execute notebook `name` from its source with the `params` it declares, its kernel in `cwd`, into `output`,
    with one progress bar over its cells (on line `position`); returns the executed notebook."""
    import papermill
    notebook = source(name)
    bar = {"desc": name.ljust(WIDTH), "unit": "cell",
           "position": position if sys.stderr.isatty() else 0}     # a line each on a terminal; no cursor moves in a log
    return papermill.execute_notebook(notebook, str(output), parameters={k: v for k, v in params.items()
                                                                          if k in declared(notebook)},
                                      kernel_name=args.kernel, resources={"metadata": {"path": str(cwd)}},
                                      extra_arguments=KERNEL_ARGUMENTS, progress_bar=bar)


def start_order(names: list[str]) -> list[str]:
    """`names` in the order they start: first those that others wait for (their `after`), then the story's."""
    waited_for = {d for n in names for d in NOTEBOOKS[n].after}
    return sorted(names, key=lambda n: n not in waited_for)


def run_all(names: list[str], run, parallel: int = 1) -> tuple[dict, dict]:
    """Call `run(name, position)` for each notebook, at most `parallel` at once (`position`: a free line for its
    progress bar), each once the notebooks it comes `after` among `names` have ended. Returns
    ({name: (what run returned, seconds)}, {name: its error in one line}): a failure is reported, the others
    go on."""
    pending, running, free, done, failed = start_order(names), {}, list(range(parallel)), {}, {}

    def timed(name: str, position: int):
        began = time.perf_counter()
        return run(name, position), time.perf_counter() - began

    with ThreadPoolExecutor(parallel) as pool:
        while pending or running:
            waiting = set(pending) | {name for name, _ in running.values()}
            for name in [n for n in pending if not set(NOTEBOOKS[n].after) & waiting][:len(free)]:
                pending.remove(name)
                position = free.pop(0)
                running[pool.submit(timed, name, position)] = (name, position)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name, position = running.pop(future)
                free.append(position)
                error = future.exception()
                if error is None:
                    done[name] = future.result()
                else:
                    message = str(error).strip().splitlines()
                    failed[name] = f"{type(error).__name__}: {message[-1] if message else ''}"
    return done, failed


def section_times(notebook) -> dict[str, float]:
    """Seconds per section of an executed notebook: its cells' papermill durations summed under the nearest
    Markdown heading above them ("setup" before the first)."""
    times, heading = {}, "setup"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = next((line.lstrip("#").strip() for line in reversed(cell.source.splitlines())
                            if line.startswith("#")), heading)
        duration = cell.metadata.get("papermill", {}).get("duration") or 0.0
        times[heading] = round(times.get(heading, 0.0) + duration, 1)
    return times


def reading_copy(notebook, root: Path = ROOT):
    """The executed `notebook` as the committed reading copy: its source cells with their outputs, counted 1, 2, ...
    without the injected-parameters cell; no papermill or execution-time metadata, stable cell ids (`cell_ids`),
    the kernel's language without its version.

    Raises:
        ValueError: an output names a folder outside the project or `root` itself (an absolute path), or is
            written to stderr (a warning of the machine that ran it, such as a font it lacks)."""
    nb = copy.deepcopy(notebook)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    count = 0
    for cell, cell_id in zip(nb.cells, cell_ids(nb.cells)):
        cell["id"] = cell_id
        cell.metadata = {"tags": cell.metadata["tags"]} if cell.metadata.get("tags") else {}
        if cell.cell_type == "code" and cell.execution_count is not None:     # counted again without the
            count += 1                                                        # injected cell
            cell.execution_count = count
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = count
    jupytext_metadata = nb.metadata.get("jupytext", {})
    nb.metadata = {"jupytext": {k: jupytext_metadata[k] for k in ("cell_metadata_filter", "formats")
                                if k in jupytext_metadata},
                   "kernelspec": nb.metadata["kernelspec"],
                   "language_info": {k: v for k, v in nb.metadata.get("language_info", {}).items() if k != "version"}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    for where, text in output_texts(nb):
        if str(root) in text or re.search(r"(?<![\w:/.~-])/(?:[\w.-]+/)+[\w.-]+", text):
            raise ValueError(f"{where} names an absolute path: {text.strip()[:200]!r}")
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                raise ValueError(f"cell {i} writes to stderr: {''.join(output['text']).strip()[:200]!r}")
    return nb


def output_texts(notebook):
    """(where, text) of every text output of a notebook: streams, and every non-image representation."""
    for i, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            where = f"cell {i} ({output['output_type']})"
            if "text" in output:
                yield where, "".join(output["text"])
            for mime, value in output.get("data", {}).items():
                if not IMAGE.match(mime):
                    yield f"{where} {mime}", value if isinstance(value, str) else json.dumps(value)


def publish(notebook, name: str) -> Path:
    """Write the reading copy of the executed `notebook` over notebooks/<name>.ipynb; returns its path."""
    import nbformat
    path = ROOT / "notebooks" / f"{name}.ipynb"
    text = nbformat.writes(reading_copy(notebook))
    write_atomic(path, lambda f: f.write(text.encode()))
    return path


def write_timings(path: Path, args: argparse.Namespace, timings: dict, sections: dict, failures: dict,
                  total: float) -> None:
    """Seconds per notebook, per section of each and in all, with the code version and the command's options,
    as JSON."""
    write_json({"budget": args.budget, "no_train": args.no_train, "parallel": args.parallel,
                "notebooks_s": {k: round(v, 1) for k, v in timings.items()}, "sections_s": sections,
                "failed": failures, "total_s": round(total, 1), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
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
    flush_to_zero()                                 # this process and its jobs: before torch's first operation
    args = parse_args(argv)
    names = select(args.only)
    sample = check_data(args, names)
    if sample:                                      # for this process, the notebooks' kernels and their jobs
        os.environ["SOFTVQ_SAMPLE"] = ",".join(dict.fromkeys([*data.sampled(), *sample]))
        print(f"{', '.join(sample)}: not in {data.data_root(args.data_root).resolve()}, read from the embedded "
              f"data sample")
    params, where = parameters(args), folders(args)
    where["outputs"].mkdir(parents=True, exist_ok=True)
    if args.parallel > 1 and "OMP_NUM_THREADS" not in os.environ:     # the kernels share the cores
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.parallel))
    started = time.time()

    def run(name: str, position: int):
        executed = run_notebook(name, params, args, where["outputs"] / f"{name}.ipynb", position=position)
        if args.publish:
            publish(executed, name)
        return executed

    done, failures = run_all(names, run, args.parallel)
    timings = {name: done[name][1] for name in names if name in done}            # in the story's order
    sections = {name: section_times(done[name][0]) for name in timings}
    print()
    for name in names:
        status = f"{timings[name]:7.1f} s" if name in timings else f"FAILED  {failures[name]}"
        print(f"  {name.ljust(WIDTH)} {status}   -> {shown(where['outputs'] / (name + '.ipynb'))}"
              + ("   published" if args.publish and name in timings else ""))
    total = time.time() - started
    print(f"total {total:.0f} s\n")
    write_timings(where["outputs"].parent / "reproduce_timings.json", args, timings, sections, failures, total)
    print(summary(where["figures_dir"], started))
    if where["figures_dir"] == (ROOT / "figures").resolve():     # the committed tables: into README and docs too
        for page, names in update_pages(where["figures_dir"]).items():
            print(f"{page} tables updated:", ", ".join(names) or "none")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
