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
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from prism_eval._version import __version__
from prism_eval.report.board import AVERAGE, Board
from prism_eval.report.plot import colors_for, length_bins_svg, length_scatter_svg
from prism_eval.report.reference import CAPRL_TABLE3, REFERENCE_SOURCE
from prism_eval.report.runs import Run
from prism_eval.report.samples import safe_json_for_script

__all__ = ["render_html", "render_markdown", "render_json", "DEFAULT_TITLE"]

DEFAULT_TITLE = "Caption utility leaderboard"


def _asset(name: str) -> str:
    return (resources.files("prism_eval.report") / "templates" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _p_fmt(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def _meta_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    def cfg(r: Run, key: str) -> str:
        v = r.config.get(key)
        return "—" if v is None else str(v)

    rows: list[tuple[str, list[str]]] = [
        ("Run folder", [str(r.path) for r in runs]),
        ("Captioner", [r.captioner for r in runs]),
        ("Judge", [r.settings.judge for r in runs]),
        ("Protocol", [r.settings.protocol for r in runs]),
        ("Scoring", [r.settings.scoring for r in runs]),
        ("Estimator", [r.settings.estimator for r in runs]),
        ("Seed", [cfg(r, "seed") for r in runs]),
        ("Captions per image", [cfg(r, "num_captions") for r in runs]),
        ("Question limit", [cfg(r, "limit") for r in runs]),
        ("Benchmarks", [", ".join(f"{b} (n={res.n})" for b, res in r.benchmarks.items()) for r in runs]),
        ("Samples", [f"{len(r.samples)} in samples.jsonl" if r.samples is not None else "no samples.jsonl"
                     for r in runs]),
        ("Config hash", [cfg(r, "config_hash") for r in runs]),
        ("Created", [r.created or "—" for r in runs]),
        ("Complete", ["yes" if r.complete else "no (partial run)" for r in runs]),
    ]
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r.versions if k not in keys)
    rows += [(f"version: {k}", [r.versions.get(k, "—") for r in runs]) for k in keys]
    return rows


def render_html(boards: list[Board], runs: list[Run], payload: dict[str, Any], *, title: str,
                reference: bool) -> str:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda n: _asset(n)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=False)
    env.globals.update(p_fmt=_p_fmt)
    css, js = _asset("report.css"), _asset("report.js")
    csp = (f"default-src 'none'; img-src data:; style-src {_sha256(css)}; script-src {_sha256(js)}; "
           "base-uri 'none'; form-action 'none'")
    groups = []
    all_colors: dict[str, str] = {}
    for b in boards:
        colors = colors_for([(r.run.label, r.run.blind) for r in b.rows])
        all_colors.update(colors)
        g: dict[str, Any] = {"board": b, "colors": colors, "scatter": None, "bins": [],
                             "unit": b.length.unit if b.length else "tokens",
                             "has_flags": any(c is not None and (c.unanswered or c.failed)
                                              for r in b.rows for c in r.cells.values())}
        if b.length is not None and len(b.length.points) >= 1:
            g["scatter"] = length_scatter_svg(b.length, colors)
            g["bins"] = [(bench, length_bins_svg(b.length, bench, colors)) for bench in b.length.bins]
        groups.append(g)
    for r in payload["runs"]:
        r["color"] = all_colors.get(r["label"], "#6b7280")
    run_meta = [{"label": r.label, "config_json": json.dumps(r.config, indent=2, sort_keys=True, default=str)}
                for r in runs]
    ref_benches = list(CAPRL_TABLE3[0].scores)
    meta_rows = _meta_rows(runs)
    return env.get_template("report.html.j2").render(
        title=title, version=__version__, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        csp=csp, css=Markup(css), js=Markup(js), data_json=Markup(safe_json_for_script(payload)),
        groups=groups, n_runs=len(runs), runs=run_meta, meta_rows=meta_rows,
        mono_keys={"Config hash", "Run folder"} | {k for k, _ in meta_rows if k.startswith("version")},
        payload=payload, has_categories=bool(boards[0].categories), has_length=groups[0]["scatter"] is not None,
        reference_table=CAPRL_TABLE3 if reference else None, reference_benches=ref_benches,
        reference_source=REFERENCE_SOURCE)


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL = set("\\`*_[]<>|~")


def md_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation (and pipes) so any name shows literally in a GFM cell."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _md_leaderboard(b: Board) -> list[str]:
    header = ["Captioner", *[md_escape(x) for x in b.benchmarks], "Average", "Avg rank"]
    rows = []
    for row in b.rows:
        cells = [md_escape(row.run.label) + (" (blind baseline)" if row.run.blind else "")]
        for bench in b.benchmarks:
            c = row.cells[bench]
            cells.append("—" if c is None else (f"**{c.score:.1f}**" if c.best else f"{c.score:.1f}"))
        avg = "—" if row.average is None else (f"**{row.average:.1f}**" if row.best_average
                                                 else f"{row.average:.1f}")
        cells += [avg, "—" if row.avg_rank is None else f"{row.avg_rank:.2f}"]
        rows.append(cells)
    for ref in b.reference:
        rows.append([f"*{md_escape(ref.ref.name)} (reported)*",
                     *[("—" if ref.cells[x] is None else f"*{ref.cells[x]:.1f}*") for x in b.benchmarks],
                     "—" if ref.average is None else f"*{ref.average:.1f}*", "—"])
    notes = ["Scores are judge accuracy (0-100); best run score per column in bold."]
    if b.reference:
        notes.append("Rows marked *(reported)* are published numbers, not run here: "
                     f"{md_escape(b.reference_source)}.")
    return _md_table(header, rows) + ["", " ".join(notes), ""]


