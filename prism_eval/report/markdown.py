"""The leaderboard as GitHub-flavoured Markdown: one table with CIs, n and caption length, then a paired matrix.

Why this shape: a README or a paper's appendix has room for one table per setting;
the numbers a reader needs to judge a gap (CI, n, the margin over the blind
baseline) belong in it, and the pairwise tests fit a k x k matrix rather than a
list that grows with the square of the runs. Every name is escaped.
"""
from __future__ import annotations

from prism_eval.report.agreement import AgreementSection
from prism_eval.report.columns import Column, board_columns, rank_text
from prism_eval.report.markdown_diagnostics import agreement_tables, curve_table, outcome_tables
from prism_eval.report.md_text import md_escape
from prism_eval.report.md_text import md_table as _table
from prism_eval.report.model import AVERAGE, Board, Matrix, Row
from prism_eval.report.runs import judge_only
from prism_eval.report.stats_text import p_text

__all__ = ["render_markdown", "md_escape"]


def _name(row: Row) -> str:
    """A run's name in every Markdown table (the blind baseline named one way throughout)."""
    return md_escape(row.run.label) + (" (blind baseline)" if row.run.blind else "")


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f" ({ci[0]:.1f}–{ci[1]:.1f})"


def _bench_cell(b: Board, row: Row, bench: str) -> str:
    c = row.cells[bench]
    if c is None:
        return "—"
    parts = [f"{c.ci95[0]:.1f}–{c.ci95[1]:.1f}"] if c.ci95 else []
    if b.n.get(bench) is None:
        parts.append(f"n={c.n}")
    score = f"**{c.score:.1f}**" if c.best else f"{c.score:.1f}"
    return score + (f" ({', '.join(parts)})" if parts else "")


def _average_cell(row: Row) -> str:
    if row.average is None:
        return "—"
    return (f"**{row.average:.1f}**" if row.best_average else f"{row.average:.1f}") + _ci(row.average_ci)


def _vs_blind_cell(row: Row) -> str:
    d = row.vs_blind
    if d is None:
        return "baseline" if row.run.blind else "—"
    extra = "" if d.p_value is None else f" ({p_text(d.p_value)})"
    return f"{d.diff:+.1f}{extra}" + (" ⚠ below blind" if d.below else "")


def _vision_cell(row: Row) -> str:
    d = row.diag
    if d is None or d.vision is None:
        return "—"
    return (f"*{d.vision:.1f}*" if row.run.blind else f"{d.vision:.1f}") + f" (n={d.vision_n}/{d.vision_of})"


def _value(name: str):
    return lambda row: "—" if row.diag is None or (v := getattr(row.diag, name)) is None else f"{v:.1f}"


_CELLS = {
    "average": _average_cell,
    "rank": lambda row: rank_text(row.rank_range),
    "vs_blind": _vs_blind_cell,
    "avg_rank": lambda row: "—" if row.avg_rank is None else f"{row.avg_rank:.2f}",
    "length": lambda row: "—" if row.mean_length is None else f"{row.mean_length:.0f}",
    "at_budget": _value("budget_score"),
    "vision": _vision_cell,
}
_DIAG = {"omission": _value("omission"), "hallucination": _value("hallucination")}  # kind "diag", by key


def _cell(b: Board, row: Row, col: Column) -> str:
    if col.bench is not None:
        return _bench_cell(b, row, col.bench)
    if col.kind == "diag":
        return _DIAG[col.key](row) if col.key in _DIAG else "—"
    return _CELLS[col.kind](row) if col.kind in _CELLS else "—"


def _header(b: Board, col: Column, unit: str) -> str:
    if col.bench is not None:
        n = b.n.get(col.bench)
        return md_escape(col.header) + (f" (n={n})" if n is not None else "")
    return f"Caption length ({unit})" if col.key == "length" else col.header


