"""Today's quantizers from vector-quantize-pytorch behind the bottleneck interface of `softvq.bottlenecks`.

    "vq_ema"  `VectorQuantize`: EMA codebook, k-means initialisation, dead codes replaced, and the rotation trick
              (Fifty et al. 2024; the library's default) or the straight-through estimator;
    "fsq"     `FSQ` (Mentzer et al., ICLR 2024): finite scalar quantization of a learned projection of z_e to
              len(levels) dimensions, prod(levels) implicit codes, no codebook loss;
    "simvq"   `SimVQ` (Zhu et al., ICCV 2025): a frozen random codebook through one learned linear map;
    "diveq"   DiVeQ: `VectorQuantize(directional_reparam=True)`, a codebook learned by gradient through the
              direction to the nearest codeword (with noise on it), dead codes replaced.

The library's own modules do the quantizing (it is an extra: `pip install "softvq[peers]"`; `import softvq` does
not need it). A stack of M models holds M modules, one per model, and loops over the model axis. Each module is
built from its model's initialisation generator (`reset_stacked`) and draws its random numbers (k-means starts,
dead-code replacement, DiVeQ's noise) from a generator seeded by its model's noise generator, so a model trained
in a stack sees exactly what it sees alone.

The library averages its losses over the batch and the code dimension; here they are summed over d per input
(with reduction "mean": averaged) like every bottleneck's latent terms, so that `beta` weighs the commitment
||z_e - sg(z_q)||^2 as in the VQ-VAE row: "commitment" = beta * sum_d (z_e - sg(z_q))^2 for vq_ema, and for simvq
the library's ||sg(z_e) - z_q||^2 + beta ||z_e - sg(z_q)||^2 ("vq"). FSQ and DiVeQ have no latent loss.
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn

from .bottlenecks import Bottleneck, per_model

KMEANS_ITERS = 10


def library():
    """The vector_quantize_pytorch module, or an ImportError that says how to install it."""
    try:
        import vector_quantize_pytorch
    except ImportError as e:
        raise ImportError('the peer quantizers need vector-quantize-pytorch: pip install "softvq[peers]"') from e
    return vector_quantize_pytorch


def parse_levels(levels: str) -> list[int]:
    """FSQ levels from their Config spelling "8-4-4" -> [8, 4, 4]."""
    return [int(v) for v in levels.split("-")]


def seed_from(generator: torch.Generator) -> int:
    """A 62-bit seed drawn from `generator` (one draw; on the generator's device)."""
    return int(torch.randint(2 ** 62, (1,), generator=generator, device=generator.device))


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device):
    """torch's global generators (the CPU's and, on CUDA, `device`'s) seeded with `seed` inside the block and
    restored after it: the library draws from them."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class PeerQuantized(Bottleneck):
    """One of today's quantizers (`kind`, see the module docstring) on the head's code z_e (M, B, d).

    Returns the quantizer's output as the decoder input, z_e for the downstream scores, and its loss summed over
    d. Per-model settings (a scalar or one value per model): `beta` (commitment weight), `rotation_trick`
    (vq_ema, simvq: the rotation trick, else straight-through), `ema_decay` (vq_ema), `dead_code` (vq_ema, diveq:
    a codeword whose EMA count of assignments per batch falls below it is replaced by an input of the batch; 0
    never), `input_scale` (fsq: z_e is multiplied by it before FSQ's projection and bound) and
    `reparam_variance` (diveq: the variance of the noise on the direction). `levels` are FSQ's, "8-4-4".
    """

    def __init__(self, in_features, dim, n_models=1, reduction="sum", kind: str = "vq_ema", num_codes: int = 128,
                 beta: float | Sequence[float] = 0.25, rotation_trick: bool | Sequence[bool] = True,
                 ema_decay: float | Sequence[float] = 0.8, dead_code: float | Sequence[float] = 0.0,
                 levels: str = "8-4-4", input_scale: float | Sequence[float] = 1.0,
                 reparam_variance: float | Sequence[float] = 5e-3):
        super().__init__(in_features, dim, n_models, reduction)
        if kind not in PEER_KINDS:
            raise ValueError(f"unknown peer quantizer {kind!r}; expected one of {PEER_KINDS}")
        self.kind, self.num_codes, self.levels = kind, num_codes, levels
        settings = dict(beta=beta, rotation_trick=rotation_trick, ema_decay=ema_decay, dead_code=dead_code,
                        input_scale=input_scale, reparam_variance=reparam_variance)
        self.settings = {k: per_model(v, n_models).tolist() for k, v in settings.items()}
        self.quantizers = nn.ModuleList(self.build(m) for m in range(n_models))

    def build(self, m: int) -> nn.Module:
        """Model m's quantizer module, with its settings."""
        vqp, s = library(), {k: v[m] for k, v in self.settings.items()}
        if self.kind == "fsq":
            return vqp.FSQ(parse_levels(self.levels), dim=self.dim)
        if self.kind == "simvq":
            return vqp.SimVQ(self.dim, self.num_codes, rotation_trick=bool(s["rotation_trick"]),
                             commitment_weight=1.0, input_to_quantize_commit_loss_weight=s["beta"])
        common = dict(kmeans_init=True, kmeans_iters=KMEANS_ITERS, threshold_ema_dead_code=s["dead_code"])
        if self.kind == "diveq":
            return vqp.VectorQuantize(self.dim, self.num_codes, directional_reparam=True,
                                      directional_reparam_variance=s["reparam_variance"], **common)
        return vqp.VectorQuantize(self.dim, self.num_codes, decay=s["ema_decay"], commitment_weight=s["beta"],
                                  rotation_trick=bool(s["rotation_trick"]), straight_through=False, **common)

    def reset_stacked(self, generators):
        """Each model's module built again under global generators seeded from its initialisation generator."""
        for m, g in enumerate(generators):
            with seeded_global_rng(seed_from(g), torch.device("cpu")):
                self.quantizers[m] = self.build(m)

    def rng(self, m: int, device: torch.device):
        """The block in which model m's module may draw random numbers (`seeded_global_rng` from its noise
        generator); no reseeding in evaluation mode (nothing random) or without generators (a module used
        outside the trainer)."""
        if self.generators is None or not self.training:
            return contextlib.nullcontext()
        return seeded_global_rng(seed_from(self.generators[m]), device)

    @torch.no_grad()
    def init_from_data(self, h: torch.Tensor) -> None:
        """k-means initialisation of the vq_ema and diveq codebooks on the codes z_e of encoder features h (M, N, F)
        (`softvq.train.data_init` passes those of 1,024 training images per model); nothing for fsq and simvq."""
        if self.kind not in ("vq_ema", "diveq"):
            return
        z_e = self.head(h)
        for m, q in enumerate(self.quantizers):
            with self.rng(m, z_e.device):
                q._codebook.init_embed_(z_e[m][None])          # (1 codebook, N, d)

    def quantize(self, m: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model m's module on z (B, d): quantized code (B, d), code index (B,), loss (a scalar, the library's)."""
        q = self.quantizers[m]
        if self.kind == "fsq":
            z_q, index = q(z[:, None] * self.settings["input_scale"][m])
            return z_q[:, 0], index[:, 0].long(), z.new_zeros(())
        with self.rng(m, z.device):
            z_q, index, loss = q(z)
        return z_q, index, loss.reshape(())

    def forward(self, h):
        z_e = self.head(h)                                          # (M, B, d)
        parts = [self.quantize(m, z) for m, z in enumerate(z_e)]
        z_q = torch.stack([p[0] for p in parts])                    # (M, B, d)
        if self.kind in ("fsq", "diveq"):
            return z_q, z_e, {}
        per_unit = torch.stack([p[2] for p in parts]) * (self.dim if self.reduction == "sum" else 1)   # (M,)
        return z_q, z_e, {"commitment" if self.kind == "vq_ema" else "vq": per_unit}

    @torch.no_grad()
    def codes(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluation-mode z_e (M, B, d), decoder input z_q (M, B, d) and code index (M, B) of features h."""
        z_e = self.head(h)
        parts = [self.quantize(m, z) for m, z in enumerate(z_e)]
        return z_e, torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])


PEER_KINDS = ("vq_ema", "fsq", "simvq", "diveq")


def _peer(kind: str) -> type:
    """The bottleneck class of one peer quantizer (PeerQuantized with its kind fixed), for the registry."""
    def __init__(self, in_features, dim, n_models=1, reduction="sum", **kwargs):
        PeerQuantized.__init__(self, in_features, dim, n_models, reduction, kind=kind, **kwargs)
    return type(f"Peer_{kind}", (PeerQuantized,), {"__init__": __init__, "__doc__": f"PeerQuantized, kind {kind!r}."})


PEERS = {kind: _peer(kind) for kind in PEER_KINDS}
