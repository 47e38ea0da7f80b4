"""Outcome classification (right / omission / hallucination / unanswered) and vision-required selection, by hand."""
from __future__ import annotations

import json

import pytest

from prism_eval.core.diagnostics import (
    ask_outcome,
    chance_levels,
    outcome_of_answer,
    outcome_of_record,
    outcome_rates,
    question_scores,
    vision_required_questions,
    vision_required_score,
)
from prism_eval.core.options import CANNOT_ANSWER
from prism_eval.runner.results import SampleRecord

OPTIONS = ["red", "blue", "green", "white", CANNOT_ANSWER]  # shown A-D, then E: cannot answer


def _ask(estimator: str, *, score: float, extracted: str | None, raw: str = "", gold: str = "A",
         status: str = "ok", n_content: int = 4, cannot: bool = True):
    return ask_outcome(n_content=n_content, cannot_answer=cannot, status=status, score=score, extracted=extracted,
                       gold=gold, raw=raw, estimator=estimator)


def _probs(**p: float) -> str:
    return json.dumps(p)


def test_expected_splits_the_probability_mass():
    o = _ask("expected", score=0.5, extracted="A", raw=_probs(A=0.5, B=0.2, C=0.1, D=0.05, E=0.15))
    assert (o.right, o.omission, o.hallucination, o.unanswered) == pytest.approx((0.5, 0.15, 0.35, 0.0))
    assert o.label == "right"


@pytest.mark.parametrize("extracted,label", [("A", "right"), ("E", "omission"), ("C", "hallucination")])
def test_a_decision_is_one_outcome(extracted, label):
    for estimator in ("argmax", "sampled"):
        raw = _probs(A=0.1, B=0.1, C=0.1, D=0.1, E=0.6)  # sampled: the drawn label counts, not the top one
        o = _ask(estimator if estimator == "sampled" else "argmax", score=float(extracted == "A"),
                 extracted=extracted, raw=raw if estimator == "sampled" else _probs(**{extracted: 0.9}))
        assert o.label == label
        assert {"right": o.right, "omission": o.omission, "hallucination": o.hallucination}[label] == 1.0
        assert o.right + o.omission + o.hallucination == 1.0


def test_generated_answers_use_the_extracted_letter():
    assert _ask("argmax", score=0.0, extracted="E", raw="The answer is E").omission == 1.0
    assert _ask("argmax", score=0.0, extracted="B", raw="B) blue").hallucination == 1.0
    o = _ask("argmax", score=0.0, extracted=None, raw="I am not sure", status="unanswered")
    assert (o.unanswered, o.label) == (1.0, "unanswered")


def test_argmax_ties_are_split_as_the_score_splits_them():
    # B and E tie on top, gold A is not among them: half omission, half hallucination.
    o = _ask("argmax", score=0.0, extracted="B", raw=_probs(A=0.1, B=0.35, C=0.1, D=0.1, E=0.35))
    assert (o.right, o.omission, o.hallucination) == (0.0, 0.5, 0.5)
    # The gold ties with "cannot answer": the score gives half, the other half is omission.
    o = _ask("argmax", score=0.5, extracted="A", raw=_probs(A=0.4, B=0.05, C=0.05, D=0.1, E=0.4))
    assert (o.right, o.omission, o.hallucination) == (0.5, 0.5, 0.0)
    # No preference at all (an empty caption under PMI): a fifth each.
    o = _ask("argmax", score=0.2, extracted="A", raw=_probs(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2))
    assert (o.right, o.omission, o.hallucination) == pytest.approx((0.2, 0.2, 0.6))


def test_caprl_quirk_label_f_is_cannot_answer():
    # Four options run A-D and "cannot answer" is F (CapRL's released labelling).
    assert _ask("argmax", score=0.0, extracted="F", raw=_probs(A=0.1, F=0.9)).label == "omission"
    o = _ask("expected", score=0.3, extracted="F", raw=_probs(A=0.3, B=0.1, C=0.1, D=0.1, F=0.4))
    assert o.omission == pytest.approx(0.4) and o.hallucination == pytest.approx(0.3)


def test_not_classified_without_a_cannot_answer_option_or_when_failed():
    assert _ask("argmax", score=0.0, extracted="B", cannot=False) is None
    assert _ask("argmax", score=0.0, extracted=None, status="failed") is None
    assert _ask("argmax", score=1.0, extracted="x", n_content=0) is None  # an open question


