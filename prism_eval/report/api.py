"""`write_report`: run directories in, one leaderboard file out."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping

from prism_eval.core.resilience import redact_secrets
from prism_eval.report.agreement import judge_agreement_sections
from prism_eval.report.board import build_board
from prism_eval.report.render import DEFAULT_TITLE, render_html, render_json, render_markdown
from prism_eval.report.runs import ReportError, group_runs, load_runs
from prism_eval.report.samples import build_payload

__all__ = ["FORMATS", "infer_format", "write_report"]

Format = Literal["html", "md", "json"]
FORMATS: dict[str, Format] = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def infer_format(out: Path, fmt: str | None) -> Format:
    """The explicit format, else the one the output's suffix names."""
    if fmt is not None:
        if fmt not in ("html", "md", "json"):
            raise ReportError(f"format {fmt!r}: expected html, md or json")
        return fmt  # type: ignore[return-value]
    try:
        return FORMATS[Path(out).suffix.lower()]
    except KeyError:
        raise ReportError(f"{out}: cannot tell the format from the suffix {Path(out).suffix!r}; "
                          f"use .html, .md or .json, or pass --format") from None


def write_report(run_dirs: list[Path], out: Path, fmt: Format | None = None, reference: bool = True, *,
                 group: bool = False, title: str | None = None, max_samples: int = 2000,
                 n_resamples: int = 4000, labels: Mapping[str, str] | None = None,
                 length_budget: int | None = None) -> Path:
    """Write a leaderboard of `run_dirs` (run dirs, or folders holding them one level down) to `out`.

    fmt: "html" (self-contained page), "md" (GFM tables) or "json" (aggregated
    leaderboard); None infers it from the suffix of `out`. reference: add the
    published CapRL Table 3 rows (marked reported) where benchmark names match.
    group: one leaderboard per (judge, protocol, scoring, estimator) instead of
    refusing to mix them. max_samples: cap on samples embedded in the HTML page
    (whole questions, a fixed subset). labels: {run: name} overriding the shown
    names (run: a run folder, its captioner spec or its default name).
    length_budget: K for the "score @ K tokens" column (runs scored with
    --length-curve); None: the largest K every such run has. Runs that differ
    only in the judge give one leaderboard per judge and a judge-agreement
    section. Returns `out`.
    """
    out = Path(out)
    kind = infer_format(out, fmt)
    if max_samples < 0:
        raise ReportError(f"max_samples {max_samples}: must be >= 0")
    if length_budget is not None and length_budget < 1:
        raise ReportError(f"length_budget {length_budget}: must be >= 1")
    runs = load_runs([Path(p) for p in run_dirs], labels)
    groups = group_runs(runs, group=group)
    boards = [build_board(g, reference=reference, n_resamples=n_resamples, length_budget=length_budget)
              for g in groups]
    agreement = judge_agreement_sections(runs, n_resamples=n_resamples) if len(groups) > 1 else []
    title = title or DEFAULT_TITLE
    if kind == "html":
        payload = build_payload([[row.run for row in b.rows] for b in boards], max_samples=max_samples)
        text = render_html(boards, [row.run for b in boards for row in b.rows], payload, title=title,
                           reference=reference, agreement=agreement)
    elif kind == "md":
        text = render_markdown(boards, title=title, agreement=agreement)
    else:
        text = render_json(boards, title=title, agreement=agreement)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(redact_secrets(text), encoding="utf-8")  # runs written before redaction may hold credentials
    return out
