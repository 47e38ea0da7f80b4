"""How far two judges agree on the ranking of the same captioners.

Why: a cheap judge is only a usable stand-in for an expensive one in a captioner
sweep if it orders the captioners the same way. Kendall's tau between the two
judges' captioner scores measures that; its uncertainty comes from the images
(a different set of images could reorder close captioners), so the CI resamples
images, the unit the leaderboard's own CIs resample, and recomputes every
captioner's score under both judges from the per-question scores of the same
resampled images before recomputing tau.

Scores follow the leaderboard: a captioner's score is the unweighted mean over
benchmarks of its mean per-question score there. Tau is tau-b (ties count for
neither side, as in scipy.stats.kendalltau), so a judge that scores two
captioners equally is not forced into an order. Pure numpy/scipy.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["QuestionKey", "QuestionScores", "Agreement", "question_scores", "kendall_agreement",
           "judge_agreement"]

QuestionKey = tuple[str, str, str]  # (benchmark, question id, image)
# judge -> captioner -> question -> score in [0, 1]
JudgeScores = Mapping[str, Mapping[str, Mapping[QuestionKey, float]]]

_TIE = 1e-12  # captioner scores closer than this are a tie (equal means summed in another order)


@dataclass(frozen=True)
class QuestionScores:
    """One run's per-question scores (mean over its captions and draws), and what was left out."""

    scores: dict[QuestionKey, float]
    failed_questions: int  # questions with a failed ask: left out, as the run's own score leaves them out


