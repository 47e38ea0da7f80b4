"""Find and load benchmarks: a local JSONL file, a shipped YAML spec, or a suite of them.

A local benchmark is one question a line (DESIGN.md):
{"id", "image", "question", "options" (MCQ only), "answer", "category" (optional), "metric" (optional)}.
Questions about the same image become one Sample, so the image is captioned once.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from prism_eval.core.metrics import MetricError, parse_metric
from prism_eval.core.options import LETTERS, OptionsError, letter_index
from prism_eval.core.records import ImageRef, Question, Sample
from prism_eval.images import ImageError, image_ref_from_file
from prism_eval.jsonl import iter_jsonl


class BenchmarkError(ValueError):
    """Bad benchmark input; the message names the file, the line and the problem."""


@dataclass
class Benchmark:
    name: str
    samples: list[Sample]
    kind: str = "mcq"  # mcq | open | mixed
    metric: str = "exact_match"  # default metric for open questions
    protocol: str | None = None  # the benchmark's default protocol, if it has one
    answer_format: str = "short"  # short | boxed: how open answers are asked for
    source: str = ""
    categories: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def questions(self) -> list[Question]:
        return [q for s in self.samples for q in s.questions]


def _kind(questions: list[Question]) -> str:
    mcq = sum(q.is_mcq for q in questions)
    return "mcq" if mcq == len(questions) else "open" if mcq == 0 else "mixed"


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
    root = path.parent
    grouped: OrderedDict[str, tuple[ImageRef, list[Question]]] = OrderedDict()
    seen_ids: dict[str, int] = {}
    refs: dict[str, ImageRef] = {}
    count = 0
    for lineno, row in iter_jsonl(path.read_bytes(), str(path), BenchmarkError):
        if limit is not None and count >= limit:
            break
        where = f"{path}:{lineno}"
        for key in ("id", "image", "question", "answer"):
            if key not in row or row[key] in (None, ""):
                raise BenchmarkError(f"{where}: missing {key!r}")
        qid = str(row["id"])
        if qid in seen_ids:
            raise BenchmarkError(f"{where}: duplicate id {qid!r} (first on line {seen_ids[qid]})")
        seen_ids[qid] = lineno
        if not isinstance(row["question"], str):
            raise BenchmarkError(f"{where}: 'question' must be a string")
        options = row.get("options")
        answer = str(row["answer"]).strip()
        if options is not None:
            if not isinstance(options, list) or not all(isinstance(o, (str, int, float)) for o in options):
                raise BenchmarkError(f"{where}: 'options' must be a list of strings")
            options = tuple(str(o) for o in options)
            if len(options) < 2:
                raise BenchmarkError(f"{where}: a multiple-choice question needs at least 2 options, got {len(options)}")
            if len(options) > len(LETTERS) - 1:
                raise BenchmarkError(f"{where}: {len(options)} options; at most {len(LETTERS) - 1} are supported")
            try:
                letter_index(answer, len(options))
            except OptionsError as exc:
                raise BenchmarkError(f"{where}: {exc}") from None
            answer = answer.upper()
        image_key = row["image"]
        if not isinstance(image_key, str):
            raise BenchmarkError(f"{where}: 'image' must be a path string")
        if image_key not in refs:
            try:
                refs[image_key] = image_ref_from_file(root, image_key)
            except ImageError as exc:
                raise BenchmarkError(f"{where}: {exc}") from None
        targets = row.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, (str, int, float)) for t in targets):
            raise BenchmarkError(f"{where}: 'targets' must be a list of strings")
        if row.get("metric") is not None:
            try:
                parse_metric(row["metric"])
            except MetricError as exc:
                raise BenchmarkError(f"{where}: {exc}") from None
        question = Question(id=qid, text=row["question"], answer=answer, options=options,
                            category=(str(row["category"]) if row.get("category") is not None else None),
                            metric=row.get("metric") or None, targets=tuple(str(t) for t in targets))
        grouped.setdefault(image_key, (refs[image_key], []))[1].append(question)
        count += 1
    if count == 0:
        raise BenchmarkError(f"{path}: the benchmark is empty (no question lines)")
    bench_name = name or path.stem
    samples = [Sample(id=key, images=(ref,), questions=tuple(qs), benchmark=bench_name)
               for key, (ref, qs) in grouped.items()]
    questions = [q for s in samples for q in s.questions]
    cats = tuple(sorted({q.category for q in questions if q.category}))
    return Benchmark(name=bench_name, samples=samples, kind=_kind(questions), metric=metric or "exact_match",
                     source=str(path), categories=cats)


def _specs():
    try:
        from prism_eval import specs
    except ImportError:
        return None
    return specs


def expand_names(names: list[str]) -> list[str]:
    """Expand suite names (e.g. 'caprl') into their member benchmarks, keeping order."""
    out: list[str] = []
    specs = _specs()
    for name in names:
        members = specs.suite_members(name) if specs and not Path(name).suffix else None
        for member in members or [name]:
            if member not in out:
                out.append(member)
    return out


def load_benchmark(name_or_path: str, limit: int | None = None, metric: str | None = None,
                   compat: str | None = None) -> Benchmark:
    """A benchmark by spec name (benchmarks/*.yaml or a user's YAML), `lmms:<task>`, or a local JSONL file.

    `compat="caprl"` scores with CapRL's published metric quirks, to reproduce its numbers.
    """
    path = Path(name_or_path)
    specs = _specs()
    if metric:
        from prism_eval.core.metrics import MetricError, parse_metric
        try:
            parse_metric(metric)
        except MetricError as exc:
            raise BenchmarkError(f"--metric: {exc}") from None
    if name_or_path.startswith("lmms:"):
        from prism_eval import lmms_bridge
        return lmms_bridge.load_lmms_benchmark(name_or_path[5:], limit=limit)
    if path.suffix == ".jsonl" or (path.is_file() and path.suffix not in (".yaml", ".yml")):
        return load_jsonl_benchmark(path, limit=limit, metric=metric)
    if specs is not None and (path.suffix in (".yaml", ".yml") or name_or_path in specs.list_specs()):
        bench = specs.load_spec_benchmark(name_or_path, limit=limit, compat=compat)
        if metric:
            bench.metric = metric
        return bench
    raise BenchmarkError(f"{name_or_path}: no such benchmark file or spec name "
                         "(see `prism-eval benchmarks` for the names)")


def default_protocol(names: list[str]) -> str:
    """The protocol a run uses when none is given: the suite's or spec's own, else caprl."""
    specs = _specs()
    if specs is not None:
        for name in names:
            protocol = specs.suite_protocol(name) if not Path(name).suffix else None
            if protocol:
                return protocol
    return "caprl"
