"""Paired significance tests (prism_eval.core.paired) against scipy and known properties."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from prism_eval.core.paired import mcnemar_exact, paired_bootstrap, paired_test


def _pairs(n01: int, n10: int, n11: int, n00: int) -> tuple[list[float], list[float]]:
    a = [1.0] * n10 + [0.0] * n01 + [1.0] * n11 + [0.0] * n00
    b = [0.0] * n10 + [1.0] * n01 + [1.0] * n11 + [0.0] * n00
    return a, b


@pytest.mark.parametrize("n01,n10", [(0, 0), (3, 9), (10, 10), (1, 12), (25, 40), (0, 7)])
def test_mcnemar_matches_scipy_binomial_test(n01, n10):
    a, b = _pairs(n01, n10, n11=30, n00=20)
    r = mcnemar_exact(a, b)
    expected = 1.0 if n01 + n10 == 0 else binomtest(n10, n01 + n10, 0.5).pvalue
    assert r.p_value == pytest.approx(expected, rel=1e-9)
    assert (r.a_only, r.b_only, r.n) == (n10, n01, len(a))
    assert r.diff == pytest.approx((n10 - n01) / len(a))
    rev = mcnemar_exact(b, a)
    assert rev.p_value == pytest.approx(r.p_value) and rev.diff == pytest.approx(-r.diff)


def test_mcnemar_rejects_fractional_scores_and_bad_shapes():
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0.5, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="equal length"):
        mcnemar_exact([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        mcnemar_exact([], [])


def test_paired_test_picks_mcnemar_for_single_binary_answers_else_bootstrap():
    a, b = _pairs(5, 15, 40, 40)
    assert paired_test(a, b).method == "mcnemar-exact"
    frac = [0.5] + a[1:]
    assert paired_test(frac, b, n_resamples=500).method == "paired-bootstrap"
    strata = ["x"] * 50 + ["y"] * 50
    assert paired_test(a, b, strata=strata, n_resamples=500).method == "paired-bootstrap"


def test_bootstrap_identical_inputs_give_zero_difference_and_p_one():
    rng = np.random.default_rng(3)
    a = rng.random(80)
    r = paired_bootstrap(a, a, n_resamples=300)
    assert r.diff == 0.0 and r.p_value == 1.0 and r.ci95 == (0.0, 0.0)


def test_bootstrap_detects_a_real_difference_and_ci_covers_it():
    rng = np.random.default_rng(5)
    base = rng.random(200)
    a = np.clip(base + 0.15 + rng.normal(0, 0.05, 200), 0, 1)
    r = paired_bootstrap(a, base, n_resamples=2000, seed=1)
    assert r.diff == pytest.approx(float(np.mean(a - base)))
    assert r.p_value < 0.001
    assert r.ci95[0] < r.diff < r.ci95[1] and r.ci95[0] > 0


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(9)
    a, b = rng.random(60), rng.random(60)
    assert paired_bootstrap(a, b, seed=4, n_resamples=700) == paired_bootstrap(a, b, seed=4, n_resamples=700)


def test_stratified_statistic_is_the_unweighted_mean_of_stratum_means():
    # Stratum x: 10 questions, A better by 1.0 each; stratum y: 90 questions, no difference.
    a = [1.0] * 10 + [0.5] * 90
    b = [0.0] * 10 + [0.5] * 90
    strata = ["x"] * 10 + ["y"] * 90
    r = paired_bootstrap(a, b, strata=strata, n_resamples=200)
    assert r.diff == pytest.approx(0.5)  # (1.0 + 0.0) / 2, not the pooled 0.1
    pooled = paired_bootstrap(a, b, n_resamples=200)
    assert pooled.diff == pytest.approx(0.1)


def test_cluster_bootstrap_is_wider_than_per_question_when_questions_share_an_image():
    rng = np.random.default_rng(11)
    img_effect = np.repeat(rng.normal(0, 0.3, 30), 5)  # 30 images x 5 questions, correlated within image
    d = img_effect + rng.normal(0, 0.05, 150)
    a, b = 0.5 + d / 2, 0.5 - d / 2
    clusters = np.repeat(np.arange(30), 5)
    per_q = paired_bootstrap(a, b, n_resamples=2000)
    per_img = paired_bootstrap(a, b, clusters=clusters, n_resamples=2000)
    assert (per_img.ci95[1] - per_img.ci95[0]) > 1.5 * (per_q.ci95[1] - per_q.ci95[0])


def test_bootstrap_false_positive_rate_is_near_alpha_under_the_null():
    rng = np.random.default_rng(2024)
    hits = 0
    trials = 200
    for t in range(trials):
        a = rng.binomial(1, 0.6, 120).astype(float) * 0.5 + rng.binomial(1, 0.6, 120) * 0.5
        b = rng.binomial(1, 0.6, 120).astype(float) * 0.5 + rng.binomial(1, 0.6, 120) * 0.5
        hits += paired_bootstrap(a, b, n_resamples=400, seed=t).p_value < 0.05
    assert 0.01 <= hits / trials <= 0.10


def test_bootstrap_needs_two_clusters_per_stratum():
    with pytest.raises(ValueError, match="at least 2"):
        paired_bootstrap([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], clusters=["i", "i", "j"], strata=["s", "s", "t"])
