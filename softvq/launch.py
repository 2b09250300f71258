"""Training stacks as jobs on submitit: local processes or a Slurm cluster.

`runner.run(configs, launcher=...)` trains each stack inline (the default), or submits each stack as one
submitit job and waits for all of them. Every job writes its results JSONs into the shared results folder
(atomically, named after the config) and its checkpoint into the shared checkpoint folder, so nothing needs
merging and a rerun skips the runs that are done.

Preemption and time limits: a job is a `submitit.helpers.Checkpointable`. When Slurm (or the local executor)
signals a timeout or preemption, submitit resubmits the same job; it finds the stack's checkpoint file
(written every 2,000 iterations by `softvq.train.train`) and continues from the last saved iteration.
"""
from __future__ import annotations

import json
import numbers
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm            # a widget in JupyterLab and Colab, text in a terminal

KINDS = ("inline", "local", "slurm")
QUEUED = ("PENDING", "REQUEUED", "CONFIGURING", "SUSPENDED", "UNKNOWN", "NO PROCESS AND NO RESULT")


@dataclass(frozen=True)
class Launcher:
    """Where training stacks run. `kind`: "inline" (this process, one stack after another), "local" (one
    process per stack on this machine, all started at once) or "slurm" (one job per stack, submitted as a
    Slurm job array). `wait`: wait for every job and report failures (else submit and return).

    `cpus_per_job`: torch threads per job (None: local shares the cores between its jobs, Slurm asks 4).
    `gpus_per_job` (0: local jobs share this machine's GPUs, Slurm jobs ask none), `partition`, `time_limit_min`,
    `array_parallelism` (jobs of the array running at once),
    `mem_gb` are the Slurm request; `extra` takes any other submitit parameter (e.g. {"slurm_account": "x"}).
    Job logs and pickles go to `folder` (<job id>_0_log.err: a job's error output)."""
    kind: str = "inline"
    wait: bool = True
    folder: str = "outputs/jobs"
    cpus_per_job: int | None = None
    gpus_per_job: int = 0
    partition: str | None = None
    time_limit_min: int = 24 * 60
    array_parallelism: int = 64
    mem_gb: int = 16
    poll_s: float = 5.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Launcher.kind = {self.kind!r} is not allowed; expected one of {list(KINDS)}")
        for name in ("time_limit_min", "array_parallelism", "mem_gb"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and value >= 1):
                raise ValueError(f"Launcher.{name} = {value!r} is not allowed; expected a positive integer")
        if self.cpus_per_job is not None and not (isinstance(self.cpus_per_job, int) and self.cpus_per_job >= 1):
            raise ValueError(f"Launcher.cpus_per_job = {self.cpus_per_job!r}; expected a positive integer or None")
        if not (isinstance(self.gpus_per_job, int) and self.gpus_per_job >= 0):
            raise ValueError(f"Launcher.gpus_per_job = {self.gpus_per_job!r}; expected an integer >= 0")


def launcher(spec: Launcher | Mapping | str | None = None) -> Launcher:
    """A Launcher from a Launcher, a dict of its fields (a notebook parameter), a kind name, or None (inline)."""
    if isinstance(spec, Launcher):
        return spec
    if spec is None:
        return Launcher()
    if isinstance(spec, str):
        return Launcher(kind=spec)
    return Launcher(**spec)


@dataclass(frozen=True)
class Task:
    """One unit of work: fn(**kwargs) in a job, named by `label` (the run ids of its stack) in reports."""
    label: str
    fn: Callable
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    """A job that raised: its id, its task's label, the last line of its error and its log file."""
    job_id: str
    label: str
    error: str
    log: str

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.label}): {self.error}\n    log: {self.log}"


class JobsFailed(RuntimeError):
    """Raised after every job has ended when some of them failed; `failures` lists them."""

    def __init__(self, failures: Sequence[Failure]):
        self.failures = list(failures)
        super().__init__(f"{len(self.failures)} job(s) failed:\n" + "\n".join(f"  {f}" for f in self.failures))


try:
    from submitit.helpers import Checkpointable
except ImportError:                     # the inline launcher does not need submitit
    Checkpointable = object


class Job(Checkpointable):
    """A task as a submitit callable. Inherits `checkpoint()` from submitit's Checkpointable: on timeout or
    preemption the same call is resubmitted, and training resumes from the stack's checkpoint file."""

    def __init__(self, task: Task, threads: int):
        self.task, self.threads = task, threads

    def __call__(self):
        torch.set_num_threads(self.threads)
        return self.task.fn(**self.task.kwargs)


def executor(spec: Launcher, n_jobs: int):
    """The submitit executor of `spec` (local or slurm), with its resources set."""
    try:
        import submitit
    except ImportError as err:
        raise ImportError("the local and slurm launchers need submitit: pip install submitit "
                          "(or pip install -e '.[cluster]')") from err
    ex = submitit.AutoExecutor(folder=str(Path(spec.folder).resolve()), cluster=spec.kind)
    params = dict(timeout_min=spec.time_limit_min, gpus_per_node=gpus(spec), cpus_per_task=threads(spec, n_jobs),
                  mem_gb=spec.mem_gb, slurm_array_parallelism=spec.array_parallelism, name="softvq")
    if spec.partition:
        params["slurm_partition"] = spec.partition
    ex.update_parameters(**{**params, **spec.extra})          # `extra` may also replace a default
    return ex


def gpus(spec: Launcher) -> int:
    """GPUs per job: as asked, else local jobs share all of this machine's GPUs, as an inline run would (submitit
    hides every GPU from a local job that asks none) and Slurm jobs ask none."""
    if spec.gpus_per_job or spec.kind != "local":
        return spec.gpus_per_job
    return torch.cuda.device_count()


