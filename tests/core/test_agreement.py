"""Kendall tau between two judges' captioner rankings, with an image-bootstrap CI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from prism_eval.core.agreement import judge_agreement, kendall_agreement, question_scores


def _scores(per_captioner: dict[str, list[float]], images: int = 4, bench: str = "b") -> dict:
    """Captioner -> {question: score}, questions spread round-robin over `images` images."""
    return {c: {(bench, f"q{i}", f"img{i % images}"): s for i, s in enumerate(vals)}
            for c, vals in per_captioner.items()}


# Four captioners whose means are strictly ordered 0.8 > 0.6 > 0.4 > 0.2 with per-image noise.
A = {"ref": [1, 1, 0, 1, 1], "part": [1, 0, 1, 0, 1], "wrong": [0, 1, 0, 1, 0], "none": [0, 0, 1, 0, 0]}


def test_identical_rankings_give_tau_one_and_a_ci_at_one():
    judge = _scores(A, images=5)
    # A second judge with other numbers but the same order on every question set.
    other = {c: {k: 0.5 * v + 0.1 for k, v in qs.items()} for c, qs in judge.items()}
    res = kendall_agreement("big", "small", {"big": judge, "small": other}, n_resamples=500)
    assert res.kendall_tau == 1.0
    assert res.n_captioners == 4 and res.n_images == 5 and res.n_questions == 5
    # Every resample keeps the per-question relation (small = affine of big), so every resampled tau is 1
    # where the resample leaves no tie; a tie on both sides leaves tau-b at 1 too.
    assert res.ci95 == (1.0, 1.0)
    assert res.scores["big"]["ref"] == pytest.approx(0.8) and res.scores["small"]["none"] == pytest.approx(0.2)


def test_reversed_rankings_give_tau_minus_one():
    judge = _scores(A, images=5)
    flipped = {c: {k: 1.0 - v for k, v in qs.items()} for c, qs in judge.items()}
    res = kendall_agreement("a", "b", {"a": judge, "b": flipped}, n_resamples=300)
    assert res.kendall_tau == -1.0 and res.ci95 == (-1.0, -1.0)


def test_partial_agreement_matches_scipy_and_the_ci_covers_it():
    rng = np.random.default_rng(3)
    caps = [f"c{i}" for i in range(6)]
    a, b = {}, {}
    for n, c in enumerate(caps):
        a[c] = {("b", f"q{i}", f"im{i // 3}"): float(rng.random() < 0.2 + 0.1 * n) for i in range(60)}
        b[c] = {k: float(rng.random() < 0.5) for k in a[c]}
    res = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=2000, seed=1)
    means_a = [np.mean(list(a[c].values())) for c in caps]
    means_b = [np.mean(list(b[c].values())) for c in caps]
    assert res.kendall_tau == pytest.approx(stats.kendalltau(means_a, means_b).statistic, abs=1e-12)
    assert res.n_images == 20 and -1 <= res.ci95[0] <= res.kendall_tau <= res.ci95[1] <= 1
    assert res.ci95[1] - res.ci95[0] > 0.2  # 20 images cannot pin a 6-way ranking down
    # Tied captioners: tau-b, as scipy computes it.
    b["c1"] = dict(b["c0"])
    tied = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=10)
    means_b = [np.mean(list(b[c].values())) for c in caps]
    assert means_b[0] == means_b[1]
    assert tied.kendall_tau == pytest.approx(stats.kendalltau(means_a, means_b).statistic, abs=1e-12)


def test_benchmarks_weigh_equally_and_images_resample_within_their_benchmark():
    # Benchmark x has 1 question per captioner, y has 3; the leaderboard mean weighs x and y equally.
    a = {"p": {("x", "1", "i1"): 1.0, ("x", "2", "i2"): 1.0, ("y", "1", "j1"): 0.0, ("y", "2", "j2"): 0.0},
         "q": {("x", "1", "i1"): 0.0, ("x", "2", "i2"): 0.0, ("y", "1", "j1"): 0.5, ("y", "2", "j2"): 0.5},
         "r": {("x", "1", "i1"): 0.0, ("x", "2", "i2"): 0.0, ("y", "1", "j1"): 0.0, ("y", "2", "j2"): 0.0}}
    res = kendall_agreement("a", "b", {"a": a, "b": a}, n_resamples=50)
    assert res.scores["a"] == {"p": 0.5, "q": 0.25, "r": 0.0}
    assert res.n_images == 4 and res.kendall_tau == 1.0


def test_same_seed_same_ci_and_another_seed_differs():
    rng = np.random.default_rng(0)
    a = {f"c{n}": {("b", f"q{i}", f"im{i // 2}"): float(rng.random() < 0.3 + 0.1 * n) for i in range(40)}
         for n in range(5)}
    b = {c: {k: float(rng.random() < 0.5) for k in qs} for c, qs in a.items()}
    one = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=400, seed=7)
    two = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=400, seed=7)
    other = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=400, seed=8)
    assert one == two and one.ci95 != other.ci95 and one.kendall_tau == other.kendall_tau


def test_fewer_than_two_captioners_and_a_judge_that_ties_everyone_say_why():
    one = kendall_agreement("a", "b", {"a": _scores({"ref": [1, 0]}), "b": _scores({"ref": [1, 1]})})
    assert one.kendall_tau is None and one.ci95 is None and "1 captioner(s)" in one.reason
    # Captioners that only one judge scored do not count.
    lone = kendall_agreement("a", "b", {"a": _scores({"ref": [1], "x": [0]}), "b": _scores({"ref": [1], "y": [0]})})
    assert lone.n_captioners == 1 and lone.kendall_tau is None
    flat = kendall_agreement("a", "b", {"a": _scores({"p": [1, 0], "q": [0, 1]}),
                                        "b": _scores({"p": [1, 0], "q": [1, 0]})})
    assert flat.kendall_tau is None and flat.reason == "a gives every captioner the same score; tau is undefined"
    assert json.loads(json.dumps(flat.to_json()))["kendall_tau"] is None


def test_only_questions_every_run_scored_are_used_and_the_rest_counted():
    a = _scores({"p": [1, 1, 0], "q": [0, 0, 1]}, images=3)
    b = _scores({"p": [1, 1, 0], "q": [0, 0, 1]}, images=3)
    del b["q"][("b", "q2", "img2")]  # failed under judge b
    res = kendall_agreement("a", "b", {"a": a, "b": b}, n_resamples=20)
    assert res.n_questions == 2 and res.questions_left_out == 1 and res.kendall_tau == 1.0


def test_bad_input_is_named():
    a = _scores({"p": [1, 0], "q": [0, 1]})
    with pytest.raises(ValueError, match="no scores for judge 'c'"):
        kendall_agreement("a", "c", {"a": a, "b": a})
    with pytest.raises(ValueError, match="both judges are 'a'"):
        kendall_agreement("a", "a", {"a": a})
    bad = {c: dict(qs) for c, qs in a.items()}
    bad["p"][("b", "q0", "img0")] = float("nan")
    with pytest.raises(ValueError, match=r"question \('b', 'q0', 'img0'\) has a non-finite score"):
        kendall_agreement("a", "b", {"a": a, "b": bad})


def test_pairs_of_three_judges_in_order():
    a = _scores(A, images=5)
    rev = {c: {k: 1.0 - v for k, v in qs.items()} for c, qs in a.items()}
    out = judge_agreement({"x": a, "y": a, "z": rev}, n_resamples=20)
    assert [(r.judges, r.kendall_tau) for r in out] == [(("x", "y"), 1.0), (("x", "z"), -1.0), (("y", "z"), -1.0)]


def test_question_scores_from_samples_rows():
    rows = [
        {"benchmark": "b", "question_id": "q1", "image": "i1", "score": 1.0, "status": "ok"},
        {"benchmark": "b", "question_id": "q1", "image": "i1", "score": 0.0, "status": "ok"},  # second caption
        {"benchmark": "b", "question_id": "q2", "image": "i1", "score": 1.0, "status": "ok"},
        {"benchmark": "b", "question_id": "q2", "image": "i1", "score": 0.0, "status": "failed"},
    ]
    qs = question_scores(rows)
    assert qs.scores == {("b", "q1", "i1"): 0.5} and qs.failed_questions == 1
    with pytest.raises(ValueError, match="samples row 1: needs benchmark, question_id and a numeric score"):
        question_scores([{"benchmark": "b", "question_id": "q", "score": "high"}])
