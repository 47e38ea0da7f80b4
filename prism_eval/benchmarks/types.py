"""The Benchmark record and the one way questions become Samples (one per distinct image set).

A leaf: every loader (local JSONL, YAML specs, lmms-eval tasks, CapRL's files)
builds its Benchmark with these, so grouping and kind detection are written once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from prism_eval.core.records import ImageRef, Question, Sample

KINDS: tuple[str, ...] = ("mcq", "open", "mixed")


class BenchmarkError(ValueError):
    """Bad benchmark input; the message names the file (or spec) and line (or row) and the problem."""


@dataclass
class Benchmark:
    """Questions grouped by image, plus how open answers are scored and asked for."""

    name: str
    samples: list[Sample]
    kind: str = "mcq"  # mcq | open | mixed
    metric: str = "exact_match"  # default metric for open questions
    protocol: str | None = None  # the benchmark's default protocol, if it has one
    answer_format: str = "short"  # short | boxed: how open answers are asked for
    source: str = ""
    categories: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    shipped: bool = False  # a spec that ships with prism-eval (only these get published reference rows)

    @property
    def questions(self) -> list[Question]:
        return [q for s in self.samples for q in s.questions]


def infer_kind(questions: Iterable[Question]) -> str:
    """mcq when every question has options, open when none has, else mixed."""
    flags = [q.is_mcq for q in questions]
    return "mcq" if all(flags) else "open" if not any(flags) else "mixed"


def group_by_image(items: Iterable[tuple[Sequence[ImageRef], Question]], benchmark: str,
                   sample_id: str = "first-question") -> list[Sample]:
    """One Sample per distinct image set (by content hash), questions in input order.

    Questions about the same image share one caption, so the captioner sees each
    image once. `sample_id`: "first-question" names a sample after its first
    question's id (dataset loaders); "image-key" after its images' keys (local
    files, whose captions files name images by key).
    """
    grouped: dict[str, tuple[tuple[ImageRef, ...], list[Question]]] = {}
    for refs, question in items:
        refs = tuple(refs)
        key = "|".join(r.sha256 for r in refs) if sample_id == "first-question" else "|".join(r.key for r in refs)
        grouped.setdefault(key, (refs, []))[1].append(question)
    samples = []
    for refs, questions in grouped.values():
        sid = questions[0].id if sample_id == "first-question" else "|".join(r.key for r in refs)
        samples.append(Sample(id=sid, images=refs, questions=tuple(questions), benchmark=benchmark))
    return samples
