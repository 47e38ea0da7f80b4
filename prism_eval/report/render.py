"""Turn leaderboards into one self-contained HTML page, a GFM Markdown table or JSON.

Why the HTML is built this way: it is shared as a single file and opened offline,
and it shows text written by models. So CSS and JS are inlined, the page carries a
Content-Security-Policy that allows only its own two hashed blocks and data: images
(nothing can be fetched, injected markup could not run), jinja2 autoescapes every
server-side string, and sample data travels as escaped JSON that the script renders
with textContent only.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Callable

import jinja2
from markupsafe import Markup

from prism_eval._version import __version__
from prism_eval.report.agreement import AgreementSection, captioner_names
from prism_eval.report.board import Board
from prism_eval.report.columns import board_columns, csv_table, rank_text
from prism_eval.report.diagnostics import benchmark_json, curve_budgets, curve_series, outcome_panels, row_json
from prism_eval.report.markdown import render_markdown
from prism_eval.report.meta import build_meta
from prism_eval.report.plot import colors_for, length_bins_svg, length_curve_svg, length_scatter_svg
from prism_eval.report.reference import CAPRL_TABLE3, REFERENCE_SOURCE
from prism_eval.report.runs import Run, judge_only
from prism_eval.report.samples import safe_json_for_script
from prism_eval.report.stats_text import p_text

__all__ = ["render_html", "render_markdown", "render_json", "DEFAULT_TITLE", "SECTIONS"]

DEFAULT_TITLE = "Caption utility leaderboard"
JS_FILES = ("common.js", "board.js", "samples.js")  # concatenated into one function body: one hashed script


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor, its nav title, its template, and when it is shown.

    per_board sections appear once per leaderboard (anchor `key-N`, `shown` gets the board's context);
    the others once per page (`shown` gets the page's context). A new section is one entry here plus its
    template.
    """

    key: str
    title: str
    per_board: bool
    shown: Callable[[dict[str, Any]], bool] = lambda g: True

    @property
    def template(self) -> str:
        return f"_{self.key}.html.j2"


SECTIONS: tuple[Section, ...] = (
    Section("leaderboard", "Leaderboard", True),
    Section("significance", "Significance", True),
    Section("categories", "Categories", True, lambda g: bool(g["board"].categories)),
    Section("outcomes", "Outcomes", True, lambda g: bool(g["outcome_panels"])),
    Section("curve", "Length curve", True, lambda g: g["curve"] is not None),
    Section("length", "Caption length", True, lambda g: g["scatter"] is not None),
    Section("agreement", "Judge agreement", False, lambda p: bool(p["agreement"])),
    Section("samples", "Samples", False),
    Section("metadata", "Run metadata", False),
)


