"""One config per run, the paper's presets, and `run(configs)` -> one results JSON per run.

A run is named by its `Config`; the JSON stores the config beside the metrics, and its file name derives
from the config, so finished runs are found and skipped. Configs that differ only in seed, beta,
noise_std or vq_weight are trained together as one stack (see `softvq.train`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

from . import codebook, data, launch, metrics
from .bottlenecks import BOTTLENECKS, REDUCTIONS
from .estimator_swap import swap as swap_estimators
from .model import RECONSTRUCTIONS, build_model
from .io import save_atomic, write_json
from .provenance import code_version
from .quantize import ESTIMATORS, WEIGHTINGS
from .train import PRECISIONS, default_device, train

RESULTS_DIR = Path("results")
CHECKPOINT_DIR = Path("checkpoints")
STACKABLE = ("seed", "beta", "noise_std", "vq_weight", "temperature", "sigma_floor", "var_init")  # may differ
HASHED_WHEN_SET = {"probe_iterations": 500, "train_size": 0, "eval_size": 0,   # in a run id's hash only when
                   "precision": "fp32", "compile": False,                        # they differ from the default
                   "estimator": "mean", "temperature": 1.0, "sigma_floor": 0.0, "var_init": 1.0}
EVALUATION = ("kmeans_n_init", "probe_iterations", "train_size", "eval_size")    # how the codes are scored
QUANTIZERS = ("vqvae", "soft_vqvae", "sqvae")                 # bottlenecks with a codebook
VALIDATION_SIZE = 10_000        # held out of the training set when Config.validation (of a smaller set: a fifth)


def _one_of(choices) -> tuple:
    """A string field's check: one of `choices`."""
    return (lambda v: isinstance(v, str) and v in choices), f"one of {sorted(choices)}"


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


_POSITIVE_INT = (lambda v: _integer(v) and v >= 1), "a positive integer"
_NON_NEGATIVE = (lambda v: _number(v) and v >= 0), "a number >= 0"
_POSITIVE = (lambda v: _number(v) and v > 0), "a number > 0"
_BOOLEAN = (lambda v: isinstance(v, bool)), "True or False"
# Every Config field: (is the value allowed, description of the allowed values), checked when it is built.
FIELD_CHECKS = {
    "dataset": (data.is_known, f"one of {sorted(data.DATASETS)} or '{data.FOLDER_PREFIX}/path/to/dir'"),
    "bottleneck": _one_of(BOTTLENECKS),
    "weighting": _one_of(WEIGHTINGS),
    "recon": _one_of(RECONSTRUCTIONS),
    "reduction": _one_of(REDUCTIONS),
    **dict.fromkeys(("d", "K", "iterations", "batch_size", "kmeans_n_init", "probe_iterations"), _POSITIVE_INT),
    **dict.fromkeys(("train_size", "eval_size"), ((lambda v: _integer(v) and v >= 0), "an integer >= 0 (0: all)")),
    "seed": ((lambda v: _integer(v) and v >= 0), "an integer >= 0"),
    **dict.fromkeys(("beta", "noise_std", "vq_weight", "sigma_floor"), _NON_NEGATIVE),
    **dict.fromkeys(("lr", "log_var_bound", "temperature", "var_init"), _POSITIVE),
    "estimator": _one_of(ESTIMATORS),
    "validation": _BOOLEAN,
    "precision": _one_of(PRECISIONS),
    "compile": _BOOLEAN,
}


