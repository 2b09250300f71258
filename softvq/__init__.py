"""softvq: the soft VQ-VAE of Wu & Flierl (AAAI 2020), its baselines, training and evaluation.

Importing softvq makes the CPU flush denormal floats (below 1.2e-38 in float32) to zero. Tiny gradients and
activations decay into that range after a few hundred MNIST iterations, where CPU arithmetic is slow: an
MLP step went from 6.7 to 8.5-12.7 ms. Linux threads inherit the flag from the thread that creates them, so
it reaches torch's OpenMP workers only when softvq is imported before the first parallel torch operation.
"""
import torch

torch.set_flush_denormal(True)      # before anything below can start torch's thread pool

from .quantize import SoftVectorQuantizer, soft_quantize, nearest_codeword, straight_through
from .model import AutoEncoder, build_model
from .train import train, default_device

__all__ = ["SoftVectorQuantizer", "soft_quantize", "nearest_codeword", "straight_through",
           "AutoEncoder", "build_model", "train", "default_device"]
