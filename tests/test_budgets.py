"""softvq.budgets: the budgets, the presets they build and where each budget writes."""
import pytest

from softvq import budgets


def test_budget_and_preset_config():
    assert budgets.budget("paper")["iterations"] == 40_000 and budgets.budget("paper")["seeds"] == (0, 1, 2)
    quick = budgets.budget("quick", iterations=20, seeds=[3], kmeans_n_init=None)
    assert quick["iterations"] == 20 and quick["seeds"] == (3,) and quick["kmeans_n_init"] == 3
    assert quick["table2_seeds"] == (3,)                                # the caller's seeds reach Table 2
    assert budgets.budget("cpu")["table2_seeds"] == (0, 1, 2) and budgets.budget("cpu")["seeds"] == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError):
        budgets.budget("huge")
    c = budgets.preset_config("beta_vae", iterations=50, seed=2, beta=None)
    assert (c.beta, c.d, c.iterations, c.seed) == (20.0 / 64, 64, 50, 2)     # KL/d, see scaling_sweep
    assert budgets.preset_config("soft_vqvae", "cifar10").K == 32


def test_only_the_committed_budget_writes_to_the_project_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figures, results, checkpoints = budgets.output_dirs("cpu")
    assert (figures, results, checkpoints) == (tmp_path / "figures", tmp_path / "results", tmp_path / "checkpoints")
    figures, results, _ = budgets.output_dirs("quick")
    assert figures == tmp_path / "outputs" / "quick" / "figures" and figures.is_dir()
    assert results == tmp_path / "outputs" / "quick" / "results"
    assert budgets.output_dirs("quick", results_dir=tmp_path / "r")[1] == tmp_path / "r"
    assert budgets.banner("cpu") == "" and "quick" in budgets.banner("quick")
    with pytest.raises(ValueError, match="budget"):
        budgets.output_dirs("huge")


def test_only_the_quick_budget_changes_the_paper_evaluation():
    assert budgets.evaluation(budgets.budget("cpu")) == budgets.evaluation(budgets.budget("paper")) == \
        {"kmeans_n_init": 100, "probe_iterations": 500, "train_size": 0, "eval_size": 0, "kmeans": "sklearn"}
    quick = budgets.evaluation(budgets.budget("quick"))
    assert quick["train_size"] > 0 and quick["eval_size"] > 0 and quick["probe_iterations"] < 500


def test_the_paper_budget_runs_table2_on_both_real_datasets():
    assert budgets.budget("paper")["table2_datasets"] == ("svhn", "cifar10")
    assert budgets.budget("cpu")["table2_datasets"] == budgets.budget("quick")["table2_datasets"] == ("cifar10-jpeg",)
    assert budgets.budget("cpu")["table2_sweep_seeds"] == (0, 1)


def test_runs_on_the_embedded_sample_write_apart_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTVQ_SAMPLE", "cifar10-jpeg")
    assert budgets.output_root("quick", tmp_path) == tmp_path / "outputs" / "quick-sample"
    assert budgets.output_root("cpu", tmp_path) == tmp_path / "outputs" / "cpu-sample"   # never the committed folders
    assert budgets.outputs_name("quick") == "quick-sample"
    assert budgets.banner("cpu", ["mnist"]) == ""
    first = budgets.banner("quick", ["mnist", "cifar10-jpeg"])
    assert first.startswith("**Budget 'quick'**") and "embedded data sample (the lossy JPEG copy" in first
    assert "MNIST" not in first and "\n" not in first
