"""Training stacks as submitit jobs: local processes give the inline results, failures are reported while the
other jobs finish, a preempted job resumes from its checkpoint, and the Slurm options reach the sbatch script."""
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from softvq import __main__ as cli
from softvq import experiments, launch, store
from softvq.experiments import Config

pytest.importorskip("submitit")

TINY = dict(d=8, iterations=30, train_size=500, eval_size=200, kmeans_n_init=1, probe_iterations=10)
COMPARED = ("metrics", "history", "final_losses")


def local(tmp_path, **fields) -> launch.Launcher:
    """A local launcher whose jobs use this process's thread count (so their numbers equal an inline run's)."""
    fields = {"folder": str(tmp_path / "jobs"), "cpus_per_job": torch.get_num_threads(), "poll_s": 0.5, **fields}
    return launch.Launcher("local", **fields)


def stack_task(configs, root, tmp_path, name: str, **options) -> launch.Task:
    return launch.Task(name, experiments.run_stack, dict(configs=configs, root=str(root), device="cpu",
                                                         results_dir=tmp_path / "results",
                                                         checkpoint_dir=tmp_path / "ckpt", **options))


@pytest.mark.slow
def test_local_jobs_give_the_inline_results(mnist_root, tmp_path):
    configs = [Config(bottleneck="ae", seed=s, **TINY) for s in (0, 1)] + [Config(bottleneck="vae", **TINY)]
    assert len(experiments.group_stacks(configs)) == 2
    inline = experiments.run(configs, mnist_root, "cpu", tmp_path / "inline", tmp_path / "ckpt-inline", progress=False)
    jobs = experiments.run(configs, mnist_root, "cpu", tmp_path / "local", tmp_path / "ckpt-local", progress=False,
                           launcher=local(tmp_path))
    assert [r["run_id"] for r in jobs] == [c.run_id for c in configs]
    for a, b in zip(inline, jobs):
        for key in COMPARED:
            assert a[key] == b[key], (a["run_id"], key)
    assert len(list((tmp_path / "jobs").glob("*_log.err"))) == 2          # one job per stack
    again = experiments.run(configs, mnist_root, "cpu", tmp_path / "local", tmp_path / "ckpt-local",
                            launcher=local(tmp_path, folder=str(tmp_path / "jobs2")))
    assert again == jobs and not (tmp_path / "jobs2").exists()            # done runs are skipped: no jobs


@pytest.mark.slow
def test_a_failing_job_is_reported_and_the_others_finish(mnist_root, tmp_path):
    good = Config(bottleneck="ae", **TINY)
    mixed = [Config(bottleneck="ae", **TINY), Config(bottleneck="vae", **TINY)]     # not one stack: raises
    tasks = [stack_task([good], mnist_root, tmp_path, "good"), stack_task(mixed, mnist_root, tmp_path, "mixed")]
    with pytest.raises(launch.JobsFailed) as caught:
        launch.run_tasks(tasks, local(tmp_path), progress=False)
    [failure] = caught.value.failures
    assert failure.label == "mixed" and "may differ only in" in failure.error
    assert Path(failure.log).exists() and failure.job_id in str(caught.value)
    assert experiments.result_path(good, tmp_path / "results").exists()


@pytest.mark.slow
def test_a_preempted_job_resumes_from_its_checkpoint(mnist_root, tmp_path):
    config = Config(bottleneck="ae", **{**TINY, "iterations": 300})
    expected = experiments.run_stack([config], mnist_root, "cpu", tmp_path / "inline", tmp_path / "ckpt-inline",
                                     progress=False)[0]
    spec = local(tmp_path)
    [job] = launch.submit([stack_task([config], mnist_root, tmp_path, "preempted", checkpoint_every=25)], spec)
    checkpoint = store.checkpoint_path([config], tmp_path / "ckpt")
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists() and launch.outcome(job)[0] == "running"
    preempt(job)
    assert launch.wait([job], ["preempted"], poll_s=0.5, progress=False) == []
    log = Path(job.paths.stderr).read_text()
    assert "resuming from" in log
    record = json.loads(experiments.result_path(config, tmp_path / "results").read_text())
    for key in COMPARED:
        assert record[key] == expected[key], key


def preempt(job) -> None:
    """Send the job's task the signal Slurm sends on preemption or before the time limit (submitit's USR2)."""
    controller = job._process.pid                   # the local job's controller; the task is its child
    children = Path(f"/proc/{controller}/task/{controller}/children")
    if not children.exists():
        pytest.skip("needs Linux's /proc/<pid>/task/<pid>/children to find the job's process")
    for pid in children.read_text().split():
        os.kill(int(pid), signal.SIGUSR2)


def fake_slurm(tmp_path, monkeypatch) -> Path:
    """srun and sbatch stand-ins on PATH: sbatch keeps the script it is given and answers with a job id."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {bin_dir}/submitted.sh\necho Submitted batch job 4242\n")
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir / "submitted.sh"


def test_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch, capsys):
    script = fake_slurm(tmp_path, monkeypatch)
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")                   # data for the up-front check, wherever this runs
    cli.main(["preset", "table1", "--only", "ae", "vae", "--iterations", "10", "--seeds", "0", "1", "--results",
              str(tmp_path / "results"), "--launcher", "slurm", "--no-wait", "--jobs-dir", str(tmp_path / "jobs"),
              "--partition", "gpu", "--gpus-per-job", "1", "--time-limit", "90", "--array-parallelism", "1",
              "--executor-option", "slurm_account=lab"])
    text = script.read_text()
    for line in ("--partition=gpu", "--gpus-per-node=1", "--time=90", "--account=lab", "--cpus-per-task=4",
                 "--array=0-1%1", "--signal=USR2@"):
        assert line in text, line
    out = capsys.readouterr().out
    assert "submitted 2 slurm job(s): 4242_0, 4242_1" in out and "not waiting" in out
    assert not (tmp_path / "results").exists()                      # nothing ran here


def test_launcher_options_are_checked_before_anything_runs(capsys):
    for bad in (["--executor-option", "no-equals-sign"], ["--time-limit", "0"], ["--gpus-per-job", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["run", "--iterations", "10", "--launcher", "local", *bad])
        assert exit_.value.code == 2
        assert "error:" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Launcher.kind"):
        launch.launcher("kubernetes")
    assert launch.launcher({"kind": "local", "cpus_per_job": 3}) == launch.Launcher("local", cpus_per_job=3)
    assert launch.launcher(None).kind == "inline"


def test_a_failed_sweep_exits_non_zero_with_each_job_named(monkeypatch, tmp_path):
    failure = launch.Failure("77", "mnist-ae-d64-it10-s0-x", "FloatingPointError: non-finite loss", "/logs/77.err")
    monkeypatch.setattr(cli.runner, "run", lambda *a, **k: (_ for _ in ()).throw(launch.JobsFailed([failure])))
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")                   # data for the up-front check, wherever this runs
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--iterations", "10", "--results", str(tmp_path)])
    assert "job 77 (mnist-ae-d64-it10-s0-x): FloatingPointError" in str(exit_.value.code)


def test_local_jobs_see_the_gpus_an_inline_run_sees(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert launch.gpus(launch.Launcher("local")) == 2 and launch.gpus(launch.Launcher("slurm")) == 0
    assert launch.gpus(launch.Launcher("local", gpus_per_job=1)) == 1
    ex = launch.executor(launch.Launcher("local", folder=str(tmp_path)), n_jobs=3)
    assert ex._executor.parameters["gpus_per_node"] == 2        # submitit hides the GPUs of a job asking 0
