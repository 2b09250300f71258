"""softvq.verdicts: the sentences say what the numbers say (leader, margin, whether the seeds back it)."""
import math

import pandas as pd

from softvq import verdicts


def table(rows):
    """A `tables.collect`-like frame: {row: (seeds, clustering %, nmi, classification %)}."""
    df = pd.DataFrame({r: dict(seeds=v[0], cluster_acc=v[1], nmi=v[2], classification_acc=v[3], bottleneck=r.split()[0])
                       for r, v in rows.items()}).T
    return df.astype({"seeds": int, "cluster_acc": float, "nmi": float, "classification_acc": float})


def statistics(reference, rows):
    """A `tables.seed_statistics`-like frame: {(row, metric): (mean, low, high, p)}."""
    df = pd.DataFrame([dict(row=r, metric=m, seeds=3, mean=v[0], ci_low=v[1], ci_high=v[2], p_reference_better=v[3])
                       for (r, m), v in rows.items()])
    df.attrs["reference"] = reference
    return df


def test_leader_margin_and_a_significant_lead():
    df = table({"soft_vqvae": (3, 80.0, 0.75, 96.0), "vae": (3, 70.0, 0.60, 95.0), "raw": (1, 90.0, 0.9, 99.0)})
    stats = statistics("soft_vqvae", {("soft_vqvae", "cluster_acc"): (80, 78, 82, math.nan),
                                      ("vae", "cluster_acc"): (70, 68, 72, 0.001)})
    text = verdicts.table_verdict(df, stats, metrics=["cluster_acc"])
    assert "soft VQ-VAE leads with 80.00 %, 10.00 points ahead of VAE (70.00 %)" in text   # raw pixels not racing
    assert "beats each of the 1 other rows at one-sided p <= 0.001" in text


def test_a_lead_within_the_seed_noise_says_so():
    df = table({"soft_vqvae": (3, 80.0, 0.75, 96.0), "vae": (3, 79.0, 0.60, 95.0)})
    stats = statistics("soft_vqvae", {("soft_vqvae", "cluster_acc"): (80, 75, 85, math.nan),
                                      ("vae", "cluster_acc"): (79, 74, 84, 0.4)})
    text = verdicts.table_verdict(df, stats, metrics=["cluster_acc"])
    assert "within the seed noise against VAE (one-sided p = 0.4; 0 of 1 rows" in text


def test_another_leader_is_measured_against_the_reference():
    df = table({"soft_vqvae": (3, 60.0, 0.5, 90.0), "vae": (3, 70.0, 0.6, 95.0), "ae": (3, 65.0, 0.5, 91.0)})
    stats = statistics("soft_vqvae", {("soft_vqvae", "cluster_acc"): (60, 58, 62, math.nan),
                                      ("vae", "cluster_acc"): (70, 68, 72, 0.99),
                                      ("ae", "cluster_acc"): (65, 60, 70, 0.9)})
    text = verdicts.table_verdict(df, stats, metrics=["cluster_acc"])
    assert "VAE leads with 70.00 %, 5.00 points ahead of baseline AE" in text
    assert "soft VQ-VAE is 10.00 points behind; the leader's 95 % interval clears the soft VQ-VAE's" in text
    text = verdicts.table_verdict(df.drop("ae"), stats[stats["row"] != "ae"], metrics=["cluster_acc"])
    assert "ahead of soft VQ-VAE (60.00 %). The leader's 95 % interval clears" in text    # the runner-up is it


def test_one_seed_sweeps_race_per_group_and_warn():
    df = table({"vae sum": (1, 65.0, 0.55, 93.0), "vae KL/d": (1, 58.0, 0.52, 92.8),
                "beta_vae sum": (1, 26.0, 0.20, 45.0), "beta_vae KL/d": (1, 49.0, 0.47, 92.9)})
    text = verdicts.table_verdict(df, metrics=["classification_acc"], by="bottleneck")
    assert "**VAE**\n\n- **classification accuracy**: vae sum leads with 93.00 %, 0.20 points ahead" in text
    assert "beta_vae KL/d leads with 92.90 %, 47.90 points ahead of beta_vae sum" in text
    assert text.endswith(verdicts.ONE_SEED)


def test_reference_verdict_splits_significant_from_the_rest():
    stats = statistics("official-code", {("official-code", "nmi"): (0.66, 0.6, 0.7, math.nan),
                                         ("paper soft_vqvae", "nmi"): (0.36, 0.3, 0.4, 0.001),
                                         ("paper recon", "nmi"): (0.64, 0.6, 0.7, 0.2)})
    text = verdicts.reference_verdict(stats, metrics=["nmi"])
    assert "worse at one-sided p < 0.05: paper soft_vqvae (-0.3000); not shown to differ: paper recon (-0.0200)" in text