def question_scores(rows: Iterable[Mapping[str, Any]]) -> QuestionScores:
    """Per-question mean scores from samples.jsonl rows (benchmark, question_id, image, score, status)."""
    acc: dict[QuestionKey, list[float]] = defaultdict(list)
    failed: set[QuestionKey] = set()
    for i, row in enumerate(rows, 1):
        try:
            key = (str(row["benchmark"]), str(row["question_id"]),
                   str(row.get("image") or row.get("sample_id") or row["question_id"]))
            score = float(row["score"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"samples row {i}: needs benchmark, question_id and a numeric score ({err})") from None
        if row.get("status") == "failed":
            failed.add(key)
            continue
        acc[key].append(score)
    return QuestionScores({k: sum(v) / len(v) for k, v in acc.items() if k not in failed}, len(failed))


@dataclass(frozen=True)
class Agreement:
    """Kendall's tau-b between two judges' captioner scores, with an image-bootstrap 95% CI.

    `kendall_tau` and `ci95` are None when tau is undefined (`reason` says why:
    fewer than 2 captioners, or one judge scoring every captioner the same).
    `scores` holds each judge's leaderboard (captioner -> score in [0, 1]) on the
    questions both judges scored for every captioner.
    """

    judges: tuple[str, str]
    kendall_tau: float | None
    ci95: tuple[float, float] | None
    n_captioners: int
    n_images: int
    n_questions: int
    captioners: tuple[str, ...] = ()
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    questions_left_out: int = 0  # scored for some (judge, captioner) but not all: not used
    undefined_resamples: int = 0  # bootstrap resamples where one judge tied every captioner (not in the CI)
    n_resamples: int = 0
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"judges": list(self.judges), "kendall_tau": self.kendall_tau,
                "ci95": list(self.ci95) if self.ci95 is not None else None,
                "n_captioners": self.n_captioners, "n_images": self.n_images, "n_questions": self.n_questions,
                "captioners": list(self.captioners), "scores": self.scores,
                "questions_left_out": self.questions_left_out, "undefined_resamples": self.undefined_resamples,
                "n_resamples": self.n_resamples, "reason": self.reason}


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tau-b of the last axis of x against y (..., C); NaN where either side has no untied pair."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    dx, dy = x[..., i] - x[..., j], y[..., i] - y[..., j]
    sx = np.where(np.abs(dx) <= _TIE, 0.0, np.sign(dx))
    sy = np.where(np.abs(dy) <= _TIE, 0.0, np.sign(dy))
    den = np.sqrt((sx * sx).sum(-1) * (sy * sy).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (sx * sy).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def _check(judge_a: str, judge_b: str, scores: JudgeScores, n_resamples: int) -> None:
    for j in (judge_a, judge_b):
        if j not in scores:
            raise ValueError(f"judge agreement: no scores for judge {j!r} (have: {', '.join(map(repr, scores))})")
    if judge_a == judge_b:
        raise ValueError(f"judge agreement: both judges are {judge_a!r}")
    if n_resamples < 1:
        raise ValueError("judge agreement: n_resamples must be at least 1")


def _shared_questions(tables: list[Mapping[QuestionKey, float]]) -> tuple[list[QuestionKey], int]:
    """The questions every table scored (sorted, checked finite), and how many others some table scored."""
    everywhere = set.intersection(*(set(t) for t in tables)) if tables else set()
    seen = set().union(*(set(t) for t in tables)) if tables else set()
    keys = sorted(everywhere)
    for t in tables:
        for k in keys:
            if not math.isfinite(float(t[k])):
                raise ValueError(f"judge agreement: question {k} has a non-finite score {t[k]!r}")
    return keys, len(seen) - len(keys)


class _ImageBoard:
    """Per image, each column's sum of question scores: leaderboards for any weighting of the images."""

    def __init__(self, keys: list[QuestionKey], tables: list[Mapping[QuestionKey, float]]) -> None:
        self.images = sorted({(k[0], k[2]) for k in keys})
        index = {im: n for n, im in enumerate(self.images)}
        q_img = np.array([index[(k[0], k[2])] for k in keys])
        values = np.array([[float(t[k]) for k in keys] for t in tables])  # (columns, Q)
        self.sums = np.stack([np.bincount(q_img, weights=v, minlength=len(self.images)) for v in values], axis=1)
        self.counts = np.bincount(q_img, minlength=len(self.images)).astype(float)
        benches = sorted({b for b, _ in self.images})
        self.members = [np.array([n for n, (b, _) in enumerate(self.images) if b == bench]) for bench in benches]

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """Leaderboard scores (R, columns) for image weights (R, I): mean over benchmarks of per-benchmark means."""
        total = np.zeros((weights.shape[0], self.sums.shape[1]))
        for m in self.members:
            w = weights[:, m]
            total += (w @ self.sums[m]) / (w @ self.counts[m])[:, None]
        return total / len(self.members)

    def bootstrap_taus(self, n_c: int, n_resamples: int, seed: int, chunk: int) -> np.ndarray:
        """Tau-b of the first n_c columns against the next n_c, per image resample (within each benchmark)."""
        rng = np.random.default_rng(seed)
        taus = np.empty(n_resamples)
        for start in range(0, n_resamples, chunk):
            r = min(chunk, n_resamples - start)
            weights = np.zeros((r, len(self.images)))
            for m in self.members:
                draw = m[rng.integers(0, len(m), size=(r, len(m)))]
                np.add.at(weights, (np.arange(r)[:, None], draw), 1.0)
            boot = self.scores(weights)
            taus[start:start + r] = _tau_b(boot[:, :n_c], boot[:, n_c:])
        return taus


def kendall_agreement(judge_a: str, judge_b: str, scores: JudgeScores, *, n_resamples: int = 10_000,
                      seed: int = 0, chunk: int = 1000) -> Agreement:
    """Tau between two judges over the captioners both scored, on the questions all of them share.

    Each bootstrap resample draws images with replacement within each benchmark
    (as many as it has) and applies the same draw to every captioner under both
    judges, so the pairing of the data is kept.
    """
    _check(judge_a, judge_b, scores, n_resamples)
    captioners = tuple(c for c in scores[judge_a] if c in scores[judge_b])
    tables = [scores[j][c] for j in (judge_a, judge_b) for c in captioners]
    keys, left_out = _shared_questions(tables)
    base = dict(judges=(judge_a, judge_b), n_captioners=len(captioners),
                n_images=len({(k[0], k[2]) for k in keys}), n_questions=len(keys), captioners=captioners,
                questions_left_out=left_out)
    if len(captioners) < 2:
        return Agreement(kendall_tau=None, ci95=None, **base,
                         reason=f"{len(captioners)} captioner(s) scored by both judges; tau needs at least 2")
    if not keys:
        return Agreement(kendall_tau=None, ci95=None, **base,
                         reason="no question was scored for every captioner under both judges")
    table = _ImageBoard(keys, tables)
    n_c = len(captioners)
    point = table.scores(np.ones((1, len(table.images))))[0]
    tau = float(_tau_b(point[:n_c], point[n_c:]))
    lead = {j: {c: float(point[k * n_c + n]) for n, c in enumerate(captioners)}
            for k, j in enumerate((judge_a, judge_b))}
    if math.isnan(tau):
        tied = judge_a if np.all(np.abs(point[:n_c] - point[0]) <= _TIE) else judge_b
        return Agreement(kendall_tau=None, ci95=None, scores=lead, **base,
                         reason=f"{tied} gives every captioner the same score; tau is undefined")
    taus = table.bootstrap_taus(n_c, n_resamples, seed, chunk)
    defined = taus[~np.isnan(taus)]
    ci = None
    if defined.size:
        lo, hi = np.quantile(defined, [0.025, 0.975])
        ci = (float(lo), float(hi))
    return Agreement(kendall_tau=tau, ci95=ci, scores=lead, undefined_resamples=int(taus.size - defined.size),
                     n_resamples=n_resamples, **base)


def judge_agreement(scores: JudgeScores, *, judges: Sequence[str] | None = None, n_resamples: int = 10_000,
                    seed: int = 0) -> list[Agreement]:
    """Every pair of judges (in the given order), each with its own tau and CI."""
    order = list(judges) if judges is not None else list(scores)
    return [kendall_agreement(a, b, scores, n_resamples=n_resamples, seed=seed)
            for n, a in enumerate(order) for b in order[n + 1:]]
