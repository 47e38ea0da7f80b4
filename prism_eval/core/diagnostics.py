"""Why a captioner scores as it does: outcomes of multiple-choice asks, and the questions that need vision.

Pure functions over what every run already records per ask (the options shown,
the judge's option probabilities or chosen label, the score), so they apply to
a fresh run and to any old samples.jsonl alike.

Outcomes. Under protocols that append "Can not answer based on the caption",
every multiple-choice ask ends in one of: right; omission (the judge picks
cannot-answer: the caption lacks the fact); hallucination (the judge picks a
wrong content option: the caption misleads, or the judge guesses); or
unanswered (no option could be read from a generated answer). An `Outcome`
holds the ask's share of each, summing to 1, on the estimator's own terms:
under `expected` the probability mass on each; under `argmax` the decision, an
exact tie split evenly as the score splits it; under `sampled` and `generate`
the chosen option. The share `right` is always the ask's score.

Vision-required questions. A question is one the blind baseline (empty
captions) cannot answer from priors when its blind score is at or below the
question's chance level (1 / options shown, "cannot answer" included; 0 for an
open question). Under `expected` that is "the blind probability of the gold is
not above chance"; under decision estimators "the blind baseline did not get it
right" (a blind judge with no preference at all, an exact tie over every
option, scores exactly chance and counts as not getting it right). A
captioner's score over those questions cannot be inflated by the judge's priors.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping

from prism_eval.core.options import CANNOT_ANSWER, LETTERS
from prism_eval.core.protocols import ESTIMATORS

__all__ = ["OUTCOMES", "Outcome", "OutcomeRates", "ask_outcome", "outcome_of_record", "outcome_of_answer",
           "outcome_rates", "QuestionKey", "question_table", "question_scores", "chance_levels",
           "vision_required_questions", "VisionRequiredScore", "vision_required_score"]

OUTCOMES = ("right", "omission", "hallucination", "unanswered")
_TIE = 1e-9


@dataclass(frozen=True)
class Outcome:
    """One ask's share of each outcome (they sum to 1) and the outcome of the option the judge chose."""

    right: float
    omission: float
    hallucination: float
    unanswered: float = 0.0
    label: str = "right"  # what the judge answered: right | omission | hallucination | unanswered


def option_probabilities(raw: str | None) -> dict[str, float] | None:
    """The label -> probability map that log-prob scoring records as an answer's `raw`; None for generated
    text or anything that is not a map of finite numbers (the report reads the judge's top choice from it too)."""
    if not raw or not raw.startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


def ask_outcome(*, n_content: int, cannot_answer: bool, status: str, score: float, extracted: str | None,
                gold: str | None, raw: str, estimator: str) -> Outcome | None:
    """The outcome of one multiple-choice ask; None when it is not classified.

    Not classified: a failed ask (it is not scored either), and an ask that did
    not offer "cannot answer" (omission is then undefined). Content options
    carry the letters A.. in shown order (`n_content` of them); any other label
    is the appended "cannot answer" (CapRL's quirk labels it F).
    """
    if status == "failed" or not cannot_answer or n_content < 1:
        return None
    if status == "unanswered":
        return Outcome(0.0, 0.0, 0.0, 1.0, "unanswered")
    content = set(LETTERS[:n_content])

    def kind(label: str | None) -> str:
        if label is not None and label == gold:
            return "right"
        return "hallucination" if label in content else "omission"

    label = kind(extracted)
    right = min(max(float(score), 0.0), 1.0)
    probs = option_probabilities(raw)
    if estimator == "expected" and probs is not None:
        omission = sum(p for k, p in probs.items() if k not in content)
        wrong = sum(p for k, p in probs.items() if k in content and k != gold)
        return Outcome(right, omission, wrong, 0.0, label)
    chosen = [extracted] if extracted is not None else []
    if estimator == "argmax" and probs is not None:  # the tied top options, as the score split them
        top = max(probs.values())
        chosen = [k for k, p in probs.items() if p >= top - _TIE]
    others = [kind(c) for c in chosen if c != gold] or ["hallucination"]
    rest = 1.0 - right
    omission = rest * others.count("omission") / len(others)
    return Outcome(right, omission, rest - omission, 0.0, label)


def outcome_of_record(record: Any, estimator: str) -> Outcome | None:
    """The outcome of one samples.jsonl answer (a SampleRecord, or anything with its fields)."""
    options = getattr(record, "options", None)
    if not options:
        return None
    n_content = sum(o != CANNOT_ANSWER for o in options)
    return ask_outcome(n_content=n_content, cannot_answer=n_content < len(options), status=record.status,
                       score=record.score, extracted=record.extracted, gold=record.gold, raw=record.raw or "",
                       estimator=estimator)


