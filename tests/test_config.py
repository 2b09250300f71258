"""Every Config field is checked when the Config is built; the CLI turns a bad value into an argparse error, and
every other command-line mistake (missing data, an unusable image folder) into one `error:` line."""
import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from softvq import __main__ as cli
from softvq import data, experiments
from softvq.experiments import Config

BAD_VALUES = [
    ("dataset", "mnsit"), ("dataset", "folder:"), ("bottleneck", "gan"), ("weighting", "uniform"),
    ("recon", "l1"), ("reduction", "max"), ("d", 0), ("K", 0), ("iterations", 0), ("iterations", 2.5),
    ("batch_size", -1), ("kmeans_n_init", 0), ("seed", -1), ("beta", -0.1), ("noise_std", -0.1),
    ("noise_std", float("nan")), ("vq_weight", -1.0), ("lr", 0.0), ("lr", "3e-4"), ("log_var_bound", 0.0),
    ("validation", "false"), ("probe_iterations", 0), ("train_size", -1), ("eval_size", 1.5),
    ("precision", "fp8"), ("compile", "yes"), ("estimator", "mode"), ("temperature", 0.0),
    ("sigma_floor", -0.1), ("var_init", 0.0), ("kmeans", "faiss"), ("rotation_trick", "yes"), ("ema_decay", 1.0),
    ("dead_code", -0.1), ("levels", "8-2"), ("levels", "8,4,4"), ("input_scale", 0.0), ("reparam_variance", -1e-3),
]


def test_every_field_is_checked():
    assert set(experiments.FIELD_CHECKS) == {f.name for f in dataclasses.fields(Config)}
    assert {name for name, _ in BAD_VALUES} == set(experiments.FIELD_CHECKS)


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_bad_value_is_refused_at_construction(name, value):
    with pytest.raises(ValueError, match=rf"^Config\.{name} = .* is not allowed; expected "):
        Config(**{name: value})


NUMBERS = [f.name for f in dataclasses.fields(Config) if isinstance(f.default, float)]


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused(name, value):
    assert {"beta", "lr", "noise_std", "vq_weight", "temperature", "sigma_floor", "var_init"} <= set(NUMBERS)
    with pytest.raises(ValueError, match=rf"^Config\.{name} = .* is not allowed; expected a finite number"):
        Config(**{name: value})


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        Config(dataset="mnsit")
    assert all(repr(name) in str(info.value) for name in data.DATASETS)


@pytest.mark.parametrize("dataset", [*data.DATASETS, "folder:/some/images"])
def test_known_datasets_are_allowed(dataset):
    assert Config(dataset=dataset).dataset == dataset


def test_presets_follow_the_papers_protocol():
    table1 = experiments.table1(seeds=(0, 1))
    assert {(c.bottleneck, c.seed) for c in table1} == {(b, s) for b in experiments.TABLE1 for s in (0, 1)}
    assert {(c.dataset, c.d, c.iterations, c.validation) for c in table1} == {("mnist", 64, 40_000, False)}
    assert {c.K for c in table1 if c.bottleneck.endswith("vqvae")} == {128}
    assert {c.d for c in experiments.figure4()} == {60}
    table2 = experiments.table2("svhn")
    assert {(c.dataset, c.d, c.net, c.validation) for c in table2} == {("svhn", 256, "cnn", False)}
    assert {c.bottleneck: c.iterations for c in table2}["soft_vqvae"] == 10_000  # the paper's budgets
    assert {c.iterations for c in table2 if c.bottleneck != "soft_vqvae"} == {40_000}


@pytest.mark.parametrize("sweep", ["ablation", "noise_sweep", "scaling_sweep", "table2_sweep", "estimators_sweep"])
def test_sweeps_choose_on_the_validation_split_and_name_distinct_runs(sweep):
    configs = experiments.flatten(getattr(experiments, sweep)())
    assert all(c.validation for c in configs)
    assert len({c.run_id for c in configs}) == len(configs)


@pytest.mark.parametrize("argv", [
    ["run", "--dataset", "mnsit"], ["run", "--lr", "0"], ["run", "--seeds", "-1"], ["run", "--seeds", "x"],
    ["run", "--validation", "maybe"], ["preset", "table1", "--seeds", "-1"], ["preset", "table1", "--iterations", "0"],
    ["preset", "table2", "--dataset", "mnsit"], ["preset", "table1", "--only", "gan"], ["run", "--beta", "inf"],
    ["run", "--noise-std", "nan"], ["run", "--lr", "inf"], ["preset", "table1", "--iterations", "1.5"],
])
def test_cli_refuses_bad_values_before_running(argv, capsys, monkeypatch):
    monkeypatch.setattr(cli.runner, "run", lambda *a, **k: pytest.fail("reached runner.run"))
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m softvq " + argv[0])
    assert [line for line in err.splitlines() if ": error: " in line] == [err.splitlines()[-1]]


