"""Datasets as in-memory tensors.

``load_dataset(name, split)`` returns ``(x, y)`` with ``x`` float32 in [0, 1] of shape
(N, C, H, W) and ``y`` int64 of shape (N,). Known names:

- ``"mnist"``: (N, 1, 28, 28), torchvision layout ``<root>/MNIST/raw/*-ubyte``.
- ``"fashion-mnist"``: (N, 1, 28, 28), torchvision layout ``<root>/FashionMNIST/raw/*-ubyte``.
- ``"svhn"``: (N, 3, 32, 32), torchvision layout ``<root>/{train,test}_32x32.mat``.
- ``"cifar10"``: (N, 3, 32, 32), torchvision layout ``<root>/cifar-10-batches-py/``.
- ``"cifar10-jpeg"``: (N, 3, 32, 32), the LOSSY JPEG copy of CIFAR-10 stored as
  ``<root>/cifar10_LOSSY_jpeg_q75.tar.gz`` (quality-75 re-encoded pixels, not the
  original ones). It is decoded once and cached as uint8 tensors under ``cache_dir()``.
- ``"folder:/path/to/dir"``: any images in ``<dir>/train/<class>/*`` and
  ``<dir>/test/<class>/*`` (torchvision ``ImageFolder``; classes sorted by name,
  images converted to RGB, all images must have the same size).

The data root is the ``root`` argument, else the ``SOFTVQ_DATA`` environment variable,
else ``./data``. ``download(names)`` fetches mnist, fashion-mnist, svhn and cifar10 into it; notebooks do so by
default only on Colab (``on_colab()``). ``missing(names)`` says which data sets are absent and
``missing_message`` how to get them, so that a command can check its data before it starts.

The package embeds a small sample of mnist, fashion-mnist and cifar10-jpeg (``SAMPLE_DIR``, described in its
README.md): the data sets named in ``SOFTVQ_SAMPLE`` (comma-separated) are read from it instead of the
data root. ``reproduce.py --budget quick`` does so for those that are missing. Loaded tensors are
memoised per process, so callers share them and must not modify them in place.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tarfile
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, MNIST, SVHN, FashionMNIST, ImageFolder
from torchvision.datasets.folder import find_classes
from tqdm.auto import tqdm            # a widget in JupyterLab and Colab, text in a terminal

from .io import save_atomic

DATASETS = ("mnist", "fashion-mnist", "svhn", "cifar10", "cifar10-jpeg")
DOWNLOADABLE = ("mnist", "fashion-mnist", "svhn", "cifar10")
GREY28 = ("mnist", "fashion-mnist")         # 28x28 grey images: the paper's MLP (`Config.net`)
IDX_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}     # torchvision's raw/ IDX layout
FOLDER_PREFIX = "folder:"
SPLITS = ("train", "test")
num_classes = 10

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# Fashion-MNIST's labels 0-9, in the data set's order
FASHION_MNIST_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle boot")
CLASS_NAMES = {"fashion-mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES, "cifar10-jpeg": CIFAR10_CLASSES}
CIFAR10_JPEG_TARBALL = "cifar10_LOSSY_jpeg_q75.tar.gz"
IDX_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
CIFAR10_FILES = (
    "batches.meta", "data_batch_1", "data_batch_2", "data_batch_3",
    "data_batch_4", "data_batch_5", "test_batch",
)
SAMPLE_DIR = Path(__file__).with_name("sample_data")
SAMPLE_FILES = {"mnist": "mnist.npz", "fashion-mnist": "fashion_mnist.npz",
                "cifar10-jpeg": "cifar10_LOSSY_jpeg_q75_sample.tar.gz"}
SAMPLE_SIZES = {"mnist": (2_000, 500), "fashion-mnist": (2_000, 500), "cifar10-jpeg": (2_000, 500)}  # (train, test)
SAMPLE_CONTENTS = {"mnist": "MNIST, the first 2,000 training and 500 test images",
                   "fashion-mnist": "Fashion-MNIST, the first 2,000 training and 500 test images",
                   "cifar10-jpeg": "the lossy JPEG copy of CIFAR-10, the first 200 training and 50 test images "
                                   "of each class"}
_SHAPES = {
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "svhn": (3, 32, 32),
    "cifar10": (3, 32, 32),
    "cifar10-jpeg": (3, 32, 32),
}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where they are expected."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Data folder: ``root`` if given, else ``$SOFTVQ_DATA``, else ``./data``."""
    if root is None:
        root = os.environ.get("SOFTVQ_DATA") or "data"
    return Path(root).expanduser()


def on_colab() -> bool:
    """Whether this runs in Google Colab (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def wants_download(download: bool | None) -> bool:
    """A notebook's `download` parameter: True or False as given; None means only on Colab."""
    return on_colab() if download is None else bool(download)


