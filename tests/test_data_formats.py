"""The files a user's download brings, read by `softvq.data.load_dataset`: SVHN's `.mat` files and CIFAR-10's python
pickles, written small here in those formats (torchvision's checksums of the real files patched out). Each pixel
holds a value that says where it came from, so that any transposition shows."""
import pickle

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets.cifar
from torchvision.datasets import CIFAR10, SVHN

from softvq import data

SIZES = {"train": 7, "test": 4}


def pixels(n: int, offset: int) -> np.ndarray:
    """n images as uint8 (n, 3, 32, 32), image k's pixel (c, h, w) = (offset + 37 k + 3 c + 4 h + 5 w) mod 256: 0
    and 255 both occur in every image, and no two neighbours along any axis are equal."""
    k, c, h, w = np.ogrid[:n, :3, :32, :32]
    return ((offset + 37 * k + 3 * c + 4 * h + 5 * w) % 256).astype(np.uint8)


@pytest.fixture(autouse=True)
def full_data(monkeypatch):
    """The data sets read from their files, not from the embedded sample."""
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)


def test_svhn_mat_files_load_as_images_in_0_1_with_digit_0_for_label_10(tmp_path, monkeypatch):
    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: True)
    written = {}
    for offset, (split, n) in enumerate(SIZES.items()):
        images = pixels(n, 100 * offset)
        labels = (np.arange(n) + 7) % 10 + 1                             # 8, 9, 10, 1, ...; 10 is the digit 0
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0),   # (32, 32, 3, N)
                                                           "y": labels[:, None].astype(np.uint8)})
        written[split] = images, labels % 10
    assert not data.missing(["svhn"], tmp_path)
    for split, (images, digits) in written.items():
        x, y = data.load_dataset("svhn", split, tmp_path)
        assert x.shape == (SIZES[split], 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert torch.equal(x, torch.from_numpy(images).float() / 255)
        assert y.tolist() == digits.tolist() and 0 in y.tolist() and 10 not in y.tolist()
        assert (float(x.min()), float(x.max())) == (0.0, 1.0)


def test_cifar10_python_pickles_load_as_images_in_0_1_with_their_labels_and_split(tmp_path, monkeypatch):
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {f"data_batch_{b}": (pixels(2, 10 * b), [(3 * b + i) % 10 for i in range(2)]) for b in range(1, 6)}
    batches["test_batch"] = pixels(3, 200), [9, 0, 4]
    for name, (images, labels) in batches.items():                  # rows: the red plane, green, blue
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": images.reshape(len(images), 3072), "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES), "num_cases_per_batch": 2}, f)
    assert not data.missing(["cifar10"], tmp_path)
    x, y = data.load_dataset("cifar10", "train", tmp_path)
    train = [batches[f"data_batch_{b}"] for b in range(1, 6)]               # the five batches, in order
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(np.concatenate([images for images, _ in train])).float() / 255)
    assert y.tolist() == [label for _, labels in train for label in labels]
    assert (float(x.min()), float(x.max())) == (0.0, 1.0)
    x_test, y_test = data.load_dataset("cifar10", "test", tmp_path)
    assert torch.equal(x_test, torch.from_numpy(batches["test_batch"][0]).float() / 255)
    assert y_test.tolist() == [9, 0, 4]
