"""Aggregate comparable runs into a leaderboard: scores, ranks, paired tests, breakdowns.

Why: the HTML, Markdown and JSON outputs all show the same numbers, so they are
computed once here and the renderers only format them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from prism_eval.core.paired import PairedResult, paired_test
from prism_eval.report.reference import CAPRL_TABLE3, REFERENCE_SOURCE, ReferenceRow, match_reference
from prism_eval.report.runs import Run
from prism_eval.runner.results import RunSettings, SampleRecord

__all__ = ["Cell", "Row", "RefLine", "Matrix", "CategoryTable", "LengthStats", "Board", "build_board",
           "AVERAGE"]

AVERAGE = "Average"


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
class CategoryTable:
    bench: str
    categories: list[str]
    rows: list[tuple[str, bool, dict[str, float]]]  # (label, blind, scores)
    best: dict[str, float]


@dataclass
class LengthStats:
    unit: str  # "tokens" or "words"
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


def _caption_length(s: SampleRecord, unit: str) -> int:
    if unit == "tokens":
        return int(s.caption_tokens or 0)
    return len(str(s.caption or "").split())


def _per_question(run: Run) -> dict[tuple[str, str], tuple[float, str]]:
    """(benchmark, question_id) -> (mean score over captions and draws, image key).

    A question with any failed sample is left out, as the pipeline leaves it out of the score.
    """
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    image: dict[tuple[str, str], str] = {}
    failed: set[tuple[str, str]] = set()
    for s in run.samples or ():
        key = (s.benchmark, s.question_id)
        if s.failed:
            failed.add(key)
        acc[key].append(s.score)
        image.setdefault(key, s.image or s.sample_id or key[1])
    return {k: (sum(v) / len(v), image[k]) for k, v in acc.items() if k not in failed}


def _pair_test(qa: dict, qb: dict, benches: list[str], n_resamples: int,
               seed: int) -> tuple[PairedResult | None, str]:
    keys = [k for k in qa if k in qb and k[0] in benches]
    if not keys:
        return None, "no shared questions"
    keys.sort()
    a = [qa[k][0] for k in keys]
    b = [qb[k][0] for k in keys]
    clusters = [(k[0], qa[k][1]) for k in keys]
    strata = [k[0] for k in keys]
    try:
        return paired_test(a, b, clusters=clusters, strata=strata, n_resamples=n_resamples, seed=seed), ""
    except ValueError as e:
        return None, str(e)


def _matrices(rows: list[Row], benches: list[str], n_resamples: int, seed: int) -> list[Matrix]:
    runs = [r.run for r in rows if r.run.samples]
    if len(runs) < 2:
        return []
    per_q = [_per_question(r) for r in runs]
    out = []
    for bench in [AVERAGE, *benches]:
        scope = benches if bench == AVERAGE else [bench]
        k = len(runs)
        cells: list[list[PairedResult | None]] = [[None] * k for _ in range(k)]
        notes = [[""] * k for _ in range(k)]
        for i in range(k):
            for j in range(i + 1, k):
                res, note = _pair_test(per_q[i], per_q[j], scope, n_resamples, seed)
                cells[i][j] = res
                notes[i][j] = notes[j][i] = note
                if res is not None:
                    ci = None if res.ci95 is None else (-res.ci95[1], -res.ci95[0])
                    cells[j][i] = PairedResult(res.method, res.n, -res.diff, ci, res.p_value,
                                               res.b_only, res.a_only)
        out.append(Matrix(bench=bench, labels=[r.label for r in runs], cells=cells, notes=notes))
    return out


def _categories(rows: list[Row], benches: list[str]) -> list[CategoryTable]:
    tables = []
    for b in benches:
        cats: list[str] = []
        trows = []
        for r in rows:
            res = r.run.benchmarks.get(b)
            if res is None or not res.categories:
                continue
            cats.extend(c for c in res.categories if c not in cats)
            trows.append((r.run.label, r.run.blind, res.categories))
        if trows:
            best = {c: max(t[2][c] for t in trows if c in t[2]) for c in cats}
            tables.append(CategoryTable(bench=b, categories=cats, rows=trows, best=best))
    return tables


def _bins(lengths: np.ndarray, scores: np.ndarray, edges: np.ndarray) -> list[tuple[float, float, int]]:
    """(mean length, mean score 0-100, count) for each length bin holding at least 3 answers."""
    series = []
    which = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0, edges.size - 2)
    for b in range(edges.size - 1):
        m = which == b
        if m.sum() >= 3:
            series.append((float(lengths[m].mean()), float(scores[m].mean() * 100), int(m.sum())))
    return series


def _answers_by_benchmark(runs: list[Run], unit: str) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """Per run and benchmark: each scored answer's caption length and score."""
    data: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for r in runs:
        by_b: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for s in r.samples or ():
            if not s.failed:
                ln, sc = by_b[s.benchmark]
                ln.append(_caption_length(s, unit))
                sc.append(s.score)
        for b, (ln, sc) in by_b.items():
            data[(id(r), b)] = (np.array(ln, float), np.array(sc, float))
    return data


