"""`--benchmark` resolution: a name, a suite, a YAML path, a JSONL path or `<source>:<name>` -> Benchmarks.

The form is decided by prefix and suffix alone, so a missing optional library
(PyYAML, datasets, lmms-eval) surfaces as its own error, never as "no such benchmark".
Prefixed sources (`lmms:<task>`) come from a registry of loaders named by import
string, so an optional integration is imported only when its prefix is used.
"""
from __future__ import annotations

from pathlib import Path

from prism_eval.benchmarks.caprl_files import CAPRL_EVAL_FILES
from prism_eval.benchmarks.catalog.index import get_suite, list_specs, list_suites
from prism_eval.benchmarks.catalog.rows import load_spec_benchmark
from prism_eval.benchmarks.catalog.schema import SuiteSpec
from prism_eval.benchmarks.local import load_jsonl_benchmark
from prism_eval.benchmarks.types import Benchmark, BenchmarkError
from prism_eval.core.metrics import MetricError, parse_metric
from prism_eval.core.registry import Registry, did_you_mean

# prefix -> loader(name, limit=...) -> Benchmark, as an import string
SOURCES: Registry = Registry("benchmark source", BenchmarkError)
SOURCES.register("lmms", "prism_eval.integrations.lmms.tasks:load_lmms_benchmark")
SOURCES.register("caprl", "prism_eval.benchmarks.caprl_files:load_caprl_benchmark")


def register_benchmark_source(prefix: str, loader: object) -> None:
    """Make `<prefix>:<name>` a benchmark; `loader(name, limit=...)` (or its import string) returns a Benchmark."""
    SOURCES.register(prefix, loader)


def _source(name: str) -> tuple[str, str] | None:
    prefix, sep, rest = name.partition(":")
    return (prefix, rest) if sep and prefix in SOURCES else None


def _is_name(name: str) -> bool:
    return _source(name) is None and not Path(name).suffix


def suite_of(name: str) -> SuiteSpec | None:
    """The suite called `name`, or None (paths and lmms tasks are never suites)."""
    return get_suite(name) if _is_name(name) else None


def expand_names(names: list[str]) -> list[str]:
    """Expand suite names (e.g. 'caprl') into their member benchmarks, keeping order and dropping repeats."""
    out: list[str] = []
    for name in names:
        suite = suite_of(name)
        for member in suite.members if suite else [name]:
            if member not in out:
                out.append(member)
    return out


def default_protocol(names: list[str]) -> str:
    """The protocol a run uses when none is given: the first suite's own, else caprl."""
    for name in names:
        suite = suite_of(name)
        if suite is not None and suite.protocol:
            return suite.protocol
    return "caprl"


def default_judge(names: list[str]) -> str | None:
    """The judge the first requested suite declares (its paper's), or None."""
    for name in names:
        suite = suite_of(name)
        if suite is not None and suite.judge:
            return suite.judge
    return None


def load_benchmark(name_or_path: str, limit: int | None = None, metric: str | None = None,
                   compat: str | None = None) -> Benchmark:
    """A benchmark by spec name or YAML path, `lmms:<task>`, or a local JSONL file.

    `compat="caprl"` scores with CapRL's published metric quirks, to reproduce its numbers.
    """
    if metric:
        try:
            parse_metric(metric)
        except MetricError as exc:
            raise BenchmarkError(f"--metric: {exc}") from None
    if compat == "caprl" and name_or_path in CAPRL_EVAL_FILES:
        name_or_path = f"caprl:{name_or_path}"  # CapRL's own questions, images and prompts
    path = Path(name_or_path)
    source = _source(name_or_path)
    if source is not None:
        return SOURCES.get(source[0])(source[1], limit=limit)
    if path.suffix == ".jsonl" or (path.is_file() and path.suffix not in (".yaml", ".yml")):
        return load_jsonl_benchmark(path, limit=limit, metric=metric)
    if path.suffix in (".yaml", ".yml") or name_or_path in list_specs():
        bench = load_spec_benchmark(name_or_path, limit=limit, compat=compat)
        if metric:
            bench.metric = metric
        return bench
    known = [*list_specs(), *list_suites()]
    raise BenchmarkError(f"{name_or_path}: no such benchmark file or spec name{did_you_mean(name_or_path, known)}"
                         " (see `prism-eval benchmarks` for the names)")
