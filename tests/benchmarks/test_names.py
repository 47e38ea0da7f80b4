"""Benchmark names within one run are unique: results.json is keyed by them."""
from __future__ import annotations

from pathlib import Path

from prism_eval.benchmarks.names import unique_benchmarks
from prism_eval.benchmarks.types import Benchmark
from prism_eval.core.records import ImageRef, Question, Sample


def _bench(name: str, source: str = "", shipped: bool = False) -> Benchmark:
    sample = Sample("s", (ImageRef("img/0.png", "0" * 64),), (Question("q", "Which?", "A", ("x", "y")),), name)
    return Benchmark(name=name, samples=[sample], source=source, shipped=shipped)


def _local(path: Path) -> Benchmark:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    return _bench(path.stem, str(path))


def test_a_local_file_never_takes_a_shipped_benchmarks_name(tmp_path):
    shipped = _bench("mmstar", "Lin-Chen/MMStar", shipped=True)
    local = _local(tmp_path / "mine" / "mmstar.jsonl")
    names = [b.name for b in unique_benchmarks([local, shipped])]
    assert names == ["mine/mmstar", "mmstar"]


def test_files_named_alike_grow_until_they_differ_and_samples_follow(tmp_path):
    a = _local(tmp_path / "x" / "v1" / "bench.jsonl")
    b = _local(tmp_path / "y" / "v1" / "bench.jsonl")
    c = _local(tmp_path / "z" / "other.jsonl")
    out = unique_benchmarks([a, b, c])
    assert [x.name for x in out] == ["x/v1/bench", "y/v1/bench", "other"]
    assert [s.benchmark for x in out for s in x.samples] == ["x/v1/bench", "y/v1/bench", "other"]


def test_one_file_given_twice_is_one_benchmark(tmp_path):
    a = _local(tmp_path / "b" / "bench.jsonl")
    again = _bench("bench", str(tmp_path / "b" / ".." / "b" / "bench.jsonl"))
    assert [x.name for x in unique_benchmarks([a, again])] == ["bench"]


def test_sources_that_cannot_grow_are_numbered():
    out = unique_benchmarks([_bench("task", "lmms:task"), _bench("task", "other:task")])
    assert [x.name for x in out] == ["task", "task #2"]
