"""The leaderboard's records: what board.py computes and every renderer formats.

Kept apart from the computation so the modules that add to a board (ranking,
columns) can share the types without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prism_eval.core.paired import PairedResult
from prism_eval.report.reference import ReferenceRow
from prism_eval.report.runs import Run
from prism_eval.runner.results import RunSettings

__all__ = ["Cell", "Row", "RefLine", "Matrix", "CatCell", "CategoryTable", "LengthStats", "Board", "AVERAGE", "TOKENS"]

AVERAGE = "Average"
TOKENS = "judge tokens"  # BenchmarkResult.length_unit of runs that count captions in the judge's tokens


@dataclass
class Cell:
    score: float
    ci95: tuple[float, float] | None
    n: int
    best_of_n: float | None
    unanswered: int
    failed: int
    rank: float | None = None
    best: bool = False


@dataclass
class Row:
    run: Run
    cells: dict[str, Cell | None]
    average: float | None  # mean over the board's benchmarks; None when one is missing
    avg_rank: float | None
    mean_length: float | None  # mean caption length (board's unit) over distinct captions
    best_average: bool = False
    average_ci: tuple[float, float] | None = None
    rank_range: tuple[int, int] | None = None  # (best, worst) rank from overlapping CIs
    vs_blind: Any = None  # ranking.BlindDelta, or None (no baseline, or the baseline itself)
    diag: Any = None  # diagnostics.RowDiagnostics: outcome shares, vision-required, the length curve


@dataclass
class RefLine:
    ref: ReferenceRow
    cells: dict[str, float | None]  # by run benchmark name
    average: float | None  # mean over the shown benchmarks, only when the paper has all of them


@dataclass
class Matrix:
    """Pairwise paired tests; cells[i][j] tests row i against row j (None: not testable)."""

    bench: str
    labels: list[str]
    cells: list[list[PairedResult | None]]
    notes: list[list[str]]


@dataclass
class CatCell:
    """One run's score in one category: the recorded score, and n and a CI when samples exist."""

    score: float
    n: int | None = None
    ci95: tuple[float, float] | None = None


@dataclass
class CategoryTable:
    bench: str
    categories: list[str]
    rows: list[tuple[str, bool, dict[str, float]]]  # (label, blind, scores)
    best: dict[str, float]
    cells: dict[str, dict[str, CatCell]] = field(default_factory=dict)  # label -> category -> cell
    n: dict[str, int | None] = field(default_factory=dict)  # category -> n when every run has the same
    clear_best: dict[str, str | None] = field(default_factory=dict)  # category -> label ahead beyond its CI


@dataclass
class LengthStats:
    unit: str  # "judge tokens" or "words"
    points: list[tuple[str, bool, float, float]]  # (label, blind, mean length, average score)
    # Per benchmark, per run: (label, blind, [(mean length in bin, mean score 0-100, count), ...]).
    bins: dict[str, list[tuple[str, bool, list[tuple[float, float, int]]]]]


@dataclass
class Board:
    setting: RunSettings
    benchmarks: list[str]
    rows: list[Row]
    reference: list[RefLine]
    reference_source: str
    matrices: list[Matrix]
    categories: list[CategoryTable]
    length: LengthStats | None
    warnings: list[str] = field(default_factory=list)
    blind_label: str | None = None  # the blind baseline's row, when the board has one
    n: dict[str, int | None] = field(default_factory=dict)  # benchmark -> n when every row has the same
    averaged: list[str] = field(default_factory=list)  # the benchmarks the Average covers (all, or a suite's set)
    budget: int | None = None  # the length budget (judge tokens) of the "score @ K" column; None: not shown

    @property
    def not_averaged(self) -> list[str]:
        """Benchmarks shown but left out of the Average (VisuLogic in the caprl suite, as in CapRL's Table 3)."""
        return [b for b in self.benchmarks if self.averaged and b not in self.averaged]
