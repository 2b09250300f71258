"""softvq.tables and softvq.paper on hand-made records (no training)."""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from conftest import make_record
from softvq import experiments, paper, tables
from softvq.bottlenecks import BOTTLENECKS


def test_paper_numbers_cover_every_bottleneck_of_the_paper():
    """Every bottleneck but SQ-VAE (2022, after the paper) has the paper's numbers; SQ-VAE compares with NaN."""
    assert set(paper.TABLE1) == set(BOTTLENECKS) - {"sqvae"} | {"raw"}
    for dataset in ("svhn", "cifar10", "cifar10-jpeg"):
        assert set(paper.reported("table2", dataset)) == set(BOTTLENECKS) - {"sqvae"}
    assert math.isnan(paper.value("table1", "sqvae", "cluster_acc"))
    assert paper.value("table1", "soft_vqvae", "cluster_acc") == 77.64
    assert paper.value("table2", "soft_vqvae", "classification_acc", "cifar10-jpeg") == 44.54
    assert math.isnan(paper.value("table2", "ae", "nmi", "svhn"))
    with pytest.raises(ValueError):
        paper.reported("table3")


def test_collect_mean_std_seeds_and_missing(table1_dir):
    configs, results = table1_dir
    df = tables.collect(configs, results)
    assert list(df.index) == ["ae", "vae", "beta_vae", "info_dropout", "vqvae", "soft_vqvae"]
    ae = df.loc["ae"]
    assert ae["cluster_acc"] == pytest.approx(52.0)                        # percent
    assert ae["cluster_acc_std"] == pytest.approx(np.std([50, 54], ddof=1))
    assert ae["nmi"] == pytest.approx(0.51)
    assert (ae["seeds"], ae["missing"], ae["iterations"], ae["seed_list"]) == (2, 0, 20, "0,1")
    soft = df.loc["soft_vqvae"]
    assert soft["seeds"] == 1 and soft["missing"] == 1 and math.isnan(soft["cluster_acc_std"])
    assert df.loc["vae", "seeds"] == 0 and math.isnan(df.loc["vae", "cluster_acc"])
    assert len(df.attrs["missing"]) == 2 * 4 + 1


def test_collect_extra_records_and_mapping(table1_dir):
    configs, results = table1_dir
    raw = {"config": {"dataset": "mnist", "bottleneck": "raw", "validation": False, "seed": 0,
                      "kmeans_n_init": 100, "iterations": 0},
           "metrics": {"cluster_acc": 0.55, "nmi": 0.5, "classification_acc": 0.92}}
    rows = {"AE": [c for c in configs if c.bottleneck == "ae"]}
    df = tables.collect(rows, results, records={"raw": [raw]})
    assert list(df.index) == ["raw", "AE"]
    assert df.loc["raw", "iterations"] == 0 and df.loc["raw", "cluster_acc"] == pytest.approx(55.0)


def test_compare_with_paper_differences(table1_dir):
    configs, results = table1_dir
    df = tables.compare_with_paper(tables.collect(configs, results), "table1")
    assert df.loc["ae", "paper_cluster_acc"] == 52.61
    assert df.loc["ae", "diff_cluster_acc"] == pytest.approx(52.0 - 52.61)
    assert df.loc["soft_vqvae", "diff_nmi"] == pytest.approx(0.70 - 0.7188)
    cols = list(df.columns)
    assert cols.index("paper_nmi") == cols.index("nmi_std") + 1 and cols.index("diff_nmi") == cols.index("nmi_std") + 2
    assert df.attrs["missing"]                                           # attrs survive


