import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import softvq
from softvq import build_model
from softvq.train import train
from softvq.train import EpochSampler, card_precision, make_optimizer, step_graphs, stream_seed, tf32_allowed

SHAPE = (1, 28, 28)
SMALL = (32, 32, 64)          # hidden widths of the tiny test MLP


def tiny_data(n=256):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(0))


def trained(name, seeds, iterations=12, dtype=torch.float32, **kwargs):
    model = build_model(SHAPE, name, 8, seeds=seeds, widths=SMALL, **kwargs).to(dtype)
    train(model, tiny_data().to(dtype), seeds, iterations=iterations, batch_size=16, log_every=4, progress=False,
          device="cpu")
    return model


# In float64, so that the comparison is not blurred by Adam's first steps, which turn float32 rounding
# differences of batched vs single matrix products in near-zero gradients into updates of up to lr.
@pytest.mark.parametrize("name,kwargs", [("vae", {}), ("info_dropout", {}), ("vqvae", {"num_codes": 8}),
                                         ("soft_vqvae", {"num_codes": 8, "noise_std": 0.3})])
def test_model_trained_in_a_stack_equals_model_trained_alone(name, kwargs):
    stack = trained(name, [5, 11, 17], dtype=torch.float64, **kwargs)
    alone = trained(name, [11], dtype=torch.float64, **kwargs)
    for (n, p_stack), p_alone in zip(stack.named_parameters(), alone.parameters()):
        torch.testing.assert_close(p_stack[1], p_alone[0], atol=1e-9, rtol=1e-7, msg=n)


def test_per_model_hyperparameters_in_a_stack():
    stack = trained("soft_vqvae", [1, 1], dtype=torch.float64, num_codes=8, noise_std=[0.0, 0.5], beta=[0.25, 1.0])
    alone = trained("soft_vqvae", [1], dtype=torch.float64, num_codes=8, noise_std=0.5, beta=1.0)
    torch.testing.assert_close(stack.decoder.net[-1].weight[1], alone.decoder.net[-1].weight[0], atol=1e-9, rtol=1e-7)
    assert not torch.allclose(stack.decoder.net[-1].weight[0], stack.decoder.net[-1].weight[1])


def test_same_seed_same_result_and_loss_decreases():
    a, b = build_model(SHAPE, "ae", 8, seeds=[0], widths=SMALL), build_model(SHAPE, "ae", 8, seeds=[0], widths=SMALL)
    ha = train(a, tiny_data(), [0], iterations=40, batch_size=16, log_every=10, progress=False, device="cpu")
    train(b, tiny_data(), [0], iterations=40, batch_size=16, log_every=10, progress=False, device="cpu")
    torch.testing.assert_close(a.decoder.net[-1].weight, b.decoder.net[-1].weight)
    assert ha["total"][-1][0] < ha["total"][0][0]
    assert ha["iteration"] == [10, 20, 30, 40]


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    x, seeds = tiny_data(), [2, 3]
    reference = build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2)
    train(reference, x, seeds, iterations=20, batch_size=16, log_every=5, progress=False, device="cpu")

    class Interrupt(Exception):
        pass

    def interrupt_at_15(iteration):
        if iteration == 15:
            raise Interrupt

    ckpt = tmp_path / "run.pt"
    first = build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2)
    with pytest.raises(Interrupt):
        train(first, x, seeds, iterations=20, batch_size=16, log_every=5, checkpoint=ckpt, checkpoint_every=10,
              progress=False, device="cpu", on_step=interrupt_at_15)
    assert torch.load(ckpt, weights_only=False)["iteration"] == 10
    resumed = build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2)  # a fresh process
    steps = []
    history = train(resumed, x, seeds, iterations=20, batch_size=16, log_every=5, checkpoint=ckpt,
                    checkpoint_every=10, progress=False, device="cpu", on_step=steps.append)
    assert steps == list(range(11, 21))                 # it continued from the checkpoint, not from step 1
    for (n, p), q in zip(reference.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0, msg=n)
    assert history["iteration"] == [5, 10, 15, 20]
    with pytest.raises(ValueError, match="seeds"):
        train(build_model(SHAPE, "soft_vqvae", 8, seeds=[9, 9], widths=SMALL, num_codes=8), x, [9, 9], iterations=20,
              batch_size=16, checkpoint=ckpt, progress=False, device="cpu")