def _leaderboard(b: Board) -> list[str]:
    unit = b.length.unit if b.length else "words"
    columns = [c for c, _ in board_columns(b)]
    header = ["Captioner", *[_header(b, c, unit) for c in columns]]
    rows = [[_name(row), *[_cell(b, row, c) for c in columns]] for row in b.rows]
    for ref in b.reference:
        cells = []
        for c in columns:
            v = ref.cells[c.bench] if c.bench is not None else ref.average if c.key == "average" else None
            cells.append("—" if v is None else f"*{v:.1f}*")
        rows.append([f"*{md_escape(ref.ref.name)} (reported)*", *cells])
    notes = ["Scores are judge accuracy (0-100) with 95% CIs (bootstrap over images); best run score per column in "
             "bold."]
    if b.not_averaged:
        notes.append(f"Average over {len(b.averaged)} benchmarks, as the suite declares; "
                     f"{md_escape(', '.join(b.not_averaged))} shown but not averaged.")
    if any(c.key == "rank" for c in columns):
        notes.append("Rank: rows whose CIs overlap share a range.")
    if any(c.key == "vs_blind" for c in columns):
        notes.append("vs blind: margin over the blind baseline in points (paired test on the same questions).")
    if any(c.key == "at_budget" for c in columns):
        notes.append(f"Score @ {b.budget} tokens: every caption cut to its first {b.budget} judge tokens.")
    if any(c.key == "vision" for c in columns):
        notes.append("Vision-required: the score over the n of N questions the blind baseline does not answer above "
                     "chance (the blind row's own value in italics).")
    if any(c.key == "omission" for c in columns):
        notes.append("Omission / Halluc.: percent of multiple-choice answers \"cannot answer\" / a wrong option.")
    if b.reference:
        notes.append("Rows marked *(reported)* are published numbers, not run here: "
                     f"{md_escape(b.reference_source)}.")
    return _table(header, rows) + ["", " ".join(notes), ""]


def _matrix(m: Matrix, b: Board) -> list[str]:
    """Row minus column on `m`, as a k x k table with numbered columns (names stay in the first column)."""
    blind = {r.run.label for r in b.rows if r.run.blind}
    names = [md_escape(x) + (" (blind baseline)" if x in blind else "") for x in m.labels]
    rows = []
    for i, name in enumerate(names):
        cells = []
        for j, r in enumerate(m.cells[i]):
            if i == j:
                cells.append("·")
            elif r is None:
                cells.append("n/a")
            else:
                cells.append(f"{r.diff * 100:+.1f}" + ("\\*" if r.p_value < 0.05 else ""))
        rows.append([f"{i + 1}. {name}", *cells])
    scope = "the average" if m.bench == AVERAGE else md_escape(m.bench)
    lead = (f"Paired tests on {scope}: row minus column in points, on the questions both answered; \\* p < 0.05 "
            "(two-sided, uncorrected). The JSON output has each CI, p-value and n.")
    return [lead, "", *_table(["row − column", *[str(j + 1) for j in range(len(names))]], rows), ""]


def _pairs(b: Board) -> list[str]:
    m = next((x for x in b.matrices if x.bench == AVERAGE), b.matrices[0] if b.matrices else None)
    return _matrix(m, b) if m is not None else []


def _categories(b: Board) -> list[str]:
    lines = []
    blind = {r.run.label for r in b.rows if r.run.blind}
    for t in b.categories:
        lines += [f"Categories of {md_escape(t.bench)}, with each score's n where runs differ:", ""]
        crow = []
        for label, _, _ in t.rows:
            cells = []
            for c in t.categories:
                x = t.cells[label].get(c)
                if x is None:
                    cells.append("—")
                    continue
                v = f"**{x.score:.1f}**" if t.clear_best.get(c) == label else f"{x.score:.1f}"
                cells.append(v + (f" (n={x.n})" if x.n and t.n.get(c) is None else ""))
            crow.append([md_escape(label) + (" (blind baseline)" if label in blind else ""), *cells])
        header = ["Captioner", *[md_escape(c) + (f" (n={t.n[c]})" if t.n.get(c) is not None else "")
                                 for c in t.categories]]
        lines += _table(header, crow) + [""]
        if any(t.clear_best.values()):
            lines += ["Bold: ahead of every other row beyond both 95% CIs.", ""]
    return lines


def render_markdown(boards: list[Board], *, title: str, agreement: list[AgreementSection] | None = None) -> str:
    """GFM: the leaderboard, the paired matrix, the category and diagnostic tables of each setting, then the
    judges' agreement."""
    lines = [f"# {md_escape(title)}", ""]
    by_judge = len(boards) > 1 and all(judge_only(x.setting, boards[0].setting) for x in boards[1:])
    for gi, b in enumerate(boards, 1):
        s = b.setting
        if by_judge:
            lines += [f"## Judge: {md_escape(b.rows[0].run.shown(s.judge))}", ""]
        elif len(boards) > 1:
            lines += [f"## Setting {gi}", ""]
        lines += [f"Judge: {md_escape(b.rows[0].run.shown(s.judge))} · protocol: {md_escape(s.protocol)} · scoring: "
                  f"{md_escape(s.scoring)} · estimator: {md_escape(s.estimator)}", ""]
        lines += _leaderboard(b) + _pairs(b) + _categories(b) + outcome_tables(b) + curve_table(b)
    lines += agreement_tables(agreement or [], [row.run for b in boards for row in b.rows])
    return "\n".join(lines)
