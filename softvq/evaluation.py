"""How a run's codes are scored: the training / evaluation splits, the paper's three downstream scores, and
the same scores on the raw pixels (the tables' "raw data" row).

With `validation` the evaluation set is a fixed part held out of the training set, so that settings are
chosen without reading the test set.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from . import data, metrics, store
from .config import HASHED_WHEN_SET
from .provenance import code_version
from .store import RESULTS_DIR
from .train import default_device

VALIDATION_SIZE = 10_000        # held out of the training set when Config.validation (of a smaller set: a fifth)


def splits(dataset: str, validation: bool, root=None, train_size: int = 0, eval_size: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_eval, y_eval): the test set, or with `validation` a fixed held-out part of the
    training set (the last 10,000 of a permutation with seed 0, a fifth of a set under 50,000) and the rest
    for training. `train_size` / `eval_size` > 0 keep that many of each, a fixed draw (`subset`)."""
    x, y = data.load_dataset(dataset, "train", root)
    if validation:
        perm = fixed_permutation(len(x))
        held_out = min(VALIDATION_SIZE, len(x) // 5)
        train_idx, eval_idx = perm[:-held_out], perm[-held_out:]
        parts = x[train_idx], y[train_idx], x[eval_idx], y[eval_idx]
    else:
        parts = x, y, *data.load_dataset(dataset, "test", root)
    train, evaluation = subset(*parts[:2], train_size), subset(*parts[2:], eval_size)
    return (*train, *evaluation)


def fixed_permutation(n: int, seed: int = 0) -> torch.Tensor:
    """A permutation of range(n) that depends only on `seed`: the fixed draws of `splits` and `subset`."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of (x, y) (all when n is 0 or at least their number) drawn without replacement by a permutation
    with `seed`, in their original order: every class in about its share, even from files sorted by class
    (the lossy CIFAR-10 copy's are)."""
    if not n or n >= len(x):
        return x, y
    keep = fixed_permutation(len(x), seed)[:n].sort().values
    return x[keep], y[keep]


def downstream(z_train, y_train, z_eval, y_eval, n_init: int = 100, seed: int = 0, probe_iterations: int = 500,
               kmeans: str = "sklearn", device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """The paper's three scores of latents z_e: K-means (fit on the evaluation latents, as the paper) accuracy
    and NMI, and the accuracy of a softmax classifier trained on the training latents; and how they were
    scored, a record's "evaluation" entry: the K-means implementation (`metrics.kmeans_labels`; "sklearn" runs
    on the CPU, "torch" on `device`), the device of the probe, the K-means starts and the probe's iterations."""
    scores = metrics.clustering_scores(z_eval, y_eval, n_init=n_init, seed=seed, kmeans=kmeans, device=device)
    scores["classification_acc"] = metrics.linear_probe(z_train, y_train, z_eval, y_eval, epochs=probe_iterations,
                                                        seed=seed, device=device)
    how = {"kmeans": kmeans, "device": str(device), "n_init": n_init, "probe_iterations": probe_iterations}
    return scores, how


def raw_path(dataset: str, validation: bool, kmeans_n_init: int, changed: str = "",
             results_dir: str | Path = RESULTS_DIR) -> Path:
    """The file of a raw-pixel row, keyed like a run: under the data set's path-safe name (`data.data_name`: an
    image folder never nests), "-sample" when its pixels come from the embedded sample (`data.source`), then the
    split, the K-means starts and the evaluation fields that differ from the paper's (`changed`). The full data's
    names are those the committed rows have always had."""
    name = data.data_name(dataset)
    sample = "-sample" if data.source(dataset) == "sample" else ""
    return store.results_file(name, f"{name}-raw{sample}{'-val' if validation else ''}-n{kmeans_n_init}{changed}",
                              results_dir)


def evaluate_raw(dataset: str = "mnist", validation: bool = False, root=None, results_dir: str | Path = RESULTS_DIR,
                 compute: bool = True, kmeans_n_init: int = 100, device: torch.device | str | None = None,
                 **evaluation) -> dict | None:
    """The 'raw data' row: the three scores on the pixels themselves, scored as Config's EVALUATION fields
    say, on `device` (default: CUDA when present). Read from its JSON when it exists; else computed and
    written (None when not `compute`)."""
    fields = {"kmeans_n_init": kmeans_n_init, **evaluation}
    changed = "".join(f"-{k}{v}" for k, v in fields.items() if k != "kmeans_n_init" and v != HASHED_WHEN_SET[k])
    path = raw_path(dataset, validation, kmeans_n_init, changed, results_dir)
    record = store.read_json(path)
    if record is not None or not compute:
        return record
    x_tr, y_tr, x_ev, y_ev = splits(dataset, validation, root, fields.get("train_size", 0), fields.get("eval_size", 0))
    device = torch.device(device) if device is not None else default_device()
    began = time.perf_counter()
    scores, how = downstream(x_tr.flatten(1), y_tr, x_ev.flatten(1), y_ev, kmeans_n_init,
                             probe_iterations=fields.get("probe_iterations", 500),
                             kmeans=fields.get("kmeans", "sklearn"), device=device)
    record = {"config": {"dataset": dataset, "bottleneck": "raw", "validation": validation, "seed": 0,
                         "iterations": 0, **fields},
              "data": {"name": data.data_name(dataset), "source": data.source(dataset)},
              "metrics": scores, "evaluation": how, "eval_time_s": time.perf_counter() - began,
              "code_version": code_version(device)}
    store.write_json(record, path)
    return record
