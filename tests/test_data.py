import os
import tarfile
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from softvq import data, sample
from softvq.data import (
    CIFAR10_CLASSES,
    CIFAR10_JPEG_TARBALL,
    DatasetNotFoundError,
    data_root,
    dataset_shape,
    load_dataset,
)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SOFTVQ_DATA", raising=False)
    assert data_root() == Path("data")
    monkeypatch.setenv("SOFTVQ_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("elsewhere") == Path("elsewhere")


def test_dataset_shape():
    assert dataset_shape("mnist") == (1, 28, 28)
    assert dataset_shape("cifar10-jpeg") == (3, 32, 32)
    assert data.num_classes == 10


@pytest.mark.parametrize("name", ["imagenet", "MNIST", "folder:"])
def test_unknown_name_raises(name):
    with pytest.raises(ValueError, match="known: mnist, fashion-mnist, svhn, cifar10, cifar10-jpeg"):
        load_dataset(name)
    with pytest.raises(ValueError, match="known"):
        dataset_shape(name)


def test_bad_split_raises(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", split="val", root=tmp_path)


def test_missing_mnist_error_names_paths_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in message
    assert "SOFTVQ_DATA" in message and "python -m softvq download mnist" in message
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SOFTVQ_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", split="test")
    with pytest.raises(DatasetNotFoundError, match="test_32x32.mat"):
        load_dataset("svhn", split="test")
    with pytest.raises(DatasetNotFoundError, match=CIFAR10_JPEG_TARBALL):
        load_dataset("cifar10-jpeg")


def test_mnist_real_data(mnist_root):  # fixture from conftest: skips without real MNIST
    x_train, y_train = load_dataset("mnist", "train", root=mnist_root)
    x_test, y_test = load_dataset("mnist", "test")  # root from SOFTVQ_DATA (or ./data)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    assert y_train.shape == (60000,)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    expected_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(y_test).tolist() == expected_counts


# --- cifar10-jpeg through a small fake tarball ----------------------------------------

N_TRAIN, N_TEST = 2, 1  # images per class


def _color(label, index):
    return (25 * label, 200 - 60 * index, 128)


def _fake_cifar10_jpeg(tmp_path) -> Path:
    """Write <tmp>/root/cifar10_LOSSY_jpeg_q75.tar.gz with the real tarball's layout."""
    src = tmp_path / "src"
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        for label, cls in enumerate(CIFAR10_CLASSES):
            (src / split / cls).mkdir(parents=True)
            for i in range(n):
                img = Image.new("RGB", (32, 32), _color(label, i))
                img.save(src / split / cls / f"{i:04d}.jpg", quality=75)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / CIFAR10_JPEG_TARBALL, "w:gz") as tar:
        tar.add(src / "train", arcname="train")
        tar.add(src / "test", arcname="test")
    return root


def test_cifar10_jpeg_from_fake_tarball(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SOFTVQ_CACHE", str(cache))
    root = _fake_cifar10_jpeg(tmp_path)

    x, y = load_dataset("cifar10-jpeg", "train", root=root)
    assert x.shape == (10 * N_TRAIN, 3, 32, 32) and x.dtype == torch.float32
    assert y.tolist() == np.repeat(np.arange(10), N_TRAIN).tolist()
    # Flat colours survive JPEG almost exactly; channel order and pixel scale are right.
    expected = torch.tensor([_color(label, i) for label in range(10) for i in range(N_TRAIN)]) / 255
    assert torch.allclose(x.mean(dim=(2, 3)), expected, atol=3 / 255)

    # Both splits were cached at once, atomically (no leftovers), and are reused.
    assert sorted(p.name.rsplit("-", 1)[1] for p in cache.iterdir()) == ["test.pt", "train.pt"]
    data._load.cache_clear()
    monkeypatch.setattr(data, "_decode_image_folder", None)  # any decoding would now fail
    x_test, y_test = load_dataset("cifar10-jpeg", "test", root=root)
    assert x_test.shape == (10 * N_TEST, 3, 32, 32)
    assert y_test.tolist() == list(range(10))


@pytest.mark.slow
def test_cifar10_jpeg_real_data_shapes():
    """Uses the real tarball; the first run decodes 60,000 JPEGs (about 20-30 s) into the cache."""
    root = os.environ.get("SOFTVQ_DATA")
    if not root or not (Path(root) / CIFAR10_JPEG_TARBALL).is_file():
        pytest.skip(f"set SOFTVQ_DATA to a folder with {CIFAR10_JPEG_TARBALL} to run")
    x_train, y_train = load_dataset("cifar10-jpeg", "train", root=root)
    x_test, y_test = load_dataset("cifar10-jpeg", "test", root=root)
    assert x_train.shape == (50000, 3, 32, 32) and x_test.shape == (10000, 3, 32, 32)
    assert torch.bincount(y_train).tolist() == [5000] * 10
    assert torch.bincount(y_test).tolist() == [1000] * 10


# --- generic image folders ------------------------------------------------------------


def test_image_folder(tmp_path):
    pixels = {"cat": 10, "dog": 200}
    for split in ("train", "test"):
        for cls, value in pixels.items():
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("L", (6, 4), value).save(tmp_path / split / cls / "a.png")  # grey, lossless
    name = f"folder:{tmp_path}"
    assert dataset_shape(name) == (3, 4, 6)
    x, y = load_dataset(name, "test")
    assert x.shape == (2, 3, 4, 6)
    assert y.tolist() == [0, 1]  # classes sorted by folder name
    assert torch.equal(x[:, :, 0, 0], torch.tensor([[10.0] * 3, [200.0] * 3]) / 255)


def test_image_folder_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train"):
        load_dataset(f"folder:{tmp_path / 'nothing'}")


def test_image_folder_rejects_mixed_sizes(tmp_path):
    for i, size in enumerate([(4, 4), (5, 4)]):
        (tmp_path / "train" / f"c{i}").mkdir(parents=True)
        Image.new("RGB", size).save(tmp_path / "train" / f"c{i}" / "a.png")
    with pytest.raises(ValueError, match="differ in size"):
        load_dataset(f"folder:{tmp_path}")


# --- the embedded sample ----------------------------------------------------------------


def test_the_sample_holds_what_its_note_says(monkeypatch):
    monkeypatch.setenv("SOFTVQ_SAMPLE", ",".join(data.SAMPLE_FILES))
    monkeypatch.setenv("SOFTVQ_DATA", "/nonexistent")              # not read: the sample stands in
    for name, sizes in data.SAMPLE_SIZES.items():
        for split, n in zip(data.SPLITS, sizes):
            x, y = load_dataset(name, split)
            assert x.shape == (n, *dataset_shape(name)) and x.dtype == torch.float32 and y.dtype == torch.int64
            assert 0 <= x.min() and x.max() <= 1 and set(y.tolist()) == set(range(10))
    assert torch.bincount(load_dataset("cifar10-jpeg", "test")[1]).tolist() == [50] * 10
    assert data.missing(list(data.SAMPLE_FILES)) == {}


def test_the_sample_is_small_and_ships_in_the_package():
    files = sorted(p for p in data.SAMPLE_DIR.iterdir() if p.is_file())
    assert {p.name for p in files} == {*data.SAMPLE_FILES.values(), "README.md"}
    assert sum(p.stat().st_size for p in files) < 3e6
    tomllib = pytest.importorskip("tomllib")                        # Python 3.11
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "softvq.sample_data" in project["tool"]["setuptools"]["packages"]     # declared: kept, and no warning
    globs = project["tool"]["setuptools"]["package-data"]["softvq.sample_data"]
    assert all(any(fnmatch(p.name, g) for g in globs) for p in files)


def test_the_full_data_is_read_unless_the_sample_is_asked_for(mnist_root, monkeypatch):
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    full = load_dataset("mnist", "test", root=mnist_root)
    assert len(full[0]) == 10_000 and data.sample_note(["mnist"]) == ""
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")
    part = load_dataset("mnist", "test", root=mnist_root)               # memoised apart from the full load
    assert torch.equal(part[0], full[0][:500]) and torch.equal(part[1], full[1][:500])
    assert "first 2,000 training and 500 test images" in data.sample_note(["mnist", "svhn"])


def test_fashion_mnist_is_read_like_mnist_with_its_own_sample(mnist_root, monkeypatch):
    if data.missing(["fashion-mnist"], mnist_root):
        pytest.skip("needs FashionMNIST/raw beside MNIST")
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    x, y = load_dataset("fashion-mnist", "train", root=mnist_root)
    assert x.shape == (60_000, 1, 28, 28) and 0 <= x.min() and x.max() == 1
    assert torch.bincount(y).tolist() == [6_000] * 10                     # Fashion-MNIST, not MNIST's counts
    assert not torch.equal(x[:100], load_dataset("mnist", "train", root=mnist_root)[0][:100])
    monkeypatch.setenv("SOFTVQ_SAMPLE", "fashion-mnist")
    part = load_dataset("fashion-mnist", "train", root=mnist_root)
    assert torch.equal(part[0], x[:2_000]) and torch.equal(part[1], y[:2_000])
    assert "Fashion-MNIST, the first 2,000" in data.sample_note(["fashion-mnist"])


def test_sample_names_are_checked(monkeypatch):
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist,svhn")
    with pytest.raises(ValueError, match="SOFTVQ_SAMPLE names svhn"):
        data.sampled()


@pytest.mark.slow
def test_the_sample_rebuilds_byte_for_byte_from_the_full_data(mnist_root, tmp_path):
    if not (mnist_root / CIFAR10_JPEG_TARBALL).is_file():
        pytest.skip(f"needs {CIFAR10_JPEG_TARBALL} beside MNIST")
    sample.main(["--data-root", str(mnist_root), "--out", str(tmp_path)])
    for name in data.SAMPLE_FILES.values():
        assert (tmp_path / name).read_bytes() == (data.SAMPLE_DIR / name).read_bytes(), name


# --- the up-front check -----------------------------------------------------------------


def test_missing_names_each_absent_dataset_with_its_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    (tmp_path / CIFAR10_JPEG_TARBALL).write_bytes(b"")
    absent = data.missing(["svhn", "cifar10-jpeg", "mnist", "svhn"], tmp_path)
    assert list(absent) == ["svhn", "mnist"]
    assert absent["svhn"] == [tmp_path / "train_32x32.mat", tmp_path / "test_32x32.mat"]
    message = data.missing_message(absent)
    assert message.startswith("missing data: svhn, mnist.") and str(tmp_path / "test_32x32.mat") in message
    assert "python -m softvq download svhn mnist" in message and "--data-root or SOFTVQ_DATA" in message
    assert "cannot be downloaded" in data.missing_message(data.missing(["cifar10-jpeg"], tmp_path / "x"))
