"""Vision-required scores: each captioner's score over the questions the blind baseline cannot answer.

Why: the blind baseline (captioner `none`, empty captions) shows what the judge
answers from its priors alone. Questions it gets right (above chance) can be
answered without the image, so a captioner's score on them says little about
its captions. When the blind baseline runs beside the captioners (--blind, or
`none` among them), every run's results.json gets, per benchmark,
`vision_required: {"score": s, "n": k}` over the other questions
(prism_eval.core.diagnostics states the rule). Read from the runs' samples.jsonl,
so it costs no model call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from prism_eval.core.diagnostics import (
    chance_levels,
    question_scores,
    vision_required_questions,
    vision_required_score,
)
from prism_eval.runner.results import SAMPLES_FILE, RunRecord, read_samples

__all__ = ["add_vision_required"]


def add_vision_required(runs: Sequence[tuple[Path, RunRecord]]) -> int:
    """Set `vision_required` on every benchmark of every run (the blind one included) and rewrite their
    results.json; returns how many runs were updated (0 when no single blind run is among them).

    The runs must be scored under the same settings as the blind run (as one
    `prism-eval run` scores them); a run that is not is an error, not skipped.
    """
    blind = [(d, r) for d, r in runs if r.blind]
    if len(blind) != 1:
        return 0
    blind_dir, blind_record = blind[0]
    for d, r in runs:
        diff = r.settings.differences(blind_record.settings)
        if diff:
            name, mine, theirs = diff[0]
            raise ValueError(f"{d}: scored with {name} {mine!r}, the blind run {blind_dir} with {theirs!r}; "
                             "vision-required scores need both under the same settings")
    blind_samples = read_samples(Path(blind_dir) / SAMPLES_FILE)
    selected = vision_required_questions(question_scores(blind_samples), chance_levels(blind_samples))
    for d, r in runs:
        samples = blind_samples if r is blind_record else read_samples(Path(d) / SAMPLES_FILE)
        scores = question_scores(samples)
        for name, result in r.benchmarks.items():
            result.vision_required = vision_required_score(scores, (k for k in selected if k[0] == name))
        r.write(Path(d))
    return len(runs)