def _md_cis(b: Board) -> list[str]:
    ci_rows = [[md_escape(r.run.label),
                *[("—" if (c := r.cells[x]) is None or c.ci95 is None else f"{c.ci95[0]:.1f}–{c.ci95[1]:.1f}")
                  for x in b.benchmarks]] for r in b.rows]
    return (["95% confidence intervals:", ""] + _md_table(["Captioner", *[md_escape(x) for x in b.benchmarks]],
                                                          ci_rows) + [""])


def _md_pairs(b: Board) -> list[str]:
    avg = next((m for m in b.matrices if m.bench == AVERAGE), None)
    sig = []
    for i, la in enumerate(avg.labels if avg else []):
        for j, lb in enumerate(avg.labels):
            r = avg.cells[i][j]
            if i < j and r is not None:
                mark = " (significant)" if r.p_value < 0.05 else ""
                p = _p_fmt(r.p_value)
                sig.append(f"- {md_escape(la)} vs {md_escape(lb)}: {r.diff * 100:+.1f} points, "
                           f"p {p if p.startswith('<') else '= ' + p}{mark}")
    return ["Paired tests on the average (row minus column, same questions):", "", *sig, ""] if sig else []


def _md_categories(b: Board) -> list[str]:
    lines = []
    for t in b.categories:
        lines += [f"Categories of {md_escape(t.bench)}:", ""]
        crow = [[md_escape(label), *[("—" if (v := sc.get(c)) is None else
                                       (f"**{v:.1f}**" if v == t.best[c] else f"{v:.1f}")) for c in t.categories]]
                for label, _, sc in t.rows]
        lines += _md_table(["Captioner", *[md_escape(c) for c in t.categories]], crow) + [""]
    return lines


def render_markdown(boards: list[Board], *, title: str) -> str:
    """GFM: benchmarks as columns, best run score per column in bold, reference rows in italics."""
    lines = [f"# {md_escape(title)}", ""]
    for gi, b in enumerate(boards, 1):
        s = b.setting
        if len(boards) > 1:
            lines += [f"## Setting {gi}", ""]
        lines += [f"Judge: {md_escape(s.judge)} · protocol: {md_escape(s.protocol)} · scoring: "
                  f"{md_escape(s.scoring)} · estimator: {md_escape(s.estimator)}", ""]
        lines += _md_leaderboard(b) + _md_cis(b) + _md_pairs(b) + _md_categories(b)
    return "\n".join(lines)


# ---------------------------------------------------------------- JSON

def render_json(boards: list[Board], *, title: str) -> str:
    """The aggregated leaderboard (no samples): what a script or another leaderboard ingests."""
    groups = []
    for b in boards:
        paired = []
        for m in b.matrices:
            for i, la in enumerate(m.labels):
                for j, lb in enumerate(m.labels):
                    r = m.cells[i][j]
                    if i < j and r is not None:
                        paired.append({"benchmark": m.bench, "a": la, "b": lb, "diff": r.diff * 100,
                                       "ci95": None if r.ci95 is None else [r.ci95[0] * 100, r.ci95[1] * 100],
                                       "p_value": r.p_value, "method": r.method, "n": r.n})
        groups.append({
            "setting": dict(b.setting.comparability_key()),
            "benchmarks": b.benchmarks,
            "rows": [{
                "label": r.run.label, "captioner": r.run.captioner, "run_dir": str(r.run.path),
                "blind_baseline": r.run.blind, "complete": r.run.complete,
                "scores": {x: None if (c := r.cells[x]) is None else
                           {"score": c.score, "ci95": list(c.ci95) if c.ci95 else None, "n": c.n,
                            "best_of_n": c.best_of_n, "rank": c.rank, "unanswered": c.unanswered,
                            "failed": c.failed} for x in b.benchmarks},
                "average": r.average, "avg_rank": r.avg_rank, "mean_caption_length": r.mean_length,
                "seed": r.run.config.get("seed"), "config_hash": r.run.config.get("config_hash"),
                "created": r.run.created, "versions": r.run.versions,
            } for r in b.rows],
            "length_unit": b.length.unit if b.length else "tokens",
            "reference": [{"name": x.ref.name, "status": x.ref.status, "source": x.ref.source,
                           "scores": {k: v for k, v in x.cells.items() if v is not None},
                           "average_over_shown": x.average, "paper_average": x.ref.average} for x in b.reference],
            "paired": paired,
            "categories": {t.bench: {label: sc for label, _, sc in t.rows} for t in b.categories},
            "warnings": b.warnings,
        })
    doc = {"title": title, "generator": f"prism-eval {__version__}",
           "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "groups": groups}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
