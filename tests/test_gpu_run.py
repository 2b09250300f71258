"""`python -m softvq gpu-run table2`: its time plan, its refusal without CUDA, the card's precision, and the whole
command end to end at a tiny size on a CPU."""
import json

import pytest
import torch

from softvq import experiments, gpu_run
from softvq.__main__ import main

TINY = dict(batch_size=4, train_size=16, eval_size=20, kmeans_n_init=2, probe_iterations=3)


def test_two_jobs_that_each_need_the_whole_gpu_take_twice_as_long_together():
    gpu_bound, host_bound = [(10.0, 1.0)], [(2.0, 0.0), (10.0, 0.5), (1.0, 0.0)]
    assert gpu_run.simulate([gpu_bound, gpu_bound], workers=2) == [(0.0, 20.0), (0.0, 20.0)]
    assert gpu_run.simulate([gpu_bound, gpu_bound], workers=1) == [(0.0, 10.0), (10.0, 20.0)]
    assert gpu_run.simulate([host_bound, host_bound], workers=2) == [(0.0, 13.0), (0.0, 13.0)]   # 2 x 0.5: fits


def test_the_plan_covers_table2_and_the_sweep_in_stacks():
    work = gpu_run.table2_work("cifar10", "no-results-here", precision="bf16", compile=False)
    assert {c.iterations for c in work["table2 ae"]} == {40_000} and work["table2 soft_vqvae"][0].iterations == 10_000
    assert {c.K for name in ("sweep K 32", "sweep K 128", "sweep K 512") for c in work[name]} == {32, 128, 512}
    assert all(c.validation and c.precision == "bf16" for name, cs in work.items() if name.startswith("sweep")
               for c in cs)
    named = gpu_run.stacks(work, "no-results-here")
    assert sum(len(configs) for _, configs in named) == 33 and len(named) == 9     # the K = 32 floors: one stack
    steps = gpu_run.plan(named, workers=9)
    assert steps[0]["iterations"] == 40_000 and all(s["planned_end_s"] > s["planned_start_s"] for s in steps)
    assert set(gpu_run.CALIBRATION["ops_per_step"]) >= {c.bottleneck for _, cs in named for c in cs}


def test_gpu_run_table2_end_to_end_at_a_tiny_size(tmp_path, monkeypatch, capsys):
    """On the embedded CIFAR-10 sample, 1 iteration a run: the plan is printed first, every run of Table 2 and
    of the sweep writes its results JSON, the summary lists every stack, and a rerun has nothing left to do."""
    monkeypatch.setenv("SOFTVQ_SAMPLE", "cifar10-jpeg")
    results = tmp_path / "results"
    argv = ["gpu-run", "table2", "--data-root", str(tmp_path / "no-data"), "--results", str(results),
            "--checkpoints", str(tmp_path / "checkpoints"), "--device", "cpu", "--precision", "fp32", "--workers", "2",
            "--iterations", "1", *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items())]
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr().out
    assert done.value.code == 0, out
    assert "gpu-run table2 on cifar10-jpeg" in out and out.index("planned:") < out.index("done at")
    work = gpu_run.table2_work("cifar10-jpeg", results, 1, precision="fp32", compile=False, kmeans="torch", **TINY)
    records = [json.loads(experiments.result_path(c, results).read_text()) for cs in work.values() for c in cs]
    assert {r["evaluation"]["kmeans"] for r in records} == {"torch"} and len(records) == 33
    summary = json.loads((tmp_path / "gpu_run_table2_cifar10-jpeg.json").read_text())
    assert len(summary["done"]) == len(summary["plan"]) == 9 and not summary["failed"]
    assert summary["precision"] == "fp32" and summary["kmeans"] == "torch"
    with pytest.raises(SystemExit) as again:
        main(argv)
    assert again.value.code == 0 and "9 stacks" not in capsys.readouterr().out


def test_without_a_data_set_it_stops_with_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SOFTVQ_SAMPLE", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["gpu-run", "table2", "--data-root", str(tmp_path), "--device", "cpu", "--plan-only"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "cifar10" in err


def test_without_cuda_it_refuses_to_start_in_one_line(tmp_path, monkeypatch, capsys):
    """A driver that does not match looks like no CUDA: the command must not train the plan's stacks on the CPU."""
    monkeypatch.setenv("SOFTVQ_SAMPLE", "cifar10-jpeg")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as done:
        main(["gpu-run", "table2", "--data-root", str(tmp_path), "--results", str(tmp_path / "results"),
              "--plan-only"])
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert done.value.code == 2 and "error: no CUDA device" in line and "--device cpu" in line
    assert not captured.out and not list(tmp_path.iterdir())


@pytest.mark.parametrize("capability,bf16,precision", [((9, 0), True, "bf16"), ((7, 5), False, "fp16")])
def test_the_precision_is_the_cards_unless_named(tmp_path, monkeypatch, capsys, capability, bf16, precision):
    """An H100 plans bf16, a T4 (compute capability 7.5, no fast bfloat16) fp16; --precision overrides it."""
    monkeypatch.setenv("SOFTVQ_SAMPLE", "cifar10-jpeg")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    monkeypatch.setattr(gpu_run, "code_version", lambda device: {"device": str(device)})
    argv = ["gpu-run", "table2", "--data-root", str(tmp_path), "--results", str(tmp_path / "results"), "--plan-only"]
    for extra, expected in (([], precision), (["--precision", "fp32"], "fp32")):
        with pytest.raises(SystemExit) as done:
            main(argv + extra)
        out = capsys.readouterr().out
        assert done.value.code == 0 and f"on cuda, precision {expected}," in out
