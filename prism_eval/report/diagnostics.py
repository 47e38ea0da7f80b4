"""Each leaderboard row's diagnostics: outcome shares, the vision-required score and the length curve.

Why: results.json records these per benchmark; the HTML, Markdown and JSON show
the same per-row summaries (the mean over the benchmarks the Average covers), so
they are computed once here. Every value is optional: runs written before they
were recorded have none, and a board shows a diagnostic only when a run has it.
Length budgets are in the judge's tokens, as `--length-curve` cuts captions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prism_eval.report.model import TOKENS, Board, Row
from prism_eval.runner.results import BenchmarkResult

__all__ = ["OUTCOMES", "RowDiagnostics", "attach_diagnostics", "default_budget", "benchmark_json", "row_json",
           "outcome_panels", "curve_budgets", "curve_series"]

OUTCOMES = ("right", "omission", "hallucination", "unanswered")  # the stacked bar's order, left to right


@dataclass
class RowDiagnostics:
    """One row's diagnostics over the board's averaged benchmarks (None: no benchmark of the run has it)."""

    omission: float | None = None
    hallucination: float | None = None
    outcomes: dict[str, float] | None = None  # mean share per outcome (0-100), "n": questions classified
    vision: float | None = None  # mean vision-required score
    vision_n: int = 0  # vision-required questions, summed over the benchmarks that have them
    vision_of: int = 0  # questions scored on those benchmarks
    curve: dict[int, float] = field(default_factory=dict)  # budget K -> mean score, where every benchmark has K
    full: float | None = None  # the score of whole captions on the same benchmarks
    full_length: float | None = None  # their mean length in judge tokens (None: counted otherwise)
    budget_score: float | None = None  # the score at the board's budget (None: not scored at it)
    tips: dict[str, str] = field(default_factory=dict)  # column key -> per-benchmark values, for a tooltip


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _tip(parts: list[tuple[str, float | None]], digits: int = 1) -> str:
    return "; ".join(f"{b}: {'—' if v is None else f'{v:.{digits}f}'}" for b, v in parts)


def _curve(results: list[BenchmarkResult]) -> dict[int, float]:
    """K -> the mean over benchmarks of the score at K, for the Ks every benchmark scored."""
    if not results or any(not r.by_length for r in results):
        return {}
    common = set.intersection(*({k for k, v in r.by_length.items() if k != "full" and v is not None}
                                for r in results))
    ks = sorted((int(k) for k in common if k.isdigit()))
    return {k: float(np.mean([r.by_length[str(k)] for r in results])) for k in ks}


def _outcomes(results: list[BenchmarkResult]) -> dict[str, float] | None:
    have = [r.outcomes for r in results if r.outcomes]
    if not have:
        return None
    out = {k: float(np.mean([o.get(k) or 0.0 for o in have])) for k in OUTCOMES}
    out["n"] = int(sum(o.get("n") or 0 for o in have))
    return out


def row_diagnostics(row: Row, averaged: list[str]) -> RowDiagnostics:
    """The row's diagnostics over `averaged` (the benchmarks its run has among them)."""
    named = [(b, res) for b in averaged if (res := row.run.benchmarks.get(b)) is not None]
    results = [res for _, res in named]
    d = RowDiagnostics()
    d.omission = _mean([r.omission for r in results if r.omission is not None])
    d.hallucination = _mean([r.hallucination for r in results if r.hallucination is not None])
    d.outcomes = _outcomes(results)
    vision = [r for r in results if r.vision_required is not None and r.vision_required.score is not None]
    d.vision = _mean([r.vision_required.score for r in vision])  # type: ignore[union-attr]
    d.vision_n = sum(r.vision_required.n for r in vision)  # type: ignore[union-attr]
    d.vision_of = sum(r.n for r in vision)
    d.curve = _curve(results)
    if d.curve:
        d.full = _mean([v for r in results if (v := r.by_length.get("full", r.score)) is not None])
        if all(r.length_unit == TOKENS and r.mean_caption_tokens is not None for r in results):
            d.full_length = _mean([r.mean_caption_tokens for r in results])  # type: ignore[misc]
    if len(named) > 1:
        d.tips = {"omission": _tip([(b, r.omission) for b, r in named]),
                  "hallucination": _tip([(b, r.hallucination) for b, r in named]),
                  "vision": _tip([(b, None if r.vision_required is None else r.vision_required.score)
                                  for b, r in named])}
    return d


