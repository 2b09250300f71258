import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_record
from softvq import experiments

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


def test_train_speed_benchmark_compares_trainer_and_plain_loop_in_one_json(mnist_root, tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--stacks", "1", "2", "--iterations", "2", "--device", "cpu",
                          "--data-root", str(mnist_root), "--out", str(tmp_path / "t.json")], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "t.json").read_text())
    assert result["device"] == "cpu" and result["iterations"] == 2 and result["code_version"]["device"] == "cpu"
    assert set(result["plain_ms_per_iteration"]) == {"plain", "plain_in_memory", "plain_in_memory_ftz"}
    assert [(r["models"], r["compile"]) for r in result["trainer"]] == [(1, False), (2, False)]
    one, two = (r["ms_per_model_iteration"] for r in result["trainer"])
    assert result["stack_vs_one_model"]["2"] == pytest.approx(one / two, rel=0.01, abs=0.01)
    assert result["one_model_vs_plain"] == pytest.approx(result["plain_ms_per_iteration"]["plain_in_memory"] / one,
                                                         rel=0.01, abs=0.01)


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
def test_gpu_check_without_cuda_says_so_and_succeeds_from_the_package_alone(tmp_path):
    """As after a plain pip install: only the package (a copy, outside the checkout), run from an empty folder."""
    site, empty = tmp_path / "site", tmp_path / "empty"
    shutil.copytree(SCRIPT.parents[1] / "softvq", site / "softvq", ignore=shutil.ignore_patterns("__pycache__"))
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.check_output([sys.executable, "-c", "import softvq; print(softvq.__file__)"], cwd=empty,
                                    env=env, text=True)
    assert Path(where.strip()).is_relative_to(site)
    done = subprocess.run([sys.executable, "-m", "softvq", "gpu-check"], cwd=empty, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "no CUDA device" in done.stdout and not list(empty.iterdir())
    wrapper = subprocess.run([sys.executable, str(SCRIPT.parent / "gpu_check.py")], capture_output=True, text=True)
    assert wrapper.returncode == 0 and "no CUDA device" in wrapper.stdout


def test_platform_compare_pairs_the_same_runs_from_two_folders(tmp_path):
    configs = experiments.table1(seeds=(0, 1, 2), iterations=20)
    soft = [c for c in configs if c.bottleneck == "soft_vqvae"]
    platforms = {"cpu": ({"device": "cpu"}, 0.0), "gpu": ({"device": "cuda", "gpu": "H100"}, 0.1)}
    for folder, (version, shift) in platforms.items():
        for i, c in enumerate(soft):
            record = make_record(c, 0.7 + 0.01 * i + shift, 0.6, 0.9)
            record["code_version"] = version
            experiments.write_json(record, tmp_path / folder / f"{c.run_id}.json")
    ae = next(c for c in configs if c.bottleneck == "ae")           # only in one folder: left out
    experiments.write_json(make_record(ae, 0.5, 0.5, 0.9), tmp_path / "cpu" / f"{ae.run_id}.json")
    out = tmp_path / "compare"
    subprocess.run([sys.executable, str(SCRIPT.parent / "platform_compare.py"), str(tmp_path / "cpu"),
                    str(tmp_path / "gpu"), "--out", str(out)], check=True, capture_output=True)
    entries = {e["metric"]: e for e in json.loads(out.with_suffix(".json").read_text())["comparisons"]}
    assert {e["row"] for e in entries.values()} == {"soft_vqvae"} and entries["nmi"]["seeds"] == 3
    clust = entries["cluster_acc"]
    assert (clust["platform_a"], clust["platform_b"]) == ("CPU", "H100")
    assert clust["mean_a"] == pytest.approx(71.0) and clust["mean_b"] == pytest.approx(81.0)
    assert clust["p_two_sided"] < 1e-3                               # 10 points apart, spread 1 point
    assert "| soft_vqvae | cluster_acc | 3 | CPU | 71.000 ± 1.000 | H100 | 81.000 ± 1.000 |" in \
        out.with_suffix(".md").read_text()


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_step_vs_gemm_sets_the_step_against_its_floor_in_one_json(net, tmp_path):
    """benchmarks/step_vs_gemm.py, as a smoke run: the floor's parts add up, the ratios are the step over them, the
    CNN's convolutions are timed per layer in both memory formats, and the CPU's features are recorded."""
    script = SCRIPT.parent / "step_vs_gemm.py"
    subprocess.run([sys.executable, str(script), "--net", net, "--models", "1", "--iterations", "2", "--warmup", "1",
                    "--rounds", "1", "--out", str(tmp_path / "f.json")], check=True, capture_output=True, text=True)
    r = json.loads((tmp_path / "f.json").read_text())
    assert r["floor_ms"] == pytest.approx(r["products_ms"] + r.get("convolutions_ms", 0) + r["adam_ms"])
    assert r["step_over_floor"] == pytest.approx(r["step_ms"] / r["floor_ms"])
    assert r["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability() and r["code_version"]["device"] == "cpu"
    if net == "cnn":
        assert [layer["transposed"] for layer in r["conv_layers"]] == [False] * 4 + [True] * 4
        assert r["convolutions_ms"] == pytest.approx(sum(min(x["nchw_ms"], x["channels_last_ms"])
                                                         for x in r["conv_layers"]))
        assert r["flops_per_step"] > 5e9 and r["step_over_peak_conv"] == pytest.approx(
            r["peak_conv_gflops"] / r["step_gflops"])
    else:
        assert "conv_layers" not in r and "flops_per_step" not in r
