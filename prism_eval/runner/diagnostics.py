"""The per-benchmark diagnostics a run adds beside its score (see prism_eval.core.diagnostics).

- outcomes: each answer's outcome (right, omission, hallucination, unanswered) in
  samples.jsonl, and the benchmark's omission and hallucination rates;
- caption length in the judge's tokens (words for a judge without a tokenizer);
- with --length-curve, the score of the captions cut to k judge tokens.

All of it is computed from what the run already holds; only the length curve
asks the judge again (for prompts it has not seen: truncated captions).
"""
from __future__ import annotations

from typing import Any, Sequence

from prism_eval.core import stats
from prism_eval.core.diagnostics import outcome_of_record, outcome_rates
from prism_eval.core.protocols import Protocol
from prism_eval.core.utility import CaptionSet, UtilityConfig
from prism_eval.engines.tokens import word_ends
from prism_eval.runner.length_curve import length_curve
from prism_eval.runner.results import BenchmarkResult, SampleRecord
from prism_eval.runner.store import EngineLoadError

__all__ = ["JUDGE_TOKENS", "WORDS", "caption_ends", "diagnose_benchmark"]

JUDGE_TOKENS, WORDS = "judge tokens", "words"


def caption_ends(judge: Any, texts: Sequence[str]) -> tuple[dict[str, list[int]], str]:
    """Each distinct caption's token ends in the judge's tokenizer, and the unit ("judge tokens" or "words").

    A judge that offers no tokenizer, or one that cannot be loaded where every
    answer came from the store, falls back to words; the unit says which.
    """
    distinct = list(dict.fromkeys(texts))
    ends = None
    if distinct and hasattr(judge, "token_ends"):
        try:
            ends = judge.token_ends(distinct)
        except EngineLoadError:
            ends = None
    if ends is None:
        return dict(zip(distinct, word_ends(distinct))), WORDS
    return dict(zip(distinct, ends)), JUDGE_TOKENS


def add_outcomes(result: BenchmarkResult, records: Sequence[SampleRecord], estimator: str) -> None:
    """Label each answer with its outcome and set the benchmark's omission and hallucination rates."""
    for r in records:
        outcome = outcome_of_record(r, estimator)
        r.outcome = outcome.label if outcome is not None else None
    rates = outcome_rates(records, estimator)
    if rates is not None:
        result.omission, result.hallucination, result.outcomes = rates.omission, rates.hallucination, rates.to_dict()


def diagnose_benchmark(result: BenchmarkResult, records: Sequence[SampleRecord], sets: Sequence[CaptionSet], *,
                       judge: Any, protocol: Protocol, config: UtilityConfig, lengths: Sequence[int] = (),
                       progress: Any = None, name: str = "") -> None:
    """Add the diagnostics to one benchmark's result and records (in place)."""
    add_outcomes(result, records, config.estimator)
    captions = [c for cs in sets for c in cs.captions]
    ends, unit = caption_ends(judge, captions)
    result.length_unit = unit
    result.mean_caption_tokens = stats.mean([len(ends[c]) for c in captions])
    for r in records:
        if r.caption is not None and r.caption in ends:
            r.caption_tokens = len(ends[r.caption])
    if lengths:
        def on_start(total: int):
            if progress is None:
                return None
            task = progress.start(f"length curve {name}".strip(), total)
            return lambda k: progress.advance(task, k)

        curve = length_curve(judge, protocol, sets, config, ends, lengths, on_start)
        result.by_length = {**curve, "full": result.score}