def test_codebook_verdict_reads_the_statistics():
    df = pd.DataFrame({"vqvae": dict(seeds=5, K=128, codewords_used=56.0, perplexity_hard=32.0, mean_max_posterior=math.nan),
                       "soft_vqvae": dict(seeds=5, K=128, codewords_used=108.0, perplexity_hard=64.0,
                                          mean_max_posterior=0.08)}).T
    text = verdicts.codebook_verdict(df)
    assert "**VQ-VAE** uses 56 of its K = 128 codewords (44%); the hard perplexity is 32, so 25% of K" in text
    assert "mean largest posterior is 0.080 (a blend of codewords)" in text and "posterior" not in text.splitlines()[0]


def test_swap_verdict_names_the_best_test_time_estimator_and_whether_the_seeds_back_it():
    from softvq.estimator_swap import swap_table
    swaps = {"posterior mean": [{"estimator_swap": {e: {k: v for k in ("recon_loss", "pixel_mse", "dist_noisy",
                                                                       "dist_code")}
                                                    for e, v in (("mean", 0.1 + s), ("sample", 1.2), ("argmax", 1.0))}}
                                for s in (0.0, 0.002)],
             "posterior argmax": [{"estimator_swap": {e: {k: v + s for k in ("recon_loss", "pixel_mse", "dist_noisy",
                                                                          "dist_code")}
                                                      for e, v in (("mean", 0.5), ("sample", 0.6), ("argmax", 0.501))}}
                                  for s in (0.0, 0.02)]}
    text = verdicts.swap_verdict(swap_table(swaps))
    first, second = text.split("\n")
    assert "the posterior mean gives the lowest reconstruction loss (0.101); the runner-up, the argmax," in first
    assert "gives 9.9 times as much (1; means over 2 seeds)" in first
    assert "the runner-up, the argmax, gives 0.2% more (0.511, within the spread over seeds" in second


def test_leads_sentence_quotes_the_largest_p_of_every_one_sided_test():
    stats = statistics("soft_vqvae", {("soft_vqvae", "cluster_acc"): (80, 78, 82, math.nan),
                                      ("vq_ema", "cluster_acc"): (50, 48, 52, 0.001),
                                      ("fsq", "cluster_acc"): (70, 68, 72, 0.02),
                                      ("soft_vqvae", "nmi"): (0.7, 0.6, 0.8, math.nan),
                                      ("vq_ema", "nmi"): (0.69, 0.6, 0.8, 0.3),
                                      ("soft_vqvae", "classification_acc"): (90, 89, 91, math.nan),
                                      ("fsq", "classification_acc"): (95, 94, 96, 1.0)})
    text = verdicts.leads_sentence(stats, "MNIST")
    assert text.startswith("MNIST: the soft VQ-VAE leads every other row on clustering accuracy (80.00 % against "
                           "FSQ's 70.00 %; largest one-sided p = 0.02)")
    assert "has the highest mean NMI but does not beat VectorQuantize (EMA) at p < 0.05" in text
    assert text.endswith("and trails FSQ on classification accuracy (90.00 % against FSQ's 95.00 %).")
    one_seed = statistics("soft_vqvae", {("soft_vqvae", "nmi"): (0.7, 0.7, 0.7, math.nan),
                                         ("vq_ema", "nmi"): (0.5, 0.5, 0.5, math.nan)})     # the quick budget
    assert verdicts.leads_sentence(one_seed, "MNIST") == (
        "MNIST: the soft VQ-VAE has the highest mean NMI (0.7000 against VectorQuantize (EMA)'s 0.5000; one seed, so "
        "no test).")
    partly = statistics("soft_vqvae", {("soft_vqvae", "nmi"): (0.7, 0.68, 0.72, math.nan),
                                       ("vq_ema", "nmi"): (0.5, 0.48, 0.52, 0.001),
                                       ("fsq", "nmi"): (0.6, 0.6, 0.6, math.nan)})        # FSQ: one seed so far
    assert verdicts.leads_sentence(partly, "MNIST") == (
        "MNIST: the soft VQ-VAE has the highest mean NMI (0.7000 against FSQ's 0.6000), beating every row with two "
        "seeds or more (largest one-sided p = 0.001; FSQ: one seed, so no test).")
    waiting = statistics("soft_vqvae", {("soft_vqvae", "cluster_acc"): (80, 78, 82, math.nan),
                                        ("vq_ema", "cluster_acc"): (50, 48, 52, 0.001),
                                        ("diveq", "cluster_acc"): (math.nan, math.nan, math.nan, math.nan)})
    waiting.loc[waiting["row"] == "diveq", "seeds"] = 0
    assert verdicts.leads_sentence(waiting, "MNIST").endswith(
        "So far: DiVeQ has no results yet, and the sentence covers only the rows that do.")
