"""The diagnostics in Markdown: outcome shares, the length curve (captioner x K) and judge agreement.

Why a module of its own: these tables appear only when the runs recorded the
data (or were scored by two judges); the leaderboard table in markdown.py stays
the same for runs without them.
"""
from __future__ import annotations

from prism_eval.report.agreement import AgreementSection, captioner_names
from prism_eval.report.diagnostics import OUTCOMES, curve_budgets, outcome_panels
from prism_eval.report.md_text import md_escape, md_table
from prism_eval.report.model import Board, Row
from prism_eval.report.runs import Run

__all__ = ["outcome_tables", "curve_table", "agreement_tables"]


def _v(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _name(row: Row) -> str:
    return md_escape(row.run.label) + (" (blind baseline)" if row.run.blind else "")


def outcome_tables(b: Board) -> list[str]:
    """Right / omission / hallucination / unanswered shares per captioner (the mean, then each benchmark)."""
    lines: list[str] = []
    for title, rows in outcome_panels(b):
        lines += [f"Outcomes ({md_escape(title)}): what the judge answered on the multiple-choice questions with a "
                  "cannot-answer option, in percent (omission: \"cannot answer\"; hallucination: a wrong option).", ""]
        body = [[_name(r), *[_v(o.get(k)) for k in OUTCOMES], str(int(o.get("n") or 0))] for r, o in rows]
        lines += md_table(["Captioner", "Right", "Omission", "Hallucination", "Unanswered", "n"], body) + [""]
    return lines


def curve_table(b: Board) -> list[str]:
    """Score with every caption cut to K judge tokens, per captioner; the last column is whole captions."""
    ks = curve_budgets(b.rows)
    rows = [r for r in b.rows if r.diag is not None and r.diag.curve]
    if not rows:
        return []
    body = [[_name(r), *[_v(r.diag.curve.get(k)) for k in ks], _v(r.diag.full)] for r in rows]
    lead = ("Length curve: the score with every caption cut to its first K judge tokens (columns: K), then whole "
            "captions" + (f"; the leaderboard's Score @ {b.budget} tokens is the {b.budget} column." if b.budget
                          else "."))
    return [lead, "", *md_table(["Captioner", *[str(k) for k in ks], "full"], body), ""]


def agreement_tables(sections: list[AgreementSection], runs: list[Run]) -> list[str]:
    """Per family of runs: Kendall tau between each pair of judges, then each judge's ranking."""
    if not sections:
        return []
    judge = {r.settings.judge: r.shown(r.settings.judge) for r in runs}
    cap = captioner_names(runs)
    lines = ["## Judge agreement", "",
             "Kendall's tau-b between the judges' rankings of the same captioners; the 95% CI resamples images.", ""]
    for s in sections:
        body = []
        for p in s.pairs:
            if p.kendall_tau is None:
                tau, ci = f"undefined: {md_escape(p.reason)}", "—"
            else:
                tau = f"{p.kendall_tau:.2f}"
                ci = "—" if p.ci95 is None else f"{p.ci95[0]:.2f} to {p.ci95[1]:.2f}"
            body.append([md_escape(judge.get(p.judges[0], p.judges[0])), md_escape(judge.get(p.judges[1], p.judges[1])),
                         tau, ci, str(p.n_captioners), str(p.n_images), str(p.n_questions)])
        lines += md_table(["Judge A", "Judge B", "Kendall tau", "95% CI", "Captioners", "Images", "Questions"],
                          body, [":---", ":---", "---:", "---:", "---:", "---:", "---:"]) + [""]
        boards = [s.leaderboards[j] for j in s.judges]
        depth = max(len(x) for x in boards)
        rank_rows = [[str(i + 1), *[f"{md_escape(cap.get(x[i][0], x[i][0]))} ({_v(x[i][1])})" if i < len(x) else ""
                                    for x in boards]] for i in range(depth)]
        lines += ["Each judge's ranking, with the score on the questions every run scored:", ""]
        lines += md_table(["#", *[md_escape(judge.get(j, j)) for j in s.judges]], rank_rows,
                          ["---:"] + [":---"] * len(s.judges)) + [""]
        if s.left_out:
            lines += ["Left out: " + md_escape("; ".join(s.left_out)) + ".", ""]
    return lines
