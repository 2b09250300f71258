"""softvq: the soft VQ-VAE of Wu & Flierl (AAAI 2020), its baselines, training and evaluation."""
import os

# PyTorch's OpenMP threads otherwise busy-wait: on a shared 2-core machine that makes training and
# K-means 2-40x slower. Only effective when set before torch is first imported; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .quantize import SoftVectorQuantizer, soft_quantize, nearest_codeword, straight_through
from .model import AutoEncoder, build_model
from .train import train, default_device

__all__ = ["SoftVectorQuantizer", "soft_quantize", "nearest_codeword", "straight_through",
           "AutoEncoder", "build_model", "train", "default_device"]
