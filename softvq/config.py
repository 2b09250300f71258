"""The `Config` that names a run, and the checks of its fields (one table, `FIELD_CHECKS`).

A run is fully named by its `Config`: its run id derives from every field, so its results JSON, checkpoint
and latents are found again (see `softvq.store`). Every field is checked when the Config is built, so a bad
value (a typo, a negative size, a non-finite weight) is refused before any training. Configs that differ only
in the STACKABLE fields train together as one stack (see `softvq.runner`).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass

from . import data
from .bottlenecks import BOTTLENECKS, REDUCTIONS
from .model import RECONSTRUCTIONS
from .peers import PEERS, parse_levels
from .quantize import ESTIMATORS, WEIGHTINGS
from .train import PRECISIONS

PEER_FIELDS = {"rotation_trick": True, "ema_decay": 0.8, "dead_code": 0.0, "levels": "", "input_scale": 1.0,
               "reparam_variance": 5e-3}                   # the peer quantizers' settings and their defaults
STACKABLE = ("seed", "beta", "noise_std", "vq_weight", "temperature", "sigma_floor", "var_init",  # may differ
             *(f for f in PEER_FIELDS if f != "levels"))
HASHED_WHEN_SET = {"probe_iterations": 500, "train_size": 0, "eval_size": 0,   # in a run id's hash only when
                   "precision": "fp32", "compile": False,                        # they differ from the default
                   "estimator": "mean", "temperature": 1.0, "sigma_floor": 0.0, "var_init": 1.0,
                   "kmeans": "sklearn", "data_source": "full", **PEER_FIELDS}
EVALUATION = ("kmeans_n_init", "probe_iterations", "train_size", "eval_size", "kmeans")  # how codes are scored
KMEANS = ("sklearn", "torch")                 # sklearn's random starts; softvq.kmeans_torch's batched k-means++
QUANTIZERS = ("vqvae", "soft_vqvae", "sqvae", *PEERS)          # bottlenecks with a codebook
ALL_BOTTLENECKS = {**BOTTLENECKS, **PEERS}        # a Config's bottleneck: the paper's six, SQ-VAE, today's quantizers


def _one_of(choices) -> tuple:
    """A string field's check: one of `choices`."""
    return (lambda v: isinstance(v, str) and v in choices), f"one of {sorted(choices)}"


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


_POSITIVE_INT = (lambda v: _integer(v) and v >= 1), "a positive integer"
_NON_NEGATIVE = (lambda v: _number(v) and v >= 0), "a finite number >= 0"
_POSITIVE = (lambda v: _number(v) and v > 0), "a finite number > 0"
_BOOLEAN = (lambda v: isinstance(v, bool)), "True or False"
# Every Config field: (is the value allowed, description of the allowed values), checked when it is built.
FIELD_CHECKS = {
    "dataset": (data.is_known, f"one of {sorted(data.DATASETS)} or '{data.FOLDER_PREFIX}/path/to/dir'"),
    "bottleneck": _one_of(ALL_BOTTLENECKS),
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
    "kmeans": _one_of(KMEANS),
    "rotation_trick": _BOOLEAN,
    "ema_decay": ((lambda v: _number(v) and 0 < v < 1), "a finite number in (0, 1)"),
    "dead_code": _NON_NEGATIVE,
    "levels": ((lambda v: v == "" or (isinstance(v, str) and all(p.isdigit() and int(p) >= 3 for p in v.split("-")))),
               "'' or FSQ levels of at least 3 joined by '-', e.g. '8-4-4'"),
    **dict.fromkeys(("input_scale", "reparam_variance"), _POSITIVE),
}