def download(names: Iterable[str], root: str | os.PathLike | None = None) -> Path:
    """Fetch both splits of the datasets ``names`` into the data root with torchvision, keeping files
    already there; returns the data root. Needs internet for missing files.

    Only ``DOWNLOADABLE`` datasets can be fetched; ``cifar10-jpeg`` and ``folder:...`` names are checked
    and refused when their files are missing. Datasets read from the embedded sample (``sampled()``) need
    nothing and are skipped.

    Raises:
        ValueError: an unknown name.
        DatasetNotFoundError: a dataset that cannot be downloaded is missing; nothing is fetched then.
    """
    names, root = [n for n in names if n not in sampled()], data_root(root).resolve()
    for name in names:
        _check_name(name)
        if name == "cifar10-jpeg":
            _cifar10_jpeg_tarball(root)         # these raise when the files are missing
        elif name not in DOWNLOADABLE:
            for split in SPLITS:
                _folder_split_dir(name, split)
    for name in [n for n in names if n in DOWNLOADABLE]:
        for split in SPLITS:
            torchvision_dataset(name, split, root, download=True)
    return root


def sampled() -> tuple[str, ...]:
    """The data sets read from the embedded sample: those named in ``$SOFTVQ_SAMPLE`` (comma-separated).

    Raises:
        ValueError: a name the sample does not hold.
    """
    names = tuple(n.strip() for n in os.environ.get("SOFTVQ_SAMPLE", "").split(",") if n.strip())
    unknown = [n for n in names if n not in SAMPLE_FILES]
    if unknown:
        raise ValueError(f"SOFTVQ_SAMPLE names {', '.join(unknown)}; "
                         f"the embedded sample holds {', '.join(SAMPLE_FILES)}")
    return names


def sample_note(names: Iterable[str]) -> str:
    """One sentence saying which of the data sets `names` are read from the embedded sample; empty when none."""
    used = [n for n in dict.fromkeys(names) if n in sampled()]
    if not used:
        return ""
    return f"Made from the embedded data sample ({'; '.join(SAMPLE_CONTENTS[n] for n in used)}), not the full data."


def expected_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The files (for ``folder:`` names, the two split folders) that data set `name` is read from."""
    _check_name(name)
    root = data_root(root).resolve()
    if name.startswith(FOLDER_PREFIX):
        base = Path(name[len(FOLDER_PREFIX):]).expanduser()
        return [base / split for split in SPLITS]
    if name == "cifar10-jpeg":
        return [root / CIFAR10_JPEG_TARBALL]
    if name in IDX_FOLDERS:                 # torchvision checks all four, whatever the split
        return [root / IDX_FOLDERS[name] / "raw" / f for f in IDX_FILES]
    if name == "svhn":
        return [root / f"{split}_32x32.mat" for split in SPLITS]
    return [root / "cifar-10-batches-py" / f for f in CIFAR10_FILES]


def missing(names: Iterable[str], root: str | os.PathLike | None = None) -> dict[str, list[Path]]:
    """The data sets of `names` whose files are not all there (those read from the sample never are), each
    with the files expected."""
    absent = {}
    for name in dict.fromkeys(names):
        expected = expected_files(name, root)
        if name not in sampled() and not all(p.exists() for p in expected):
            absent[name] = expected
    return absent


def how_to_get(names: Iterable[str]) -> str:
    """The two ways to provide the data sets `names`: download them where there is internet, or point the
    data root at a copy."""
    names = list(dict.fromkeys(names))
    fetchable = [n for n in names if n in DOWNLOADABLE]
    ways = [f"download them on a machine that is online (`python -m softvq download {' '.join(fetchable)}`; "
            f"`python reproduce.py` does so by default)"] if fetchable else []
    ways.append("point --data-root or SOFTVQ_DATA at a folder that holds a copy")
    fixed = [n for n in names if n not in DOWNLOADABLE]
    cannot = f" {', '.join(fixed)} cannot be downloaded." if fixed else ""
    return f"To get them, {', or '.join(ways)}.{cannot}"


def missing_message(absent: dict[str, list[Path]]) -> str:
    """What `missing` found, in one message: each data set with the paths expected, then how to get them."""
    lines = [f"missing data: {', '.join(absent)}. Expected:"]
    lines += [f"  {name}: {', '.join(map(str, paths))}" for name, paths in absent.items()]
    return "\n".join([*lines, how_to_get(absent)])


def cache_dir() -> Path:
    """Cache folder for decoded datasets: ``$SOFTVQ_CACHE``, else ``~/.cache/softvq``."""
    return Path(os.environ.get("SOFTVQ_CACHE") or "~/.cache/softvq").expanduser()


def dataset_shape(name: str) -> tuple[int, int, int]:
    """Shape (C, H, W) of one image of dataset ``name``.

    For ``"folder:..."`` datasets this opens the first training image (always 3 channels,
    since ``ImageFolder`` converts images to RGB).
    """
    _check_name(name)
    if name in _SHAPES:
        return _SHAPES[name]
    folder = ImageFolder(_folder_split_dir(name, "train"))
    width, height = folder.loader(folder.samples[0][0]).size
    return (3, height, width)


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a whole split into memory.

    Args:
        name: one of ``DATASETS`` or ``"folder:/path/to/dir"``.
        split: ``"train"`` or ``"test"``.
        root: data folder (see ``data_root``); ignored for ``"folder:..."`` names.
        download: let torchvision download mnist/svhn/cifar10 when missing (needs internet).

    Returns:
        ``x`` float32 (N, C, H, W) in [0, 1] and ``y`` int64 (N,). The tensors are shared
        with later calls (in-process memo): treat them as read-only.

    Raises:
        ValueError: unknown ``name`` or ``split``.
        DatasetNotFoundError: the dataset files are missing; the message lists the
            expected paths and how to provide them.
    """
    _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return _load(name, split, data_root(root).resolve(), download, name in sampled())


