"""The benchmark spec: one YAML mapping that says where a dataset is and how its rows become questions.

Validation lives here and only here, so every key a spec may hold is listed once
and every problem is one SpecError naming the file and the key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prism_eval.benchmarks.types import KINDS, BenchmarkError
from prism_eval.core import metrics as metrics_mod
from prism_eval.core.options import ANSWER_FORMS
from prism_eval.core.registry import did_you_mean

ANSWER_FORMATS = ("boxed", "short")
ANSWER_AS = (*ANSWER_FORMS, "target")
SPEC_KEYS = {"name", "title", "dataset", "count", "kind", "metric", "caprl_metric", "protocol", "answer_format",
             "categories", "fields", "filter", "subset", "adapter", "image_root", "notes", "verified", "source",
             "homepage", "prompt_suffix"}
SUITE_KEYS = {"suite", "title", "protocol", "members", "average_over", "judge", "notes", "verified"}
FIELD_KEYS = {"id", "question", "context", "options", "answer", "targets", "category", "images"}
# Built-in row adapters by short name; any other adapter is named `module:function`.
BUILTIN_ADAPTERS = {
    "charxiv_descriptive": "prism_eval.benchmarks.catalog.adapters:charxiv_descriptive",
    "chartqa_pro": "prism_eval.benchmarks.catalog.adapters:chartqa_pro",
}
_IMPORT_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SpecError(BenchmarkError):
    """A bad spec or a row that does not fit it; the message names the spec (and row) and the problem."""


@dataclass
class BenchmarkSpec:
    """A validated benchmark spec (what a YAML file under benchmarks/data, or a user's, says)."""

    name: str
    path: Path
    dataset_path: str
    dataset_name: str | None
    split: str
    revision: str | None
    data_files: Any
    kind: str
    metric: str
    caprl_metric: str | None
    protocol: str | None
    answer_format: str
    fields: dict[str, Any]
    title: str = ""
    count: int | None = None
    categories: tuple[str, ...] = ()
    filter: dict[str, Any] | None = None
    subset: dict[str, Any] | None = None
    adapter: str | None = None  # "module:function" (built-in short names are resolved to one)
    image_root: str | None = None
    prompt_suffix: str = ""
    notes: str = ""
    verified: str = ""
    shipped: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        src = self.dataset_path
        if self.dataset_name:
            src += f" ({self.dataset_name})"
        return f"{src} [{self.split}]" + (f" @{self.revision}" if self.revision else "")

    @property
    def image_columns(self) -> list[str]:
        images = self.fields["images"]
        if isinstance(images, str):
            return [images]
        if isinstance(images, list):
            return [str(c) for c in images]
        if isinstance(images, dict) and "columns" in images:
            return [str(c) for c in images["columns"]]
        raise SpecError(f"{self.path}: fields.images must be a column, a list of columns, or {{columns: [...]}}")


@dataclass
class SuiteSpec:
    """A named list of benchmarks run together, with the protocol, judge and headline average they declare."""

    name: str
    path: Path
    members: list[str]
    protocol: str | None = None
    judge: str | None = None  # the judge the suite's published numbers used
    average_over: list[str] = field(default_factory=list)  # members in the headline average (default: all)
    title: str = ""
    notes: str = ""


def _field(data: dict, key: str, where: str, types: tuple, required: bool = True, default: Any = None):
    if key not in data or data[key] is None:
        if required:
            raise SpecError(f"{where}: missing required key {key!r}")
        return default
    value = data[key]
    if not isinstance(value, types):
        kinds = " or ".join(t.__name__ for t in types)
        raise SpecError(f"{where}: {key!r} must be {kinds}, got {type(value).__name__}")
    return value


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        hint = did_you_mean(unknown[0], allowed)
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}{hint}; allowed: {', '.join(sorted(allowed))}")


def _check_metric(metric: str | None, where: str) -> None:
    if metric is None:
        return
    try:
        metrics_mod.parse_metric(metric)
    except metrics_mod.MetricError as exc:
        raise SpecError(f"{where}: {exc}") from None