def test_fp16_trains_with_a_gradient_scaler_whose_state_a_resume_restores(tmp_path):
    """float16 autocast with a gradient scaler (the fast path of pre-Ampere GPUs; here on the CPU): the encoder
    runs in float16, and a run interrupted after its checkpoint resumes to the bit, its scaler's state included
    (the count of steps since the scale last changed)."""
    x, seeds = tiny_data(), [2, 3]
    options = dict(iterations=20, batch_size=16, log_every=5, checkpoint_every=10, progress=False, device="cpu",
                   precision="fp16")
    reference = build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2)
    dtypes = []
    reference.encoder.register_forward_hook(lambda module, i, out: dtypes.append(out.dtype))
    whole = train(reference, x, seeds, checkpoint=tmp_path / "whole.pt", **options)
    assert set(dtypes) == {torch.float16} and all(p.dtype == torch.float32 for p in reference.parameters())

    def interrupt_at_15(iteration):
        if iteration == 15:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2), x, seeds,
              checkpoint=tmp_path / "cut.pt", on_step=interrupt_at_15, **options)
    steps = []
    resumed = train(build_model(SHAPE, "soft_vqvae", 8, seeds=seeds, widths=SMALL, num_codes=8, noise_std=0.2), x,
                    seeds, checkpoint=tmp_path / "cut.pt", on_step=steps.append, **options)
    assert resumed["total"] == whole["total"] and steps == list(range(11, 21))
    final = {name: torch.load(tmp_path / name, weights_only=False)["scaler"] for name in ("whole.pt", "cut.pt")}
    assert final["cut.pt"] == final["whole.pt"] and final["whole.pt"]["_growth_tracker"] == 20


@pytest.mark.parametrize("capability,bf16,expected", [((9, 0), True, "bf16"), ((8, 6), True, "bf16"),
                                                      ((8, 0), False, "fp16"), ((7, 5), False, "fp16"),
                                                      ((6, 1), False, "fp32")])
def test_the_cards_precision_is_the_fastest_it_supports(monkeypatch, capability, bf16, expected):
    """H100 / A100 / RTX 30: bf16; Turing (Colab's T4) and Volta: fp16 with a gradient scaler; Pascal: fp32."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert card_precision("cuda") == expected and card_precision("cpu") == "fp32"


@pytest.fixture
def tf32_flags_restored():
    """The TF32 settings of this process as they were before the test (through the current API only)."""
    owners = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    saved = [owner.fp32_precision for owner in owners]
    yield owners
    for owner, value in zip(owners, saved):
        owner.fp32_precision = value


def test_tf32_is_switched_through_the_current_api_only(tf32_flags_restored):
    """A user who set TF32 through torch's fp32_precision API: the legacy allow_tf32 flags can no longer be read
    (torch raises on the mix), so the trainer must not touch them."""
    matmul, conv = tf32_flags_restored
    matmul.fp32_precision, conv.fp32_precision = "tf32", "tf32"
    with tf32_allowed(False):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    with tf32_allowed(True):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")


def test_step_graphs_counts_the_graphs_torch_compile_makes_of_the_training_step():
    """torch._dynamo.explain of the real step: a noiseless stack is one graph; per-model noise drawn from the
    stack's generators breaks it, and every break names where."""
    whole = step_graphs(build_model(SHAPE, "ae", 8, seeds=[0, 1], widths=SMALL), tiny_data(), [0, 1], 16)
    assert whole == {"graphs": 1, "graph_breaks": 0, "break_reasons": []}
    noisy = step_graphs(build_model(SHAPE, "vae", 8, seeds=[0, 1], widths=SMALL), tiny_data(), [0, 1], 16)
    assert noisy["graphs"] == noisy["graph_breaks"] + 1
    assert all(re.search(r" at \w+\.py:\d+$", reason) for reason in noisy["break_reasons"])


def test_nan_loss_stops_with_iteration_and_term():
    model = build_model(SHAPE, "soft_vqvae", 8, seeds=[0, 1], widths=SMALL, num_codes=8)
    with torch.no_grad():
        model.bottleneck.beta[1] = float("inf")               # only model 1's commitment term overflows
    with pytest.raises(FloatingPointError, match=r"iteration 1: term 'commitment' = inf \(model 1, seed 1\)"):
        train(model, tiny_data(), [0, 1], iterations=5, batch_size=16, progress=False, device="cpu")


def test_a_loss_that_turns_non_finite_between_log_steps_is_named_at_the_log_step():
    """Checked once per log step, the error still names the iteration at which the loss first turned
    non-finite; the steps after it in the same window have run."""
    model = build_model(SHAPE, "vae", 8, seeds=[4, 5, 6], widths=SMALL)
    steps = []

    def poison_after_2(iteration):
        steps.append(iteration)
        if iteration == 2:
            with torch.no_grad():
                model.bottleneck.beta[2] = float("nan")
    with pytest.raises(FloatingPointError, match=r"iteration 3: term 'kl' = nan \(model 2, seed 6\)"):
        train(model, tiny_data(), [4, 5, 6], iterations=20, batch_size=16, log_every=5, progress=False,
              device="cpu", on_step=poison_after_2)
    assert steps == [1, 2, 3, 4]                              # raised at the log step of iteration 5


