"""softvq: the soft VQ-VAE of Wu & Flierl (AAAI 2020), its baselines, training and evaluation."""
from .quantize import SoftVectorQuantizer, soft_quantize, nearest_codeword, straight_through
from .model import AutoEncoder, build_model
from .train import train, default_device

__all__ = ["SoftVectorQuantizer", "soft_quantize", "nearest_codeword", "straight_through",
           "AutoEncoder", "build_model", "train", "default_device"]
