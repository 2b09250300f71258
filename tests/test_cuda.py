"""The GPU path (marked `cuda`: skipped without CUDA): the self-tests of `python -m softvq gpu-check`, under pytest."""
import pytest

from softvq import gpu_check

pytestmark = pytest.mark.cuda


def test_soft_quantize_is_finite_in_float32_at_extreme_distances_and_variances():
    gpu_check.check_soft_quantize_extremes()


@pytest.mark.parametrize("precision", list(gpu_check.PRECISION_RTOL))
def test_gpu_training_matches_the_cpu(precision):
    gpu_check.check_training_matches_the_cpu(precision)


def test_a_run_on_the_gpu_writes_its_record(mnist_root, tmp_path):
    gpu_check.check_a_run_writes_its_record(mnist_root, tmp_path)
