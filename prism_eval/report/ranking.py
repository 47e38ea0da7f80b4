"""Who wins, with its uncertainty: a CI for each average, rank ranges, the margin over the blind baseline.

Why: a leaderboard sorted by point estimates invites reading a 0.3-point gap as a
win. Ranks here are ranges in the style of Chatbot Arena: a row's best rank is one
plus the number of rows whose CI lies wholly above its CI, its worst rank the row
count minus the rows wholly below it, so rows whose CIs overlap share a range. The
blind baseline (empty captions) is the floor a caption has to beat: each row's
margin over it comes from the paired test on the average when samples exist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from prism_eval.core.paired import PairedResult
from prism_eval.report.model import Cell, Matrix, Row

__all__ = ["BlindDelta", "average_ci", "rank_ranges", "blind_deltas", "Z95"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class BlindDelta:
    """A row's average minus the blind baseline's, in points; CI, p and n from the paired test when there is one."""

    diff: float
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    n: int | None = None
    method: str | None = None

    @property
    def below(self) -> bool:
        return self.diff < 0

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


def average_ci(cells: Sequence[Cell | None]) -> tuple[float, float] | None:
    """95% CI of the unweighted mean of benchmark scores whose own CIs are given.

    One benchmark: its own CI. Several: each CI read as +-1.96 standard errors
    and the errors combined as independent (the benchmarks share no images).
    """
    if not cells or any(c is None or c.ci95 is None for c in cells):
        return None
    if len(cells) == 1:
        return cells[0].ci95  # type: ignore[union-attr]
    ses = [(c.ci95[1] - c.ci95[0]) / (2 * Z95) for c in cells]  # type: ignore[union-attr,index]
    mean = sum(c.score for c in cells) / len(cells)  # type: ignore[union-attr]
    se = math.sqrt(sum(s * s for s in ses)) / len(cells)
    return mean - Z95 * se, mean + Z95 * se


def rank_ranges(rows: Sequence[Row]) -> None:
    """Set `rank_range` (best, worst) on every row with an average CI; rows without one get None."""
    ranked = [r for r in rows if r.average is not None and r.average_ci is not None]
    n = len(ranked)
    for row in rows:
        row.rank_range = None
    for row in ranked:
        lo, hi = row.average_ci  # type: ignore[misc]
        above = sum(1 for o in ranked if o is not row and o.average_ci[0] > hi)  # type: ignore[index]
        below = sum(1 for o in ranked if o is not row and o.average_ci[1] < lo)  # type: ignore[index]
        row.rank_range = (1 + above, n - below)


def _pair(matrix: Matrix | None, a: str, b: str) -> PairedResult | None:
    if matrix is None or a not in matrix.labels or b not in matrix.labels:
        return None
    return matrix.cells[matrix.labels.index(a)][matrix.labels.index(b)]


def blind_deltas(rows: Sequence[Row], average_matrix: Matrix | None) -> str | None:
    """Set `vs_blind` on every non-blind row with an average; returns the blind row's label (None: no baseline)."""
    blind = next((r for r in rows if r.run.blind and r.average is not None), None)
    for row in rows:
        row.vs_blind = None
    if blind is None:
        return None
    for row in rows:
        if row is blind or row.run.blind or row.average is None:
            continue
        test = _pair(average_matrix, row.run.label, blind.run.label)
        if test is None:
            row.vs_blind = BlindDelta(diff=row.average - blind.average)  # type: ignore[operator]
        else:
            ci = None if test.ci95 is None else (100 * test.ci95[0], 100 * test.ci95[1])
            row.vs_blind = BlindDelta(diff=100 * test.diff, ci95=ci, p_value=test.p_value, n=test.n,
                                      method=test.method)
    return blind.run.label