@dataclass(frozen=True)
class Config:
    """Everything that defines one training run and its evaluation.

    `beta` is the bottleneck's weight: the KL weight of the VAE / beta-VAE / information dropout, the
    commitment weight of the VQ-VAE and soft VQ-VAE. `validation=True` trains on the training set minus a
    fixed held-out 10,000 and evaluates on those (for choosing settings; the test set is never used then).
    `probe_iterations` caps the linear probe's L-BFGS iterations; `train_size` / `eval_size` > 0 keep only
    the first that many training / evaluation images (the quick budget's smoke runs; 0 keeps all, as the
    paper). `precision` ("fp32", "tf32", "bf16") and `compile` (torch.compile the training step) are for
    GPUs; see `softvq.train.train`. `estimator` ("mean", the paper; "sample"; "argmax") is what the soft
    VQ-VAE's decoder gets from the posterior, `temperature` its Gumbel-softmax temperature ("sample") and
    the SQ-VAE's, `sigma_floor` a floor on the soft VQ-VAE's sigma_k (0: none), `var_init` the SQ-VAE's
    initial variance s^2.
    """
    dataset: str = "mnist"
    bottleneck: str = "soft_vqvae"
    d: int = 64
    K: int = 128
    beta: float = 0.25
    noise_std: float = 0.0
    vq_weight: float = 1.0
    weighting: str = "paper"
    recon: str = "bce"
    reduction: str = "sum"
    log_var_bound: float = 10.0
    iterations: int = 40_000
    batch_size: int = 32
    lr: float = 3e-4
    seed: int = 0
    validation: bool = False
    kmeans_n_init: int = 100
    probe_iterations: int = 500
    train_size: int = 0
    eval_size: int = 0
    precision: str = "fp32"
    compile: bool = False
    estimator: str = "mean"
    temperature: float = 1.0
    sigma_floor: float = 0.0
    var_init: float = 1.0

    def __post_init__(self):
        for name, (allowed, expected) in FIELD_CHECKS.items():
            value = getattr(self, name)
            if not allowed(value):
                raise ValueError(f"Config.{name} = {value!r} is not allowed; expected {expected}")
        if self.estimator != "mean" and (self.bottleneck != "soft_vqvae" or self.weighting == "svhn_code"):
            raise ValueError(f"Config.estimator = {self.estimator!r} needs bottleneck 'soft_vqvae' with a weighting "
                             f"other than 'svhn_code'")

    @property
    def net(self) -> str:
        return "mlp" if self.dataset == "mnist" else "cnn"

    @property
    def run_id(self) -> str:
        """<dataset>-<bottleneck>-d<d>-it<iterations>[-val]-s<seed>-<hash of every field>; fields added later
        (HASHED_WHEN_SET) count only when they differ from their default, so older run ids stay valid."""
        fields = {k: v for k, v in dataclasses.asdict(self).items()
                  if k not in HASHED_WHEN_SET or v != HASHED_WHEN_SET[k]}
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
        split = "-val" if self.validation else ""
        return f"{self.dataset}-{self.bottleneck}-d{self.d}-it{self.iterations}{split}-s{self.seed}-{digest}"

    def stack_key(self) -> tuple:
        return tuple(v for k, v in dataclasses.asdict(self).items() if k not in STACKABLE)

    def bottleneck_kwargs(self) -> dict:
        """Constructor arguments of the bottleneck shared by every model of a stack."""
        kwargs: dict = {"reduction": self.reduction}
        if self.bottleneck in QUANTIZERS:
            kwargs["num_codes"] = self.K
        if self.bottleneck == "soft_vqvae":
            kwargs.update(weighting=self.weighting, log_var_bound=self.log_var_bound, estimator=self.estimator)
        if self.bottleneck == "sqvae":
            kwargs["log_var_bound"] = self.log_var_bound
        return kwargs


# ---------------------------------------------------------------------------------------------- presets
# The authors' public MNIST notebook: no noise, +log sigma_k weighting, MSE / pixel variance, mean
# reductions, VQ loss x3 with commitment 2.5, batch 64.
OFFICIAL_CODE = dict(bottleneck="soft_vqvae", K=128, noise_std=0.0, weighting="official", recon="mse_var",
                     reduction="mean", vq_weight=3.0, beta=2.5, batch_size=64)
# The soft VQ-VAE as the paper writes it (eq. 7 weighting, -log p reconstruction, beta 0.25, noise 0.1).
PAPER_SOFT_VQVAE = dict(bottleneck="soft_vqvae", K=128, beta=0.25, noise_std=0.1)
# The KL-regularized baselines with the weights the paper gives, on a KL summed over the d latent units.
PAPER_BASELINES = {"vae": dict(bottleneck="vae", beta=1.0), "beta_vae": dict(bottleneck="beta_vae", beta=20.0),
                   "info_dropout": dict(bottleneck="info_dropout", beta=1.0)}
# The baselines' loss scaling, which the paper does not give. "sum" adds the Bernoulli log-likelihood over
# the 784 pixels and the KL over the d units (the textbook ELBO). "mean" averages both, as the authors' code
# does for its own losses: that multiplies the KL weight by 784 / d = 12.25 against the sum. "KL/d" averages
# only the KL over the d units, a common slip in public code: the summed loss with beta / d.
SCALINGS = {"sum": lambda row, d: dict(row, reduction="sum"), "mean": lambda row, d: dict(row, reduction="mean"),
            "KL/d": lambda row, d: dict(row, reduction="sum", beta=row["beta"] / d)}