def test_records_and_answers_are_read_the_same_way():
    from prism_eval.core.records import Answer

    rec = SampleRecord(benchmark="b", question_id="q", caption_index=0, options=OPTIONS, gold="A", score=0.0,
                       extracted="E", raw=_probs(A=0.2, B=0.1, C=0.1, D=0.1, E=0.5))
    ans = Answer(question_id="q", caption_index=0, draw=0, raw=rec.raw, extracted="E", score=0.0, correct=False,
                 status="ok", letters="CADB-", gold="A")
    assert outcome_of_record(rec, "argmax") == outcome_of_answer(ans, "argmax")
    assert outcome_of_record(rec, "argmax").label == "omission"
    assert outcome_of_record(SampleRecord(benchmark="b", question_id="q", caption_index=0, options=None,
                                          score=1.0), "argmax") is None


def _rec(sid: str, qid: str, ci: int | None, extracted: str | None, score: float, *, status: str = "ok",
         options=OPTIONS, bench: str = "b") -> SampleRecord:
    return SampleRecord(benchmark=bench, sample_id=sid, question_id=qid, caption_index=ci, options=options,
                        gold="A", extracted=extracted, score=score, status=status, image=sid)


def test_rates_weight_questions_like_the_score_and_leave_failed_questions_out():
    records = [
        # q1: two captions, one right, one omission -> 50% right, 50% omission
        _rec("s1", "q1", 0, "A", 1.0), _rec("s1", "q1", 1, "E", 0.0),
        # q2: one caption, two draws: hallucination and unanswered
        _rec("s2", "q2", 0, "B", 0.0), _rec("s2", "q2", 0, None, 0.0, status="unanswered"),
        # q3: a failed ask fails the question (it is not in the score either)
        _rec("s3", "q3", 0, "A", 1.0), _rec("s3", "q3", 0, None, 0.0, status="failed"),
        # q4: an open question is scored but not classified
        _rec("s4", "q4", 0, "42", 1.0, options=None),
    ]
    rates = outcome_rates(records, "argmax")
    assert rates.n == 2
    assert (rates.right, rates.omission, rates.hallucination, rates.unanswered) == (25.0, 25.0, 25.0, 25.0)
    assert question_scores(records) == {("b", "s1", "q1"): 0.5, ("b", "s2", "q2"): 0.0, ("b", "s4", "q4"): 1.0}
    assert outcome_rates([_rec("s4", "q4", 0, "42", 1.0, options=None)], "argmax") is None
    with pytest.raises(ValueError, match="unknown estimator 'mean'"):
        outcome_rates(records, "mean")


def test_vision_required_keeps_the_questions_the_blind_baseline_does_not_answer_above_chance():
    blind = [
        _rec("s1", "right", 0, "A", 1.0),                     # right from priors: out
        _rec("s2", "wrong", 0, "B", 0.0),                     # wrong: in
        _rec("s3", "no-preference", 0, "A", 0.2),             # a tie over all five options = chance: in
        _rec("s4", "half", 0, "A", 0.5),                      # gold tied with one other: above chance, out
        _rec("s5", "open-miss", 0, "7", 0.0, options=None),   # open question missed: in (chance 0)
        _rec("s6", "open-part", 0, "7", 0.5, options=None),   # open, partly right: out
        _rec("s7", "failed", 0, None, 0.0, status="failed"),  # failed for the blind run: unknown, out
    ]
    chance = chance_levels(blind)
    assert chance[("b", "s1", "right")] == pytest.approx(0.2) and chance[("b", "s5", "open-miss")] == 0.0
    selected = vision_required_questions(question_scores(blind), chance)
    assert {k[2] for k in selected} == {"wrong", "no-preference", "open-miss"}
    # Under the expected estimator the blind score is the gold's probability: at 0.19 it is below chance.
    expected = vision_required_questions({"p": 0.19, "q": 0.21}, {"p": 0.2, "q": 0.2})
    assert expected == {"p"}
    captioner = {("b", "s2", "wrong"): 1.0, ("b", "s3", "no-preference"): 0.5, ("b", "s1", "right"): 1.0}
    got = vision_required_score(captioner, selected)  # open-miss was not scored for this captioner
    assert (got.score, got.n) == (75.0, 2)
    assert vision_required_score(captioner, set()).score is None