@functools.lru_cache(maxsize=4)
def _load(name: str, split: str, root: Path, download: bool, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Memoised body of ``load_dataset``: uint8 loaders, then scaling to [0, 1]."""
    if sample:
        x, y = _load_sample(name, split)
    elif name.startswith(FOLDER_PREFIX):
        x, y = _load_folder(name, split)
    elif name == "cifar10-jpeg":
        x, y = _load_cifar10_jpeg(_cifar10_jpeg_tarball(root), split)
    else:
        x, y = _load_torchvision(name, split, root, download)
    return x.float().div_(255), y


def source(name: str) -> str:
    """Where data set `name` is read from: "sample" (the embedded sample, `sampled()`), "folder" (an image
    folder) or "full" (the whole data set in the data root). Written in every record; part of a run's id."""
    if name in sampled():
        return "sample"
    return "folder" if name.startswith(FOLDER_PREFIX) else "full"


def data_name(name: str) -> str:
    """A path-safe name of data set `name`: the name itself, or for an image folder
    ``folder-<folder's name>-<fingerprint of its files>`` (`folder_fingerprint`), so that a folder spelled two
    ways (relative, absolute, with a trailing slash) is one data set and its results never nest in folders."""
    if not name.startswith(FOLDER_PREFIX):
        return name
    base = Path(name[len(FOLDER_PREFIX):]).expanduser().resolve()
    safe = "".join(ch if ch.isalnum() or ch in "._" else "_" for ch in base.name) or "root"
    return f"folder-{safe}-{folder_fingerprint(base)}"


@functools.lru_cache(maxsize=16)
def folder_fingerprint(base: Path) -> str:
    """8 hex digits of SHA-1 over the relative path and size of every file under ``base/train`` and
    ``base/test`` (the folder's path where it has neither): a renamed, added or resized image changes it."""
    files = sorted(p for split in SPLITS for p in (base / split).rglob("*") if p.is_file())
    listing = "\n".join(f"{p.relative_to(base).as_posix()}\t{p.stat().st_size}" for p in files) or str(base)
    return hashlib.sha1(listing.encode()).hexdigest()[:8]


def is_known(name) -> bool:
    """Whether `load_dataset` knows the name: one of DATASETS or "folder:/path/to/dir"."""
    return isinstance(name, str) and (name in DATASETS or
                                      (name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX)))


def _check_name(name: str) -> None:
    if not is_known(name):
        raise ValueError(
            f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, "
            f"or '{FOLDER_PREFIX}/path/to/dir' for an image folder with train/ and test/"
        )


def _not_found(name: str, expected: list[Path], how: str) -> DatasetNotFoundError:
    paths = "\n".join(f"  {p}" for p in expected)
    return DatasetNotFoundError(f"dataset {name!r} not found. Expected:\n{paths}\n{how}")


def _load_sample(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of the embedded sample of `name` as uint8 images (N, C, H, W) and int64 labels."""
    path = SAMPLE_DIR / SAMPLE_FILES[name]
    if name == "cifar10-jpeg":
        return _load_cifar10_jpeg(path, split)
    with np.load(path) as arrays:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long()     # (N, 28, 28) -> (N, 1, 28, 28)


# --- mnist, svhn, cifar10 via torchvision ------------------------------------------


def torchvision_dataset(name: str, split: str, root: Path, download: bool):
    """torchvision's dataset object of one split of mnist, fashion-mnist, svhn or cifar10."""
    if name == "svhn":
        return SVHN(root, split=split, download=download)
    kind = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "cifar10": CIFAR10}[name]
    return kind(root, train=split == "train", download=download)