# Table 2's CNN (code size TABLE2_D) baselines: the paper's beta = 100 for the beta-VAE on SVHN and CIFAR-10.
TABLE2_D = 256
PAPER_BASELINES_CNN = {**PAPER_BASELINES, "beta_vae": dict(bottleneck="beta_vae", beta=100.0)}


def scaling_rows(d: int = 64, baselines: Mapping[str, dict] = PAPER_BASELINES) -> dict[str, dict]:
    """Each baseline with each scaling of SCALINGS at code size d: {"vae sum": {...}, ...}."""
    return {f"{b} {name}": scale(row, d) for b, row in baselines.items() for name, scale in SCALINGS.items()}


SCALING_D = 64
SCALING_ROWS = scaling_rows(SCALING_D)
# Per-bottleneck settings of Table 1. The paper leaves the soft VQ-VAE's loss weights, noise level and
# reconstruction loss open; on the validation split (see `ablation`) the official-code choices clearly beat
# the literal reading of the paper, so Table 1 uses them. Likewise the baselines' scaling is the best of
# SCALINGS on the validation split (see `scaling_sweep`): summed for the VAE, KL/d for the beta-VAE and
# information dropout, whose summed KL collapses the posterior at the paper's beta.
TABLE1 = {
    "ae": dict(bottleneck="ae"),
    "vae": SCALING_ROWS["vae sum"],
    "beta_vae": SCALING_ROWS["beta_vae KL/d"],
    "info_dropout": SCALING_ROWS["info_dropout KL/d"],
    "vqvae": dict(bottleneck="vqvae", K=128, beta=0.25),
    "soft_vqvae": OFFICIAL_CODE,
}
# The authors' SVHN notebook (not the paper): the MNIST notebook's choices, except that z_hat weights the
# posterior by sigma_k (weighting "svhn_code") and the VQ loss is scaled by 2.0 with commitment 7.5.
SVHN_CODE = dict(OFFICIAL_CODE, weighting="svhn_code", vq_weight=2.0, beta=7.5)
# What the paper says for each of the fields the official code changes (one ablation row each).
PAPER_CHOICES = {"noise_std": dict(noise_std=0.1), "weighting": dict(weighting="paper"),
                 "recon": dict(recon="bce", reduction="sum"), "vq_weights": dict(vq_weight=1.0, beta=0.25),
                 "batch_size": dict(batch_size=32)}


def table1(seeds: Sequence[int] = (0, 1, 2), iterations: int = 40_000, **overrides) -> list[Config]:
    """Table 1: MNIST, d = 64, the six bottlenecks."""
    return [Config(dataset="mnist", d=64, iterations=iterations, seed=s, **{**kw, **overrides})
            for kw in TABLE1.values() for s in seeds]


def figure4(seeds: Sequence[int] = (0,), iterations: int = 40_000, **overrides) -> list[Config]:
    """Figure 4: MNIST, d = 60, AE / VAE / VQ-VAE / soft VQ-VAE."""
    return [Config(dataset="mnist", d=60, iterations=iterations, seed=s, **{**TABLE1[b], **overrides})
            for b in ("ae", "vae", "vqvae", "soft_vqvae") for s in seeds]


def table2(dataset: str = "cifar10", seeds: Sequence[int] = (0,), iterations: int | None = None,
           rows: Mapping[str, dict] | None = None, **overrides) -> list[Config]:
    """Table 2: d = 256 CNN on SVHN / CIFAR-10, with `rows` (default TABLE2; `choose_table2` picks them on a
    validation split). `iterations` overrides every row's budget (the paper's: 40,000, and 10,000 for the soft
    VQ-VAE)."""
    rows = [{**kw, **({"iterations": iterations} if iterations else {})} for kw in (rows or TABLE2).values()]
    return [Config(dataset=dataset, d=TABLE2_D, seed=s, **{**kw, **overrides}) for kw in rows for s in seeds]


def official_code(seed: int = 0, **overrides) -> Config:
    """The `official-code` preset: the authors' public MNIST notebook's choices."""
    return Config(dataset="mnist", d=64, seed=seed, **{**OFFICIAL_CODE, **overrides})