def outcome_of_answer(answer: Any, estimator: str) -> Outcome | None:
    """The outcome of one core Answer (its `letters` mark the appended option with "-")."""
    letters = getattr(answer, "letters", "") or ""
    if not letters:
        return None
    return ask_outcome(n_content=sum(ch != "-" for ch in letters), cannot_answer="-" in letters,
                       status=answer.status, score=answer.score, extracted=answer.extracted, gold=answer.gold,
                       raw=answer.raw or "", estimator=estimator)


# ---------------------------------------------------------------- per question

QuestionKey = tuple[str, str, str]  # (benchmark, sample id, question id)


def question_table(records: Iterable[Any]) -> tuple[dict[QuestionKey, list[list[Any]]], set[QuestionKey]]:
    """The answers of each question grouped by caption (in caption order), and the failed questions.

    A question with any failed ask (or a failed caption) is failed as a whole,
    as the benchmark's score treats it.
    """
    table: dict[QuestionKey, dict[int, list[Any]]] = defaultdict(dict)
    failed: set[QuestionKey] = set()
    for r in records:
        key = (str(r.benchmark), str(r.sample_id), str(r.question_id))
        if r.status == "failed" or r.caption_index is None:
            failed.add(key)
            continue
        table[key].setdefault(int(r.caption_index), []).append(r)
    return ({k: [by_caption[c] for c in sorted(by_caption)] for k, by_caption in table.items() if k not in failed},
            failed)


def question_scores(records: Iterable[Any]) -> dict[QuestionKey, float]:
    """Each scored question's score in [0, 1]: the mean over captions of the mean over its asks."""
    table, _ = question_table(records)
    return {k: sum(sum(a.score for a in asks) / len(asks) for asks in caps) / len(caps)
            for k, caps in table.items()}


@dataclass(frozen=True)
class OutcomeRates:
    """Percent (0-100) of the classified asks in each outcome: the mean over questions of the mean over
    captions of the mean over asks (the score's own weighting). `n`: questions classified."""

    right: float
    omission: float
    hallucination: float
    unanswered: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"right": self.right, "omission": self.omission, "hallucination": self.hallucination,
                "unanswered": self.unanswered, "n": self.n}


def outcome_rates(records: Iterable[Any], estimator: str) -> OutcomeRates | None:
    """Outcome rates over the scored multiple-choice questions that offered "cannot answer" (None: none did)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    table, _ = question_table(records)
    per_question = []
    for caps in table.values():
        per_caption = []
        for asks in caps:
            outs = [outcome_of_record(a, estimator) for a in asks]
            if any(o is None for o in outs):
                break
            per_caption.append([sum(getattr(o, f) for o in outs) / len(outs) for f in OUTCOMES])
        else:
            if per_caption:
                per_question.append([sum(c[i] for c in per_caption) / len(per_caption) for i in range(4)])
    if not per_question:
        return None
    means = [100 * sum(q[i] for q in per_question) / len(per_question) for i in range(4)]
    return OutcomeRates(*means, n=len(per_question))


# ---------------------------------------------------------------- vision-required questions

def chance_levels(records: Iterable[Any]) -> dict[QuestionKey, float]:
    """Each question's chance level: 1 / options shown ("cannot answer" included); 0 for open questions."""
    out: dict[QuestionKey, float] = {}
    for r in records:
        key = (str(r.benchmark), str(r.sample_id), str(r.question_id))
        if key not in out or r.status != "failed":  # a failed caption's record lacks the appended option
            out[key] = 1.0 / len(r.options) if r.options else 0.0
    return out


def vision_required_questions(blind: Mapping[Hashable, float], chance: Mapping[Hashable, float]) -> set:
    """The questions whose blind score is at or below their chance level (the judge's priors do not answer them)."""
    return {k for k, s in blind.items() if k in chance and s <= chance[k] + _TIE}


@dataclass(frozen=True)
class VisionRequiredScore:
    """A captioner's score (0-100) over the vision-required questions it scored; n questions."""

    score: float | None
    n: int


def vision_required_score(scores: Mapping[Hashable, float], selected: Iterable[Hashable]) -> VisionRequiredScore:
    """The mean score over the selected questions that were scored (None when none was)."""
    values = [scores[k] for k in selected if k in scores]
    if not values or not all(math.isfinite(v) for v in values):
        return VisionRequiredScore(None, 0)
    return VisionRequiredScore(100 * sum(values) / len(values), len(values))

