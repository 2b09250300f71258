"""softvq: the soft VQ-VAE of Wu & Flierl (AAAI 2020), its baselines, training and evaluation.

`import softvq` needs torch alone and changes nothing in the process: the quantizer and the models are plain
`nn.Module`s. Training (`softvq.train`), evaluation and the command line need the `train` extra, figures and
tables `plots`, the notebooks `notebooks` (`pip install "softvq[notebooks]"`). Training makes the CPU flush
denormal floats to zero (`softvq.train.flush_to_zero`); importing softvq does not.
"""
from .quantize import SoftVectorQuantizer, soft_quantize, nearest_codeword, straight_through
from .model import AutoEncoder, build_model

__all__ = ["SoftVectorQuantizer", "soft_quantize", "nearest_codeword", "straight_through",
           "AutoEncoder", "build_model"]
