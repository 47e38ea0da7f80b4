"""A spec's dataset as a Benchmark: rows -> questions (generic or through an adapter) -> grouped by image."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Iterator

from prism_eval.benchmarks.catalog.dataset import (
    filter_indices,
    load_rows,
    resolve_dataset_path,
    subset_indices,
    undecode_images,
)
from prism_eval.benchmarks.catalog.images import RowImageReader
from prism_eval.benchmarks.catalog.index import get_spec
from prism_eval.benchmarks.catalog.questions import RowQuestion, generic_question
from prism_eval.benchmarks.catalog.schema import BenchmarkSpec, SpecError
from prism_eval.benchmarks.types import Benchmark, group_by_image, infer_kind
from prism_eval.core import metrics as metrics_mod
from prism_eval.core.records import ImageRef, Question, Sample
from prism_eval.core.registry import import_ref
from prism_eval.io.images import ImageError, check_image_bytes

Adapter = Callable[[BenchmarkSpec, dict, int], list[RowQuestion]]


def adapter_for(spec: BenchmarkSpec) -> Adapter:
    """The spec's row adapter (imported from its `module:function`), or the generic reading."""
    if not spec.adapter:
        return lambda s, row, index: [generic_question(s, row, index)]
    try:
        fn = import_ref(spec.adapter)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SpecError(f"{spec.path}: adapter {spec.adapter!r} cannot be imported ({type(exc).__name__}: {exc})"
                        ) from None
    if not callable(fn):
        raise SpecError(f"{spec.path}: adapter {spec.adapter!r} is not a function")
    return fn


def _image_refs(spec: BenchmarkSpec, rq: RowQuestion, index: int, images: RowImageReader) -> tuple[ImageRef, ...]:
    refs = []
    for i, value in enumerate(rq.image_values):
        where = f"{spec.name} row {index} (id {rq.question.id}) image {i}"
        data = images.to_bytes(value, where)
        key = f"{spec.name}/{rq.question.id}/{i}"
        try:
            check_image_bytes(data, key)
        except ImageError as exc:
            raise SpecError(f"{where}: {exc}") from None
        refs.append(ImageRef(key=key, sha256=hashlib.sha256(data).hexdigest(), data=data))
    return tuple(refs)


def read_questions(spec: BenchmarkSpec, rows: Iterable[dict], dataset_source: str, indices: list[int],
                   limit: int | None = None) -> Iterator[tuple[tuple[ImageRef, ...], Question]]:
    """(image refs, question) for each question of the rows, in order, stopping after `limit` questions.

    Rows are read one at a time, so a limit decodes only the rows it needs.
    """
    adapter = adapter_for(spec)
    images = RowImageReader(spec, dataset_source)
    seen: set[str] = set()
    for index, row in zip(indices, rows):
        for rq in adapter(spec, row, index):
            if limit is not None and len(seen) >= limit:
                return
            if rq.question.id in seen:
                raise SpecError(f"{spec.name} row {index}: duplicate question id {rq.question.id!r}")
            seen.add(rq.question.id)
            yield _image_refs(spec, rq, index, images), rq.question


def load_spec_samples(spec: BenchmarkSpec, limit: int | None = None, dataset_path: str | None = None
                      ) -> list[Sample]:
    """The spec's questions grouped by image (one Sample per distinct image set)."""
    if limit is not None and limit < 1:
        raise SpecError(f"{spec.name}: limit must be at least 1, got {limit}")
    source = resolve_dataset_path(spec, dataset_path)
    ds = load_rows(spec, dataset_path)
    indices = subset_indices(spec, ds, filter_indices(spec, ds))
    ds = ds.select(indices) if indices != list(range(len(ds))) else ds
    ds = undecode_images(ds, [c for c in spec.image_columns if c in ds.column_names])
    samples = group_by_image(read_questions(spec, ds, source, indices, limit), spec.name)
    if not samples:
        raise SpecError(f"{spec.name}: no questions after filtering ({source!r} split {spec.split!r})")
    return samples


def load_spec_benchmark(name: str, limit: int | None = None, dataset_path: str | None = None,
                        compat: str | None = None, **_: Any) -> Benchmark:
    """A Benchmark from a spec name or YAML path.

    compat="caprl" switches the default metric to the spec's `caprl_metric`
    (CapRL's scoring, quirks included), so published numbers can be reproduced.
    """
    spec = get_spec(name)
    samples = load_spec_samples(spec, limit=limit, dataset_path=dataset_path)
    metric = spec.metric
    if compat is not None:
        metric = spec.caprl_metric or metrics_mod.with_compat(spec.metric, compat)
    questions = [q for s in samples for q in s.questions]
    located = resolve_dataset_path(spec, dataset_path)
    source = spec.source if located == spec.dataset_path else f"{spec.source} via {located}"
    notes = [n for n in (spec.notes, f"verified: {spec.verified}" if spec.verified else "") if n]
    return Benchmark(name=spec.name, samples=samples, kind=infer_kind(questions), metric=metric,
                     protocol=spec.protocol, answer_format=spec.answer_format, source=source,
                     categories=spec.categories or tuple(sorted({q.category for q in questions if q.category})),
                     notes=notes, shipped=spec.shipped)
