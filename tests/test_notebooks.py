"""Every notebook runs end to end through papermill with tiny parameters; every .py/.ipynb pair holds the same
cells; the committed .ipynb are reading copies whose outputs a fresh run from the committed results gives again.

The notebooks run on a small copy of the real MNIST (10,200 training and 500 test images, so that the
ablation's 10,000-image validation split still exists) and on a small fake `cifar10-jpeg` tarball, with
every output folder under a temporary directory. Without the real MNIST these tests are skipped.
"""
import base64
import json
import os
import struct
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from softvq import data

papermill = pytest.importorskip("papermill")
jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
from PIL import Image  # noqa: E402  (after the skips)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9]*.py"))
TINY = dict(kmeans_n_init=1, device="cpu", progress=False)          # the overrides of every training notebook
PARAMETERS = {        # the parameters in view, and the overrides
    "01_theorem1": (dict(kl_steps=20), dict(theorem_samples=2000)),
    "02_train": (dict(iterations=20, n_images=4), TINY),
    "03_figure4": (dict(iterations=20), dict(TINY, tsne_points=200)),
    "04_tables": (dict(iterations=20, seeds=[0]), dict(TINY, table2_iterations=20)),
    "05_codebook": (dict(iterations=20), dict(TINY, launcher={"kind": "local", "cpus_per_job": 1, "poll_s": 0.5})),
    "06_estimators": (dict(iterations=20, seeds=[0, 1]), dict(TINY, ablation_iterations=20)),
    "07_generalization": ({}, dict(TINY, iterations=20, ablation_iterations=20, tsne_points=200)),
    "08_quantizers": ({}, dict(TINY, iterations=20, ablation_iterations=20)),
}
FIGURES = {
    "01_theorem1": ["theorem1.png"],
    "02_train": ["train_soft_vqvae_loss.png", "train_soft_vqvae_reconstructions.png"],
    "03_figure4": ["figure4.png"],
    "04_tables": [f"{t}.{ext}" for t in ("table1", "table1_stats", "table2", "table2_stats", "ablation", "ablation_stats",
                                         "noise_sweep", "scaling_sweep", "table2_sweep", "table2_sweep_stats",
                                         "table2_scaling_sweep") for ext in ("csv", "md")] + ["table1.png"],
    "05_codebook": ["codebook_table1.png", "codebook_table1.csv", "codebook_table1.md", "codebook_table2.csv",
                    "codebook_table2.md"],
    "06_estimators": [f"{t}.{ext}" for t in ("estimators_sweep", "estimators", "estimators_stats", "estimators_codebook",
                                             "estimators_theorem1") for ext in ("csv", "md")] + ["estimators.png"],
    "07_generalization": [f"{t}.{ext}" for t in ("fashion_noise_sweep", "fashion_scaling_sweep", "fashion_rechosen",
                                                 "fashion_table1", "fashion_table1_stats", "fashion_table1_probe",
                                                 "fashion_table1_probe_stats", "fashion_codebook", "claims")
                          for ext in ("csv", "md")]
                         + ["fashion_tsne.png", "fashion_codebook.png"],
    "08_quantizers": [f"{t}_{d}.{ext}" for t in ("quantizers_sweep", "sqvae_sweep", "quantizers_rotation", "quantizers")
                      for d in ("mnist", "fashion_mnist") for ext in ("csv", "md")]
                     + [f"quantizers_{d}_stats.{ext}" for d in ("mnist", "fashion_mnist") for ext in ("csv", "md")]
                     + ["quantizers_mnist.png", "quantizers_fashion_mnist.png"],
}


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An MNIST idx file (big-endian header: magic with the number of dimensions, then the sizes)."""
    magic = 0x0800 + array.ndim
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _tiny_idx(name: str, root: Path, real_root: Path, n_train: int = 10_200, n_test: int = 500) -> None:
    """The first images of an IDX data set (mnist, fashion-mnist) in torchvision's layout; MNIST's pixels stand
    in for a data set the real data root lacks."""
    raw = root / data.IDX_FOLDERS[name] / "raw"
    raw.mkdir(parents=True)
    source = name if not data.missing([name], real_root) else "mnist"
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = data.load_dataset(source, split, real_root)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", (x[:n, 0] * 255).round().numpy())
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y[:n].numpy())


def _tiny_cifar10_jpeg(root: Path, n_train: int = 10, n_test: int = 5) -> None:
    """The real tarball's layout (train/<class>/*.jpg, test/<class>/*.jpg) with a few random images."""
    src = root / "cifar-src"
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in data.CIFAR10_CLASSES:
            (src / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(src / split / cls / f"{i:04d}.jpg", quality=75)
    with tarfile.open(root / data.CIFAR10_JPEG_TARBALL, "w:gz") as tar:
        tar.add(src / "train", arcname="train")
        tar.add(src / "test", arcname="test")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny data root and shared output folders (notebook 05 reuses the run of notebook 02)."""
    real = Path(os.environ.get("SOFTVQ_DATA", "data"))
    if not (real / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"offline MNIST not found under {real}/MNIST/raw: set SOFTVQ_DATA to run the notebooks")
    base = tmp_path_factory.mktemp("notebooks")
    for name in data.IDX_FOLDERS:
        _tiny_idx(name, base / "data", real)
    _tiny_cifar10_jpeg(base / "data")
    return base


@pytest.fixture(autouse=True)
def kernel_environment(monkeypatch, tmp_path_factory):
    """The kernel inherits this environment: a private decoded-data cache, one thread per kernel."""
    monkeypatch.setenv("SOFTVQ_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


def execute(name: str, workspace: Path, out_name: str | None = None, overrides: dict | None = None,
            **parameters) -> dict:
    """Run notebooks/<name>.ipynb with the workspace's folders and its tiny parameters (`parameters` and
    `overrides` replace some); return the executed notebook (JSON)."""
    out = workspace / "executed" / f"{out_name or name}.ipynb"
    out.parent.mkdir(exist_ok=True)
    in_view, tiny = PARAMETERS[name]
    folders = dict(figures_dir=str(workspace / "figures"), results_dir=str(workspace / "results"),
                   checkpoint_dir=str(workspace / "checkpoints"), data_root=str(workspace / "data"))
    overrides = {**tiny, **folders, **(overrides or {})}
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), kernel_name="python3", progress_bar=False,
                               parameters={**in_view, **parameters, "overrides": overrides}, cwd=str(workspace))
    return json.loads(out.read_text())


def test_a_python3_kernel_is_installed():
    from jupyter_client.kernelspec import KernelSpecManager
    assert "python3" in KernelSpecManager().find_kernel_specs(), \
        "no 'python3' Jupyter kernel: run `python -m ipykernel install --user`"


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_notebook_runs_and_writes_its_figures(name, workspace):
    execute(name, workspace)
    for figure in FIGURES[name]:
        path = workspace / "figures" / figure
        assert path.exists() and path.stat().st_size > 0, f"{name} did not write {figure}"


def test_tables_markdown_states_budget_and_lossy_copy(workspace):
    if not (workspace / "figures" / "table2.md").exists():
        pytest.skip("needs test_notebook_runs_and_writes_its_figures[04_tables]")
    def paragraphs(stem):
        return (workspace / "figures" / f"{stem}.md").read_text().split("\n\n")
    banner, budget_line, table1 = paragraphs("table1")
    assert banner.startswith("**Budget 'quick'**") and "not the committed results" in banner
    assert budget_line.startswith("Budget: 20 training iterations") and "raw data" in table1 and "soft VQ-VAE" in table1
    assert "LOSSY JPEG" in paragraphs("table2")[1] and "Paper columns: the paper's CIFAR-10 numbers" in paragraphs("table2")[1]
    assert "validation split" in paragraphs("ablation")[1]


def test_codebook_table_has_both_quantizers(workspace):
    if not (workspace / "figures" / "codebook_table1.md").exists():
        pytest.skip("needs test_notebook_runs_and_writes_its_figures[05_codebook]")
    text = (workspace / "figures" / "codebook_table1.md").read_text()
    assert "| VQ-VAE" in text and "| soft VQ-VAE" in text and "perplexity (soft)" in text


def test_a_quick_run_writes_only_under_outputs(tmp_path):
    """With the default folders, a budget other than the committed one leaves figures/ and results/ alone."""
    in_view, overrides = PARAMETERS["01_theorem1"]
    papermill.execute_notebook(str(NOTEBOOKS / "01_theorem1.ipynb"), str(tmp_path / "executed.ipynb"),
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
                               parameters=dict(in_view, budget="quick", overrides=overrides))
    assert (tmp_path / "outputs" / "quick" / "figures" / "theorem1.png").exists()
    assert not (tmp_path / "figures").exists() and not (tmp_path / "results").exists()


def test_tables_without_training_report_missing_runs(tmp_path, workspace):
    figures = tmp_path / "figures"
    executed = execute("04_tables", workspace, out_name="04_tables-missing", iterations=7, train_missing=False,
                       sections=["table1", "table2"],
                       overrides=dict(table2_iterations=7, results_dir=str(tmp_path / "empty"),
                                      figures_dir=str(figures)))
    table1 = (figures / "table1.md").read_text()
    assert table1.count("missing") >= 6 and "raw data" not in table1
    assert (figures / "table2.csv").exists() and not (tmp_path / "empty").exists()
    printed = [text for cell in executed["cells"] for o in cell.get("outputs", []) if o["output_type"] == "stream"
               for text in ["".join(o["text"])]]
    assert any(text.startswith("missing runs (6):") for text in printed)          # Table 1's six rows, named


def test_train_notebook_never_shows_another_runs_reconstructions(tmp_path, workspace):
    """Notebook 02 keys its saved reconstructions by run id: a run of another config does not find them."""
    folders = dict(figures_dir=str(tmp_path / "figures"), results_dir=str(tmp_path / "results"),
                   checkpoint_dir=str(tmp_path / "checkpoints"))
    shown = tmp_path / "figures" / "train_soft_vqvae_reconstructions.png"
    execute("02_train", workspace, out_name="02_train-first", overrides=folders)
    shown.unlink()
    execute("02_train", workspace, out_name="02_train-other", overrides=folders, beta=0.5, train_missing=False)
    assert not shown.exists()


def _reproduce():
    """The top-level reproduce.py as a module (it is not part of the package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("reproduce", NOTEBOOKS.parent / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_notebooks_are_listed():
    reproduce = _reproduce()
    assert [p.stem for p in PAIRS] == list(PARAMETERS) == list(reproduce.NOTEBOOKS)


def test_reproduce_selects_notebooks_and_redirects_folders(tmp_path):
    reproduce = _reproduce()
    assert reproduce.select(None) == list(reproduce.NOTEBOOKS)
    assert reproduce.select(["04", "theorem1", "05_codebook"]) == ["01_theorem1", "04_tables", "05_codebook"]
    with pytest.raises(SystemExit):
        reproduce.select(["0"])                                         # ambiguous
    args = reproduce.parse_args(["--budget", "paper", "--seeds", "0", "1", "--results", str(tmp_path / "r"),
                                 "--figures", str(tmp_path / "f"), "--checkpoints", str(tmp_path / "c"), "--no-train"])
    params = reproduce.parameters(args)
    assert params["budget"] == "paper" and params["seeds"] == [0, 1] and params["train_missing"] is False
    overrides = params["overrides"]
    assert overrides["results_dir"] == str(tmp_path / "r") and "device" not in overrides
    assert overrides["progress"] is False and "launcher" not in overrides         # inline: the notebooks' default
    args = reproduce.parse_args(["--launcher", "slurm", "--partition", "gpu", "--no-wait", "--jobs-dir", "j"])
    assert reproduce.parameters(args)["overrides"]["launcher"] == {"kind": "slurm", "partition": "gpu", "wait": False,
                                                                    "folder": "j"}
    assert reproduce.parameters(args)["overrides"]["figures_dir"] == "outputs/quick/figures"   # relative: no
    with pytest.raises(SystemExit):                                                      # machine's folders shown
        reproduce.parse_args(["--budget", "quick", "--publish"])             # only the committed results publish


def cells(notebook) -> list[tuple]:
    """What a pair must share: each cell's type, source and tags."""
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_py_and_ipynb_pairs_are_in_sync(py):
    """Compared by their cells: outputs, metadata and the header's Jupytext version line are not the source."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `python reproduce.py --budget cpu --publish`"
    notebook = jupytext.read(ipynb)
    assert cells(notebook) == cells(jupytext.read(py)), \
        f"{py.name} and {ipynb.name} differ: run `python reproduce.py --budget cpu --only {py.stem} --publish`"
    tags = [c.metadata.get("tags", []) for c in notebook.cells if c.cell_type == "code"]
    assert tags[1] == ["parameters"], "the second code cell must be the papermill parameters cell"
    assert "except ImportError" in notebook.cells[1].source, "the first code cell must be the install cell"


# What a reader sees in each committed notebook without running it: outputs of these types, at least so many.
SHOWN = {"01_theorem1": {"image/png": 1, "text/html": 1},                    # Theorem 1 as a figure, the MSE table
         "02_train": {"image/png": 2},                                       # loss curves, reconstructions
         "03_figure4": {"image/png": 1, "text/html": 1, "text/markdown": 1},  # Figure 4, scores, verdict
         "04_tables": {"image/png": 1, "text/html": 8, "text/markdown": 7},   # Tables 1-2, sweeps, a verdict each
         "05_codebook": {"image/png": 1, "text/html": 2, "text/markdown": 2},
         "06_estimators": {"image/png": 1, "text/html": 4, "text/markdown": 2},
         "07_generalization": {"text/html": 5, "text/markdown": 1},     # sweeps, choices, table, claims
         "08_quantizers": {"image/png": 1, "text/html": 7, "text/markdown": 4}}   # both sweeps and SQ-VAE's,
                                            # MNIST's rotation effect, table and statistics, their verdicts
                                            # (Fashion-MNIST's table comes with its runs)


@pytest.mark.parametrize("name", [py.stem for py in PAIRS])
def test_committed_notebooks_are_reading_copies(name):
    """Under 1 MB, with the outputs of the committed results, in the normal form of `reproduce.reading_copy`:
    no injected parameters, timings or kernel metadata, stable cell ids, no absolute path."""
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.stat().st_size < 1_000_000
    notebook = nbformat.read(path, as_version=4)
    assert nbformat.writes(_reproduce().reading_copy(notebook)) == nbformat.writes(notebook), \
        f"{path.name} is not a reading copy: run `python reproduce.py --budget cpu --publish`"
    shown = Counter(mime for c in notebook.cells for o in c.get("outputs", []) for mime in o.get("data", {}))
    assert shown and all(shown[mime] >= n for mime, n in SHOWN.get(name, {}).items()), dict(shown)
    assert "Budget 'quick'" not in path.read_text()                       # the committed budget's outputs


def image_sizes(output: dict) -> list[tuple[int, int]]:
    """(width, height) of each PNG of an output, from its header."""
    return [struct.unpack(">II", base64.b64decode(png)[16:24]) for mime, png in output.get("data", {}).items()
            if mime == "image/png"]


def texts(output: dict) -> dict:
    """An output's text: the stream, the plain text and the Markdown (HTML markup varies with the pandas
    release; its numbers are those of the plain text)."""
    keep = {k: v for k, v in output.get("data", {}).items() if k in ("text/plain", "text/markdown")}
    return {"name": output.get("name"), "text": output.get("text"), **keep}


@pytest.mark.parametrize("name", ["04_tables", "06_estimators"])     # made from committed files only
def test_a_committed_notebook_is_what_the_committed_results_give(name, tmp_path, monkeypatch):
    """The publish command's run of a notebook, in a copy of the project folder that shares its results, gives
    the committed notebook's text outputs again, and images of the same sizes: they cannot go stale."""
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    reproduce = _reproduce()
    (tmp_path / "results").symlink_to(reproduce.ROOT / "results", target_is_directory=True)
    args = reproduce.parse_args(["--budget", "cpu", "--publish", "--only", name])
    executed = reproduce.run_notebook(name, reproduce.parameters(args), args, tmp_path / f"{name}.ipynb", cwd=tmp_path)
    fresh = reproduce.reading_copy(executed, root=tmp_path)
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert len(fresh.cells) == len(committed.cells)
    for new, old in zip(fresh.cells, committed.cells):
        outputs = list(zip(new.get("outputs", []), old.get("outputs", [])))
        assert len(new.get("outputs", [])) == len(old.get("outputs", [])), new.source[:80]
        for a, b in outputs:
            assert texts(a) == texts(b), f"{name}: an output of the cell {new.source[:60]!r} changed; republish"
            assert image_sizes(a) == image_sizes(b)