def _load_torchvision(name: str, split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read torchvision's in-memory arrays directly (no per-image PIL conversion)."""
    try:
        ds = torchvision_dataset(name, split, root, download)
    except RuntimeError as err:
        if not str(err).startswith("Dataset not found"):
            raise
        raise _not_found(name, expected_files(name, root), how_to_get([name])) from None
    if name in IDX_FOLDERS:
        return ds.data.unsqueeze(1), ds.targets  # (N, 1, 28, 28) uint8, (N,) int64
    if name == "svhn":
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels)  # (N, 3, 32, 32), (N,)
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    return x, torch.tensor(ds.targets, dtype=torch.int64)


# --- image folders and the lossy JPEG copy of CIFAR-10 -------------------------------


def _folder_split_dir(name: str, split: str) -> Path:
    base = Path(name[len(FOLDER_PREFIX):]).expanduser()
    split_dir = base / split
    if not split_dir.is_dir():
        raise _not_found(
            name,
            [base / "train" / "<class>" / "<image>", base / "test" / "<class>" / "<image>"],
            "Create one subfolder per class in train/ and test/ (class = subfolder name).",
        )
    return split_dir


def _load_folder(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    split_dir = _folder_split_dir(name, split)
    x, y, classes = _decode_image_folder(split_dir)
    other_dir = split_dir.parent / ("test" if split == "train" else "train")
    if other_dir.is_dir() and tuple(find_classes(other_dir)[0]) != classes:
        raise ValueError(f"{split_dir} and {other_dir} have different class subfolders, so labels would not match")
    return x, y


def _decode_image_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Decode every image of an ImageFolder tree.

    Returns uint8 images (N, 3, H, W), int64 labels (N,) and the class names in label order.
    """
    folder = ImageFolder(split_dir)
    images = [
        np.asarray(folder.loader(path))  # (H, W, 3) uint8
        for path, _ in tqdm(folder.samples, desc=f"decoding {split_dir}", unit="img")
    ]
    sizes = sorted({im.shape[:2] for im in images})
    if len(sizes) > 1:
        raise ValueError(f"images in {split_dir} differ in size (H, W): {sizes[:5]}; resize them to one size first")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    return x, torch.tensor(folder.targets, dtype=torch.int64), tuple(folder.classes)


def _cifar10_jpeg_tarball(root: Path) -> Path:
    """The lossy CIFAR-10 tarball in ``root``; DatasetNotFoundError when it is missing."""
    tarball = root / CIFAR10_JPEG_TARBALL
    if not tarball.is_file():
        raise _not_found("cifar10-jpeg", [tarball], how_to_get(["cifar10-jpeg"]))
    return tarball


def _load_cifar10_jpeg(tarball: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a tarball of the lossy JPEG CIFAR-10 copy (or of its sample), decoding it on first use only.

    The cache files are named after the tarball's SHA-256, so a different tarball never
    reuses a stale cache. First use decodes the 60,000 JPEGs straight from the tarball;
    later loads take about 1 s.
    """
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:16]
    cached = {s: cache_dir() / f"cifar10-jpeg-{digest}-{s}.pt" for s in SPLITS}
    if not cached[split].is_file():
        _decode_cifar10_tarball(tarball, cached)
    blob = torch.load(cached[split], weights_only=True)
    return blob["x"], blob["y"]


def _decode_cifar10_tarball(tarball: Path, targets: dict[str, Path]) -> None:
    """Decode every JPEG of ``tarball`` in memory (no extraction to disk) and save each split as a .pt file.

    Images are ordered as torchvision's ImageFolder orders the extracted tree: by class name, then file name.
    """
    found: dict[str, list] = {split: [] for split in targets}     # (class, file name, (H, W, 3) uint8)
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in found:
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                    found[parts[-3]].append((parts[-2], parts[-1], np.asarray(image.convert("RGB"))))
    for split, target in targets.items():
        items = sorted(found[split], key=lambda item: item[:2])
        classes = tuple(sorted({cls for cls, _, _ in items}))
        if classes != CIFAR10_CLASSES:
            raise ValueError(f"{tarball}: {split}/ has classes {classes}, expected {CIFAR10_CLASSES}")
        x = torch.from_numpy(np.stack([pixels for _, _, pixels in items])).permute(0, 3, 1, 2).contiguous()
        if x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{tarball}: {split}/ images have shape {tuple(x.shape[1:])}, expected (3, 32, 32)")
        y = torch.tensor([classes.index(cls) for cls, _, _ in items], dtype=torch.int64)
        save_atomic({"x": x, "y": y}, target)
