"""The paper's encoder/decoder networks, written for a stack of M models trained as one computation.

Every layer carries a leading model axis: a linear layer holds weights (M, in, out) and runs one batched
matrix product; a convolution holds M groups and runs one grouped convolution. A single model is simply
M = 1, so the same definition serves training alone and training a stack (see `softvq.train`).
Tensors are (M, B, ...) at every module boundary.

Initialisation is Glorot-uniform with zero biases (as the paper, following Keras' defaults). Each module's
`reset_stacked(generators)` draws model m's slice from generator m only, so a model initialised inside a
stack gets exactly the weights it gets alone with the same seed.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

Generators = Sequence[torch.Generator]


def glorot_uniform_(weight: torch.Tensor, fan_in: int, fan_out: int, generator: torch.Generator) -> None:
    """Glorot & Bengio (2010) uniform init: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)


class StackedLinear(nn.Module):
    """M independent dense layers as one batched matrix product: (M, B, in) -> (M, B, out)."""

    def __init__(self, in_features: int, out_features: int, n_models: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_models, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n_models, 1, out_features))

    def reset_stacked(self, generators: Generators) -> None:
        for weight, g in zip(self.weight, generators):
            glorot_uniform_(weight, *weight.shape, g)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedConv(nn.Module):
    """M independent 3x3 stride-2 (transposed) convolutions as one grouped convolution.

    Works on the grouped layout (B, M*C, H, W) that `to_grouped` / `from_grouped` convert to and from,
    so a stack of convolutions pays for the layout change once.
    """

    def __init__(self, in_channels: int, out_channels: int, n_models: int = 1, transposed: bool = False):
        super().__init__()
        conv = nn.ConvTranspose2d if transposed else nn.Conv2d
        extra = {"output_padding": 1} if transposed else {}
        self.conv = conv(n_models * in_channels, n_models * out_channels, 3, stride=2, padding=1,
                         groups=n_models, **extra)
        self.in_channels, self.out_channels = in_channels, out_channels

    def reset_stacked(self, generators: Generators) -> None:
        receptive = 9                                             # 3 x 3 kernel
        per_model = self.conv.weight.shape[0] // len(generators)  # rows of the weight owned by one model
        for m, g in enumerate(generators):
            glorot_uniform_(self.conv.weight[m * per_model:(m + 1) * per_model],
                            self.in_channels * receptive, self.out_channels * receptive, g)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def to_grouped(x: torch.Tensor) -> torch.Tensor:
    """(M, B, C, H, W) -> (B, M*C, H, W)."""
    m, b, c, h, w = x.shape
    return x.transpose(0, 1).reshape(b, m * c, h, w)


def from_grouped(x: torch.Tensor, n_models: int) -> torch.Tensor:
    """(B, M*C, H, W) -> (M, B, C, H, W)."""
    b, mc, h, w = x.shape
    return x.reshape(b, n_models, mc // n_models, h, w).transpose(0, 1)


def mlp(sizes: Sequence[int], n_models: int, final_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(StackedLinear(a, b, n_models))
        if final_relu or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """MNIST encoder body D-500-500-2000 (ReLU); the bottleneck's heads add the final 2000-d layer.

    (M, B, *image_shape) -> features (M, B, 2000).
    """

    def __init__(self, image_shape: Sequence[int], hidden: Sequence[int] = (500, 500, 2000), n_models: int = 1):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.out_features = hidden[-1]
        self.net = mlp([math.prod(image_shape), *hidden], n_models, final_relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(2))


class MLPDecoder(nn.Module):
    """MNIST decoder d-2000-500-500-D (ReLU, linear output = pixel logits). (M, B, d) -> (M, B, *image_shape)."""

    def __init__(self, dim: int, image_shape: Sequence[int], hidden: Sequence[int] = (2000, 500, 500),
                 n_models: int = 1):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = mlp([dim, *hidden, math.prod(image_shape)], n_models, final_relu=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.image_shape)


class CNNEncoder(nn.Module):
    """SVHN / CIFAR-10 encoder body: 4 conv layers, 3x3, stride 2, channels 64-128-256-512, ReLU.

    (M, B, C, H, W) with H, W divisible by 16 -> features (M, B, 512 * H/16 * W/16) (2048 for 32x32).
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = (64, 128, 256, 512),
                 n_models: int = 1):
        super().__init__()
        c, h, w = image_shape
        if h % 16 or w % 16:
            raise ValueError(f"the CNN needs image sides divisible by 16, got {h}x{w}")
        self.n_models = n_models
        layers: list[nn.Module] = []
        for a, b in zip([c, *channels[:-1]], channels):
            layers += [StackedConv(a, b, n_models), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.out_features = channels[-1] * (h // 16) * (w // 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_grouped(self.net(to_grouped(x)), self.n_models).flatten(2)


class CNNDecoder(nn.Module):
    """Symmetric decoder: dense d -> 512 x H/16 x W/16, then 4 transposed 3x3 stride-2 convolutions
    512-256-128-64-C (ReLU between, linear output = pixel logits). (M, B, d) -> (M, B, C, H, W)."""

    def __init__(self, dim: int, image_shape: Sequence[int], channels: Sequence[int] = (512, 256, 128, 64),
                 n_models: int = 1):
        super().__init__()
        c, h, w = image_shape
        self.n_models = n_models
        self.start_shape = (channels[0], h // 16, w // 16)
        self.dense = nn.Sequential(StackedLinear(dim, math.prod(self.start_shape), n_models), nn.ReLU())
        layers: list[nn.Module] = []
        outs = [*channels[1:], c]
        for i, (a, b) in enumerate(zip(channels, outs)):
            layers.append(StackedConv(a, b, n_models, transposed=True))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).unflatten(-1, self.start_shape)          # (M, B, 512, H/16, W/16)
        return from_grouped(self.net(to_grouped(h)), self.n_models)


NETWORKS = {"mlp": (MLPEncoder, MLPDecoder), "cnn": (CNNEncoder, CNNDecoder)}


def reset_stacked(module: nn.Module, generators: Generators) -> None:
    """Initialise every layer of `module` in a fixed order, model m's weights from generators[m] only."""
    for sub in module.modules():
        if sub is not module and hasattr(sub, "reset_stacked"):
            sub.reset_stacked(generators)