def _asset(name: str) -> str:
    return (resources.files("prism_eval.report") / "templates" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _scale(points: list[tuple[float, tuple[float, float] | None]]) -> tuple[float, float] | None:
    """The range a column's CI bars are drawn on: every score and interval in it, padded, within 0-100."""
    values = [v for score, ci in points for v in (score, *(ci or ()))]
    if not values:
        return None
    pad = max((max(values) - min(values)) * 0.06, 0.5)
    lo, hi = max(0.0, min(values) - pad), min(100.0, max(values) + pad)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _scales(b: Board, columns: list) -> dict[str, tuple[float, float] | None]:
    out: dict[str, tuple[float, float] | None] = {}
    for col, _ in columns:
        if col.bench:
            out[col.key] = _scale([(c.score, c.ci95) for r in b.rows if (c := r.cells[col.bench]) is not None])
        elif col.key == "average":
            out[col.key] = _scale([(r.average, r.average_ci) for r in b.rows if r.average is not None])
    return out


def _setting_chips(b: Board) -> list[tuple[str, str]]:
    s, run = b.setting, b.rows[0].run
    return [("judge", run.shown(s.judge)), ("protocol", s.protocol), ("scoring", s.scoring),
            ("estimator", s.estimator)]


def _judge_title(b: Board, boards: list[Board]) -> str | None:
    """The judge a board is titled by, when the page's boards differ only in their judge."""
    if len(boards) < 2 or not all(judge_only(x.setting, boards[0].setting) for x in boards[1:]):
        return None
    return b.rows[0].run.shown(b.setting.judge)


def _group(b: Board, boards: list[Board]) -> dict[str, Any]:
    colors = colors_for([(r.run.label, r.run.blind) for r in b.rows])
    columns = board_columns(b)
    series = curve_series(b)
    g: dict[str, Any] = {"board": b, "colors": colors, "scatter": None, "bins": [],
                         "unit": b.length.unit if b.length else "words",
                         "columns": [c for c, _ in columns], "sort_values": {c.key: v for c, v in columns},
                         "column_keys": {c.key: True for c, _ in columns}, "scales": _scales(b, columns),
                         "sorted_by": "average" if any(c.key == "average" for c, _ in columns)
                         else columns[0][0].key,
                         "setting_chips": _setting_chips(b), "judge_title": _judge_title(b, boards),
                         "outcome_panels": outcome_panels(b), "curve_series": series,
                         "curve": length_curve_svg(series, colors, "judge tokens") if series else None,
                         "budgets": curve_budgets(b.rows),
                         "has_flags": any(c is not None and (c.unanswered or c.failed)
                                          for r in b.rows for c in r.cells.values())}
    if b.length is not None and len(b.length.points) >= 1:
        g["scatter"] = length_scatter_svg(b.length, colors)
        g["bins"] = [(bench, length_bins_svg(b.length, bench, colors)) for bench in b.length.bins]
    return g


def _nav(groups: list[dict[str, Any]], page: dict[str, Any]) -> list[dict[str, str]]:
    nav = []
    for sec in SECTIONS:
        if not sec.per_board:
            if sec.shown(page):
                nav.append({"anchor": sec.key, "title": sec.title})
            continue
        first = next((i for i, g in enumerate(groups, 1) if sec.shown(g)), None)
        if first is not None:
            nav.append({"anchor": f"{sec.key}-{first}", "title": sec.title})
    return nav


def _agreement_views(sections: list[AgreementSection], runs: list[Run]) -> list[dict[str, Any]]:
    """Each section with its judges' names as shown and its leaderboards as (rank, captioner, score, moved) rows.

    moved: the rank under this judge minus the rank under the first judge (0: the same place).
    """
    shown = {r.settings.judge: r.shown(r.settings.judge) for r in runs}
    names = captioner_names(runs)
    views = []
    for s in sections:
        first = {c: i for i, (c, _, _) in enumerate(s.leaderboards[s.judges[0]], 1)}
        boards = [(j, [(i, names.get(c, c), score, i - first.get(c, i))
                       for i, (c, score, _) in enumerate(s.leaderboards[j], 1)]) for j in s.judges]
        views.append({"section": s, "shown": {j: shown.get(j, j) for j in s.judges}, "boards": boards})
    return views


def render_html(boards: list[Board], runs: list[Run], payload: dict[str, Any], *, title: str,
                reference: bool, agreement: list[AgreementSection] | None = None) -> str:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda n: _asset(n)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=False)
    env.globals.update(p_text=p_text, rank_text=rank_text)
    css = _asset("report.css")
    js = "(function () {\n" + "\n".join(_asset(name) for name in JS_FILES) + "}());\n"
    csp = (f"default-src 'none'; img-src data:; style-src {_sha256(css)}; script-src {_sha256(js)}; "
           "base-uri 'none'; form-action 'none'")
    groups = [_group(b, boards) for b in boards]
    page = {"agreement": _agreement_views(agreement or [], runs)}
    all_colors: dict[str, str] = {}
    for g in groups:
        all_colors.update(g["colors"])
    for r in payload["runs"]:
        r["color"] = all_colors.get(r["label"], "#6b7280")
    payload["boards"] = [csv_table(b) for b in boards]
    return env.get_template("report.html.j2").render(
        title=title, version=__version__, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        csp=csp, css=Markup(css), js=Markup(js), data_json=Markup(safe_json_for_script(payload)),
        groups=groups, n_runs=len(runs), meta=build_meta(runs), payload=payload, nav=_nav(groups, page),
        board_sections=[s for s in SECTIONS if s.per_board],
        page_sections=[s for s in SECTIONS if not s.per_board and s.shown(page)], agreement=page["agreement"],
        reference_table=CAPRL_TABLE3 if reference else None, reference_benches=list(CAPRL_TABLE3[0].scores),
        reference_source=REFERENCE_SOURCE)


# ---------------------------------------------------------------- JSON

