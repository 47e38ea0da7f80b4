"""From scored captions to a benchmark's result and its sample records.

A question's score is the mean over its captions (and draws) of the judge's
scores; a question with any failed judge call is failed as a whole, never
scored on the asks that happened to succeed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from prism_eval.benchmarks.types import Benchmark
from prism_eval.core import stats
from prism_eval.core.options import CANNOT_ANSWER
from prism_eval.core.records import Answer, Caption, Question, Sample
from prism_eval.core.utility import CaptionScore, CaptionSet, UtilityConfig, per_caption_means
from prism_eval.io.images import ImageError, thumbnail_jpeg
from prism_eval.runner.results import BenchmarkResult, SampleRecord
from prism_eval.runner.store import content_key


def question_set_identity(bench: Benchmark) -> str:
    """A digest of what a benchmark asks: question ids, texts, options, answers, metrics and image bytes."""
    return content_key([(q.id, q.text, q.options, q.answer, q.targets, q.metric, s.image_hash)
                        for s in bench.samples for q in s.questions])[:16]


def aggregate(bench: Benchmark, samples: Sequence[Sample], captions: dict[str, Caption],
              sets: Sequence[CaptionSet], scored: Sequence[Sequence[CaptionScore]], captioner: str,
              out_dir: Path, config: UtilityConfig, prompts: dict[str, str] | None = None
              ) -> tuple[BenchmarkResult, list[SampleRecord]]:
    """Per-question results, the benchmark's summary and its sample records."""
    by_sample = {cs.sample.id: row for cs, row in zip(sets, scored)}
    q_scores, q_best, q_clusters, q_cats = [], [], [], []
    failed = unanswered = 0
    records: list[SampleRecord] = []
    for s in samples:
        thumb = _thumbnail(s, out_dir / "thumbs")
        row = by_sample.get(s.id)
        if row is None:  # the caption failed: every question of the sample failed
            error = captions[s.id].error or "captioning failed"
            for q in s.questions:
                failed += 1
                records.append(_record(bench, captioner, s, q, thumb, None, None, status="failed", error=error))
            continue
        for q in s.questions:
            per_caption, partly_failed = per_caption_means(row, q.id)
            for c in row:
                answers = [a for a in c.answers if a.question_id == q.id]
                unanswered += sum(a.status == "unanswered" for a in answers)
                records.extend(_record(bench, captioner, s, q, thumb, c, a, caption_prompt=(prompts or {}).get(s.id))
                               for a in answers)
            if partly_failed or not per_caption:
                failed += 1
                continue
            q_scores.append(sum(per_caption) / len(per_caption))
            q_best.append(max(per_caption))
            q_clusters.append(s.id.split("::")[0])
            q_cats.append(q.category)
    ci = stats.cluster_bootstrap_ci(q_scores, q_clusters, seed=0)
    result = BenchmarkResult(
        score=100 * stats.mean(q_scores) if q_scores else None, n=len(q_scores),
        ci95=(100 * ci[0], 100 * ci[1]) if ci else None,
        best_of_n=100 * stats.mean(q_best) if q_best else None,
        categories={k: 100 * v for k, v in stats.by_category(q_scores, q_cats).items()},
        unanswered=unanswered, failed=failed,
        num_captions=max((len(cs.captions) for cs in sets), default=0),
        kind=bench.kind, source=bench.source,
        question_set=question_set_identity(bench), shipped=bench.shipped)
    return result, records


def _thumbnail(sample: Sample, folder: Path) -> str | None:
    ref = sample.images[0]
    path = folder / f"{ref.sha256[:16]}.jpg"
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = thumbnail_jpeg(ref)
        except (ImageError, OSError):
            return None
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # several runs may share a thumbs folder
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return f"thumbs/{path.name}"


def _shown_options(q: Question, a: Answer | None) -> list[str] | None:
    """The options in the order the judge saw them (the appended "cannot answer" included)."""
    if q.options is None:
        return None
    if a is None or not a.letters:
        return list(q.options)
    return [q.options[ord(ch) - 65] if ch != "-" else CANNOT_ANSWER for ch in a.letters]


def _record(bench: Benchmark, captioner: str, s: Sample, q: Question, thumb: str | None, c: CaptionScore | None,
            a: Answer | None, status: str | None = None, error: str | None = None,
            caption_prompt: str | None = None) -> SampleRecord:
    return SampleRecord(
        captioner=captioner, benchmark=bench.name, sample_id=s.id, question_id=q.id, category=q.category,
        image=s.image_key, thumb=thumb, caption_index=c.caption_index if c else None,
        caption=c.caption if c else None, caption_prompt=caption_prompt,
        draw=a.draw if a else 0, question=q.text,
        options=_shown_options(q, a), gold=a.gold if a else q.answer, raw=a.raw if a else "",
        extracted=a.extracted if a else None, score=a.score if a else 0.0, correct=a.correct if a else False,
        status=status or (a.status if a else "failed"), error=error or (a.error if a else None))
