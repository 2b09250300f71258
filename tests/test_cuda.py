"""The GPU self-check (`python -m softvq gpu-check`): end to end on the CPU at a tiny size, what it says without
CUDA, a failed check recorded while the others go on; and (marked `cuda`: skipped without CUDA) every check on
the GPU under pytest."""
import argparse
import json

import pytest
import torch

from softvq import gpu_check
from softvq.__main__ import main


def test_gpu_check_runs_every_path_on_the_cpu_at_a_tiny_size_and_names_what_it_skipped(tmp_path, capsys):
    """The compiled check is skipped here (compiling takes a minute on a CPU; tests/test_precision.py compares
    compiled and eager training); the GPU-against-CPU one needs CUDA."""
    out = tmp_path / "check.json"
    with pytest.raises(SystemExit) as done:
        main(["gpu-check", "--device", "cpu", "--skip", "compiled", "--out", str(out)])
    printed = capsys.readouterr().out
    assert done.value.code == 0, printed
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["size"] == "tiny" and result["precision"] == "fp32"
    assert result["skipped"] == {"compiled": "--skip", "precisions": "needs CUDA (compares the GPU with the CPU)"}
    assert set(result["checks"]) == set(gpu_check.CHECKS) - set(result["skipped"])
    assert all(check["passed"] for check in result["checks"].values()), result["checks"]
    resume, graphs = result["checks"]["resume"], result["checks"]["graphs"]
    assert resume["max_relative_difference"] == 0 and resume["resumed_from"] == gpu_check.TINY["checkpoint_every"]
    assert resume["steps_after_resume"] == gpu_check.TINY["iterations"] - resume["resumed_from"]
    # how many graphs dynamo makes of the step depends on its version; that it traced the step and said where it
    # broke does not
    assert graphs["graphs"] >= 1 and graphs["graph_breaks"] >= 0
    assert all(isinstance(r, str) and r for r in graphs["break_reasons"])
    assert result["checks"]["gpu_run"]["runs"] == 33 and result["checks"]["gpu_run"]["kmeans"] == "torch"
    assert f"wrote {out}" in printed and "resume: passed" in printed


def test_the_resume_check_fails_for_a_training_that_ignores_its_checkpoint(tmp_path, monkeypatch):
    """Broken on purpose: a trainer that never reads its checkpoint restarts from step 1 with the same seeds and
    ends with the same losses; the check must still fail, since it ran every step again."""
    from types import SimpleNamespace
    from softvq import store, train as training
    monkeypatch.setattr(training, "store", SimpleNamespace(read_checkpoint=lambda path, device="cpu": (None, None),
                                                           write_checkpoint=store.write_checkpoint))
    setup = gpu_check.Setup(torch.device("cpu"), "fp32", gpu_check.TINY, tmp_path)
    with gpu_check.sample_data(), pytest.raises(AssertionError, match="the resumed training ran steps"):
        gpu_check.check_resume(setup)


def test_the_precision_check_fails_when_a_loss_term_is_dropped_or_the_noise_raised():
    """Broken on purpose, on the CPU: a training without its VQ loss, or with 30 times the noise, differs from the
    reference by more than the loosest precision's tolerance, term by term; the reference matches itself."""
    cpu = torch.device("cpu")
    with gpu_check.sample_data():
        reference = gpu_check.precision_losses(cpu, "fp32")
        assert gpu_check.term_difference(gpu_check.precision_losses(cpu, "fp32"), reference) == 0
        for broken in (dict(vq_weight=0.0), dict(noise_std=3.0)):
            difference = gpu_check.term_difference(gpu_check.precision_losses(cpu, "fp32", **broken), reference)
            assert difference > max(gpu_check.PRECISION_RTOL.values()), (broken, difference)


def test_without_cuda_it_says_what_it_skipped_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["gpu-check"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("no CUDA device: skipped every check (resume, kmeans, ")
    assert "--device cpu" in out and not list(tmp_path.iterdir())


def test_a_failed_check_is_recorded_and_the_others_still_run(monkeypatch, tmp_path, capsys):
    def fails(setup):
        raise AssertionError("losses differ")
    monkeypatch.setattr(gpu_check, "CHECKS", {"passes": lambda setup: {"value": 1}, "fails": fails,
                                              "also_passes": lambda setup: {}, "skipped": fails})
    result = gpu_check.run_checks(None, {"skipped": "--skip"})
    assert result["checks"]["passes"]["value"] == 1 and result["checks"]["also_passes"]["passed"]
    assert result["checks"]["fails"] == {"passed": False, "error": "AssertionError: losses differ",
                                         "seconds": result["checks"]["fails"]["seconds"]}
    assert result["skipped"] == {"skipped": "--skip"} and "fails: FAILED: AssertionError" in capsys.readouterr().out
    assert gpu_check.run_checks(None, {}, budget_s=-1)["skipped"] == dict.fromkeys(
        gpu_check.CHECKS, "would end after the budget of -1 s")


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(gpu_check.CHECKS))
def test_each_gpu_check_passes_on_cuda(name, tmp_path, monkeypatch):
    """Each check on the GPU at the tiny size (`resume` first, whose stack `kmeans` encodes)."""
    monkeypatch.setenv("SOFTVQ_SAMPLE", gpu_check.CNN)
    setup = gpu_check.Setup(torch.device("cuda"), gpu_check.card_precision("cuda"), gpu_check.TINY, tmp_path)
    if name == "kmeans":
        gpu_check.check_resume(setup)
    assert gpu_check.CHECKS[name](setup) is not None
