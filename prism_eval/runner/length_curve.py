"""`--length-curve 16,32,64`: every caption re-scored truncated to its first k judge tokens.

Why: a longer caption can state more facts; CapRL's claim is that utility
rewards content, not length. Scoring the same captions cut to k tokens shows how
much of a captioner's score its first k tokens already earn, and the score at
one budget is a length-controlled comparison. Only the judge runs again (the
captions come from the run), through the caching judge, so a caption already
shorter than k costs nothing and a rerun costs nothing at all.

The cut is at a word boundary at or below k tokens of the judge's tokenizer
(prism_eval.engines.tokens.truncate); judges without a tokenizer count words.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from prism_eval.core.protocols import Protocol
from prism_eval.core.utility import (
    CaptionScore,
    CaptionSet,
    UtilityConfig,
    per_caption_means,
    plan_questions,
    score_caption_sets,
)
from prism_eval.engines.tokens import truncate

__all__ = ["parse_lengths", "truncated_sets", "benchmark_score", "length_curve"]

MAX_POINTS = 32


def parse_lengths(value: Any) -> tuple[int, ...]:
    """"16,32,64" (or a sequence of ints) as sorted distinct token budgets; () for none."""
    if value is None or value == "" or value == ():
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out = set()
    for item in items:
        text = str(item).strip()
        try:
            k = int(text)
        except ValueError:
            raise ValueError(f"--length-curve {value!r}: {text!r} is not a whole number of tokens") from None
        if isinstance(item, bool) or k < 1:
            raise ValueError(f"--length-curve {value!r}: every length must be at least 1 token, got {text}")
        out.add(k)
    if len(out) > MAX_POINTS:
        raise ValueError(f"--length-curve {value!r}: at most {MAX_POINTS} lengths")
    return tuple(sorted(out))


def truncated_sets(sets: Sequence[CaptionSet], ends: Mapping[str, Sequence[int]], k: int) -> list[CaptionSet]:
    """The caption sets with every caption cut to at most k tokens (captions keep their index, so a seeded
    estimator draws as it did for the full caption, and a caption already within k asks the same prompts)."""
    return [CaptionSet(cs.sample, [truncate(c, ends[c], k) for c in cs.captions]) for cs in sets]


def benchmark_score(sets: Sequence[CaptionSet], rows: Sequence[Sequence[CaptionScore]]) -> float | None:
    """The score (0-100) as the benchmark's own: mean over questions of the mean over captions; a question
    with a failed ask is left out."""
    per_question = []
    for cs, row in zip(sets, rows):
        for q in cs.sample.questions:
            per_caption, failed = per_caption_means(row, q.id)
            if per_caption and not failed:
                per_question.append(sum(per_caption) / len(per_caption))
    return 100 * sum(per_question) / len(per_question) if per_question else None


def length_curve(judge: Any, protocol: Protocol, sets: Sequence[CaptionSet], config: UtilityConfig,
                 ends: Mapping[str, Sequence[int]], lengths: Sequence[int],
                 on_start: Callable[[int], Callable[[int], None] | None] | None = None) -> dict[str, float | None]:
    """{"16": score, "32": score, ...}: the benchmark's score with every caption cut to k tokens.

    `ends`: each caption's token ends (engines.tokens). `on_start(total_asks)` may
    return a progress callback. Each length is one pass of the (caching) judge.
    """
    if not lengths:
        return {}
    asks = sum(len(cs.captions) * len(plan_questions(cs.sample, config)) for cs in sets)
    progress = on_start(asks * len(lengths)) if on_start else None
    curve: dict[str, float | None] = {}
    for k in lengths:
        cut = truncated_sets(sets, ends, k)
        curve[str(k)] = benchmark_score(cut, score_caption_sets(judge, protocol, cut, config, on_progress=progress))
    return curve