def test_compare_table2_lossy_cifar_uses_cifar10_column(tmp_path):
    configs = experiments.table2("cifar10-jpeg", seeds=(0,), iterations=20)
    soft = [c for c in configs if c.bottleneck == "soft_vqvae"][0]
    experiments.write_json(make_record(soft, 0.25, 0.1, 0.45), experiments.result_path(soft, tmp_path))
    df = tables.compare_with_paper(tables.collect(configs, tmp_path), "table2")
    assert df.loc["soft_vqvae", "diff_classification_acc"] == pytest.approx(45.0 - 44.54)
    assert math.isnan(df.loc["soft_vqvae", "paper_nmi"])
    assert "LOSSY JPEG" in tables.budget_note(df) and "paper's CIFAR-10 numbers" in tables.budget_note(df)


def test_budget_note_names_where_the_rows_were_trained(tmp_path):
    configs = experiments.table2("cifar10-jpeg", seeds=(0, 1), iterations=20)
    where = {"ae": {"device": "cuda:0", "gpu": "NVIDIA H100", "commit": "0123456789abc", "dirty": False},
             "vae": {"device": "cpu", "cpu": "AMD EPYC", "commit": "abcdef0123456", "dirty": True},
             "beta_vae": {"device": "cpu"}, "info_dropout": {"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor"},
             "vqvae": None}
    for c in configs:
        if c.bottleneck in where:
            record = make_record(c, 0.2, 0.1, 0.4)
            if where[c.bottleneck]:
                record["code_version"] = where[c.bottleneck]
            experiments.write_json(record, experiments.result_path(c, tmp_path))
    df = tables.collect(configs, tmp_path)
    assert list(df["trained_on"]) == ["NVIDIA H100 at 0123456", "AMD EPYC CPU at abcdef0-dirty", "CPU",
                                      "Intel Xeon Processor", "unrecorded", ""]
    assert tables.budget_note(df).endswith(" Trained on: NVIDIA H100 at 0123456 (baseline AE); AMD EPYC CPU at "
                                           "abcdef0-dirty (VAE); CPU (beta-VAE); Intel Xeon Processor (information "
                                           "dropout); unrecorded (VQ-VAE).")
    assert tables.budget_note(df.loc[["ae"]]).endswith(" Trained on: NVIDIA H100 at 0123456.")


def test_write_table_csv_and_markdown(table1_dir, tmp_path):
    configs, results = table1_dir
    df = tables.compare_with_paper(tables.collect(configs, results), "table1")
    csv, md = tables.write_table(df, "table1", tmp_path / "figs", note="(test)")
    text = md.read_text().splitlines()
    assert text[0].startswith("Budget: 20 training iterations") and "seeds: 0, 1" in text[0]
    assert "test set" in text[0] and text[0].endswith("(test)")
    body = "\n".join(text)
    assert "52.00 ± 2.83" in body and "52.61" in body and "-0.61" in body
    assert "missing" in body and "baseline AE" in body
    assert csv.read_text().startswith("row,bottleneck")
    assert not list((tmp_path / "figs").glob(".*tmp"))                 # no temporary files left


def test_write_table_at_another_budget_says_so_first(table1_dir, tmp_path):
    configs, results = table1_dir
    md = tables.write_table(tables.collect(configs, results), "t", tmp_path, budget="quick")[1]
    first = md.read_text().splitlines()[0]
    assert "quick" in first and "not the committed results" in first


