"""Paired significance tests between two captioners scored on the same questions.

Why: two captioners answered by the same judge on the same questions share each
question's difficulty. Testing the per-question *differences* removes that shared
variance, so a 2-point gap can be significant even when the two unpaired 95% CIs
overlap (and vice versa a gap can be noise). Pure numpy/scipy, no model imports.

- `mcnemar_exact`: one 0/1 result per question on both sides (a single caption,
  a single judge draw, argmax scoring). Exact two-sided binomial test on the
  discordant pairs.
- `paired_bootstrap`: any scores in [0, 1] (several captions, expected accuracy).
  Resamples whole clusters (images: questions about one image are correlated)
  within strata (benchmarks: the leaderboard average weighs benchmarks equally).
- `paired_test`: picks McNemar when it applies, the bootstrap otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
from scipy import stats

__all__ = ["PairedResult", "mcnemar_exact", "paired_bootstrap", "paired_test"]


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired test of A against B; `diff` is mean(A) - mean(B) in input units."""

    method: str  # "mcnemar-exact" | "paired-bootstrap"
    n: int  # paired questions
    diff: float
    ci95: tuple[float, float] | None
    p_value: float
    a_only: int | None = None  # McNemar: questions A got right and B wrong
    b_only: int | None = None  # McNemar: questions B got right and A wrong

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired test needs two 1-D arrays of equal length, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired test needs at least one paired question")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("paired test got a non-finite score")
    return x, y


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> PairedResult:
    """Exact McNemar test on paired 0/1 outcomes.

    Under H0 each discordant question is equally likely to favour A or B, so the
    count favouring A is Binomial(discordant, 1/2). The CI is the Wald interval of
    the difference of paired proportions (reported for scale, not used by the test).
    """
    x, y = _pair(a, b)
    if not (_is_binary(x) and _is_binary(y)):
        raise ValueError("McNemar needs 0/1 outcomes; use paired_bootstrap for fractional scores")
    n = int(x.size)
    a_only = int(np.sum((x == 1) & (y == 0)))
    b_only = int(np.sum((x == 0) & (y == 1)))
    m = a_only + b_only
    p = 1.0 if m == 0 else float(min(1.0, 2.0 * stats.binom.cdf(min(a_only, b_only), m, 0.5)))
    diff = (a_only - b_only) / n
    se = np.sqrt(max(m - (a_only - b_only) ** 2 / n, 0.0)) / n
    ci = (float(diff - 1.96 * se), float(diff + 1.96 * se))
    return PairedResult("mcnemar-exact", n, float(diff), ci, p, a_only, b_only)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *,
                     clusters: Sequence[Hashable] | None = None,
                     strata: Sequence[Hashable] | None = None,
                     n_resamples: int = 10_000, seed: int = 0,
                     chunk: int = 1000) -> PairedResult:
    """Paired bootstrap of the mean difference A - B.

    The statistic is the unweighted mean over strata of each stratum's mean
    difference (one stratum: the plain mean). Each resample draws, within every
    stratum, as many clusters as it has, with replacement (no clusters given:
    each question is its own cluster). The two-sided p-value is the share of
    resampled statistics at least as far from the observed one as the observed
    one is from 0 (the bootstrap distribution shifted to H0), with the usual +1
    correction so it is never 0.
    """
    x, y = _pair(a, b)
    d = x - y
    n = int(d.size)
    cl = list(range(n)) if clusters is None else list(clusters)
    st = [0] * n if strata is None else list(strata)
    if len(cl) != n or len(st) != n:
        raise ValueError("clusters and strata must have one entry per paired question")
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")

    # Index every question by (stratum, cluster within that stratum).
    cluster_ids: dict[Hashable, dict[Hashable, int]] = {}
    s_idx = np.empty(n, int)
    c_idx = np.empty(n, int)
    order: dict[Hashable, int] = {}
    for i, (s, c) in enumerate(zip(st, cl)):
        cmap = cluster_ids.setdefault(s, {})
        s_idx[i] = order.setdefault(s, len(order))
        c_idx[i] = cmap.setdefault(c, len(cmap))
    rng = np.random.default_rng(seed)
    observed = []
    boot = np.zeros(n_resamples)
    for s, k in ((s, len(cmap)) for s, cmap in cluster_ids.items()):
        if k < 2:
            raise ValueError(f"stratum {s!r} has 1 cluster; the bootstrap needs at least 2")
        mask = s_idx == order[s]
        # Each cluster's sum of differences and question count.
        sums = np.bincount(c_idx[mask], weights=d[mask], minlength=k)
        counts = np.bincount(c_idx[mask], minlength=k).astype(float)
        observed.append(sums.sum() / counts.sum())
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            draw = rng.integers(0, k, size=(stop - start, k))
            boot[start:stop] += sums[draw].sum(axis=1) / counts[draw].sum(axis=1)
    boot /= len(cluster_ids)
    t = float(np.mean(observed))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    extreme = int(np.sum(np.abs(boot - t) >= abs(t) - 1e-12))
    p = 1.0 if t == 0 else float(min(1.0, (1 + extreme) / (1 + n_resamples)))
    return PairedResult("paired-bootstrap", n, t, (float(lo), float(hi)), p)


def paired_test(a: Sequence[float], b: Sequence[float], *,
                clusters: Sequence[Hashable] | None = None,
                strata: Sequence[Hashable] | None = None,
                n_resamples: int = 10_000, seed: int = 0) -> PairedResult:
    """Exact McNemar for 0/1 outcomes in one stratum, else the clustered paired bootstrap."""
    x, y = _pair(a, b)
    one_stratum = strata is None or len(set(strata)) == 1
    if one_stratum and _is_binary(x) and _is_binary(y):
        return mcnemar_exact(x, y)
    return paired_bootstrap(x, y, clusters=clusters, strata=strata,
                            n_resamples=n_resamples, seed=seed)