def threads(spec: Launcher, n_jobs: int) -> int:
    """torch threads per job: as asked, else local jobs share this machine's cores and Slurm jobs get 4."""
    if spec.cpus_per_job is not None:
        return spec.cpus_per_job
    return max(1, (os.cpu_count() or 1) // n_jobs) if spec.kind == "local" else 4


def submit(tasks: Sequence[Task], spec: Launcher) -> list:
    """Submit one job per task (a job array on Slurm); returns the submitit jobs."""
    ex = executor(spec, len(tasks))
    n_threads = threads(spec, len(tasks))
    with ex.batch():
        jobs = [ex.submit(Job(t, n_threads)) for t in tasks]
    return jobs


def outcome(job) -> tuple[str, str | None]:
    """(state, error line): state "queued", "running", "done" or "failed"; the error line of a failed job."""
    if not job.done():
        return ("queued" if job.state.upper() in QUEUED else "running"), None
    try:
        err = job.exception()
    except Exception as died:           # no result file: the job ended without reporting (killed, out of memory)
        err = died
    return ("failed", error_line(err)) if err is not None else ("done", None)


def error_line(err: BaseException) -> str:
    """The line that names an error: for submitit's FailedJobError the last line of the job's traceback
    (printed between two lines of dashes), else the error's last non-empty line."""
    parts = re.split(r"^-{10,}$", str(err), flags=re.MULTILINE)
    body = parts[1] if len(parts) >= 3 else str(err)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def wait(jobs: Sequence, labels: Sequence[str], poll_s: float = 5.0, progress: bool = True) -> list[Failure]:
    """Wait until every job has ended, showing how many are queued / running / done / failed; returns the
    failures (an error in one job does not stop the others)."""
    bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress)
    failures: dict[int, Failure] = {}
    while True:
        outcomes = [outcome(j) for j in jobs]
        for i, (state, error) in enumerate(outcomes):
            if state == "failed" and i not in failures:          # said at once, and again at the end
                failures[i] = Failure(jobs[i].job_id, labels[i], error, str(jobs[i].paths.stderr))
                if progress:
                    tqdm.write(f"failed: {failures[i]}")
        states = [state for state, _ in outcomes]
        counts = {s: states.count(s) for s in ("queued", "running", "done", "failed")}
        bar.n = counts["done"] + counts["failed"]
        bar.set_postfix(counts, refresh=True)
        if bar.n == len(jobs):
            break
        time.sleep(poll_s)
    bar.close()
    return [failures[i] for i in sorted(failures)]


def run_tasks(tasks: Sequence[Task], spec: Launcher | Mapping | str | None = None, progress: bool = True) -> None:
    """Run the tasks as `spec` says: inline one after another, or as submitit jobs. With `spec.wait`, raises
    JobsFailed after all jobs have ended if any failed; without, prints the job ids and returns."""
    spec = launcher(spec)
    if spec.kind == "inline":
        for t in tasks:
            t.fn(**t.kwargs)
        return
    if not tasks:
        return
    jobs = submit(tasks, spec)
    print(f"submitted {len(jobs)} {spec.kind} job(s): {', '.join(j.job_id for j in jobs)}; logs in {spec.folder}/")
    if not spec.wait:
        print("not waiting: the results JSONs appear as the jobs finish; rerun the same command with "
              "--no-train (reproduce.py) to build the tables from them")
        return
    failures = wait(jobs, [t.label for t in tasks], spec.poll_s, progress)
    if failures:
        raise JobsFailed(failures)


# ------------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    """The launcher's command-line options (python -m softvq and reproduce.py)."""
    group = parser.add_argument_group("launcher (local processes or Slurm jobs, via submitit)")
    group.add_argument("--launcher", choices=KINDS, default="inline",
                       help="inline: in this process (default); local: one process per training stack; "
                            "slurm: one Slurm job per stack")
    group.add_argument("--no-wait", action="store_true", help="submit the jobs and return without waiting")
    group.add_argument("--jobs-dir", default=Launcher.folder, help="job logs and pickles (default: %(default)s)")
    group.add_argument("--cpus-per-job", type=int, default=None, help="threads per job (default: local shares "
                       "the cores, Slurm 4)")
    group.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per job (default 0: local jobs share "
                       "the machine's GPUs, Slurm jobs ask none)")
    group.add_argument("--partition", default=None, help="Slurm partition")
    group.add_argument("--time-limit", type=int, default=Launcher.time_limit_min, metavar="MINUTES",
                       help="per job; a job that reaches it is requeued and resumes (default: %(default)s)")
    group.add_argument("--array-parallelism", type=int, default=Launcher.array_parallelism,
                       help="Slurm jobs running at once (default: %(default)s)")
    group.add_argument("--mem-gb", type=int, default=Launcher.mem_gb, help="Slurm memory per job")
    group.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                       help="any other submitit parameter, e.g. slurm_account=myaccount (repeatable)")


def from_arguments(args) -> dict:
    """The Launcher fields given on the command line (parsed by a parser with `add_arguments`), as a dict
    (a notebook parameter); raises ValueError on a malformed --executor-option or a bad value."""
    extra = {}
    for option in args.executor_option:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ValueError(f"--executor-option {option!r}: expected KEY=VALUE")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    fields = dict(kind=args.launcher, wait=not args.no_wait, folder=args.jobs_dir, cpus_per_job=args.cpus_per_job,
                  gpus_per_job=args.gpus_per_job, partition=args.partition, time_limit_min=args.time_limit,
                  array_parallelism=args.array_parallelism, mem_gb=args.mem_gb, extra=extra)
    launcher(fields)                                    # check the values now, not after training has begun
    return {k: v for k, v in fields.items() if v != getattr(Launcher(), k)}
