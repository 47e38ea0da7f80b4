"""A local benchmark: a JSONL file, one question a line, images relative to the file.

{"id", "image", "question", "options" (multiple choice only), "answer", "category",
"metric", "targets", "hint"} - every other key is an error, so a typo ("answr",
"metirc") is caught instead of silently ignored. Every row is checked before any
model is loaded; a bad row stops the load with `file:line: problem`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prism_eval.benchmarks.types import Benchmark, BenchmarkError, group_by_image, infer_kind
from prism_eval.core.metrics import MetricError, parse_metric
from prism_eval.core.options import OptionsError, normalize_mcq
from prism_eval.core.records import ImageRef, Question
from prism_eval.core.registry import did_you_mean
from prism_eval.io.images import ImageError, image_ref_from_file
from prism_eval.io.jsonl import iter_jsonl

REQUIRED_KEYS = ("id", "image", "question", "answer")
OPTIONAL_KEYS = ("options", "category", "metric", "targets", "hint")
MAX_QUESTION_CHARS = 20_000
MAX_OPTION_CHARS = 2_000
MAX_ANSWER_CHARS = 2_000


def _check_keys(row: dict[str, Any], where: str) -> None:
    allowed = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in row:
        if key not in allowed:
            raise BenchmarkError(f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}; "
                                 f"allowed: {', '.join(allowed)}")
    for key in REQUIRED_KEYS:
        if key not in row or row[key] is None or row[key] == "":
            raise BenchmarkError(f"{where}: missing {key!r}")


def _text(row: dict[str, Any], key: str, limit: int, where: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise BenchmarkError(f"{where}: {key!r} must be a string")
    if len(value) > limit:
        raise BenchmarkError(f"{where}: {key!r} has {len(value):,} characters, over the {limit:,}-character limit")
    return value


def _options_and_answer(row: dict[str, Any], where: str) -> tuple[tuple[str, ...] | None, str]:
    if "options" in row and row["options"] is None:
        raise BenchmarkError(f"{where}: 'options' is null; leave the key out for an open question")
    answer = row["answer"]
    if not isinstance(answer, (str, int, float)) or isinstance(answer, bool):
        raise BenchmarkError(f"{where}: 'answer' must be a string")
    if "options" not in row:
        text = str(answer).strip()
        if len(text) > MAX_ANSWER_CHARS:
            raise BenchmarkError(f"{where}: 'answer' is over the {MAX_ANSWER_CHARS:,}-character limit")
        return None, text
    try:
        options, letter = normalize_mcq(row["options"], answer)
    except OptionsError as exc:
        raise BenchmarkError(f"{where}: {exc}") from None
    longest = max(options, key=len)
    if len(longest) > MAX_OPTION_CHARS:
        raise BenchmarkError(f"{where}: an option has {len(longest):,} characters, over the "
                             f"{MAX_OPTION_CHARS:,}-character limit")
    return options, letter


def _targets(row: dict[str, Any], where: str) -> tuple[str, ...]:
    targets = row.get("targets") or []
    if not isinstance(targets, list) or not all(isinstance(t, (str, int, float)) for t in targets):
        raise BenchmarkError(f"{where}: 'targets' must be a list of strings")
    return tuple(str(t) for t in targets)


def _metric(row: dict[str, Any], where: str) -> str | None:
    metric = row.get("metric")
    if metric is None:
        return None
    try:
        parse_metric(metric)
    except MetricError as exc:
        raise BenchmarkError(f"{where}: {exc}") from None
    return metric


def read_question(row: dict[str, Any], where: str) -> Question:
    """One row as a Question, or BenchmarkError naming the line and the problem."""
    _check_keys(row, where)
    text = _text(row, "question", MAX_QUESTION_CHARS, where)
    options, answer = _options_and_answer(row, where)
    category = row.get("category")
    hint = row.get("hint")
    if hint is not None and not isinstance(hint, str):
        raise BenchmarkError(f"{where}: 'hint' must be a string")
    return Question(id=str(row["id"]), text=text, answer=answer, options=options,
                    category=None if category is None else str(category), metric=_metric(row, where),
                    targets=_targets(row, where), extra={"hint": hint} if hint else {})


def load_jsonl_benchmark(path: str | Path, limit: int | None = None, metric: str | None = None,
                         name: str | None = None) -> Benchmark:
    """Load and validate a local JSONL benchmark; any bad line raises BenchmarkError("file:line: ...")."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: benchmark file does not exist")
    if metric is not None:
        try:
            parse_metric(metric)
        except MetricError as exc:
            raise BenchmarkError(f"--metric: {exc}") from None
    refs: dict[str, ImageRef] = {}
    first_line: dict[str, int] = {}
    items: list[tuple[tuple[ImageRef, ...], Question]] = []
    for lineno, row in iter_jsonl(path.read_bytes(), str(path), BenchmarkError):
        if limit is not None and len(items) >= limit:
            break
        where = f"{path}:{lineno}"
        question = read_question(row, where)
        if question.id in first_line:
            raise BenchmarkError(f"{where}: duplicate id {question.id!r} (first on line {first_line[question.id]})")
        first_line[question.id] = lineno
        items.append(((_image_ref(row["image"], path.parent, refs, where),), question))
    if not items:
        raise BenchmarkError(f"{path}: the benchmark is empty (no question lines)")
    bench_name = name or path.stem
    samples = group_by_image(items, bench_name, sample_id="image-key")
    questions = [q for _, q in items]
    return Benchmark(name=bench_name, samples=samples, kind=infer_kind(questions), metric=metric or "exact_match",
                     source=str(path), categories=tuple(sorted({q.category for q in questions if q.category})))


def _image_ref(key: Any, root: Path, refs: dict[str, ImageRef], where: str) -> ImageRef:
    if not isinstance(key, str):
        raise BenchmarkError(f"{where}: 'image' must be a path string")
    if key not in refs:
        try:
            refs[key] = image_ref_from_file(root, key)
        except ImageError as exc:
            raise BenchmarkError(f"{where}: {exc}") from None
    return refs[key]
