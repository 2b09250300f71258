"""The claims-by-data-set table, computed from each data set's seed statistics (the README's block is checked with
the other figure blocks in tests/test_readme.py)."""
import math

import pandas as pd
import pytest

from softvq import claims


def stats(means: dict[str, float], p: dict[str, float], metric: str = "nmi") -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "metric": metric, "seeds": 5, "mean": m, "ci_low": m, "ci_high": m,
                          "p_reference_better": p.get(r, math.nan)} for r, m in means.items()])


def test_the_best_other_row_margin_and_verdict():
    [row] = claims.claim_rows(stats({"raw": 0.5, "ae": 0.6, "vae": 0.7, "soft_vqvae": 0.75},
                                    {"raw": 1e-5, "ae": 1e-3, "vae": 0.2}))
    assert (row["best_other"], round(row["margin"], 6), row["p"]) == ("vae", 0.05, 0.2)
    assert claims.verdict(row["margin"], row["p"]) == "leads, not significant"
    assert claims.verdict(0.05, 0.01) == "leads" and claims.verdict(-0.01, 0.9) == "trails"
    assert claims.verdict(0.0, 0.5) == "trails"


def test_a_lead_quotes_the_largest_p_of_every_one_sided_test():
    """'Leads' means beating every other row: a lead over the best-mean row at p = 0.001 is no lead when another
    row (close in mean but noisier) is beaten only at p = 0.2; the claim quotes 0.2, as the verdicts do."""
    [row] = claims.claim_rows(stats({"raw": 0.5, "beta_vae": 0.68, "vae": 0.7, "soft_vqvae": 0.75},
                                    {"raw": 1e-5, "beta_vae": 0.2, "vae": 0.001}))
    assert (row["best_other"], row["p"]) == ("vae", 0.2)
    assert claims.verdict(row["margin"], row["p"]) == "leads, not significant"


def test_table2_at_the_papers_budget_is_read_per_data_set(tmp_path):
    for stem in ("table2_svhn_stats", "table2_cifar10_stats"):
        stats({"ae": 0.5, "soft_vqvae": 0.6}, {"ae": 0.01}).to_csv(tmp_path / f"{stem}.csv", index=False)
    assert list(claims.claims(tmp_path)["dataset"]) == ["SVHN (Table 2, the paper's budget)",
                                                         "CIFAR-10 (Table 2, the paper's budget)"]


def test_the_quantizers_study_is_a_data_set_of_the_claims(tmp_path):
    stats({"vq_ema (straight-through)": 0.58, "soft_vqvae": 0.77}, {"vq_ema (straight-through)": 4e-5}).to_csv(
        tmp_path / "quantizers_mnist_stats.csv", index=False)
    [row] = claims.claims(tmp_path).to_dict("records")
    assert (row["dataset"], row["best_other"], row["verdict"]) == ("MNIST (today's quantizers)",
                                                                   "vq_ema (straight-through)", "leads")
    shown = claims.format_claims(claims.claims(tmp_path))
    assert shown["best other row"].iloc[0] == "VectorQuantize, EMA + straight-through 0.5800"


def test_only_the_data_sets_with_statistics_appear(tmp_path):
    stats({"ae": 0.5, "soft_vqvae": 0.4}, {"ae": 0.9}).to_csv(tmp_path / "table2_stats.csv", index=False)
    df = claims.claims(tmp_path)
    assert list(df["dataset"]) == ["lossy CIFAR-10 (Table 2)"] and list(df["verdict"]) == ["trails"]
    claims.write_claims(tmp_path)
    assert "| lossy CIFAR-10 (Table 2) | NMI" in (tmp_path / "claims.md").read_text()


def test_a_table_with_rows_still_missing_gives_no_verdict_and_is_named(tmp_path):
    """Fashion-MNIST with the AE and the soft VQ-VAE in but the VAE missing: no verdict against the best of two."""
    partial = stats({"ae": 0.5, "vae": math.nan, "soft_vqvae": 0.6}, {"ae": 0.01})
    partial.loc[partial["row"] == "vae", "seeds"] = 0
    partial.to_csv(tmp_path / "fashion_table1_stats.csv", index=False)
    stats({"ae": 0.5, "soft_vqvae": 0.4}, {"ae": 0.9}).to_csv(tmp_path / "table2_stats.csv", index=False)
    df = claims.claims(tmp_path)
    assert list(df["dataset"]) == ["lossy CIFAR-10 (Table 2)"]
    assert df.attrs["incomplete"] == {"Fashion-MNIST (Table 1's protocol)": ["vae"]}
    claims.write_claims(tmp_path)
    assert "Left out until every row has runs: Fashion-MNIST (Table 1's protocol) (VAE)." in \
        (tmp_path / "claims.md").read_text()


def test_rechoosing_names_each_rules_pick_beside_table1s_and_mnists_own(tmp_path):
    """Fashion-MNIST's noise sweep clusters best at 0 and probes best at 0.1; MNIST's own sweep picks 0 by both
    rules: only the probe's pick differs from Table 1's setting, and it is named for retraining."""
    from conftest import make_record
    from softvq import experiments
    sweeps = {d: experiments.noise_sweep((0,), 20, levels=(0.0, 0.1), dataset=d) for d in ("fashion-mnist", "mnist")}
    scores = {("fashion-mnist", "noise_std 0"): (0.60, 0.80), ("fashion-mnist", "noise_std 0.1"): (0.55, 0.82),
              ("mnist", "noise_std 0"): (0.70, 0.93), ("mnist", "noise_std 0.1"): (0.65, 0.92)}
    with pytest.raises(FileNotFoundError, match="the sweeps lack results"):
        claims.rechosen([sweeps["fashion-mnist"]], tmp_path)
    for dataset, sweep in sweeps.items():
        for row, [config] in sweep.items():
            clust, probe = scores[dataset, row]
            experiments.write_json(make_record(config, clust, 0.5, probe), experiments.result_path(config, tmp_path))
    df = claims.rechosen([sweeps["fashion-mnist"]], tmp_path, mnist_sweeps=[sweeps["mnist"]])
    assert df.to_dict("records") == [{"bottleneck": "soft_vqvae", "table1": "noise_std 0",
                                      "clust. pick": "noise_std 0", "class. pick": "noise_std 0.1",
                                      "MNIST clust. pick": "noise_std 0", "MNIST class. pick": "noise_std 0",
                                      "retrain": "noise_std 0.1"}]
    experiments.result_path(sweeps["mnist"]["noise_std 0.1"][0], tmp_path).unlink()    # MNIST's picks left out
    assert list(claims.rechosen([sweeps["fashion-mnist"]], tmp_path, [sweeps["mnist"]])) == \
        ["bottleneck", "table1", "clust. pick", "class. pick", "retrain"]