"""The numbers the paper reports (Wu & Flierl, AAAI 2020), as data.

Units are the paper's: accuracies in percent, NMI as a fraction in [0, 1]. Row keys are the bottleneck
names of `softvq.bottlenecks.BOTTLENECKS`, plus "raw" (the scores of the pixels themselves, Table 1 only).
Metric keys are those of the results JSONs: cluster_acc, nmi, classification_acc.
"""
from __future__ import annotations

import math

METRICS = ("cluster_acc", "nmi", "classification_acc")
PERCENT = ("cluster_acc", "classification_acc")      # reported in % by the paper (NMI is a fraction)

LABELS = {
    "raw": "raw data",
    "ae": "baseline AE",
    "vae": "VAE",
    "beta_vae": "beta-VAE",
    "info_dropout": "information dropout",
    "vqvae": "VQ-VAE",
    "soft_vqvae": "soft VQ-VAE",
    "sqvae": "SQ-VAE",
    # the estimators study's rows (presets.estimators)
    "posterior mean": "soft VQ-VAE, posterior mean (the paper)",
    "posterior sample": "soft VQ-VAE, posterior sample",
    "posterior argmax": "soft VQ-VAE, posterior argmax",
    # the quantizers study's rows (presets.quantizers) and bottlenecks (softvq.peers)
    "vq_ema (rotation)": "VectorQuantize, EMA + rotation trick",
    "vq_ema (straight-through)": "VectorQuantize, EMA + straight-through",
    "simvq (rotation)": "SimVQ, rotation trick",
    "simvq (straight-through)": "SimVQ, straight-through",
    "vq_ema": "VectorQuantize (EMA)",
    "simvq": "SimVQ",
    "fsq": "FSQ",
    "diveq": "DiVeQ",
}

# Table 1: MNIST, d = 64 (beta-VAE beta = 20, VQ-VAE and soft VQ-VAE K = 128).
TABLE1 = {
    "raw": {"cluster_acc": 55.17, "nmi": 0.5008, "classification_acc": 92.44},
    "ae": {"cluster_acc": 52.61, "nmi": 0.5301, "classification_acc": 91.91},
    "vae": {"cluster_acc": 56.44, "nmi": 0.5600, "classification_acc": 89.10},
    "beta_vae": {"cluster_acc": 73.81, "nmi": 0.5760, "classification_acc": 91.10},
    "info_dropout": {"cluster_acc": 58.52, "nmi": 0.4979, "classification_acc": 91.11},
    "vqvae": {"cluster_acc": 51.48, "nmi": 0.3541, "classification_acc": 81.62},
    "soft_vqvae": {"cluster_acc": 77.64, "nmi": 0.7188, "classification_acc": 93.54},
}

# Table 2: d = 256 CNN (beta-VAE beta = 100, VQ-VAE K = 512, soft VQ-VAE K = 32); no NMI reported.
TABLE2 = {
    "svhn": {
        "ae": {"cluster_acc": 11.96, "classification_acc": 25.95},
        "vae": {"cluster_acc": 13.58, "classification_acc": 26.42},
        "beta_vae": {"cluster_acc": 14.54, "classification_acc": 49.62},
        "info_dropout": {"cluster_acc": 12.75, "classification_acc": 24.46},
        "vqvae": {"cluster_acc": 12.96, "classification_acc": 31.57},
        "soft_vqvae": {"cluster_acc": 17.68, "classification_acc": 50.48},
    },
    "cifar10": {
        "ae": {"cluster_acc": 21.73, "classification_acc": 40.92},
        "vae": {"cluster_acc": 24.12, "classification_acc": 38.83},
        "beta_vae": {"cluster_acc": 22.80, "classification_acc": 36.91},
        "info_dropout": {"cluster_acc": 21.96, "classification_acc": 39.89},
        "vqvae": {"cluster_acc": 20.30, "classification_acc": 33.51},
        "soft_vqvae": {"cluster_acc": 23.83, "classification_acc": 44.54},
    },
}

# Our datasets whose paper column is another dataset's (the lossy JPEG copy is compared with CIFAR-10).
PAPER_DATASET = {"cifar10-jpeg": "cifar10"}


def reported(table: str, dataset: str = "mnist") -> dict[str, dict[str, float]]:
    """The paper's rows {bottleneck: {metric: value}} of `table` ("table1" or "table2") for `dataset`."""
    if table == "table1":
        return TABLE1
    if table == "table2":
        key = PAPER_DATASET.get(dataset, dataset)
        if key not in TABLE2:
            raise ValueError(f"the paper's Table 2 has no {dataset!r}; expected one of {sorted(TABLE2)}")
        return TABLE2[key]
    raise ValueError(f"unknown table {table!r}; expected 'table1' or 'table2'")


def value(table: str, bottleneck: str, metric: str, dataset: str = "mnist") -> float:
    """One reported number, NaN where the paper gives none."""
    return reported(table, dataset).get(bottleneck, {}).get(metric, math.nan)
