"""reproduce.py's one data check before any notebook: the data folder, else the embedded sample at the quick
budget, else a download, else one message and no notebook; `python -m softvq run` says the same in one line."""
import importlib.util
import os
import subprocess
import sys
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
    return reproduce.check_data(reproduce.parse_args(list(argv)), names or reproduce.NOTEBOOKS)


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
    assert check(reproduce, "--budget", "quick", "--data-root", str(tmp_path)) == ["mnist", "cifar10-jpeg"]


def test_the_full_data_wins_where_it_is_present(reproduce, mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    (tmp_path / "MNIST").symlink_to((mnist_root / "MNIST").resolve())
    assert check(reproduce, "--budget", "quick", "--data-root", str(tmp_path)) == ["cifar10-jpeg"]


def test_nothing_is_needed_without_training_or_by_the_theorem_notebook(reproduce, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", never)
    assert check(reproduce, "--budget", "paper", "--no-train", "--data-root", str(tmp_path)) == []
    assert check(reproduce, "--budget", "paper", "--data-root", str(tmp_path), names=["01_theorem1"]) == []


def test_a_missing_data_set_is_downloaded_first(reproduce, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "download", fake_download(calls))
    assert check(reproduce, "--budget", "paper", "--data-root", str(tmp_path), "--download") == []
    assert calls == [["mnist", "svhn", "cifar10"]]
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
    with pytest.raises(SystemExit, match="^missing data: mnist, cifar10-jpeg. Expected:"):
        check(reproduce, "--budget", "cpu", "--no-download", "--data-root", str(tmp_path))


def test_the_notebooks_never_download_themselves(reproduce, tmp_path):
    folders = ["--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), "--checkpoints", str(tmp_path / "c")]
    for extra in ([], ["--download"], ["--no-download"]):
        assert reproduce.parameters(reproduce.parse_args(folders + extra))["download"] is False


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
