"""The report's judge-agreement section: do two judges rank the same captioners the same way?

Why: a leaderboard made with a cheap judge is only as good as its agreement
with the judge it stands in for. Given runs of the same captioners under two or
more judges (every other setting equal), this computes, for each pair of
judges, Kendall's tau between their captioner rankings with a 95% CI that
resamples images (prism_eval.core.agreement), and each judge's leaderboard on
the questions every run scored, for showing side by side.

Runs are matched across judges by their display name (`--name`) or captioner
spec; runs without samples.jsonl cannot be resampled and are left out (listed
in `left_out`). The renderers only format what `judge_agreement_sections`
returns; `AgreementSection.to_json()` is what `--format json` carries as
`judge_agreement`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from prism_eval.core.agreement import Agreement, judge_agreement
from prism_eval.core.diagnostics import question_scores
from prism_eval.report.runs import Run
from prism_eval.runner.naming import display_names

__all__ = ["AgreementSection", "judge_agreement_sections", "judge_name", "split_by_judge", "captioner_names"]

_JUDGE_FIELDS = ("judge", "judge_identity")


def judge_name(run: Run) -> str:
    """How a judge is named in the section: its spec as the run recorded it."""
    return run.settings.judge


def _family_key(run: Run) -> tuple:
    """Every setting that must agree between runs compared across judges (the judge itself excepted)."""
    key = tuple((k, v) for k, v in run.settings.comparability_key() if k not in _JUDGE_FIELDS)
    return key + (("question_sets", tuple(sorted(run.settings.question_sets.items()))),)


def _captioner_key(run: Run) -> str:
    return run.record.name or run.captioner


def captioner_names(runs: Sequence[Run]) -> dict[str, str]:
    """How the section names each captioner: its `--name`, else its short display name (no local path)."""
    short = display_names([r.captioner for r in runs])
    return {_captioner_key(r): r.record.name or short[r.captioner] for r in runs}


def split_by_judge(runs: Sequence[Run]) -> list[dict[str, list[Run]]]:
    """Runs in families that differ only in the judge: per family, judge -> its runs (families with 2+ judges)."""
    families: dict[tuple, dict[str, list[Run]]] = {}
    for r in runs:
        families.setdefault(_family_key(r), {}).setdefault(judge_name(r), []).append(r)
    return [f for f in families.values() if len(f) >= 2]


@dataclass
class AgreementSection:
    """One family of runs judged by 2+ judges: the pairwise agreements and each judge's leaderboard.

    `leaderboards[judge]`: (captioner, score 0-100 on the questions every run of the family scored, the
    run's own average) rows, best first; `pairs`: one Agreement per pair of judges, in judge order.
    """

    judges: list[str]
    captioners: list[str]
    pairs: list[Agreement]
    leaderboards: dict[str, list[tuple[str, float | None, float | None]]]
    left_out: list[str] = field(default_factory=list)  # runs without samples.jsonl, or a captioner seen twice

    def to_json(self) -> list[dict[str, Any]]:
        """The `judge_agreement` entries: {"judges": [a, b], "kendall_tau": t, "ci95": [lo, hi], ...}."""
        return [p.to_json() for p in self.pairs]


def _scores_by_judge(family: dict[str, list[Run]], left_out: list[str]) -> tuple[dict, dict]:
    """judge -> captioner -> (benchmark, question, image) -> score; and judge -> captioner -> the run's average."""
    scores: dict[str, dict[str, dict]] = {}
    averages: dict[str, dict[str, float | None]] = {}
    for judge, runs in family.items():
        for r in runs:
            cap = _captioner_key(r)
            if r.samples is None:
                left_out.append(f"{r.path}: no samples.jsonl")
                continue
            if cap in scores.get(judge, {}):
                left_out.append(f"{r.path}: a second run of {cap} under {judge}")
                continue
            image = {(s.benchmark, s.sample_id, s.question_id): s.image or s.sample_id for s in r.samples}
            table = {(b, f"{sid}\x1f{qid}", image[(b, sid, qid)]): v
                     for (b, sid, qid), v in question_scores(r.samples).items()}
            scores.setdefault(judge, {})[cap] = table
            averages.setdefault(judge, {})[cap] = r.average
    return scores, averages


def _board_score(table: dict, keys: set) -> float | None:
    """A leaderboard score (0-100) on `keys`: the mean over benchmarks of the mean question score in each."""
    by_bench: dict[str, list[float]] = {}
    for k in keys:
        by_bench.setdefault(k[0], []).append(table[k])
    if not by_bench:
        return None
    return 100 * sum(sum(v) / len(v) for v in by_bench.values()) / len(by_bench)


def judge_agreement_sections(runs: Sequence[Run], *, n_resamples: int = 4000, seed: int = 0
                             ) -> list[AgreementSection]:
    """One section per family of runs that differ only in the judge; [] when no family has two judges."""
    sections = []
    for family in split_by_judge(runs):
        left_out: list[str] = []
        scores, averages = _scores_by_judge(family, left_out)
        judges = [j for j in family if j in scores]
        if len(judges) < 2:
            continue
        pairs = judge_agreement(scores, judges=judges, n_resamples=n_resamples, seed=seed)
        captioners = sorted({c for j in judges for c in scores[j]})
        tables = [t for j in judges for t in scores[j].values()]
        keys = set.intersection(*(set(t) for t in tables))
        boards = {j: sorted(((c, _board_score(t, keys), averages[j].get(c)) for c, t in scores[j].items()),
                            key=lambda row: -(row[1] if row[1] is not None else -1.0)) for j in judges}
        sections.append(AgreementSection(judges, captioners, pairs, boards, left_out))
    return sections
