"""What Colab needs: the notebooks' install cell and badges, data on request, and a run in a kernel without softvq."""
import json
import re
import shutil
import site
import subprocess
import sys
import types
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")      # Python 3.11+

from softvq import data

papermill = pytest.importorskip("papermill")
jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
PAIRS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
KERNEL = "softvq-colab-test"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_install_cell_and_badge_point_at_the_repository(py):
    cells = jupytext.read(py).cells
    install = cells[1].source
    assert install == jupytext.read(PAIRS[0]).cells[1].source, "the install cell differs between notebooks"
    default = re.search(r'os\.environ\.get\("SOFTVQ_PIP", "([^"]+)"\)', install).group(1)
    assert default == f"softvq[plots,peers] @ git+{REPOSITORY}", \
        "the install cell's default must be pyproject's [project.urls] Repository, with the extra the notebooks import"
    account = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{account}/blob/main/notebooks/{py.stem}.ipynb"
    assert cells[0].source.startswith("[![Open In Colab]") and badge in cells[0].source


def test_the_readme_links_each_notebooks_source_rendered_view_and_colab():
    """One row per notebook: its .py source, its executed copy on GitHub and nbviewer, and its Colab badge, all at
    pyproject's Repository."""
    readme = (ROOT / "README.md").read_text()
    account = REPOSITORY.removeprefix("https://github.com/")
    rows = [line for line in readme.splitlines() if line.startswith("| [`")]
    assert [re.match(r"\| \[`([^`]+)`\]", row).group(1) for row in rows] == [py.stem for py in PAIRS]
    for row, py in zip(rows, PAIRS):
        ipynb = f"{account}/blob/main/notebooks/{py.stem}.ipynb"
        for link in (f"](notebooks/{py.stem}.py)", f"](https://github.com/{ipynb})",
                     f"](https://nbviewer.org/github/{ipynb})", f"](https://colab.research.google.com/github/{ipynb})"):
            assert link in row, f"{py.stem}: no {link[2:]}"


@pytest.fixture
def torchvision_calls(monkeypatch):
    """The torchvision dataset classes of softvq.data replaced by recorders: (class, root, keywords) per call."""
    calls = []
    for name in ("MNIST", "SVHN", "CIFAR10"):
        monkeypatch.setattr(data, name, lambda root, name=name, **kw: calls.append((name, root, kw)))
    return calls


def test_download_fetches_both_splits_through_torchvision(torchvision_calls, tmp_path):
    assert data.download(["svhn", "mnist"], tmp_path) == tmp_path.resolve()
    root = tmp_path.resolve()
    assert torchvision_calls == [("SVHN", root, dict(split="train", download=True)),
                                 ("SVHN", root, dict(split="test", download=True)),
                                 ("MNIST", root, dict(train=True, download=True)),
                                 ("MNIST", root, dict(train=False, download=True))]


@pytest.mark.parametrize("name", ["cifar10-jpeg", "folder:/nowhere"])
def test_download_refuses_missing_datasets_it_cannot_fetch(torchvision_calls, tmp_path, name):
    with pytest.raises(data.DatasetNotFoundError, match="not found"):
        data.download(["mnist", name], tmp_path)
    assert torchvision_calls == []                      # checked before anything is fetched


def test_download_accepts_a_lossy_cifar10_in_place(torchvision_calls, tmp_path):
    (tmp_path / data.CIFAR10_JPEG_TARBALL).touch()
    data.download(["cifar10-jpeg", "cifar10"], tmp_path)
    assert [name for name, _, _ in torchvision_calls] == ["CIFAR10", "CIFAR10"]


def test_download_skips_what_the_embedded_sample_holds(torchvision_calls, tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTVQ_SAMPLE", "cifar10-jpeg,mnist")
    data.download(["cifar10-jpeg", "mnist", "svhn"], tmp_path)          # no tarball, yet nothing is refused
    assert [call[0] for call in torchvision_calls] == ["SVHN", "SVHN"]


def test_on_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not data.on_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert data.on_colab()


def _imports_softvq(python: Path, cwd: Path) -> bool:
    return subprocess.run([python, "-c", "import softvq"], cwd=cwd, capture_output=True).returncode == 0


@pytest.fixture
def bare_kernel(tmp_path, monkeypatch):
    """Jupyter kernel KERNEL: a venv that sees this interpreter's packages but not softvq; returns its python.

    softvq is installed editable here, by a .pth file of site-packages that runs its import finder. The venv
    lists the site-packages folders in a .pth file of its own: a folder named there only joins sys.path, its
    .pth files do not run, so torch and the rest import and softvq does not.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip()
    Path(venv_site, "system-site.pth").write_text("\n".join([*site.getsitepackages(), site.getusersitepackages()]))
    subprocess.run([python, "-m", "ipykernel", "install", "--prefix", tmp_path / "kernels", "--name", KERNEL],
                   check=True, capture_output=True)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "kernels" / "share" / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return python


@pytest.mark.slow
def test_notebook_installs_softvq_in_a_bare_kernel(bare_kernel, tmp_path, monkeypatch):
    work = tmp_path / "work"                             # the kernel's folder: the checkout is not on its sys.path
    work.mkdir()
    assert not _imports_softvq(bare_kernel, work)
    source = tmp_path / "softvq-src"                     # a copy: pip builds in the source tree (build/, egg-info)
    shutil.copytree(ROOT / "softvq", source / "softvq", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):       # what the build reads
        shutil.copy(ROOT / name, source)
    monkeypatch.setenv("SOFTVQ_PIP", str(source))
    # Offline and fast: no dependencies (the venv sees torch and the rest), setuptools from the system. pip reads
    # PIP_NO_BUILD_ISOLATION as the value of build_isolation, so "0" means --no-build-isolation.
    for var, value in dict(PIP_NO_DEPS="1", PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0").items():
        monkeypatch.setenv(var, value)
    shutil.copy(ROOT / "notebooks" / "01_theorem1.ipynb", work)
    papermill.execute_notebook(str(work / "01_theorem1.ipynb"), str(work / "executed.ipynb"), kernel_name=KERNEL,
                               parameters=dict(kl_steps=20, overrides=dict(theorem_samples=2000,
                                                                           figures_dir=str(work / "figures"))),
                               progress_bar=False, cwd=str(work))
    install = json.loads((work / "executed.ipynb").read_text())["cells"][1]
    assert "".join(install["outputs"][0]["text"]) == f"installing softvq from {source}\n"
    assert (work / "figures" / "theorem1.png").stat().st_size > 0
    assert _imports_softvq(bare_kernel, work)
