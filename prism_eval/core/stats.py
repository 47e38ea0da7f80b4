"""Aggregates over per-question scores: means, best-of-n, categories, bootstrap CIs.

Questions about the same image are not independent, so confidence intervals
resample whole samples (images), not questions.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np


def mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def cluster_bootstrap_ci(scores: Sequence[float], clusters: Sequence[str], *, n_boot: int = 2000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile CI of the mean of `scores`, resampling whole clusters with replacement."""
    if not scores:
        return None
    groups: dict[str, list[float]] = defaultdict(list)
    for s, c in zip(scores, clusters):
        groups[c].append(s)
    sums = np.array([sum(v) for v in groups.values()], dtype=float)
    counts = np.array([len(v) for v in groups.values()], dtype=float)
    if len(sums) == 1:
        m = float(sums[0] / counts[0])
        return m, m
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def by_category(scores: Sequence[float], categories: Sequence[str | None]) -> dict[str, float]:
    """Mean score per category (items without a category are left out)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for s, c in zip(scores, categories):
        if c is not None:
            groups[c].append(s)
    return {c: sum(v) / len(v) for c, v in sorted(groups.items())}