def step_by_step(model, x, seeds, iterations, batch_size, lr=3e-4) -> list[dict[str, list[float]]]:
    """The textbook loop the trainer must match: one batch per model drawn from its seeded sampler, one step,
    every loss read back to the host after every step. Returns each step's losses {term: [M values]}."""
    samplers = [EpochSampler(len(x), batch_size, s) for s in seeds]
    model.bottleneck.generators = [torch.Generator().manual_seed(stream_seed(s, "noise")) for s in seeds]
    optimizer = make_optimizer(model, lr)
    model.train()
    steps = []
    for _ in range(iterations):
        out = model(x[torch.stack([s.next() for s in samplers])])
        optimizer.zero_grad(set_to_none=True)
        out["total"].sum().backward()
        optimizer.step()
        steps.append({k: v.detach().tolist() for k, v in {**out["losses"], "total": out["total"]}.items()})
    return steps


@pytest.mark.parametrize("name,kwargs", [("soft_vqvae", dict(num_codes=8, noise_std=0.3)), ("vae", {})])
@pytest.mark.parametrize("log_every", [1, 5])
def test_logged_losses_are_the_step_by_step_loops_window_means(name, kwargs, log_every):
    """The trainer reads the device only at log steps and logs the mean loss of each window: the same numbers as
    a step-by-step loop run here, in this process (no stored reference: float32 sums differ across CPUs).
    The two sum a window's losses in another order, so they agree to float32 rounding (a few ulp), not bits."""
    x = torch.rand(64, *SHAPE, generator=torch.Generator().manual_seed(0))
    model = build_model(SHAPE, name, 8, seeds=[3, 7], widths=SMALL, **kwargs)
    reference = step_by_step(build_model(SHAPE, name, 8, seeds=[3, 7], widths=SMALL, **kwargs), x, [3, 7], 12, 16)
    history = train(model, x, [3, 7], iterations=12, batch_size=16, log_every=log_every, progress=False,
                    device="cpu")
    windows = [range(end - (end - 1) % log_every - 1, end) for end in history["iteration"]]
    assert history["iteration"] == ([5, 10, 12] if log_every == 5 else list(range(1, 13)))
    for term, logged in history.items():
        if term in ("iteration", "wall_time"):
            continue
        expected = [[sum(reference[i][term][m] for i in w) / len(w) for m in range(2)] for w in windows]
        torch.testing.assert_close(torch.tensor(logged, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                                   rtol=8 * torch.finfo(torch.float32).eps, atol=1e-6, msg=term)


HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__format__", "cpu", "numpy", "nonzero")


def test_the_loop_reads_the_device_only_at_log_steps(monkeypatch):
    """Every way softvq could read a tensor's value back to the host (on a GPU: wait for the device) is
    counted; between two log steps there must be none."""
    package = str(Path(softvq.__file__).parent)
    reads = []
    for method in HOST_READS:
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(package):
                reads.append(1)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, method, counted)
    model = build_model(SHAPE, "soft_vqvae", 8, seeds=[0, 1], widths=SMALL, num_codes=8, noise_std=0.2)
    after_step = {0: len(reads)}
    train(model, tiny_data(), [0, 1], iterations=12, batch_size=16, log_every=4, progress=False, device="cpu",
          on_step=lambda it: after_step.__setitem__(it, len(reads)))
    monkeypatch.undo()
    new_reads = {it: after_step[it] - after_step[it - 1] for it in range(1, 13)}
    assert [it for it, n in new_reads.items() if n] == [4, 8, 12]


@pytest.mark.cuda
def test_the_loop_never_synchronizes_with_the_gpu_between_log_steps():
    """torch's sync debug mode turns any synchronizing call into an error; it is on only between log steps."""
    model = build_model(SHAPE, "soft_vqvae", 8, seeds=[0, 1], widths=SMALL, num_codes=8, noise_std=0.2)

    def strict_between_log_steps(iteration):
        torch.cuda.set_sync_debug_mode("default" if (iteration + 1) % 4 == 0 else "error")
    try:
        train(model, tiny_data(), [0, 1], iterations=12, batch_size=16, log_every=4, progress=False, device="cuda",
              on_step=strict_between_log_steps)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bad_arguments():
    model = build_model(SHAPE, "ae", 8, seeds=[0, 1], widths=SMALL)
    with pytest.raises(ValueError, match="2 models"):
        train(model, tiny_data(), [0], iterations=2, progress=False, device="cpu")
    with pytest.raises(ValueError, match="batch size"):
        train(model, tiny_data(8), [0, 1], iterations=2, batch_size=16, progress=False, device="cpu")


