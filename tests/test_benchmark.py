import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


def test_train_speed_benchmark_prints_one_json_line(mnist_root):
    out = subprocess.run([sys.executable, str(SCRIPT), "--models", "2", "--iterations", "2", "--device", "cpu",
                          "--data-root", str(mnist_root)], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["models"] == 2 and result["iterations_per_model"] == 2 and result["device"] == "cpu"
    for kind in ("plain", "plain_in_memory", "plain_in_memory_ftz", "trainer"):
        assert result[f"{kind}_ms_per_model_iteration"] > 0
    ratio = result["plain_ms_per_model_iteration"] / result["trainer_ms_per_model_iteration"]
    assert abs(result["speedup"] - ratio) < 0.01 * ratio + 0.01          # plain time / trainer time


def test_stack_speed_reports_every_stack_and_precision(mnist_root, tmp_path):
    script = SCRIPT.parent / "stack_speed.py"
    subprocess.run([sys.executable, str(script), "--models", "1", "2", "--precisions", "fp32", "bf16", "--iterations",
                    "2", "--warmup", "1", "--device", "cpu", "--data-root", str(mnist_root), "--out",
                    str(tmp_path / "s.json")], check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "s.json").read_text())
    assert [(r["models"], r["precision"]) for r in result["rows"]] == [(1, "fp32"), (1, "bf16"), (2, "fp32"), (2, "bf16")]
    assert all(r["ms_per_model_iteration"] > 0 and r["compile"] is False for r in result["rows"])
    assert result["code_version"]["device"] == "cpu"


def test_stack_speed_times_the_table2_cnn(tmp_path):
    script = SCRIPT.parent / "stack_speed.py"
    subprocess.run([sys.executable, str(script), "--table", "2", "--models", "2", "--precisions", "fp32",
                    "--iterations", "1", "--warmup", "1", "--device", "cpu", "--out", str(tmp_path / "s.json")],
                   check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "s.json").read_text())
    assert "CNN" in result["model"] and result["rows"][0]["models"] == 2
    assert result["rows"][0]["ms_per_model_iteration"] > 0


def test_launcher_speed_times_inline_and_local_jobs(mnist_root, tmp_path):
    pytest.importorskip("submitit")
    script = SCRIPT.parent / "launcher_speed.py"
    subprocess.run([sys.executable, str(script), "--iterations", "5", "--smoke", "--data-root", str(mnist_root),
                    "--out", str(tmp_path / "l.json")], check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "l.json").read_text())
    assert result["stacks"] == result["local_jobs"] == 2 and result["inline_s"] > 0 and result["local_s"] > 0
    assert set(result["metrics_inline"]) == set(result["metrics_local"]) and len(result["metrics_local"]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the check runs for real")
def test_gpu_check_without_cuda_says_so_and_succeeds():
    done = subprocess.run([sys.executable, "-m", "softvq", "gpu-check"], capture_output=True, text=True)
    assert done.returncode == 0 and "no CUDA device" in done.stdout