@dataclass(frozen=True)
class Config:
    """Everything that defines one training run and its evaluation.

    `beta` is the bottleneck's weight: the KL weight of the VAE / beta-VAE / information dropout, the
    commitment weight of the VQ-VAE and soft VQ-VAE. `validation=True` trains on the training set minus a
    fixed held-out 10,000 and evaluates on those (for choosing settings; the test set is never used then).
    `probe_iterations` caps the linear probe's L-BFGS iterations; `train_size` / `eval_size` > 0 keep only
    that many training / evaluation images, a fixed draw (the quick budget's smoke runs; 0 keeps all, as the
    paper). `precision` ("fp32", "tf32", "bf16", "fp16") and `compile` (torch.compile the training step) are for
    GPUs; see `softvq.train.train`. `kmeans` is the K-means implementation that scores the codes, on any
    device: "sklearn" (random starts) or "torch" (`softvq.kmeans_torch`, k-means++ starts, all at once; fast
    on a GPU). `estimator` ("mean", the paper; "sample"; "argmax") is what the soft
    VQ-VAE's decoder gets from the posterior, `temperature` its Gumbel-softmax temperature ("sample") and
    the SQ-VAE's, `sigma_floor` a floor on the soft VQ-VAE's sigma_k (0: none), `var_init` the SQ-VAE's
    initial variance s^2. The PEER_FIELDS are the settings of today's quantizers (`softvq.peers`; `beta` is
    their commitment weight): `rotation_trick` (vq_ema, simvq), `ema_decay` and `dead_code` (vq_ema; dead_code
    also diveq, where it must be > 0), `levels` (fsq, whose K is their product), `input_scale` (fsq) and
    `reparam_variance` (diveq); other bottlenecks keep their defaults.
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
    kmeans: str = "sklearn"
    rotation_trick: bool = True
    ema_decay: float = 0.8
    dead_code: float = 0.0
    levels: str = ""
    input_scale: float = 1.0
    reparam_variance: float = 5e-3

    def __post_init__(self):
        for name, (allowed, expected) in FIELD_CHECKS.items():
            value = getattr(self, name)
            if not allowed(value):
                raise ValueError(f"Config.{name} = {value!r} is not allowed; expected {expected}")
            object.__setattr__(self, name, _canonical(value, type(FIELD_DEFAULTS[name])))
        if self.estimator != "mean" and (self.bottleneck != "soft_vqvae" or self.weighting == "svhn_code"):
            raise ValueError(f"Config.estimator = {self.estimator!r} needs bottleneck 'soft_vqvae' with a weighting "
                             f"other than 'svhn_code'")
        self._check_peer_fields()

    def _check_peer_fields(self) -> None:
        """The PEER_FIELDS: defaults for other bottlenecks; FSQ's levels multiply to K; DiVeQ replaces dead codes."""
        changed = [f for f, default in PEER_FIELDS.items() if getattr(self, f) != default]
        if self.bottleneck not in PEERS and changed:
            raise ValueError(f"Config.{changed[0]} is a setting of the peer quantizers ({', '.join(PEERS)}), not of "
                             f"{self.bottleneck!r}")
        if (self.bottleneck == "fsq") != bool(self.levels):
            raise ValueError("Config.levels: FSQ needs its levels (e.g. '8-4-4') and no other bottleneck takes them")
        if self.bottleneck == "fsq" and math.prod(parse_levels(self.levels)) != self.K:
            raise ValueError(f"Config.K = {self.K} is not the number of FSQ codes of levels {self.levels!r}")
        if self.bottleneck == "diveq" and self.dead_code <= 0:
            raise ValueError("Config.dead_code must be > 0 for 'diveq' (the library replaces its dead codes)")

    @property
    def net(self) -> str:
        return "mlp" if self.dataset in data.GREY28 else "cnn"

    @property
    def run_id(self) -> str:
        """<data name>-<bottleneck>-d<d>-it<iterations>[-val]-s<seed>-<hash of every field and the data source>.

        Fields added later (HASHED_WHEN_SET) count only when they differ from their default, so older run ids
        stay valid. The data name is the data set's, or for an image folder a path-safe name with a fingerprint
        of its files (`data.data_name`: the same folder spelled two ways is one run); the data source
        (`data.source`: the full data, or the embedded sample) counts when it is not the full data."""
        name = data.data_name(self.dataset)
        fields = {**dataclasses.asdict(self), "dataset": name, "data_source": data.source(self.dataset)}
        fields = {k: v for k, v in fields.items() if k not in HASHED_WHEN_SET or v != HASHED_WHEN_SET[k]}
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
        split = "-val" if self.validation else ""
        return f"{name}-{self.bottleneck}-d{self.d}-it{self.iterations}{split}-s{self.seed}-{digest}"

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
        if self.bottleneck == "fsq":
            kwargs["levels"] = self.levels
        return kwargs


FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def _canonical(value, kind: type):
    """A checked field value as its field's plain Python type: 3 and numpy's 3.0 are the float 3.0 of a float
    field, numpy's int64(3) the int 3 of an int field, so that equal settings are one Config and one run id."""
    return kind(value) if kind in (int, float) else value


def field_type(name: str):
    """An argparse type for the numeric Config field `name`: the text as the field's type (int or float),
    refused with the field's check unless allowed (a command-line mistake is one `error:` line)."""
    kind = type(getattr(Config, name))
    allowed, expected = FIELD_CHECKS[name]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not allowed(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse
