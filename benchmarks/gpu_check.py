"""The GPU check (`softvq.gpu_check`) from a checkout: its JSON goes to benchmarks/results/gpu_check_<gpu>.json.

    python benchmarks/gpu_check.py                 # the same as `python -m softvq gpu-check`, another folder
    python benchmarks/gpu_check.py --device cpu    # its checks on the CPU at a tiny size

Without CUDA it says what it skipped and exits 0.
"""
import sys
from pathlib import Path

from softvq import gpu_check

if __name__ == "__main__":
    sys.exit(gpu_check.main(folder=Path(__file__).resolve().parent / "results"))