def curve_budgets(rows: list[Row]) -> list[int]:
    """Every budget some row of the board has a score at, ascending."""
    return sorted({k for r in rows if r.diag is not None for k in r.diag.curve})


def default_budget(rows: list[Row]) -> int | None:
    """The largest budget every row with a length curve has; None when they share none."""
    curves = [set(r.diag.curve) for r in rows if r.diag is not None and r.diag.curve]
    common = set.intersection(*curves) if curves else set()
    return max(common) if common else None


def attach_diagnostics(board: Board, budget: int | None = None) -> None:
    """Set each row's diagnostics and the board's budget (`budget`, else the default); warn when no row has it."""
    for row in board.rows:
        row.diag = row_diagnostics(row, board.averaged or board.benchmarks)
    if budget is None:
        board.budget = default_budget(board.rows)
    elif any(budget in r.diag.curve for r in board.rows):
        board.budget = budget
    else:
        board.budget = None
        have = curve_budgets(board.rows)
        board.warnings.append(f"--length-budget {budget}: no run has a score at {budget} tokens"
                              + (f" (budgets scored: {', '.join(map(str, have))})" if have else
                                 " (no run was scored with --length-curve)"))
    for row in board.rows:
        row.diag.budget_score = None if board.budget is None else row.diag.curve.get(board.budget)


def outcome_panels(board: Board) -> list[tuple[str, list[tuple[Row, dict[str, float]]]]]:
    """The stacked bars to draw: (title, [(row, shares)]) for the mean over benchmarks, then each benchmark
    (one panel, titled by its benchmark, when only one benchmark has outcomes)."""
    per_bench = [(b, rows) for b in board.benchmarks
                 if (rows := [(r, res.outcomes) for r in board.rows
                              if (res := r.run.benchmarks.get(b)) is not None and res.outcomes])]
    if len(per_bench) <= 1:
        return per_bench
    mean = [(r, r.diag.outcomes) for r in board.rows if r.diag is not None and r.diag.outcomes]
    return [("Mean over benchmarks", mean), *per_bench]


def curve_series(board: Board) -> list[tuple[str, bool, list[tuple[float, float, str]]]]:
    """Each row's length curve as points (K, score), then its whole captions at their mean length in judge tokens."""
    out = []
    for r in board.rows:
        d = r.diag
        if d is None or not d.curve:
            continue
        pts = [(float(k), v, f"with captions cut to {k} judge tokens") for k, v in d.curve.items()]
        if d.full is not None and d.full_length:  # the blind baseline's empty captions have no length to plot
            pts.append((d.full_length, d.full, f"with whole captions (mean {d.full_length:.0f} judge tokens)"))
        out.append((r.run.label, r.run.blind, sorted(pts, key=lambda p: p[0])))
    return out


def benchmark_json(res: BenchmarkResult | None) -> dict[str, Any]:
    """The diagnostic fields of one benchmark result, as the JSON output carries them (null when not recorded)."""
    if res is None:
        return {}
    v = res.vision_required
    return {"omission": res.omission, "hallucination": res.hallucination, "outcomes": res.outcomes,
            "by_length": dict(res.by_length), "length_unit": res.length_unit or "words",
            "vision_required": None if v is None else {"score": v.score, "n": v.n}, "truncated": res.truncated}


def row_json(d: RowDiagnostics | None) -> dict[str, Any]:
    """The row's summaries over the averaged benchmarks."""
    if d is None:
        return {}
    return {"omission": d.omission, "hallucination": d.hallucination, "outcomes": d.outcomes,
            "vision_required": None if d.vision is None else {"score": d.vision, "n": d.vision_n,
                                                              "of": d.vision_of},
            "length_curve": {str(k): v for k, v in d.curve.items()}, "score_at_budget": d.budget_score}
