"""One name per benchmark within a run: results.json keys benchmarks by name, so two must never share one.

Two local files both called `bench.jsonl` (in v1/ and v2/) would otherwise
become one "bench" entry (the last) while samples.jsonl mixed both. A name that
collides is lengthened with the file's parent folders until it differs
(`v1/bench`, `v2/bench`); a shipped spec keeps its own name, so a local
`mmstar.jsonl` beside the shipped mmstar becomes `data/mmstar`. The same file
given twice (`x.jsonl` and `./x.jsonl`) is one benchmark.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

from prism_eval.benchmarks.types import Benchmark


def _local_file(bench: Benchmark) -> Path | None:
    if bench.shipped or not bench.source:
        return None
    path = Path(bench.source)
    return path if path.suffix == ".jsonl" and path.is_file() else None


def _parts(bench: Benchmark) -> list[str]:
    """The name, then the folders a longer name may add (most specific first)."""
    path = _local_file(bench)
    if path is None:
        return [bench.name]
    folders = [p for p in reversed(path.absolute().parent.parts) if p not in ("", "/", ".")]
    return [bench.name, *folders]


def _rename(bench: Benchmark, name: str) -> Benchmark:
    if name == bench.name:
        return bench
    samples = [dataclasses.replace(s, benchmark=name) for s in bench.samples]
    return dataclasses.replace(bench, name=name, samples=samples)


def _drop_repeated_files(benchmarks: Sequence[Benchmark]) -> list[Benchmark]:
    kept: list[Benchmark] = []
    seen_files: set[str] = set()
    for bench in benchmarks:
        path = _local_file(bench)
        if path is not None:
            real = os.path.realpath(path)
            if real in seen_files:
                continue
            seen_files.add(real)
        kept.append(bench)
    return kept


def unique_benchmarks(benchmarks: Sequence[Benchmark]) -> list[Benchmark]:
    """The benchmarks with repeats of one file dropped and colliding names made distinct (order kept)."""
    kept = _drop_repeated_files(benchmarks)
    parts = [_parts(b) for b in kept]
    depth = [1] * len(kept)
    fixed = [b.shipped or _local_file(b) is None for b in kept]  # only local files grow

    def name(i: int) -> str:
        return "/".join(reversed(parts[i][:depth[i]]))

    for _ in range(64):
        groups: dict[str, list[int]] = {}
        for i in range(len(kept)):
            groups.setdefault(name(i), []).append(i)
        grew = False
        for group in (g for g in groups.values() if len(g) > 1):
            for i in group:
                if not fixed[i] and depth[i] < len(parts[i]):
                    depth[i] += 1
                    grew = True
        if not grew:
            break
    names: list[str] = []
    for i in range(len(kept)):  # equal even with every folder (or two non-file sources): number them
        n, k = name(i), 2
        while n in names:
            n, k = f"{name(i)} #{k}", k + 1
        names.append(n)
    return [_rename(b, n) for b, n in zip(kept, names)]