@pytest.fixture
def folders(tmp_path):
    """Image folders a user may point --dataset at by mistake: empty, without class folders, without images."""
    (tmp_path / "empty").mkdir()
    for split in ("train", "test"):
        (tmp_path / "no_classes" / split).mkdir(parents=True)
        (tmp_path / "no_images" / split / "cat").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("argv", [["--data-root", "/no/such/folder"], ["--dataset", "folder:{}/empty"],
                                  ["--dataset", "folder:{}/no_classes"], ["--dataset", "folder:{}/no_images"]])
def test_cli_data_mistakes_are_one_error_line(argv, folders, capsys, monkeypatch):
    monkeypatch.setattr(cli.runner, "run", lambda *a, **k: pytest.fail("reached runner.run"))
    with pytest.raises(SystemExit) as info:
        cli.main(["run", *[a.format(folders) for a in argv]])
    assert info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m softvq run: error: ")


def _reproduce():
    """The top-level reproduce.py as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("reproduce", Path(__file__).resolve().parents[1] / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [["--seeds", "-1"], ["--seeds", "0", "x"], ["--iterations", "0"],
                                  ["--iterations", "inf"], ["--iterations", "2.5"]])
def test_reproduce_checks_its_numbers(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _reproduce().parse_args(argv)
    assert info.value.code == 2
    assert f": error: argument {argv[0]}: expected " in capsys.readouterr().err.splitlines()[-1]


def test_cli_reads_booleans(monkeypatch):
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")                   # data for the up-front check, wherever this runs
    seen = []
    monkeypatch.setattr(cli.runner, "run", lambda configs, **k: seen.extend(configs) or [])
    for text, value in [("True", True), ("yes", True), ("1", True), ("FALSE", False), ("no", False), ("0", False)]:
        cli.main(["run", "--validation", text, "--seeds", "3"])
        assert (seen[-1].validation, seen[-1].seed) == (value, 3)


@pytest.mark.parametrize("fields", [dict(bottleneck="vqvae", estimator="sample"),
                                    dict(bottleneck="soft_vqvae", weighting="svhn_code", estimator="argmax")])
def test_estimator_needs_a_soft_quantizer_whose_posterior_it_can_use(fields):
    with pytest.raises(ValueError, match="estimator"):
        Config(**fields)


def test_new_fields_at_their_defaults_keep_the_run_ids():
    """Committed results are found by run id: the estimator fields count only when set."""
    assert Config(estimator="mean", temperature=1.0, sigma_floor=0.0, var_init=1.0).run_id == Config().run_id
    assert Config(estimator="sample").run_id != Config().run_id


def test_equal_numbers_name_one_run():
    """3 and 3.0, numpy integers and floats: one Config, one run id (numpy scalars used to crash json)."""
    assert Config(vq_weight=3).run_id == Config(vq_weight=3.0).run_id
    assert Config(vq_weight=3) == Config(vq_weight=3.0) and type(Config(vq_weight=3).vq_weight) is float
    assert Config(seed=np.int64(2), d=np.int32(64)).run_id == Config(seed=2).run_id
    assert Config(beta=np.float64(0.25), iterations=np.int64(40_000)).run_id == Config().run_id


def test_an_image_folder_is_one_path_safe_run_however_spelled(tmp_path, monkeypatch):
    """A folder data set is named by a path-safe name and a fingerprint of its files, not by the path."""
    for split in ("train", "test"):
        (tmp_path / "my images" / split / "a").mkdir(parents=True)
        (tmp_path / "my images" / split / "a" / "0.png").write_bytes(b"png")
    monkeypatch.chdir(tmp_path)
    spellings = [f"folder:{tmp_path}/my images", "folder:my images/", "folder:./my images"]
    ids = {Config(dataset=s).run_id for s in spellings}
    assert len(ids) == 1
    [run_id] = ids
    assert "/" not in run_id and " " not in run_id and run_id.startswith("folder-my_images-")
    assert experiments.result_path(Config(dataset=spellings[1]), tmp_path / "r").parent == tmp_path / "r" / run_id.split(
        "-soft_vqvae")[0]
    (tmp_path / "my images" / "train" / "a" / "1.png").write_bytes(b"another")
    data.folder_fingerprint.cache_clear()
    assert Config(dataset=spellings[0]).run_id != run_id          # other files: another data set


def test_the_embedded_sample_is_another_run_than_the_full_data(monkeypatch):
    full, other = Config(train_size=2_000, eval_size=500).run_id, Config(dataset="fashion-mnist").run_id
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")
    assert data.source("mnist") == "sample" and data.source("fashion-mnist") == "full"
    assert Config(train_size=2_000, eval_size=500).run_id != full
    assert Config(dataset="fashion-mnist").run_id == other          # only the sampled data set changes


def test_the_kmeans_implementation_is_part_of_a_run():
    assert Config(kmeans="sklearn").run_id == Config().run_id
    assert Config(kmeans="torch").run_id != Config().run_id
