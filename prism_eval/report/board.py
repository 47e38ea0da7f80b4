"""Aggregate comparable runs into a leaderboard: scores, ranks, paired tests, breakdowns.

Why: the HTML, Markdown and JSON outputs all show the same numbers, so they are
computed once here and the renderers only format them.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.stats import rankdata

from prism_eval.core.paired import PairedResult, paired_test
from prism_eval.core.stats import cluster_bootstrap_ci
from prism_eval.report.diagnostics import attach_diagnostics
from prism_eval.report.model import (
    AVERAGE,
    TOKENS,
    Board,
    CatCell,
    CategoryTable,
    Cell,
    LengthStats,
    Matrix,
    RefLine,
    Row,
)
from prism_eval.report.ranking import average_ci, blind_deltas, rank_ranges
from prism_eval.report.reference import CAPRL_TABLE3, REFERENCE_SOURCE, match_reference
from prism_eval.report.runs import Run
from prism_eval.runner.results import SampleRecord

__all__ = ["Cell", "Row", "RefLine", "Matrix", "CatCell", "CategoryTable", "LengthStats", "Board", "build_board",
           "AVERAGE", "length_unit"]

Question = tuple[float, str, "str | None"]  # (mean score over captions and draws, image, category)


def length_unit(runs: list[Run]) -> str:
    """"judge tokens" when every run records its caption lengths in the judge's tokens, else "words".

    Runs written before `length_unit` was recorded count whitespace words in `caption_tokens`, and
    one axis never mixes units: a board with any such run measures every caption in words.
    """
    samples = [s for r in runs for s in r.samples or () if not s.failed and s.caption is not None]
    units = {res.length_unit for r in runs for res in r.benchmarks.values()}
    if not samples or units != {TOKENS} or any(s.caption_tokens is None for s in samples):
        return "words"
    return TOKENS


def _caption_length(s: SampleRecord, unit: str) -> int:
    if unit == TOKENS:
        return int(s.caption_tokens or 0)
    return len(str(s.caption or "").split())


def _per_question(run: Run) -> dict[tuple[str, str], Question]:
    """(benchmark, question_id) -> (mean score over captions and draws, image key, category).

    A question with any failed sample is left out, as the pipeline leaves it out of the score.
    """
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    where: dict[tuple[str, str], tuple[str, str | None]] = {}
    failed: set[tuple[str, str]] = set()
    for s in run.samples or ():
        key = (s.benchmark, s.question_id)
        if s.failed:
            failed.add(key)
        acc[key].append(s.score)
        where.setdefault(key, (s.image or s.sample_id or key[1], s.category))
    return {k: (sum(v) / len(v), *where[k]) for k, v in acc.items() if k not in failed}


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


def _matrices(rows: list[Row], benches: list[str], averaged: list[str],
              per_question: dict[int, dict[tuple[str, str], Question]], n_resamples: int, seed: int) -> list[Matrix]:
    runs = [r.run for r in rows if r.run.samples]
    if len(runs) < 2:
        return []
    per_q = [per_question[id(r)] for r in runs]
    out = []
    for bench in [AVERAGE, *benches] if len(benches) > 1 else benches:  # one benchmark: its own is the average
        scope = averaged if bench == AVERAGE else [bench]
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


def _category_cells(run: Run, bench: str, scores: dict[str, float],
                    per_q: dict[tuple[str, str], Question] | None) -> dict[str, CatCell]:
    """Each category's recorded score, with n and a CI (bootstrap over images) from the run's samples."""
    by_cat: dict[str, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
    for (b, _), (score, image, cat) in (per_q or {}).items():
        if b == bench and cat is not None:
            by_cat[str(cat)][0].append(score)
            by_cat[str(cat)][1].append(image)
    cells = {}
    for cat, score in scores.items():
        sc, images = by_cat.get(cat, ([], []))
        ci = cluster_bootstrap_ci(sc, images, seed=0) if sc else None
        cells[cat] = CatCell(score=score, n=len(sc) or None,
                             ci95=None if ci is None else (100 * ci[0], 100 * ci[1]))
    return cells


def _clear_best(cells: dict[str, dict[str, CatCell]], cat: str) -> str | None:
    """The row whose CI in `cat` lies above every other row's CI, if there is one."""
    have = [(label, c[cat]) for label, c in cells.items() if cat in c]
    if len(have) < 2 or any(c.ci95 is None for _, c in have):
        return None
    label, top = max(have, key=lambda t: t[1].score)
    ahead = all(top.ci95[0] > c.ci95[1] for other, c in have if other != label)  # type: ignore[index]
    return label if ahead else None