def ablation(seeds: Sequence[int] = (0, 1), iterations: int = 40_000, validation: bool = True,
             **overrides) -> dict[str, list[Config]]:
    """The official-code preset, the same with each difference to the paper switched back one at a time,
    the paper's soft VQ-VAE with all of them switched back, and the plain AE for reference."""
    base = dict(iterations=iterations, validation=validation, **overrides)
    rows = {"official-code": {}, **{f"paper {k}": v for k, v in PAPER_CHOICES.items()}}
    configs = {name: [official_code(seed=s, **{**base, **change})
                      for s in seeds] for name, change in rows.items()}
    for name, preset in (("paper soft_vqvae", PAPER_SOFT_VQVAE), ("paper ae", TABLE1["ae"])):
        configs[name] = [Config(dataset="mnist", d=64, seed=s, **{**preset, **base}) for s in seeds]
    return configs


NOISE_LEVELS = (0.0, 0.03, 0.1, 0.3, 1.0)


def noise_sweep(seeds: Sequence[int] = (0,), iterations: int = 5_000, levels: Sequence[float] = NOISE_LEVELS,
                validation: bool = True, **overrides) -> dict[str, list[Config]]:
    """The official-code preset at several noise levels (std of the Gaussian noise on z_e), on the
    validation split: how noise_std was chosen."""
    return {f"noise_std {v:g}": [official_code(seed=s, iterations=iterations, validation=validation,
                                               **{**overrides, "noise_std": v}) for s in seeds] for v in levels}


def scaling_sweep(seeds: Sequence[int] = (0,), iterations: int = 5_000, validation: bool = True,
                  dataset: str = "mnist", **overrides) -> dict[str, list[Config]]:
    """VAE, beta-VAE and information dropout with each scaling of SCALINGS, on the validation split: how
    their loss scaling was chosen for Table 1 (MNIST, d = 64) and Table 2 (another dataset: the CNN,
    d = 256, the beta-VAE at beta = 100)."""
    d, rows = (SCALING_D, SCALING_ROWS) if dataset == "mnist" else (TABLE2_D, scaling_rows(TABLE2_D, PAPER_BASELINES_CNN))
    return {name: [Config(dataset=dataset, d=d, seed=s, iterations=iterations, validation=validation,
                          **{**row, **overrides}) for s in seeds] for name, row in rows.items()}


# Table 2's soft VQ-VAE candidates (K = 32, d = 256), each with noise 0 (the MNIST sweep's choice) and 0.1.
TABLE2_SOFT_CANDIDATES = {"mnist-code": OFFICIAL_CODE, "svhn-code": SVHN_CODE, "paper eq. 7": PAPER_SOFT_VQVAE}
TABLE2_SWEEP_NOISE = (0.0, 0.1)


def table2_sweep(dataset: str = "cifar10-jpeg", seeds: Sequence[int] = (0, 1), iterations: int = 2_000,
                 validation: bool = True, **overrides) -> dict[str, list[Config]]:
    """The soft VQ-VAE settings of Table 2, chosen on the validation split of `dataset`: the authors' MNIST
    code, their SVHN code and the paper's eq. 7 (TABLE2_SOFT_CANDIDATES), each at TABLE2_SWEEP_NOISE."""
    return {f"{name} noise {v:g}": [Config(dataset=dataset, d=TABLE2_D, seed=s, iterations=iterations,
                                           validation=validation, **{**preset, "K": 32, "noise_std": v, **overrides})
                                    for s in seeds]
            for name, preset in TABLE2_SOFT_CANDIDATES.items() for v in TABLE2_SWEEP_NOISE}


CHOICE_METRIC = "classification_acc"     # Table 2's settings are those of the best mean validation linear probe


def best_row(sweep: Mapping[str, Sequence[Config]], results_dir: str | Path = RESULTS_DIR,
             metric: str = CHOICE_METRIC) -> str:
    """The row of a validation sweep whose runs have the highest mean `metric` over their seeds. Every run must
    have its results JSON, and be evaluated on the validation split (never choose on the test set)."""
    means = {}
    for name, configs in sweep.items():
        if not all(c.validation for c in configs):
            raise ValueError(f"sweep row {name!r} is not evaluated on the validation split")
        missing = [c.run_id for c in configs if not result_path(c, results_dir).exists()]
        if missing:
            raise FileNotFoundError(f"sweep row {name!r} lacks results in {results_dir}: {', '.join(missing)}")
        means[name] = sum(json.loads(result_path(c, results_dir).read_text())["metrics"][metric]
                          for c in configs) / len(configs)
    return max(means, key=means.get)


