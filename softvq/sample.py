"""Build the small data sample the package embeds (softvq/sample_data/) from the full data sets.

    python -m softvq.sample --data-root /path/to/data    # reads MNIST/raw/, FashionMNIST/raw/ and
                                                         # cifar10_LOSSY_jpeg_q75.tar.gz

MNIST and Fashion-MNIST: the first 2,000 training and 500 test images, as uint8 arrays in a compressed .npz. The lossy JPEG
copy of CIFAR-10: the first 200 training and 50 test images of each class (its files sorted by name), their
JPEG bytes copied unchanged into a tarball of the full copy's layout, so that they decode to the same pixels.
Both files come out byte for byte the same on every build. `data.load_dataset` reads them for the data sets
named in $SOFTVQ_SAMPLE.
"""
from __future__ import annotations

import argparse
import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from . import data


def build_idx(name: str, root: Path, out: Path) -> Path:
    """The sample of an IDX data set (mnist, fashion-mnist): the first images of each split (`data.SAMPLE_SIZES`)
    from torchvision's copy in `root`."""
    arrays = {}
    for split, n in zip(data.SPLITS, data.SAMPLE_SIZES[name]):
        ds = data.torchvision_dataset(name, split, root, download=False)
        arrays[f"x_{split}"] = ds.data[:n].numpy()                      # (n, 28, 28) uint8
        arrays[f"y_{split}"] = ds.targets[:n].numpy().astype(np.uint8)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:  # fixed timestamps, unlike np.savez
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out


def build_cifar10_jpeg(tarball: Path, out: Path) -> Path:
    """The lossy CIFAR-10 sample: the first files of each class folder of each split, copied byte for byte."""
    per_class = {split: n // data.num_classes for split, n in zip(data.SPLITS, data.SAMPLE_SIZES["cifar10-jpeg"])}
    files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}       # (split, class) -> [(file name, JPEG bytes)]
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in per_class:
                files.setdefault((parts[-3], parts[-2]), []).append((parts[-1], tar.extractfile(member).read()))
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for (split, cls), images in sorted(files.items()):
            for name, jpeg in sorted(images)[:per_class[split]]:
                info = tarfile.TarInfo(f"{split}/{cls}/{name}")
                info.size, info.mode = len(jpeg), 0o644
                tar.addfile(info, io.BytesIO(jpeg))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="the full data (default: $SOFTVQ_DATA or ./data)")
    parser.add_argument("--out", type=Path, default=data.SAMPLE_DIR, help="default: the package's sample_data/")
    args = parser.parse_args(argv)
    root = data.data_root(args.data_root)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (*(build_idx(name, root, args.out / data.SAMPLE_FILES[name]) for name in data.IDX_FOLDERS),
                 build_cifar10_jpeg(root / data.CIFAR10_JPEG_TARBALL, args.out / data.SAMPLE_FILES["cifar10-jpeg"])):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