DENORMAL_PROBE = ("torch.set_num_threads(2); print(int((torch.full((1 << 22,), 1e-30) * 1e-10).count_nonzero()), "
                  "torch.set_flush_denormal(True))")


def denormals_kept(setup: str) -> bool:
    """Whether a product whose result is denormal (1e-40 < 1.2e-38) survives on all of torch's threads, in a
    fresh interpreter that runs `setup` first (skipped on a CPU without flush-to-zero)."""
    count, supported = subprocess.run([sys.executable, "-c", f"import torch; {setup}; {DENORMAL_PROBE}"], check=True,
                                      capture_output=True, text=True).stdout.split()
    if supported != "True":
        pytest.skip("this CPU has no flush-to-zero mode")
    return count != "0"


def test_importing_softvq_leaves_the_processs_numerics_alone():
    assert denormals_kept("import softvq")


def test_flush_to_zero_before_any_torch_operation_reaches_every_thread():
    assert not denormals_kept("from softvq.train import flush_to_zero; flush_to_zero()")


def test_the_command_line_flushes_denormals_before_it_starts(monkeypatch, capsys):
    from softvq import __main__ as cli
    calls = []
    monkeypatch.setattr(cli, "flush_to_zero", lambda: calls.append(1))
    with pytest.raises(SystemExit):
        cli.main(["run", "--iterations", "0"])                 # refused after the flag is set
    assert calls == [1]


def test_the_progress_bar_is_closed_when_training_ends_or_stops(monkeypatch):
    from softvq import train as training
    bars = []

    class Recorded(training.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)
    monkeypatch.setattr(training, "tqdm", Recorded)
    model = build_model(SHAPE, "ae", 8, seeds=[0], widths=SMALL)
    train(model, tiny_data(), [0], iterations=4, batch_size=16, log_every=2, progress=True, device="cpu")

    def stop(iteration):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(model, tiny_data(), [0], iterations=4, batch_size=16, progress=True, device="cpu", on_step=stop)
    assert len(bars) == 2 and all(bar.disable for bar in bars)      # tqdm marks a closed bar disabled


def test_every_precision_is_documented():
    from softvq import __main__ as cli, config, notebook
    from softvq.train import PRECISIONS
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["preset"].format_help()
    for text in (config.Config.__doc__, help_text, inspect.getsource(notebook)):
        assert all(p in text for p in PRECISIONS), text[:200]


def test_a_checkpoint_written_on_another_device_is_refused_with_one_line(tmp_path):
    """Emulated on the CPU: a checkpoint as a GPU writes it (device "cuda", 16-byte CUDA generator states), and an
    older one without its device recorded, are refused on the CPU with one line saying where to resume, instead
    of failing inside Generator.set_state."""
    x, seeds, ckpt = tiny_data(), [0, 1], tmp_path / "c.pt"
    options = dict(batch_size=16, log_every=5, progress=False, device="cpu", checkpoint=ckpt, checkpoint_every=5)
    train(build_model(SHAPE, "vae", 8, seeds=seeds, widths=SMALL), x, seeds, iterations=5, **options)
    state = torch.load(ckpt, weights_only=False)
    assert state["device"] == "cpu"
    state["noise"] = [torch.zeros(16, dtype=torch.uint8) for _ in seeds]           # a CUDA generator's state
    for recorded in ({"device": "cuda"}, {}):
        torch.save({**{k: v for k, v in state.items() if k != "device"}, **recorded}, ckpt)
        with pytest.raises(ValueError, match=r"^checkpoint .* was written on cuda, whose noise generators continue "
                                             r"only there: resume it on cuda, or move it aside"):
            train(build_model(SHAPE, "vae", 8, seeds=seeds, widths=SMALL), x, seeds, iterations=10, **options)


def test_every_budget_logs_enough_points_for_a_curve_and_the_committed_interval_stays():
    from softvq.train import log_interval
    assert [log_interval(n) for n in (5, 50, 2_000, 5_000, 40_000)] == [1, 1, 40, 100, 100]
    assert all(n // log_interval(n) >= 20 for n in (20, 50, 200, 1_000, 2_000, 10_000, 40_000))


def test_free_cores_leaves_the_cores_other_processes_keep_busy(tmp_path, monkeypatch):
    from softvq.train import free_cores
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    stat = tmp_path / "stat"
    for running, free in ((1, 4), (3, 2), (9, 1)):          # procs_running counts the caller too
        stat.write_text(f"cpu  1 2 3\nprocs_running {running}\nprocs_blocked 0\n")
        assert free_cores(samples=2, stat=stat) == free
    assert free_cores(samples=2, stat=tmp_path / "missing") == 4


def test_a_notebook_sets_the_threads_it_trains_with():
    from softvq import notebook
    before = torch.get_num_threads()
    try:
        notebook.setup("quick", {"threads": 1, "figures_dir": None})
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