def _json_paired(b: Board) -> list[dict[str, Any]]:
    paired = []
    for m in b.matrices:
        for i, la in enumerate(m.labels):
            for j, lb in enumerate(m.labels):
                r = m.cells[i][j]
                if i < j and r is not None:
                    paired.append({"benchmark": m.bench, "a": la, "b": lb, "diff": r.diff * 100,
                                   "ci95": None if r.ci95 is None else [r.ci95[0] * 100, r.ci95[1] * 100],
                                   "p_value": r.p_value, "method": r.method, "n": r.n,
                                   "a_only": r.a_only, "b_only": r.b_only})
    return paired


def _json_row(b: Board, r: Any) -> dict[str, Any]:
    d = r.vs_blind
    return {
        "label": r.run.label, "captioner": r.run.spec, "run_dir": r.run.folder,
        "blind_baseline": r.run.blind, "complete": r.run.complete,
        "scores": {x: None if (c := r.cells[x]) is None else
                   {"score": c.score, "ci95": list(c.ci95) if c.ci95 else None, "n": c.n,
                    "best_of_n": c.best_of_n, "rank": c.rank, "unanswered": c.unanswered,
                    "failed": c.failed, **benchmark_json(r.run.benchmarks.get(x))} for x in b.benchmarks},
        "diagnostics": row_json(r.diag),
        "average": r.average, "avg_rank": r.avg_rank, "mean_caption_length": r.mean_length,
        "seed": r.run.config.get("seed"), "config_hash": r.run.config.get("config_hash"),
        "created": r.run.created, "versions": r.run.shown_value(r.run.versions),
        "average_ci95": list(r.average_ci) if r.average_ci else None,
        "rank_range": list(r.rank_range) if r.rank_range else None,
        "vs_blind": None if d is None else {"diff": d.diff, "ci95": list(d.ci95) if d.ci95 else None,
                                            "p_value": d.p_value, "n": d.n, "method": d.method, "below": d.below},
    }


def _json_group(b: Board) -> dict[str, Any]:
    setting = dict(b.setting.comparability_key())
    setting["judge"] = b.rows[0].run.shown(setting["judge"])
    return {
        "setting": setting,
        "benchmarks": b.benchmarks,
        "averaged": b.averaged,
        "rows": [_json_row(b, r) for r in b.rows],
        "length_unit": b.length.unit if b.length else "words",
        "length_budget": b.budget,
        "reference": [{"name": x.ref.name, "status": x.ref.status, "source": x.ref.source,
                       "scores": {k: v for k, v in x.cells.items() if v is not None},
                       "average": x.average, "paper_average": x.ref.average} for x in b.reference],
        "paired": _json_paired(b),
        "categories": {t.bench: {label: sc for label, _, sc in t.rows} for t in b.categories},
        "categories_detail": {t.bench: {label: {c: {"score": x.score, "n": x.n,
                                                    "ci95": list(x.ci95) if x.ci95 else None}
                                                for c, x in cells.items()}
                                        for label, cells in t.cells.items()} for t in b.categories},
        "blind_baseline": b.blind_label,
        "warnings": b.warnings,
    }


def _json_agreement(sections: list[AgreementSection], runs: list[Run]) -> list[dict[str, Any]]:
    """The sections' entries with judges and captioners named as the report shows them (no local paths)."""
    judge = {r.settings.judge: r.shown(r.settings.judge) for r in runs}
    cap = captioner_names(runs)
    out = []
    for s in sections:
        for e in s.to_json():
            out.append({**e, "judges": [judge.get(j, j) for j in e["judges"]],
                        "captioners": [cap.get(c, c) for c in e["captioners"]],
                        "scores": {judge.get(j, j): {cap.get(c, c): v for c, v in sc.items()}
                                   for j, sc in e["scores"].items()}})
    return out


def render_json(boards: list[Board], *, title: str, agreement: list[AgreementSection] | None = None) -> str:
    """The aggregated leaderboard (no samples): what a script or another leaderboard ingests.

    `judge_agreement`: one entry per pair of judges that scored the same captioners (empty otherwise).
    """
    runs = [row.run for b in boards for row in b.rows]
    doc = {"title": title, "generator": f"prism-eval {__version__}",
           "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "groups": [_json_group(b) for b in boards],
           "judge_agreement": _json_agreement(agreement or [], runs)}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