def _categories(rows: list[Row], benches: list[str],
                per_q: dict[int, dict[tuple[str, str], Question]]) -> list[CategoryTable]:
    tables = []
    for b in benches:
        cats: list[str] = []
        trows = []
        cells: dict[str, dict[str, CatCell]] = {}
        for r in rows:
            res = r.run.benchmarks.get(b)
            if res is None or not res.categories:
                continue
            cats.extend(c for c in res.categories if c not in cats)
            trows.append((r.run.label, r.run.blind, res.categories))
            cells[r.run.label] = _category_cells(r.run, b, res.categories, per_q.get(id(r.run)))
        if trows:
            best = {c: max(t[2][c] for t in trows if c in t[2]) for c in cats}
            n = {c: (ns.pop() if len(ns := {x[c].n for x in cells.values() if c in x}) == 1 else None)
                 for c in cats}
            tables.append(CategoryTable(bench=b, categories=cats, rows=trows, best=best, cells=cells, n=n,
                                        clear_best={c: _clear_best(cells, c) for c in cats}))
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
    unit = length_unit(runs)
    data = _answers_by_benchmark(runs, unit)
    points = _length_points([row for row in rows if row.run.samples], unit)
    bins = {b: series for b in benches if (series := _length_bins(rows, b, data, n_bins)) is not None}
    return LengthStats(unit=unit, points=points, bins=bins)


def averaged_benchmarks(runs: list[Run], benches: list[str]) -> list[str]:
    """The benchmarks the Average covers: the set every run declares (a suite's, e.g. Table 3's 11), else all."""
    declared = {tuple(r.record.average_over or ()) for r in runs}
    if len(declared) == 1 and (only := set(declared.pop())):
        keep = [b for b in benches if b in only]
        if keep:
            return keep
    return list(benches)


def _rows(runs: list[Run], benches: list[str], averaged: list[str]) -> tuple[list[Row], list[str]]:
    rows, warnings = [], []
    for r in runs:
        cells = {b: (Cell(score=res.score, ci95=res.ci95, n=res.n, best_of_n=res.best_of_n,
                          unanswered=res.unanswered, failed=res.failed)
                     if (res := r.benchmarks.get(b)) is not None and res.score is not None else None)
                 for b in benches}
        missing = [b for b in benches if cells[b] is None]
        avg = None if any(cells[b] is None for b in averaged) else float(np.mean([cells[b].score for b in averaged]))
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


def _reference_lines(runs: list[Run], benches: list[str], averaged: list[str]) -> list[RefLine]:
    """Published rows for the benchmarks that are shipped specs (a local file is never matched by its name)."""
    shipped = [b for b in benches if all(r.benchmarks[b].shipped for r in runs if b in r.benchmarks)]
    mapping = match_reference(shipped)
    if not mapping:
        return []
    lines = []
    for ref in CAPRL_TABLE3:
        cells = {b: ref.scores.get(mapping[b]) if b in mapping else None for b in benches}
        shown = [cells[b] for b in averaged if cells[b] is not None]
        lines.append(RefLine(ref=ref, cells=cells,
                             average=float(np.mean(shown)) if len(shown) == len(averaged) else None))
    return lines


def build_board(runs: list[Run], *, reference: bool = True, n_resamples: int = 4000,
                seed: int = 0, length_budget: int | None = None) -> Board:
    """Leaderboard of comparable runs, sorted by average score (then average rank).

    length_budget: the budget (judge tokens) of the "score @ K" column; None: the largest every
    run with a length curve has.
    """
    benches: list[str] = []
    for r in runs:
        benches.extend(b for b in r.benchmarks if b not in benches)
    averaged = averaged_benchmarks(runs, benches)
    rows, warnings = _rows(runs, benches, averaged)
    _rank(rows, benches)
    length = _length(rows, benches)
    per_q = {id(r): _per_question(r) for r in runs if r.samples}
    matrices = _matrices(rows, benches, averaged, per_q, n_resamples, seed)
    for row in rows:
        row.average_ci = average_ci([row.cells[b] for b in averaged]) if row.average is not None else None
    rank_ranges(rows)
    overall = next((m for m in matrices if m.bench == AVERAGE), matrices[0] if len(benches) == 1 and matrices else None)
    blind = blind_deltas(rows, overall)
    n = {b: (ns.pop() if len(ns := {c.n for r in rows if (c := r.cells[b]) is not None}) == 1 else None)
         for b in benches}
    board = Board(setting=runs[0].settings, benchmarks=benches, rows=rows,
                  reference=_reference_lines(runs, benches, averaged) if reference else [], averaged=averaged,
                  reference_source=REFERENCE_SOURCE, matrices=matrices,
                  categories=_categories(rows, benches, per_q), length=length, warnings=warnings,
                  blind_label=blind, n=n)
    attach_diagnostics(board, length_budget)
    return board
