"""Training in a JupyterLab kernel against the command line, on an idle CPU and beside two busy processes.

The same run (notebook 02's model: Table 1's soft VQ-VAE on MNIST, with the quick budget's data sizes, `--iterations`
steps) is trained four ways: by `python -m softvq run`, and in a JupyterLab kernel by a notebook cell that calls
`softvq.notebook` as notebook 02 does, opened and Run All in Chromium (tests/jupyterlab_reader.py); each once on
an idle machine and once beside two busy single-thread processes (a float32 matrix product in a loop, as two
single-thread trainings are). Each speed is the run's own training time (`train_time_s` of its record). The
goal: kernel and command line within 1.5x of each other, idle and under load.

    python benchmarks/kernel_load.py --iterations 1000 --out benchmarks/results/kernel_load_cpu.json    # and its .png
    python benchmarks/kernel_load.py --iterations 1000 --threads 2 --out ...     # torch's default on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))             # the JupyterLab reader the browser test uses
BUSY = "import torch\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"
SIZES = dict(train_size=1_000, eval_size=250, kmeans_n_init=3, probe_iterations=50)    # the quick budget's
CELL = """from softvq import notebook
from softvq.config import Config
setup = notebook.setup("quick", {{"results_dir": {results!r}, "figures_dir": {figures!r}, "threads": {threads!r}}})
config = Config(**{fields!r})
record, _ = notebook.reconstructions(setup, config, 4)
print(record["train_time_s"])
"""


@contextmanager
def busy_processes(n: int):
    """`n` single-thread processes that keep a core busy each, stopped on exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", BUSY], env=env) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def record_in(folder: Path) -> dict:
    (path,) = Path(folder).rglob("*.json")
    return json.loads(path.read_text())


def command_line(fields: dict, work: Path, threads: int | None) -> dict:
    """Train in `work` (its own checkpoints folder: a checkpoint left by an earlier run would be resumed)."""
    from softvq import data
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in fields.items()]
    env = {**os.environ, "SOFTVQ_DATA": str(data.data_root().resolve()),
           **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    subprocess.run([sys.executable, "-m", "softvq", "run", *flags, "--results", str(work / "results")],
                   check=True, capture_output=True, cwd=work, env=env)
    return record_in(work / "results")


def kernel(fields: dict, work: Path, threads: int | None, browser) -> dict:
    import nbformat
    from jupyterlab_reader import Reader, jupyterlab
    cell = CELL.format(results=str(work / "results"), figures=str(work / "figures"), fields=fields,
                       threads=threads)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, work / "train.ipynb")
    with jupyterlab(work) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        reader = Reader(page, lab)
        reader.open("train.ipynb")
        reader.run_all()
        reader.screenshot(work / "train.png")
        page.close()
        lab.shutdown_kernels()
    return record_in(work / "results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's threads in both (default: softvq's choice, softvq.train.free_cores)")
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (and a .png beside it)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from jupyterlab_reader import find_chromium
    from softvq.provenance import code_version

    fields = dict(dataset="mnist", bottleneck="soft_vqvae", iterations=args.iterations, **SIZES)
    rows = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        for load in (0, 2):
            with busy_processes(load):
                for where, train in (("command line", command_line), ("JupyterLab kernel", kernel)):
                    work = Path(tmp) / f"{where.split()[0]}-{load}"
                    work.mkdir()
                    record = (train(fields, work, args.threads, browser) if train is kernel
                              else train(fields, work, args.threads))
                    rows.append({"where": where, "busy_processes": load, "run_id": record["run_id"],
                                 "train_time_s": record["train_time_s"],
                                 "iterations_per_s": args.iterations / record["train_time_s"]})
                    print(json.dumps(rows[-1]), flush=True)
        browser.close()
    assert len({r["run_id"] for r in rows}) == 1, "the four trainings must be the same run"
    speed = {(r["where"], r["busy_processes"]): r["iterations_per_s"] for r in rows}
    ratios = {str(load): max(speed["command line", load], speed["JupyterLab kernel", load])
              / min(speed["command line", load], speed["JupyterLab kernel", load]) for load in (0, 2)}
    result = {"benchmark": "kernel_load", "iterations": args.iterations, "threads": args.threads, "rows": rows,
              "slower_over_faster": ratios, "goal": 1.5, "code_version": code_version("cpu")}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        plot(result, args.out.with_suffix(".png"))


def plot(result: dict, path: Path) -> None:
    """Iterations per second of the four trainings, grouped by load."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, where in enumerate(("command line", "JupyterLab kernel")):
        rows = [r for r in result["rows"] if r["where"] == where]
        ax.bar([2 * j + 0.8 * i for j in range(len(rows))], [r["iterations_per_s"] for r in rows], width=0.8,
               label=where)
    ax.set_xticks([0.4, 2.4], ["idle", "two busy processes"])
    ax.set_ylabel("training iterations / s")
    ax.set_title(f"{result['code_version']['cpu']}, {result['iterations']:,} iterations", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
