"""The leaderboard's columns as data: which exist, when each is shown, its sort value and its CSV fields.

Why: the HTML table, its CSV export and the Markdown table show the same columns,
and a column that only repeats another (Average with one benchmark) should
disappear everywhere at once. A new per-row measure is one more `OptionalColumn`
in `OPTIONAL_COLUMNS` plus one cell macro in the leaderboard template (its `kind`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from prism_eval.report.model import Board, Row

__all__ = ["Column", "OptionalColumn", "OPTIONAL_COLUMNS", "board_columns", "csv_table", "rank_text"]


@dataclass(frozen=True)
class Column:
    """One leaderboard column. kind: the template macro that draws its cells."""

    key: str
    header: str
    kind: str
    help: str = ""
    bench: str | None = None
    sort: str = "num"  # "num" | "text"
    first: str = "descending"  # the direction of the first click


@dataclass(frozen=True)
class OptionalColumn:
    column: Column
    shown: Callable[[Board], bool]
    value: Callable[[Row], float | None]  # sort value; None sorts last
    csv: Callable[[Row], list[tuple[str, Any]]]  # (CSV header, value) pairs
    header: Callable[[Board], str] | None = None  # a header that depends on the board (the length budget)


def rank_text(r: tuple[int, int] | None) -> str:
    if r is None:
        return "—"
    return str(r[0]) if r[0] == r[1] else f"{r[0]}–{r[1]}"


def _several_benchmarks(b: Board) -> bool:
    return len(b.benchmarks) > 1


def _ranked(b: Board) -> bool:
    return sum(r.rank_range is not None for r in b.rows) >= 2


def _has_blind(b: Board) -> bool:
    return b.blind_label is not None and any(r.vs_blind is not None for r in b.rows)


def _has_length(b: Board) -> bool:
    return any(r.mean_length is not None for r in b.rows)


def _diag(name: str) -> Callable[[Row], Any]:
    """A RowDiagnostics field of a row (None when the row has none)."""
    return lambda r: None if r.diag is None else getattr(r.diag, name)


def _has(name: str) -> Callable[[Board], bool]:
    return lambda b: any(r.diag is not None and getattr(r.diag, name) is not None for r in b.rows)


def _ci(ci: tuple[float, float] | None, i: int) -> float | None:
    return None if ci is None else ci[i]


OPTIONAL_COLUMNS: tuple[OptionalColumn, ...] = (
    OptionalColumn(
        Column("average", "Average", "average", "Unweighted mean over the benchmarks, with its 95% CI"),
        _several_benchmarks, lambda r: r.average,
        lambda r: [("average", r.average), ("average_ci_low", _ci(r.average_ci, 0)),
                   ("average_ci_high", _ci(r.average_ci, 1))]),
    OptionalColumn(
        Column("rank", "Rank", "rank", "Rank range: rows whose 95% CIs overlap share a range", first="ascending"),
        _ranked, lambda r: None if r.rank_range is None else r.rank_range[0] + r.rank_range[1] / 1000,
        lambda r: [("rank_best", None if r.rank_range is None else r.rank_range[0]),
                   ("rank_worst", None if r.rank_range is None else r.rank_range[1])]),
    OptionalColumn(
        Column("vs_blind", "vs blind", "vs_blind",
               "Average minus the blind baseline's, in points; paired test on the questions both answered"),
        _has_blind, lambda r: None if r.vs_blind is None else r.vs_blind.diff,
        lambda r: [("vs_blind", None if r.vs_blind is None else r.vs_blind.diff),
                   ("vs_blind_ci_low", None if r.vs_blind is None else _ci(r.vs_blind.ci95, 0)),
                   ("vs_blind_ci_high", None if r.vs_blind is None else _ci(r.vs_blind.ci95, 1)),
                   ("vs_blind_p", None if r.vs_blind is None else r.vs_blind.p_value)]),
    OptionalColumn(
        Column("avg_rank", "Avg rank", "avg_rank", "Mean of the per-benchmark ranks (lower is better)",
               first="ascending"),
        _several_benchmarks, lambda r: r.avg_rank, lambda r: [("avg_rank", r.avg_rank)]),
    OptionalColumn(
        Column("at_budget", "Score @ K tokens", "at_budget",
               "Length-controlled score: every caption cut to its first K judge tokens (run --length-curve)"),
        lambda b: b.budget is not None, lambda r: None if r.diag is None else r.diag.budget_score,
        lambda r: [("score_at_budget", None if r.diag is None else r.diag.budget_score)],
        header=lambda b: f"Score @ {b.budget} tokens"),
    OptionalColumn(
        Column("vision", "Vision-required", "vision",
               "Score over the questions the blind baseline does not answer above chance"),
        _has("vision"), _diag("vision"),
        lambda r: [("vision_required", _diag("vision")(r)), ("vision_required_n", _diag("vision_n")(r))]),
    OptionalColumn(
        Column("omission", "Omission %", "diag",
               "Share of multiple-choice answers \"cannot answer based on the caption\": what the caption left out",
               first="ascending"),
        _has("omission"), _diag("omission"), lambda r: [("omission", _diag("omission")(r))]),
    OptionalColumn(
        Column("hallucination", "Halluc. %", "diag",
               "Share of multiple-choice answers naming a wrong option: what the caption got wrong",
               first="ascending"),
        _has("hallucination"), _diag("hallucination"), lambda r: [("hallucination", _diag("hallucination")(r))]),
    OptionalColumn(
        Column("length", "Caption length", "length", "Mean length of the distinct captions"),
        _has_length, lambda r: r.mean_length, lambda r: [("mean_caption_length", r.mean_length)]),
)


def board_columns(b: Board) -> list[tuple[Column, Callable[[Row], float | None]]]:
    """The columns this board shows after the name: one per benchmark, then the optional ones that add something."""
    def bench_value(bench: str) -> Callable[[Row], float | None]:
        return lambda r: None if (c := r.cells[bench]) is None else c.score

    cols = [(Column(f"bench:{x}", x, "score", bench=x), bench_value(x)) for x in b.benchmarks]
    cols += [(replace(oc.column, header=oc.header(b)) if oc.header else oc.column, oc.value)
             for oc in OPTIONAL_COLUMNS if oc.shown(b)]
    return cols


def _bench_fields(b: Board, row: Row) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for x in b.benchmarks:
        c = row.cells[x]
        out += [(x, None if c is None else c.score), (f"{x} ci_low", None if c is None else _ci(c.ci95, 0)),
                (f"{x} ci_high", None if c is None else _ci(c.ci95, 1)), (f"{x} n", None if c is None else c.n),
                (f"{x} best_of_n", None if c is None else c.best_of_n),
                (f"{x} unanswered", None if c is None else c.unanswered),
                (f"{x} failed", None if c is None else c.failed)]
    return out


def csv_table(b: Board) -> dict[str, Any]:
    """The leaderboard as CSV data for the page's export: a header and one row per run, keyed by label."""
    shown = [oc for oc in OPTIONAL_COLUMNS if oc.shown(b)]
    rows: dict[str, list[Any]] = {}
    header: list[str] = []
    for row in b.rows:
        fields = [("captioner", row.run.label), ("spec", row.run.spec), ("blind_baseline", row.run.blind),
                  *_bench_fields(b, row)]
        for oc in shown:
            fields += oc.csv(row)
        header = [k for k, _ in fields]
        rows[row.run.label] = [_round(v) for _, v in fields]
    reference = []
    for ref in b.reference:
        values = [ref.ref.name + " (reported)", "", False,
                  *[v for x in b.benchmarks for v in (_round(ref.cells[x]), None, None, None, None, None, None)]]
        reference.append(values + [None] * (len(header) - len(values)))
    return {"header": header, "rows": rows, "reference": reference}


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v