def test_seed_statistics_intervals_and_tests(tmp_path):
    configs = experiments.table1(seeds=(0, 1, 2), iterations=20)
    values = {"ae": [0.50, 0.52, 0.54], "soft_vqvae": [0.80, 0.82, 0.84], "vae": [0.80, 0.82, 0.84]}
    for c in configs:
        if c.bottleneck in values:
            v = values[c.bottleneck][c.seed]
            experiments.write_json(make_record(c, v, v, v), experiments.result_path(c, tmp_path))
    raw = [make_record(experiments.Config(iterations=20), 0.6, 0.6, 0.6)]
    df = tables.seed_statistics(configs, "soft_vqvae", tmp_path, records={"raw": raw})
    acc = df[df["metric"] == "cluster_acc"].set_index("row")
    assert acc.loc["ae", "mean"] == pytest.approx(52.0) and acc.loc["ae", "seeds"] == 3
    half = 4.302653 * 2.0 / math.sqrt(3)                           # t_{0.975, 2} * s / sqrt(n)
    assert acc.loc["ae", "ci_low"] == pytest.approx(52.0 - half) and acc.loc["ae", "ci_high"] == pytest.approx(52.0 + half)
    assert acc.loc["ae", "p_reference_better"] < 1e-3             # 30 points apart, spread 2
    assert acc.loc["vae", "p_reference_better"] == pytest.approx(0.5)   # identical rows
    assert acc.loc["raw", "p_reference_better"] < 0.01            # one-sample test against 60 %
    assert math.isnan(acc.loc["vqvae", "mean"]) and math.isnan(acc.loc["soft_vqvae", "p_reference_better"])
    csv, md = tables.write_statistics(df, "stats", tmp_path / "figs")
    assert "Welch" in md.read_text() and "[" in md.read_text() and csv.read_text().startswith("row,metric")
    with pytest.raises(ValueError, match="reference"):
        tables.seed_statistics(configs, "nope", tmp_path)


def test_codebook_table_from_records(tmp_path):
    def rec(used, perplexity, **soft):
        return {"codebook": {"K": 4, "codewords_used": used, "dead_codewords": 4 - used,
                             "perplexity_hard": perplexity, **soft}}
    records = {"vqvae": [rec(2, 1.5), rec(4, 3.5)],
               "soft_vqvae": [rec(3, 2.0, perplexity_soft=2.5, mean_max_posterior=0.9, sigma_min=0.1, sigma_max=1.0)],
               "ae": [{"metrics": {}}]}
    df = tables.codebook_table(records)
    assert df.loc["vqvae", "codewords_used"] == 3 and df.loc["vqvae", "codewords_used_std"] == pytest.approx(math.sqrt(2))
    assert math.isnan(df.loc["vqvae", "perplexity_soft"]) and df.loc["soft_vqvae", "mean_max_posterior"] == 0.9
    assert df.loc["ae", "seeds"] == 0
    md = tables.write_codebook_table(df, "cb", tmp_path)[1].read_text()
    assert "3 ± 1.4" in md and "soft VQ-VAE" in md


@pytest.fixture
def mnist_sampled(monkeypatch):
    """MNIST read from the embedded sample: set before the runs are written, since it is part of their ids."""
    monkeypatch.setenv("SOFTVQ_SAMPLE", "mnist")


def test_tables_made_from_the_embedded_sample_say_so_first(mnist_sampled, table1_dir, tmp_path):
    configs, results = table1_dir
    for md in (tables.write_table(tables.collect(configs, results), "t", tmp_path, budget="quick")[1],
               tables.write_statistics(tables.seed_statistics(configs, "soft_vqvae", results), "s", tmp_path)[1]):
        assert "Made from the embedded data sample (MNIST" in md.read_text().splitlines()[0]


def test_a_table_from_records_names_its_machines_and_commits():
    def record(commit, cpu="AMD EPYC 7B13"):
        return {"config": {"iterations": 10}, "code_version": {"device": "cpu", "cpu": cpu, "commit": commit}}
    one = tables.trained_on_line({"a": [record("abcdef1")], "b": [record("abcdef1")]})
    assert one == "Trained on: AMD EPYC 7B13 CPU at abcdef1."
    two = tables.trained_on_line({"a": [record("abcdef1")], "b": [record("1234567", "Intel Xeon Processor")]})
    assert two == "Trained on: AMD EPYC 7B13 CPU at abcdef1 (a); Intel Xeon Processor at 1234567 (b)."


def test_every_table_a_notebook_shows_has_its_caption(monkeypatch):
    from softvq import notebook
    shown = []
    monkeypatch.setattr(notebook, "_display", shown.append)
    notebook.show("the table", "Trained on: NVIDIA H100 at abcdef1.")
    assert shown[0].data == "*Trained on: NVIDIA H100 at abcdef1.*" and shown[1] == "the table"
