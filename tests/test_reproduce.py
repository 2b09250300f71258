"""reproduce.py's one data check before any notebook: the data folder, else the embedded sample at the quick
budget, else a download, else one message and no notebook; `python -m softvq run` says the same in one line.
And how it executes the notebooks: two at once in dependency order, a quiet log, reading copies to publish."""
import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from softvq import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reproduce(monkeypatch):
    """reproduce.py as a module, with no data set asked of the sample by the environment."""
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(reproduce, *argv, names=None):
    return reproduce.check_data(reproduce.parse_args(list(argv)), names or list(reproduce.NOTEBOOKS))


def never(names, root=None):
    raise AssertionError(f"downloaded {names}")


def fake_download(calls):
    """A data.download that records its call and writes empty files where the data sets are expected."""
    def download(names, root=None):
        calls.append(list(names))
        for name in names:
            for path in data.expected_files(name, root):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
    return download


def test_the_quick_budget_reads_what_is_missing_from_the_sample(reproduce, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    assert check(reproduce, "--budget", "quick", "--data-root", str(tmp_path)) == ["mnist", "cifar10-jpeg",
                                                                                   "fashion-mnist"]


def test_the_full_data_wins_where_it_is_present(reproduce, mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    (tmp_path / "MNIST").symlink_to((mnist_root / "MNIST").resolve())
    assert check(reproduce, "--budget", "quick", "--data-root", str(tmp_path)) == ["cifar10-jpeg", "fashion-mnist"]


def test_nothing_is_needed_without_training_or_by_the_theorem_notebook(reproduce, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    assert check(reproduce, "--budget", "paper", "--no-train", "--data-root", str(tmp_path)) == []
    assert check(reproduce, "--budget", "paper", "--data-root", str(tmp_path), names=["01_theorem1"]) == []


def test_a_missing_data_set_is_downloaded_first(reproduce, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "download", fake_download(calls))
    assert check(reproduce, "--budget", "paper", "--data-root", str(tmp_path), "--download") == []
    assert calls == [["mnist", "svhn", "cifar10", "fashion-mnist"]]
    assert check(reproduce, "--budget", "paper", "--data-root", str(tmp_path)) == [] and len(calls) == 1


def test_offline_it_stops_with_one_message(reproduce, tmp_path, monkeypatch):
    def offline(names, root=None):
        raise RuntimeError("Error downloading x.gz:\nTried a mirror, got:\n<urlopen error [Errno -2] Name unknown>")
    monkeypatch.setattr(data, "download", offline)
    with pytest.raises(SystemExit) as stop:
        check(reproduce, "--budget", "paper", "--data-root", str(tmp_path), names=["04_tables"])
    message = str(stop.value.code)
    assert message.startswith("Downloading failed: <urlopen error [Errno -2] Name unknown>\nmissing data: mnist, svhn,")
    assert str(tmp_path / "train_32x32.mat") in message and str(tmp_path / "cifar-10-batches-py/test_batch") in message
    assert "machine that is online" in message and "--data-root or SOFTVQ_DATA" in message


def test_no_download_forbids_it(reproduce, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    with pytest.raises(SystemExit, match="^missing data: mnist, cifar10-jpeg, fashion-mnist. Expected:"):
        check(reproduce, "--budget", "cpu", "--no-download", "--data-root", str(tmp_path))


def test_the_notebooks_never_download_themselves(reproduce, tmp_path):
    folders = ["--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), "--checkpoints", str(tmp_path / "c")]
    for extra in ([], ["--download"], ["--no-download"]):
        assert reproduce.parameters(reproduce.parse_args(folders + extra))["overrides"]["download"] is False


def _without_data(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SOFTVQ_SAMPLE"}
    return {**env, "SOFTVQ_DATA": str(tmp_path / "no-data"), "OMP_NUM_THREADS": "1"}


def test_the_paper_budget_starts_no_notebook_without_its_data(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "reproduce.py"), "--budget", "paper", "--no-download",
                           "--outputs", str(tmp_path / "executed")], cwd=tmp_path, env=_without_data(tmp_path),
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("missing data:") == 1 and done.stdout == ""
    assert not (tmp_path / "executed").exists()


def test_the_command_line_says_so_in_one_error_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "softvq", "run", "--iterations", "5"], cwd=tmp_path,
                          env=_without_data(tmp_path), capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("python -m softvq run: error: missing data: mnist. Expected: mnist: ")
    assert done.stderr.count("\n") == 1 and str(tmp_path / "no-data" / "MNIST" / "raw") in done.stderr


# ------------------------------------------------------------------------------ executed notebooks, reading copies
nbformat = pytest.importorskip("nbformat")


def executed_notebook(root: Path, output_text: str = "saved figures/x.png\n"):
    """A notebook as papermill leaves it: an injected-parameters cell, timings, kernel and papermill metadata."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    nb = new_notebook(metadata={"jupytext": {"formats": "ipynb,py:percent", "cell_metadata_filter": "tags,-all",
                                             "text_representation": {"jupytext_version": "1.19.6"}},
                                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11.7"},
                                "papermill": {"input_path": str(root / "notebooks" / "x.ipynb"), "duration": 3.2}})
    timing = {"papermill": {"duration": 1.5, "start_time": "2026-01-01T00:00:00"},
              "execution": {"iopub.status.busy": "2026-01-01T00:00:00"}}
    nb.cells = [new_markdown_cell("# Title"),
                new_code_cell("budget = 'quick'", metadata={"tags": ["parameters"], **timing}, execution_count=1),
                new_code_cell(f"budget = 'cpu'\nresults_dir = '{root}/results'", execution_count=2,
                              metadata={"tags": ["injected-parameters"], **timing}),
                new_markdown_cell("## A section"),
                new_code_cell("print('saved')", metadata=timing, execution_count=3,
                              outputs=[new_output("stream", name="stdout", text=output_text)])]
    return nb


def test_a_reading_copy_keeps_the_source_cells_and_their_outputs_only(reproduce, tmp_path):
    copy = reproduce.reading_copy(executed_notebook(tmp_path), root=tmp_path)
    assert [c.source for c in copy.cells] == ["# Title", "budget = 'quick'", "## A section", "print('saved')"]
    assert [c.metadata for c in copy.cells] == [{}, {"tags": ["parameters"]}, {}, {}]
    assert [c.get("execution_count") for c in copy.cells] == [None, 1, None, 2]       # counted again
    assert copy.metadata["jupytext"] == {"formats": "ipynb,py:percent", "cell_metadata_filter": "tags,-all"}
    assert "papermill" not in copy.metadata and "version" not in copy.metadata["language_info"]
    assert copy.cells[3].outputs[0].text == "saved figures/x.png\n"
    again = reproduce.reading_copy(executed_notebook(tmp_path), root=tmp_path)
    assert nbformat.writes(again) == nbformat.writes(copy) == nbformat.writes(reproduce.reading_copy(copy, tmp_path))
    nbformat.validate(copy)


@pytest.mark.parametrize("text", ["saved {root}/figures/x.png\n", "missing runs (1):\n  /srv/someone/results/a.json\n"])
def test_a_reading_copy_refuses_an_absolute_path(reproduce, tmp_path, text):
    with pytest.raises(ValueError, match="absolute path"):
        reproduce.reading_copy(executed_notebook(tmp_path, text.format(root=tmp_path)), root=tmp_path)


def test_a_reading_copy_refuses_a_warning_of_the_machine_that_made_it(reproduce, tmp_path):
    from nbformat.v4 import new_output
    nb = executed_notebook(tmp_path)
    nb.cells[-1].outputs.append(new_output("stream", name="stderr", text="findfont: Font family ['STIXGeneral'] not "
                                                                           "found. Falling back to DejaVu Sans.\n"))
    with pytest.raises(ValueError, match=r"cell 3 writes to stderr: \"findfont"):
        reproduce.reading_copy(nb, root=tmp_path)


def test_cell_ids_are_stable_and_unique(reproduce):
    from nbformat.v4 import new_code_cell, new_markdown_cell
    cells = [new_markdown_cell("# A"), new_code_cell("x = 1"), new_code_cell("x = 1"), new_code_cell("y = 2")]
    ids = reproduce.cell_ids(cells)
    assert len(set(ids)) == 4 and ids[2] == ids[1] + "-2"
    edited = reproduce.cell_ids([cells[0], new_code_cell("x = 3"), *cells[2:]])
    assert edited[0] == ids[0] and edited[3] == ids[3] and edited[1] != ids[1]      # only the edited cell's changes


def test_parameters_are_those_the_parameters_cell_assigns_and_sections_are_timed(reproduce, tmp_path):
    nb = executed_notebook(tmp_path)
    nb.cells[1].source = "budget = 'quick'   # a comment\nseeds = None\noverrides = {}\nprint(budget)"
    assert reproduce.declared(nb) == {"budget", "seeds", "overrides"}
    assert reproduce.section_times(nb) == {"Title": 3.0, "A section": 1.5}


def test_every_notebook_declares_the_overrides_reproduce_gives(reproduce):
    for name in reproduce.NOTEBOOKS:
        assert {"budget", "overrides"} <= reproduce.declared(reproduce.source(name)), name


def test_one_progress_bar_per_notebook_and_no_kernel_transport_warning(tmp_path):
    """A quiet log: the notebook's bar, its time and the files written; not the kernel's transport warning."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "reproduce.py"), "--only", "01", "--outputs", str(tmp_path / "nb"),
               "--figures", str(tmp_path / "figures")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING" not in done.stderr and "without encryption" not in done.stderr
    bars = {line.split(":")[0].strip() for line in done.stderr.replace("\r", "\n").splitlines() if "cell" in line}
    assert bars == {"01_theorem1"}
    assert "01_theorem1" in done.stdout and (tmp_path / "figures" / "theorem1.png").exists()


def test_notebooks_run_two_at_once_and_one_waits_for_the_choices_it_reads(reproduce):
    """05 reads the Table 2 rows 04 chose: it starts after 04 has ended; 04 starts first, the rest beside it."""
    events, lock = [], threading.Lock()

    def run(name, position):
        with lock:
            events.append(("start", name, position))
        try:
            if name == "03_figure4":
                raise RuntimeError("a cell failed\nPapermillExecutionError: boom")
            time.sleep(0.05)
            return name.upper()
        finally:
            with lock:
                events.append(("end", name, position))

    done, failed = reproduce.run_all(list(reproduce.NOTEBOOKS), run, parallel=2)
    assert failed == {"03_figure4": "RuntimeError: PapermillExecutionError: boom"}
    assert {name: result for name, (result, _) in done.items()} == {n: n.upper() for n in reproduce.NOTEBOOKS
                                                                     if n != "03_figure4"}
    at = {(kind, name): i for i, (kind, name, _) in enumerate(events)}          # each notebook starts and ends once
    assert events[0][:2] == ("start", "04_tables")
    assert all(at["start", name] > at["end", "04_tables"] for name in ("05_codebook", "07_generalization"))
    assert {position for _, _, position in events} == {0, 1}
    running = 0
    for kind, *_ in events:
        running += 1 if kind == "start" else -1 if kind == "end" else 0
        assert running <= 2
    assert reproduce.run_all(["05_codebook"], run, parallel=2)[0]["05_codebook"][0] == "05_CODEBOOK"   # alone