def resolve_adapter_name(adapter: Any, where: str) -> str | None:
    """The adapter as `module:function`; built-in short names are expanded."""
    if adapter is None:
        return None
    if not isinstance(adapter, str):
        raise SpecError(f"{where}: 'adapter' must be a string")
    if adapter in BUILTIN_ADAPTERS:
        return BUILTIN_ADAPTERS[adapter]
    if not _IMPORT_REF.match(adapter):
        raise SpecError(f"{where}: adapter {adapter!r} must be 'module:function' or one of "
                        f"{', '.join(sorted(BUILTIN_ADAPTERS))}")
    return adapter


def _check_fields(data: dict, where: str) -> dict[str, Any]:
    fields = _field(data, "fields", where, (dict,))
    bad = set(fields) - FIELD_KEYS
    if bad:
        raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(bad))}; allowed: {', '.join(sorted(FIELD_KEYS))}")
    for key in ("question", "answer", "images"):
        if key not in fields:
            raise SpecError(f"{where}: fields needs {key!r}")
    return fields


def parse_benchmark_spec(data: dict, path: Path, shipped: bool = False) -> BenchmarkSpec:
    """Validate a spec mapping; every problem is one SpecError naming the file and the key."""
    where = str(path)
    _check_keys(data, SPEC_KEYS, where)
    ds = _field(data, "dataset", where, (dict,))
    kind = _field(data, "kind", where, (str,))
    if kind not in KINDS:
        raise SpecError(f"{where}: kind {kind!r} must be one of {', '.join(KINDS)}")
    metric = _field(data, "metric", where, (str,))
    caprl_metric = _field(data, "caprl_metric", where, (str,), required=False)
    _check_metric(metric, where)
    _check_metric(caprl_metric, where)
    answer_format = _field(data, "answer_format", where, (str,), required=False, default="short")
    if answer_format not in ANSWER_FORMATS:
        raise SpecError(f"{where}: answer_format {answer_format!r} must be one of {', '.join(ANSWER_FORMATS)}")
    count = data.get("count")
    if count is not None and not isinstance(count, int):
        raise SpecError(f"{where}: 'count' must be an integer")
    name = str(_field(data, "name", where, (str,)))
    return BenchmarkSpec(
        name=name, path=path,
        dataset_path=str(_field(ds, "path", f"{where}: dataset", (str,))),
        dataset_name=_field(ds, "name", f"{where}: dataset", (str,), required=False),
        split=str(_field(ds, "split", f"{where}: dataset", (str,))),
        revision=_field(ds, "revision", f"{where}: dataset", (str,), required=False),
        data_files=ds.get("data_files"),
        kind=kind, metric=metric, caprl_metric=caprl_metric,
        protocol=_field(data, "protocol", where, (str,), required=False),
        answer_format=answer_format, fields=_check_fields(data, where), title=str(data.get("title") or name),
        count=count, categories=tuple(str(c) for c in (data.get("categories") or ())),
        filter=_field(data, "filter", where, (dict,), required=False),
        subset=_field(data, "subset", where, (dict,), required=False),
        adapter=resolve_adapter_name(data.get("adapter"), where),
        image_root=_field(data, "image_root", where, (str,), required=False),
        prompt_suffix=str(data.get("prompt_suffix") or ""),
        notes=str(data.get("notes") or "").strip(), verified=str(data.get("verified") or "").strip(),
        shipped=shipped, raw=data,
    )


def parse_suite_spec(data: dict, path: Path) -> SuiteSpec:
    """Validate a suite mapping ({suite, members, protocol, judge, average_over, ...})."""
    where = str(path)
    _check_keys(data, SUITE_KEYS, where)
    name = str(data["suite"])
    members = data.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise SpecError(f"{where}: suite {name!r} needs a non-empty 'members' list of benchmark names")
    average_over = data.get("average_over") or list(members)
    if not isinstance(average_over, list) or not set(average_over) <= set(members):
        raise SpecError(f"{where}: 'average_over' must list members of the suite")
    return SuiteSpec(name=name, path=path, members=list(members), protocol=data.get("protocol"),
                     judge=data.get("judge"), average_over=list(average_over),
                     title=str(data.get("title") or name), notes=str(data.get("notes") or "").strip())
