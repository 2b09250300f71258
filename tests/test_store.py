"""softvq.store: damaged files are named, set aside and treated as missing; a damaged checkpoint falls back to the
one before it; a checkpoint names every run of its stack and is read on the CPU whatever the training device; a
finished run's latents never retrain it; one lock per run keeps two processes from training it twice; every
committed results JSON is found under its run id."""
import contextlib
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from conftest import make_record
from softvq import data, evaluation, runner, store, tables
from softvq.config import EVALUATION, Config
from softvq.model import build_model
from softvq.train import EpochSampler, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(d=8, K=8, iterations=20, noise_std=0.1, kmeans_n_init=1, probe_iterations=5)


def warnings_of(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


@pytest.fixture
def synthetic_data(monkeypatch):
    """Random 'MNIST' images (300 training, 100 test), the same on every call: runs without any data set."""
    def load(name, split, root=None, download=False):
        n = 300 if split == "train" else 100
        g = torch.Generator().manual_seed(n)
        return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    monkeypatch.setattr(data, "load_dataset", load)


def test_a_damaged_results_json_is_named_set_aside_and_missing(tmp_path, capsys):
    config = Config(iterations=20)
    path = store.write_result(make_record(config, 0.5, 0.5, 0.9), config, tmp_path)
    cut = path.read_text()[:40]
    path.write_text(cut)
    assert store.read_result(config, tmp_path) is None and not path.exists()
    [line] = warnings_of(capsys)
    assert line.startswith(f"warning: cannot read {path} (JSONDecodeError: ") and line.endswith(
        f"moved to {path.name}.corrupt, treated as missing")
    assert path.with_name(path.name + ".corrupt").read_text() == cut
    path.write_text("[1, 2]")                               # JSON, but not a record; .corrupt is taken
    assert store.read_result(config, tmp_path) is None
    assert path.with_name(path.name + ".corrupt.1").read_text() == "[1, 2]"
    assert path.with_name(path.name + ".corrupt").read_text() == cut          # never overwritten
    assert len(warnings_of(capsys)) == 1


def test_a_table_lists_a_damaged_run_under_missing_with_its_path(table1_dir, capsys):
    configs, results = table1_dir
    ae = store.result_path(configs[0], results)
    ae.write_text(ae.read_text()[:-30])
    df = tables.collect(configs, results)
    assert str(ae) in df.attrs["missing"] and df.loc["ae", "seeds"] == 1
    assert all(Path(p).name.endswith(".json") for p in df.attrs["missing"])
    assert len(warnings_of(capsys)) == 1 and ae.with_name(ae.name + ".corrupt").exists()


def test_a_damaged_results_json_is_trained_again(tmp_path, synthetic_data, capsys):
    config = Config(bottleneck="ae", **{**TINY, "noise_std": 0.0})
    folders = dict(device="cpu", results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c", progress=False)
    [first] = runner.run([config], **folders)
    path = store.result_path(config, tmp_path / "r")
    path.write_bytes(path.read_bytes()[:100])
    [again] = runner.run([config], **folders)
    assert again["metrics"] == first["metrics"] and store.read_result(config, tmp_path / "r") == again
    assert len(warnings_of(capsys)) == 1 and path.with_name(path.name + ".corrupt").exists()
    latents = store.latents_path(config, tmp_path / "c")
    latents.write_bytes(latents.read_bytes()[:50])
    z, y = runner.latents(config, **folders)                          # encoded again from its checkpoint
    assert z.shape == (100, 8) and len(warnings_of(capsys)) == 1


def test_a_finished_stack_keeps_only_its_weights_and_is_never_continued(tmp_path, synthetic_data):
    """Once its records are written, a stack's checkpoint holds its weights, identity and history: no optimizer
    moments and no .prev (about a sixth of the disk); training it further says why it cannot."""
    configs = [Config(seed=s, **TINY) for s in (0, 1)]
    folders = dict(device="cpu", results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c", progress=False)
    runner.run(configs, **folders)
    path = store.checkpoint_path(configs, tmp_path / "c")
    state = torch.load(path, weights_only=False)
    assert set(state) == set(store.FINISHED) and state["iteration"] == TINY["iterations"]
    assert not store.previous(path).exists() and [p.name for p in (tmp_path / "c").glob("*.pt*")
                                                  if not p.name.endswith(".latents.pt")] == [path.name]
    weights = sum(t.numel() * t.element_size() for t in state["model"].values())
    assert path.stat().st_size < 1.2 * weights
    model, _ = runner.finished_model(configs[0], checkpoint_dir=tmp_path / "c")
    x = torch.rand(64, 1, 28, 28)
    with pytest.raises(ValueError, match=f"^checkpoint {path} holds only the weights of a finished training of 20 "
                                         f"iterations, which cannot continue to 30"):
        train(model, x, [0, 1], iterations=30, batch_size=8, checkpoint=path, progress=False, device="cpu",
              identity=[c.run_id for c in configs])


def test_only_a_readable_final_checkpoint_is_cut_never_its_previous_copy(tmp_path):
    x = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ckpt = tmp_path / "stack.pt"
    train(_small_model(), x, [0], iterations=20, batch_size=16, log_every=10, checkpoint=ckpt, checkpoint_every=10,
          progress=False, device="cpu")
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    store.finish_checkpoint(ckpt)
    assert not ckpt.exists() and (tmp_path / "stack.pt.corrupt").exists()
    kept = torch.load(store.previous(ckpt), weights_only=False)
    assert kept["iteration"] == 10 and "optimizer" in kept             # the earlier state, still whole


def test_the_latents_of_a_finished_run_never_train_it_nor_rewrite_its_record(tmp_path, synthetic_data, monkeypatch):
    """Model 1 of a stack of two: its missing latents are encoded again, the same to the bit, from the stack's final
    checkpoint; without that checkpoint one error says what to do. Its results JSON is never touched."""
    configs = [Config(seed=s, **TINY) for s in (0, 1)]
    folders = dict(device="cpu", results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c", progress=False)
    runner.run(configs, **folders)
    record = store.result_path(configs[1], tmp_path / "r").read_bytes()
    saved = store.read_latents(configs[1], tmp_path / "c")
    store.latents_path(configs[1], tmp_path / "c").unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("trained a finished run")
    monkeypatch.setattr(runner, "train", no_training)
    z, y = runner.latents(configs[1], **folders)
    assert torch.equal(z, saved[0]) and torch.equal(y, saved[1])
    assert torch.equal(store.read_latents(configs[1], tmp_path / "c")[0], z)           # saved for next time
    store.latents_path(configs[1], tmp_path / "c").unlink()
    store.checkpoint_path(configs, tmp_path / "c").unlink()
    with pytest.raises(runner.LatentsMissing, match=f"^{configs[1].run_id} is finished .* move its results JSON "
                                                    f"aside and run it again, or train it into another results"):
        runner.latents(configs[1], **folders)
    assert store.result_path(configs[1], tmp_path / "r").read_bytes() == record


def test_a_finished_runs_reconstructions_come_from_its_checkpoint_never_from_training(tmp_path, synthetic_data,
                                                                                      monkeypatch, capsys):
    """Notebook 02 on model 1 of a finished stack of two without its saved reconstructions: they are decoded by
    that model from the stack's final checkpoint, the same as the trained model's; without the checkpoint one
    line says what to do. The run is not trained again and its results JSON is never touched."""
    from softvq import notebook
    folders = {k: str(tmp_path / k) for k in ("figures_dir", "results_dir", "checkpoint_dir")}
    s = notebook.setup("quick", {**folders, "device": "cpu", "progress": False})
    configs = [Config(seed=seed, **TINY) for seed in (0, 1)]
    _, model, _ = runner.run_stack(configs, device="cpu", results_dir=s.results, checkpoint_dir=s.checkpoints,
                                   progress=False, keep_model=True)
    x = data.load_dataset("mnist", "test")[0][:3]
    expected = model.reconstruct(x)[1]
    record = store.result_path(configs[1], s.results).read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("trained a finished run")
    monkeypatch.setattr(runner, "train", no_training)
    monkeypatch.setattr(runner, "run_stack", no_training)
    shown, saved = notebook.reconstructions(s, configs[1], n_images=3)
    assert shown["run_id"] == configs[1].run_id and torch.equal(torch.from_numpy(saved["x_hat"]), expected)
    (s.figures / "data" / f"train_{configs[1].run_id}_reconstructions.npz").unlink()
    store.checkpoint_path(configs, s.checkpoints).unlink()
    shown, saved = notebook.reconstructions(s, configs[1], n_images=3)
    assert shown["run_id"] == configs[1].run_id and saved is None
    assert capsys.readouterr().out.startswith(f"missing: {configs[1].run_id} is finished but neither its saved "
                                              f"outputs nor its final checkpoint")
    assert store.result_path(configs[1], s.results).read_bytes() == record


def _small_model():
    return build_model((1, 28, 28), "soft_vqvae", 8, seeds=[0], widths=(32, 32, 64), num_codes=8, noise_std=0.1)


def test_a_damaged_checkpoint_resumes_from_the_previous_one(tmp_path, capsys):
    x = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    options = dict(batch_size=16, log_every=10, checkpoint_every=10, device="cpu")
    reference = train(_small_model(), x, [0], iterations=30, progress=False, **options)
    ckpt = tmp_path / "stack.pt"
    train(_small_model(), x, [0], iterations=20, checkpoint=ckpt, progress=False, **options)
    assert torch.load(store.previous(ckpt), weights_only=False)["iteration"] == 10
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    resumed = train(_small_model(), x, [0], iterations=30, checkpoint=ckpt, **options)
    err = capsys.readouterr().err
    assert f"warning: cannot read {ckpt} (RuntimeError: PytorchStreamReader" in err
    assert f"resuming from {store.previous(ckpt)} at iteration 10" in err
    assert resumed["total"] == reference["total"] and (tmp_path / "stack.pt.corrupt").exists()
    for path in (ckpt, store.previous(ckpt)):                          # both damaged: from the start
        path.write_bytes(b"not a checkpoint")
    again = train(_small_model(), x, [0], iterations=30, checkpoint=ckpt, progress=False, **options)
    assert again["total"] == reference["total"] and len(warnings_of(capsys)) == 2


def test_a_checkpoint_read_for_another_device_keeps_generator_states_and_data_orders_on_the_cpu(tmp_path):
    """As a resume on CUDA reads it (the `meta` device stands in for the GPU): the weights and the running loss
    sums go to the device; the generator states and data orders stay on the CPU, where Generator.set_state and
    the samplers take them."""
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def stop_after_the_checkpoint(iteration):
        if iteration == 6:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(_small_model(), x, [0], iterations=10, batch_size=16, log_every=4, checkpoint=tmp_path / "c.pt",
              checkpoint_every=6, progress=False, device="cpu", on_step=stop_after_the_checkpoint)
    state, _ = store.read_checkpoint(tmp_path / "c.pt", torch.device("meta"))
    torch.Generator().set_state(state["noise"][0])
    sampler = EpochSampler(64, 16, 0)
    sampler.load_state_dict(state["samplers"][0])
    assert sampler.next().device.type == "cpu"
    assert state["iteration"] == 6 and state["running"]                 # two steps since the last log step
    assert {t.device.type for part in store.ON_DEVICE for t in state[part].values()} == {"meta"}


def test_a_checkpoint_written_for_other_runs_is_refused(tmp_path):
    x = torch.rand(64, 1, 28, 28)
    options = dict(batch_size=16, log_every=5, progress=False, device="cpu", checkpoint=tmp_path / "c.pt")
    train(_small_model(), x, [0], iterations=5, identity=["run-a"], **options)
    assert torch.load(tmp_path / "c.pt", weights_only=False)["identity"] == ["run-a"]
    with pytest.raises(ValueError, match=r"written for seeds \[0\] of \['run-a'\], not \[0\] of \['run-b'\]"):
        train(_small_model(), x, [0], iterations=10, identity=["run-b"], **options)


def test_a_stack_whose_other_members_changed_never_resumes_their_weights(tmp_path, synthetic_data, monkeypatch):
    a = Config(bottleneck="vae", **{**TINY, "noise_std": 0.0})
    b, c = dataclasses.replace(a, beta=2.0), dataclasses.replace(a, beta=4.0)      # b and c: another sweep
    assert store.checkpoint_path([a, b]) != store.checkpoint_path([a, c]) != store.checkpoint_path([a])

    class Interrupt(Exception):
        pass

    def stop_at_15(iteration):
        if iteration == 15:
            raise Interrupt

    def run_stack(configs, folder, **train_options):
        monkeypatch.setattr(runner, "train", functools.partial(train, **train_options))
        return runner.run_stack(configs, None, "cpu", tmp_path / folder, tmp_path / f"{folder}-ckpt", progress=False,
                                checkpoint_every=5)

    expected = run_stack([a, c], "fresh")
    with pytest.raises(Interrupt):
        run_stack([a, b], "sweep", on_step=stop_at_15)                 # leaves a checkpoint at iteration 15
    assert torch.load(store.checkpoint_path([a, b], tmp_path / "sweep-ckpt"),
                      weights_only=False)["identity"] == [a.run_id, b.run_id]
    changed = run_stack([a, c], "sweep")
    for got, want in zip(changed, expected):
        assert got["history"] == want["history"] and got["metrics"] == want["metrics"], got["run_id"]


LOCK_HOLDER = """
import os, sys, time
from softvq import store
from softvq.config import Config
with store.locked([Config(iterations=20)], sys.argv[1]):
    print("held", flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), 9)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(results_dir, how: str) -> subprocess.Popen:
    """A process that takes the lock of Config(iterations=20), says so, then sleeps `how` seconds or kills itself."""
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(results_dir), how], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_held_lock_is_waited_for_with_one_line_naming_its_holder(tmp_path, capsys):
    holder = _hold_lock(tmp_path, "2")
    began = time.perf_counter()
    with store.locked([Config(iterations=20)], tmp_path):
        waited = time.perf_counter() - began
    holder.wait()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"waiting for {Config(iterations=20).run_id}: held by pid {holder.pid} on ")
    assert waited > 0.5


def test_a_lock_left_by_a_killed_process_is_free(tmp_path):
    holder = _hold_lock(tmp_path, "kill")
    assert holder.wait() == -9
    with FileLock(store.lock_path(Config(iterations=20), tmp_path)).acquire(timeout=5):
        pass


@pytest.mark.slow
def test_two_processes_on_the_same_run_train_it_once(mnist_root, tmp_path):
    command = [sys.executable, "-m", "softvq", "run", "--bottleneck", "ae", "--d", "8", "--iterations", "30",
               "--train-size", "500", "--eval-size", "200", "--kmeans-n-init", "1", "--probe-iterations", "10",
               "--data-root", str(Path(mnist_root).resolve()), "--results", str(tmp_path / "results"),
               "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], [err[-2000:] for _, err in outputs]
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].count("\n") == 1          # the same record line
    assert sum("training 1 model" in err for _, err in outputs) == 1                  # trained once
    [json_file] = (tmp_path / "results").rglob("*.json")
    assert json.loads(json_file.read_text())["run_id"] == json.loads(outputs[0][0])["run_id"]
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_every_committed_result_is_found_under_its_run_id():
    """Run ids never change: every results JSON of the repository is where its config's run id puts it."""
    results = ROOT / "results"
    paths = sorted(results.glob("*/*.json"))
    assert len(paths) > 100
    for path in paths:
        config = json.loads(path.read_text())["config"]
        if config["bottleneck"] == "raw":
            fields = {k: v for k, v in config.items() if k in EVALUATION}
            assert evaluation.evaluate_raw(config["dataset"], config["validation"], results_dir=results,
                                           compute=False, **fields) is not None, path
        else:
            assert store.result_path(Config(**config), results) == path


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, mask, mode):
    """Results, checkpoints and figures are written through a temporary file (owner-only by itself): the file
    in place gets the mode of any new file under the umask, so a shared results folder stays readable."""
    from softvq import io
    old = os.umask(mask)
    try:
        assert io.umask() == mask
        io.write_json({"a": 1}, tmp_path / "r.json")
        io.save_atomic({"b": 2}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert [(p.stat().st_mode & 0o777) for p in (tmp_path / "r.json", tmp_path / "c.pt")] == [mode, mode]


def test_only_a_file_that_cannot_be_parsed_is_set_aside(tmp_path, monkeypatch):
    """Out of memory, a file that may not be read, or a device that fails when the read state moves to it say
    nothing about the file: they propagate and the checkpoint stays where it is."""
    ckpt = tmp_path / "c.pt"
    store.write_checkpoint({"model": {"w": torch.ones(2)}, "running": {}, "iteration": 3}, ckpt)
    for error in (MemoryError("no memory"), torch.cuda.OutOfMemoryError("CUDA out of memory"),
                  PermissionError("denied")):
        def fails(*args, error=error, **kwargs):
            raise error
        with monkeypatch.context() as patch:
            patch.setattr(torch, "load", fails)
            with pytest.raises(type(error)):
                store.read_checkpoint(ckpt)
    with monkeypatch.context() as patch:                # a CUDA error while the weights move to the device
        patch.setattr(torch.Tensor, "to", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA error")))
        with pytest.raises(RuntimeError, match="CUDA error"):
            store.read_checkpoint(ckpt, "cuda")
    assert ckpt.exists() and not list(tmp_path.glob("*.corrupt*"))
    assert store.read_checkpoint(ckpt)[0]["iteration"] == 3


def test_a_file_rewritten_while_it_was_read_is_not_set_aside(tmp_path, capsys):
    """Another process replaces a damaged results JSON with a good one while this one reads the damaged one: the
    good file is left in place, not moved aside as damaged."""
    path = tmp_path / "r.json"
    path.write_text("{ damaged")

    def read_then_rewritten(p):
        text = p.read_text()
        store.write_json({"good": True}, p)             # the other process's atomic rewrite
        return json.loads(text)
    assert store._read(path, read_then_rewritten) is None
    assert json.loads(path.read_text()) == {"good": True} and not list(tmp_path.glob("*.corrupt*"))
    path.write_text("{ damaged")                          # nobody rewrites it: set aside as before
    assert store.read_json(path) is None and (tmp_path / "r.json.corrupt").exists()


def test_a_run_finished_by_another_process_while_waiting_is_not_trained_again(tmp_path, synthetic_data,
                                                                                monkeypatch):
    """Notebook 02 finds no results JSON and asks for the run; another process finishes it while this one waits
    for the run's lock. Under the lock the run is finished: nothing is trained and its JSON is not rewritten."""
    from softvq import notebook
    folders = {k: str(tmp_path / k) for k in ("figures_dir", "results_dir", "checkpoint_dir")}
    s = notebook.setup("quick", {**folders, "device": "cpu", "progress": False})
    config = Config(seed=0, **TINY)
    other = tmp_path / "other"                          # the other process's run, finished into a copy
    runner.run([config], device="cpu", results_dir=other / "r", checkpoint_dir=s.checkpoints, progress=False)
    finished = store.result_path(config, other / "r").read_bytes()
    real_locked = store.locked

    @contextlib.contextmanager
    def the_other_process_finishes_first(configs, results_dir):
        with real_locked(configs, results_dir):
            path = store.result_path(config, results_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(finished)
            yield

    def no_training(*args, **kwargs):
        raise AssertionError("trained a run that another process had finished")
    monkeypatch.setattr(store, "locked", the_other_process_finishes_first)
    monkeypatch.setattr(runner, "train", no_training)
    shown, saved = notebook.reconstructions(s, config, n_images=3)
    assert shown["run_id"] == config.run_id and saved is not None           # decoded from its final checkpoint
    assert store.result_path(config, s.results).read_bytes() == finished


def test_the_raw_row_is_keyed_by_where_its_pixels_come_from(tmp_path, monkeypatch):
    """A raw-pixel row computed on the embedded sample is never read back for the full data set, and an image
    folder's row lives under its path-safe name, not in folders named after its path."""
    fields = dict(kmeans_n_init=1, probe_iterations=5, train_size=200, eval_size=100)
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")
    sample = evaluation.evaluate_raw("mnist", results_dir=tmp_path, device="cpu", **fields)
    assert sample["data"] == {"name": "mnist", "source": "sample"}
    monkeypatch.delenv("SOFTVQ_SAMPLE")
    assert evaluation.evaluate_raw("mnist", results_dir=tmp_path, compute=False, **fields) is None
    full = evaluation.raw_path("mnist", False, 1, "-probe_iterations5-train_size200-eval_size100", tmp_path)
    assert full.name == "mnist-raw-n1-probe_iterations5-train_size200-eval_size100.json"     # the committed names
    folder = tmp_path / "images" / "deep"
    path = evaluation.raw_path(f"folder:{folder}", False, 100, "", tmp_path / "results")
    assert path.parent.parent == tmp_path / "results" and path.parent.name.startswith("folder-deep-")


def test_a_short_run_records_a_loss_curve(tmp_path, synthetic_data):
    """The quick budget's 50 iterations log every step: notebook 02's loss panels get a curve, not one point."""
    config = Config(**{**TINY, "iterations": 50})
    (record,) = runner.run_stack([config], device="cpu", results_dir=tmp_path / "r", checkpoint_dir=tmp_path / "c",
                                 progress=False)
    assert len(record["history"]["iteration"]) >= 20