def table2_rows(soft: str, scalings: Mapping[str, str]) -> dict[str, dict]:
    """Table 2's rows: the plain AE, each KL-regularized baseline with its SCALINGS name in `scalings` (e.g.
    {"vae": "sum", "beta_vae": "KL/d", "info_dropout": "KL/d"}), the VQ-VAE (K = 512), and the soft VQ-VAE
    candidate of `table2_sweep` named `soft` (e.g. "svhn-code noise 0") at K = 32 and 10,000 iterations."""
    name, noise = soft.rsplit(" noise ", 1)
    candidates = scaling_rows(TABLE2_D, PAPER_BASELINES_CNN)
    return {"ae": dict(TABLE1["ae"]), **{b: candidates[f"{b} {scalings[b]}"] for b in PAPER_BASELINES_CNN},
            "vqvae": dict(bottleneck="vqvae", K=512, beta=0.25),
            "soft_vqvae": {**TABLE2_SOFT_CANDIDATES[name], "K": 32, "noise_std": float(noise), "iterations": 10_000}}


def table2_for(dataset: str, seeds: Sequence[int] = (0, 1), iterations: int = 2_000,
               results_dir: str | Path = RESULTS_DIR, **overrides) -> dict[str, dict]:
    """Table 2's rows for `dataset`: `choose_table2`'s choice where all of its sweep runs have results, else TABLE2."""
    try:
        return choose_table2(dataset, seeds, iterations, results_dir, **overrides)
    except FileNotFoundError:
        return TABLE2


# Table 2's rows as `choose_table2` picked them on the validation split of cifar10-jpeg (2,000 iterations, seeds
# 0 and 1; figures/table2_sweep.md and table2_scaling_sweep.md): the authors' SVHN code without noise, and the KL
# averaged over the d = 256 units (KL/d) for all three baselines.
TABLE2 = table2_rows("svhn-code noise 0", {"vae": "KL/d", "beta_vae": "KL/d", "info_dropout": "KL/d"})


def choose_table2(dataset: str = "cifar10-jpeg", seeds: Sequence[int] = (0, 1), iterations: int = 2_000,
                  results_dir: str | Path = RESULTS_DIR, **overrides) -> dict[str, dict]:
    """Table 2's rows chosen on the validation split of `dataset` from the finished `table2_sweep` and
    `scaling_sweep` runs of these seeds and iterations: the best soft VQ-VAE candidate and, per baseline, the
    best loss scaling, by mean validation CHOICE_METRIC."""
    soft = best_row(table2_sweep(dataset, seeds, iterations, **overrides), results_dir)
    scaling = scaling_sweep(seeds, iterations, dataset=dataset, **overrides)
    scalings = {b: best_row({k: v for k, v in scaling.items() if k.startswith(f"{b} ")}, results_dir).split(" ", 1)[1]
                for b in PAPER_BASELINES_CNN}
    return table2_rows(soft, scalings)


# The estimators study (beyond the paper): what the decoder gets from the posterior. Table 1's soft VQ-VAE
# (the posterior mean) against a posterior sample and the posterior's argmax, on the same model and losses, and
# SQ-VAE (Takida et al. 2022), with the hard VQ-VAE for reference. The open settings of the new rows are chosen
# on the validation split by `estimators_sweep`: the sample's temperature, the argmax's loss weights (the
# authors' code's or the paper's), the SQ-VAE's initial variance and loss scaling (Table 1's soft VQ-VAE
# reconstruction loss and mean reductions, or the ELBO's Bernoulli log-likelihood summed over pixels).
SQVAE_SCALINGS = {"official": dict(recon="mse_var", reduction="mean", batch_size=64),
                  "ELBO": dict(recon="bce", reduction="sum", batch_size=64)}
ESTIMATOR_FAMILIES = ("sample", "argmax", "sqvae")
ESTIMATOR_CANDIDATES = {
    "mean": TABLE1["soft_vqvae"],
    **{f"sample tau {t:g}": dict(TABLE1["soft_vqvae"], estimator="sample", temperature=t) for t in (0.5, 1.0, 2.0)},
    "argmax official-code weights": dict(TABLE1["soft_vqvae"], estimator="argmax"),
    "argmax paper weights": dict(TABLE1["soft_vqvae"], estimator="argmax", vq_weight=1.0, beta=0.25),
    **{f"sqvae {name} var {v:g}": dict(bottleneck="sqvae", K=128, var_init=v, **scaling)
       for name, scaling in SQVAE_SCALINGS.items() for v in (0.1, 1.0, 10.0)},
}