def _length_points(rows: list[Row], unit: str) -> list[tuple[str, bool, float, float]]:
    """Each run's mean caption length over its distinct captions (set on the row) against its average score."""
    points = []
    for row in rows:
        distinct: dict[tuple, float] = {}
        for s in row.run.samples or ():
            if not s.failed:
                distinct.setdefault((s.benchmark, s.image, s.caption_index), _caption_length(s, unit))
        if not distinct:
            continue
        row.mean_length = float(np.mean(list(distinct.values())))
        if row.average is not None:
            points.append((row.run.label, row.run.blind, row.mean_length, row.average))
    return points


def _length_bins(rows: list[Row], bench: str, data: dict, n_bins: int) -> list | None:
    """Per run, the score of its answers in caption-length bins (quantiles pooled over the captioned runs)."""
    runs = [row.run for row in rows if (id(row.run), bench) in data]
    pooled = [data[(id(r), bench)][0] for r in runs if not r.blind]
    pooled_arr = np.concatenate(pooled) if pooled else np.zeros(0)
    pooled_arr = pooled_arr[pooled_arr > 0]
    if pooled_arr.size < 3:
        return None
    edges = np.unique(np.quantile(pooled_arr, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 2:
        edges = np.array([edges[0], edges[0] + 1.0])
    series = []
    for r in runs:
        ln, sc = data[(id(r), bench)]
        if r.blind:
            series.append((r.label, True, [(0.0, float(sc.mean() * 100), int(sc.size))]))
        else:
            series.append((r.label, False, _bins(ln, sc, edges)))
    return series


def _length(rows: list[Row], benches: list[str], n_bins: int = 6) -> LengthStats | None:
    runs = [r.run for r in rows if r.run.samples]
    if not runs:
        return None
    unit = "tokens" if all(s.caption_tokens is not None for r in runs for s in r.samples or () if not s.failed) \
        else "words"
    data = _answers_by_benchmark(runs, unit)
    points = _length_points([row for row in rows if row.run.samples], unit)
    bins = {b: series for b in benches if (series := _length_bins(rows, b, data, n_bins)) is not None}
    return LengthStats(unit=unit, points=points, bins=bins)


def _rows(runs: list[Run], benches: list[str]) -> tuple[list[Row], list[str]]:
    rows, warnings = [], []
    for r in runs:
        cells = {b: (Cell(score=res.score, ci95=res.ci95, n=res.n, best_of_n=res.best_of_n,
                          unanswered=res.unanswered, failed=res.failed)
                     if (res := r.benchmarks.get(b)) is not None and res.score is not None else None)
                 for b in benches}
        missing = [b for b in benches if cells[b] is None]
        avg = None if missing else float(np.mean([c.score for c in cells.values()]))
        if missing:
            warnings.append(f"{r.label} has no result for {', '.join(missing)}; its average is left blank")
        if not r.complete:
            warnings.append(f"{r.label} is an incomplete run")
        tokens = [res.mean_caption_tokens for res in r.benchmarks.values() if res.mean_caption_tokens is not None]
        rows.append(Row(run=r, cells=cells, average=avg, avg_rank=None,
                        mean_length=float(np.mean(tokens)) if tokens else None))
    return rows, warnings


def _rank(rows: list[Row], benches: list[str]) -> None:
    """Ranks per benchmark (ties share the average rank), the best per column, the average rank per row."""
    for b in benches:
        have = [row for row in rows if row.cells[b] is not None]
        if not have:
            continue
        ranks = rankdata([-row.cells[b].score for row in have], method="average")
        top = max(row.cells[b].score for row in have)
        for row, rk in zip(have, ranks):
            row.cells[b].rank = float(rk)
            row.cells[b].best = row.cells[b].score == top
    for row in rows:
        rk = [c.rank for c in row.cells.values() if c is not None]
        row.avg_rank = float(np.mean(rk)) if rk else None
    rows.sort(key=lambda r: (r.average is None, -(r.average or 0.0), r.avg_rank or 0.0, r.run.label))
    avgs = [r.average for r in rows if r.average is not None]
    for row in rows:
        row.best_average = bool(avgs) and row.average == max(avgs)


def _reference_lines(runs: list[Run], benches: list[str]) -> list[RefLine]:
    """Published rows for the benchmarks that are shipped specs (a local file is never matched by its name)."""
    shipped = [b for b in benches if all(r.benchmarks[b].shipped for r in runs if b in r.benchmarks)]
    mapping = match_reference(shipped)
    if not mapping:
        return []
    lines = []
    for ref in CAPRL_TABLE3:
        cells = {b: ref.scores.get(mapping[b]) if b in mapping else None for b in benches}
        shown = [v for v in cells.values() if v is not None]
        lines.append(RefLine(ref=ref, cells=cells,
                             average=float(np.mean(shown)) if len(shown) == len(benches) else None))
    return lines


def build_board(runs: list[Run], *, reference: bool = True, n_resamples: int = 4000,
                seed: int = 0) -> Board:
    """Leaderboard of comparable runs, sorted by average score (then average rank)."""
    benches: list[str] = []
    for r in runs:
        benches.extend(b for b in r.benchmarks if b not in benches)
    rows, warnings = _rows(runs, benches)
    _rank(rows, benches)
    length = _length(rows, benches)
    return Board(setting=runs[0].settings, benchmarks=benches, rows=rows,
                 reference=_reference_lines(runs, benches) if reference else [],
                 reference_source=REFERENCE_SOURCE, matrices=_matrices(rows, benches, n_resamples, seed),
                 categories=_categories(rows, benches), length=length, warnings=warnings)
