import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from softvq import data
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
    with pytest.raises(ValueError, match="known: mnist, svhn, cifar10, cifar10-jpeg"):
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
    assert "SOFTVQ_DATA" in message and "download=True" in message
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