def estimators_sweep(seeds: Sequence[int] = (0,), iterations: int = 5_000, validation: bool = True,
                     **overrides) -> dict[str, list[Config]]:
    """Every candidate of ESTIMATOR_CANDIDATES on MNIST, d = 64, on the validation split (the posterior mean,
    Table 1's row, for reference)."""
    return {name: [Config(dataset="mnist", d=64, seed=s, iterations=iterations, validation=validation,
                          **{**row, **overrides}) for s in seeds] for name, row in ESTIMATOR_CANDIDATES.items()}


def choose_estimators(seeds: Sequence[int] = (0,), iterations: int = 5_000, results_dir: str | Path = RESULTS_DIR,
                      **overrides) -> dict[str, str]:
    """{family: the ESTIMATOR_CANDIDATES row chosen for it}: per family of ESTIMATOR_FAMILIES, the candidate of
    the finished `estimators_sweep` with the best mean validation CHOICE_METRIC."""
    sweep = estimators_sweep(seeds, iterations, **overrides)
    return {f: best_row({k: v for k, v in sweep.items() if k.split(" ", 1)[0] == f}, results_dir)
            for f in ESTIMATOR_FAMILIES}


# The rows the estimators table trains, as `choose_estimators` picked them (figures/estimators_sweep.md).
ESTIMATOR_CHOICES = {"sample": "sample tau 1", "argmax": "argmax official-code weights",
                     "sqvae": "sqvae official var 1"}


def estimators(seeds: Sequence[int] = (0, 1, 2, 3, 4), iterations: int = 40_000,
               choices: Mapping[str, str] = ESTIMATOR_CHOICES, **overrides) -> dict[str, list[Config]]:
    """The estimators table on Table 1's protocol (MNIST, d = 64, K = 128, test set): the posterior mean
    (Table 1's soft VQ-VAE), the chosen sample, argmax and SQ-VAE rows, and the hard VQ-VAE."""
    rows = {"mean": TABLE1["soft_vqvae"], **{f: ESTIMATOR_CANDIDATES[choices[f]] for f in ESTIMATOR_FAMILIES},
            "vqvae": TABLE1["vqvae"]}
    return {name: [Config(dataset="mnist", d=64, seed=s, iterations=iterations, **{**row, **overrides})
                   for s in seeds] for name, row in rows.items()}


# ------------------------------------------------------------------------------------------- running
def result_path(config: Config, results_dir: str | Path = RESULTS_DIR) -> Path:
    return Path(results_dir) / config.dataset / f"{config.run_id}.json"


def latents_path(config: Config, checkpoint_dir: str | Path = CHECKPOINT_DIR) -> Path:
    """Where a run's evaluation latents z_e (and labels) are kept (git-ignored, like checkpoints)."""
    return Path(checkpoint_dir) / f"{config.run_id}.latents.pt"


