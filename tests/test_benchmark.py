import json
import subprocess
import sys
from pathlib import Path

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
