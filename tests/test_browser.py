"""Every notebook the way a reader runs it: JupyterLab on localhost, the notebook opened in Chromium (driven by
Playwright), Run All at the quick budget (the parameters as committed), then: no error output and no
traceback, every figure the committed reading copy shows is an image that loaded, and notebook 02's progress is
a live widget, not a text bar. A screenshot and the run's time per notebook go to outputs/browser/
(git-ignored). The notebooks run from a temporary copy, so their outputs land there too.

Needs Playwright's Python package and a Chromium on the system (Debian: `apt-get install -y chromium`; or
$SOFTVQ_CHROMIUM); `.ci/run` installs both. Playwright never downloads a browser here.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from softvq import data

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'")
from jupyterlab_reader import Reader, find_chromium, jupyterlab  # noqa: E402  (after the skips)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SHOTS = ROOT / "outputs" / "browser"
DATASETS = ("mnist", "fashion-mnist", "cifar10-jpeg")       # what the notebooks read at the quick budget
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
PROGRESS_WIDGET = ".jp-OutputArea-output .jupyter-widgets.widget-hprogress"      # tqdm.auto's bar


def image_outputs(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = data.data_root().resolve()
    absent = data.missing(DATASETS, root)
    if absent:
        pytest.skip(f"the notebooks' data sets are missing ({', '.join(absent)}): set SOFTVQ_DATA")
    served = tmp_path_factory.mktemp("jupyterlab")
    shutil.copytree(ROOT / "notebooks", served / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    with jupyterlab(served, env={"SOFTVQ_DATA": str(root)}) as server:     # absolute: the server runs elsewhere
        yield server


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium to drive: apt-get install -y chromium, or set SOFTVQ_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def reader(browser, lab):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield Reader(page, lab)
    page.close()
    lab.shutdown_kernels()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_in_jupyterlab(reader, lab, path):
    name = f"notebooks/{path.name}"
    reader.open(name)
    seconds = reader.run_all()
    reader.save()
    reader.screenshot(SHOTS / f"{path.stem}.png")
    (SHOTS / f"{path.stem}.json").write_text(json.dumps({"notebook": name, "run_all_s": round(seconds, 1)}))
    print(f"{name}: Run All took {seconds:.1f} s")
    saved = nbformat.read(lab.root / name, as_version=4)
    outputs = [o for c in saved.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error" or "Traceback" in o.get("text", "")]
    assert not errors, f"{name}: {errors[0].get('ename', '')} {errors[0].get('evalue', errors[0].get('text'))}"
    warned = [o.text for o in outputs if o.get("name") == "stderr" and re.search(r"Warning|Error", o.text)]
    assert not warned, f"{name} shows a warning: {warned[0][:300]}"
    shown = reader.images()
    assert len(shown) == image_outputs(saved) == image_outputs(nbformat.read(path, as_version=4)) > 0
    assert all(width > 0 for width in shown), f"{name}: an image did not load"
    if path.stem == "02_train":                 # the one notebook that trains in view: a live progress widget
        assert reader.locator(PROGRESS_WIDGET).count() >= 1
        assert reader.locator(STDERR).count() == 0, "a text progress bar (stderr) instead of the widget"


def test_paired_source_opens_as_a_notebook(reader):
    """The README calls the .py files the source: JupyterLab (jupytext) opens one as a notebook, cell for cell."""
    source = ROOT / "notebooks" / "02_train.py"
    reader.open(f"notebooks/{source.name}", factory="Jupytext Notebook")
    sync_api.expect(reader.locator(".jp-Cell")).to_have_count(len(jupytext.read(source).cells))


def test_kernel_load_benchmark_trains_one_run_four_ways(browser, tmp_path):
    """benchmarks/kernel_load.py, as a smoke run: the same run from the command line and in a JupyterLab kernel,
    idle and beside two busy processes, in one JSON with its figure."""
    if data.missing(["mnist"], data.data_root()):
        pytest.skip("MNIST is missing: set SOFTVQ_DATA")
    out = tmp_path / "kernel_load.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_load.py"), "--iterations", "5", "--out",
                    str(out)], check=True, capture_output=True, env={**os.environ,
                                                                     "SOFTVQ_DATA": str(data.data_root().resolve())})
    result = json.loads(out.read_text())
    assert [(r["where"], r["busy_processes"]) for r in result["rows"]] == [
        ("command line", 0), ("JupyterLab kernel", 0), ("command line", 2), ("JupyterLab kernel", 2)]
    assert len({r["run_id"] for r in result["rows"]}) == 1 and all(r["train_time_s"] > 0 for r in result["rows"])
    assert set(result["slower_over_faster"]) == {"0", "2"} and out.with_suffix(".png").stat().st_size > 0