def latents(config: Config, root=None, device=None, results_dir: str | Path = RESULTS_DIR,
            checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation-set latents z_e (N, d) and labels (N,) of a run, training it first if they are missing."""
    path = latents_path(config, checkpoint_dir)
    if not path.exists():
        run_stack([config], root, device, results_dir, checkpoint_dir, progress)
    saved = torch.load(path, weights_only=True)
    return saved["z"], saved["y"]


def splits(dataset: str, validation: bool, root=None, train_size: int = 0, eval_size: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_eval, y_eval): the test set, or with `validation` a fixed held-out part of the
    training set (the last 10,000 of a permutation with seed 0, a fifth of a set under 50,000) and the rest
    for training. `train_size` /
    `eval_size` > 0 keep only the first that many of each."""
    x, y = data.load_dataset(dataset, "train", root)
    if validation:
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        held_out = min(VALIDATION_SIZE, len(x) // 5)
        train_idx, eval_idx = perm[:-held_out], perm[-held_out:]
        parts = x[train_idx], y[train_idx], x[eval_idx], y[eval_idx]
    else:
        parts = x, y, *data.load_dataset(dataset, "test", root)
    sizes = (train_size, train_size, eval_size, eval_size)
    return tuple(t[:n] if n else t for t, n in zip(parts, sizes))


def downstream(z_train, y_train, z_eval, y_eval, n_init: int = 100, seed: int = 0, probe_iterations: int = 500
               ) -> dict:
    """The paper's three scores of latents z_e: K-means (fit on the evaluation latents, as the paper) accuracy
    and NMI, and the accuracy of a softmax classifier trained on the training latents."""
    scores = metrics.clustering_scores(z_eval, y_eval, n_init=n_init, seed=seed)
    scores["classification_acc"] = metrics.linear_probe(z_train, y_train, z_eval, y_eval, epochs=probe_iterations,
                                                        seed=seed)
    return scores


def evaluate_raw(dataset: str = "mnist", validation: bool = False, root=None, results_dir: str | Path = RESULTS_DIR,
                 compute: bool = True, kmeans_n_init: int = 100, **evaluation) -> dict | None:
    """The 'raw data' row: the three scores on the pixels themselves, scored as Config's EVALUATION fields
    say. Read from its JSON when it exists; else computed and written (None when not `compute`)."""
    fields = {"kmeans_n_init": kmeans_n_init, **evaluation}
    changed = "".join(f"-{k}{v}" for k, v in fields.items() if k != "kmeans_n_init" and v != HASHED_WHEN_SET[k])
    path = Path(results_dir) / dataset / f"{dataset}-raw{'-val' if validation else ''}-n{kmeans_n_init}{changed}.json"
    if path.exists() or not compute:
        return json.loads(path.read_text()) if path.exists() else None
    x_tr, y_tr, x_ev, y_ev = splits(dataset, validation, root, fields.get("train_size", 0), fields.get("eval_size", 0))
    began = time.perf_counter()
    record = {"config": {"dataset": dataset, "bottleneck": "raw", "validation": validation, "seed": 0,
                         "iterations": 0, **fields},
              "metrics": downstream(x_tr.flatten(1), y_tr, x_ev.flatten(1), y_ev, kmeans_n_init,
                                    probe_iterations=fields.get("probe_iterations", 500)),
              "eval_time_s": time.perf_counter() - began, "code_version": code_version(default_device())}
    write_json(record, path)
    return record


def group_stacks(configs: Iterable[Config]) -> list[list[Config]]:
    """Split configs into stacks that can train together (same everything except STACKABLE fields)."""
    groups: dict[tuple, list[Config]] = {}
    for c in configs:
        groups.setdefault(c.stack_key(), []).append(c)
    return list(groups.values())


def run_stack(configs: Sequence[Config], root=None, device=None, results_dir: str | Path = RESULTS_DIR,
              checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True, keep_model: bool = False,
              checkpoint_every: int = 2_000):
    """Train one stack of compatible configs together, evaluate each model, write one JSON per config.
    The training state is saved every `checkpoint_every` iterations; a rerun continues from it.

    Returns the records (and the trained model when keep_model)."""
    first = configs[0]
    if any(c.stack_key() != first.stack_key() for c in configs):
        raise ValueError("configs in one stack may differ only in " + ", ".join(STACKABLE))
    device = torch.device(device) if device is not None else default_device()
    version = code_version(device)          # before training: the code this process runs
    x_tr, y_tr, x_ev, y_ev = splits(first.dataset, first.validation, root, first.train_size, first.eval_size)
    seeds = [c.seed for c in configs]
    model = build_stack(configs, x_tr)
    ckpt = Path(checkpoint_dir) / f"{configs[0].run_id}-x{len(configs)}.pt"
    history = train(model, x_tr, seeds, iterations=first.iterations, batch_size=first.batch_size, lr=first.lr,
                    device=device, checkpoint=ckpt, checkpoint_every=checkpoint_every, progress=progress,
                    precision=first.precision, compile=first.compile)
    codes = codebook.assignments(model, x_ev) if first.bottleneck in QUANTIZERS else None
    swaps = (swap_estimators(model, x_ev, [c.noise_std for c in configs], first.seed)
             if first.bottleneck == "soft_vqvae" else None)
    z_tr = model.encode(x_tr).cpu()
    z_ev = codes["z_e"] if codes is not None else model.encode(x_ev).cpu()      # the same z_e, encoded once
    terms = [k for k in history if k not in ("iteration", "wall_time")]
    records = []
    for m, c in enumerate(configs):
        began = time.perf_counter()
        scores = downstream(z_tr[m], y_tr, z_ev[m], y_ev, c.kmeans_n_init, c.seed, c.probe_iterations)
        save_atomic({"z": z_ev[m].clone(), "y": y_ev}, latents_path(c, checkpoint_dir))
        record = {"config": dataclasses.asdict(c), "run_id": c.run_id, "metrics": scores,
                  "final_losses": {k: history[k][-1][m] for k in terms},
                  "history": {"iteration": history["iteration"], **{k: [v[m] for v in history[k]] for k in terms}},
                  "train_time_s": history["wall_time"], "stack_size": len(configs),
                  "eval_time_s": time.perf_counter() - began, "code_version": version}
        if codes is not None:
            record["codebook"] = codebook.statistics(codes, m)
        if swaps is not None:
            record["estimator_swap"] = swaps[m]
        write_json(record, result_path(c, results_dir))
        records.append(record)
    return (records, model, history) if keep_model else records


def build_stack(configs: Sequence[Config], x_train: torch.Tensor):
    """The stacked model of compatible configs, per-model beta / noise_std from each config."""
    first = configs[0]
    kwargs = first.bottleneck_kwargs()
    if first.bottleneck not in ("ae", "sqvae"):
        kwargs["beta"] = [c.beta for c in configs]
    per_model_fields = {"soft_vqvae": ("noise_std", "vq_weight", "temperature", "sigma_floor"),
                        "sqvae": ("vq_weight", "temperature", "var_init")}
    for name in per_model_fields.get(first.bottleneck, ()):
        kwargs[name] = [getattr(c, name) for c in configs]
    return build_model(x_train.shape[1:], first.bottleneck, first.d, net=first.net, seeds=[c.seed for c in configs],
                       recon=first.recon, pixel_var=float(x_train.var()), **kwargs)


def flatten(configs: Iterable[Config] | Mapping[str, Sequence[Config]]) -> list[Config]:
    """The configs of a list, or of every row of a {row: configs} mapping (a sweep or the ablation)."""
    return [c for cs in configs.values() for c in cs] if isinstance(configs, Mapping) else list(configs)


MAX_STACK = 8


def stack_limit(config: Config, device=None) -> int:
    """How many models one stack of `config`'s kind trains together on `device`: MAX_STACK, but 1 for the CNN
    on a CPU, where the grouped convolutions of a stack of 4 ran 1.6x slower per model than one model alone
    (578 against 370 ms per model-iteration, benchmarks/results/stack_speed_cnn_cpu.json)."""
    device = torch.device(device) if device is not None else default_device()
    return 1 if config.net == "cnn" and device.type == "cpu" else MAX_STACK


def run(configs: Iterable[Config] | Mapping[str, Sequence[Config]], root=None, device=None,
        results_dir: str | Path = RESULTS_DIR, checkpoint_dir: str | Path = CHECKPOINT_DIR, progress: bool = True,
        max_stack: int | None = None, launcher: launch.Launcher | Mapping | str | None = None) -> list[dict]:
    """Run every config (of a list or a {row: configs} mapping) whose results JSON does not exist yet,
    stacked where possible (at most `max_stack` models a stack; None: `stack_limit`), and return the records
    that exist afterwards (all of them unless a launcher that does not wait was used).

    `launcher` (see `softvq.launch`): None or "inline" trains the stacks one after another in this process;
    "local" / "slurm" (or a `launch.Launcher`, or a dict of its fields) runs each stack as a submitit job,
    waits for all of them and raises `launch.JobsFailed` after they end if any failed."""
    configs = flatten(configs)
    todo = [c for c in configs if not result_path(c, results_dir).exists()]
    folders = dict(root=str(Path(root).resolve()) if root is not None else None, device=device, progress=progress,
                   results_dir=Path(results_dir).resolve(), checkpoint_dir=Path(checkpoint_dir).resolve())
    chunks = []
    for stack in group_stacks(todo):
        size = max_stack or stack_limit(stack[0], device)
        chunks += [stack[i:i + size] for i in range(0, len(stack), size)]
    tasks = [launch.Task(", ".join(c.run_id for c in chunk), run_stack, dict(configs=chunk, **folders))
             for chunk in chunks]
    launch.run_tasks(tasks, launcher, progress)
    return [json.loads(path.read_text()) for path in (result_path(c, results_dir) for c in configs) if path.exists()]
