"""Read run directories (results.json + samples.jsonl) and group them into comparable sets.

Why a separate module: the run-directory contract is the only coupling between the
pipeline and the report. The files are read through the run record's own types
(prism_eval.runner.results), and two runs share a leaderboard only when every
setting that changes a score agrees (RunSettings.comparability_key).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism_eval.runner.results import (
    RESULTS_FILE,
    SAMPLES_FILE,
    BenchmarkResult,
    RecordError,
    RunRecord,
    RunSettings,
    SampleRecord,
    read_samples,
)

__all__ = ["ReportError", "Run", "find_run_dirs", "load_run", "load_runs", "group_runs"]


class ReportError(ValueError):
    """Bad report input; the message is one line naming the input and the problem."""


@dataclass
class Run:
    """One captioner's run, as written by `prism-eval run`, with a display label."""

    path: Path
    record: RunRecord
    samples: list[SampleRecord] | None  # None: the run has no samples.jsonl
    label: str = ""  # unique display name, set by load_runs

    @property
    def captioner(self) -> str:
        return self.record.captioner

    @property
    def settings(self) -> RunSettings:
        return self.record.settings

    @property
    def benchmarks(self) -> dict[str, BenchmarkResult]:
        return self.record.benchmarks

    @property
    def average(self) -> float | None:
        return self.record.average

    @property
    def config(self) -> dict[str, Any]:
        return self.record.config

    @property
    def versions(self) -> dict[str, str]:
        return self.record.versions

    @property
    def created(self) -> str | None:
        return self.record.created

    @property
    def complete(self) -> bool:
        return self.record.complete

    @property
    def blind(self) -> bool:
        """The `none` captioner: empty captions, so the judge answers from text priors alone."""
        return self.record.blind


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Each path is a run dir, a results.json, or a folder whose subfolders are run dirs."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise ReportError(f"{p}: no such file or directory")
        if p.is_file():
            if p.name != RESULTS_FILE:
                raise ReportError(f"{p}: not a run directory or results.json")
            found.append(p.parent)
        elif (p / RESULTS_FILE).is_file():
            found.append(p)
        else:
            subs = sorted(d for d in p.iterdir() if d.is_dir() and (d / RESULTS_FILE).is_file())
            if not subs:
                raise ReportError(f"{p}: no results.json in it or in its subfolders (one level down)")
            found.extend(subs)
    unique: dict[Path, Path] = {}
    for d in found:
        unique.setdefault(d.resolve(), d)
    return list(unique.values())


def load_run(d: Path) -> Run:
    """Read one run directory; samples.jsonl is optional (no sample browser or paired tests then)."""
    try:
        record = RunRecord.read(d)
        spath = d / SAMPLES_FILE
        samples = read_samples(spath) if spath.is_file() else None
    except RecordError as exc:
        raise ReportError(str(exc)) from None
    return Run(path=d, record=record, samples=samples)


def load_runs(paths: list[Path]) -> list[Run]:
    """Find and load every run; give each a unique label (its name, or the captioner, plus the folder on a clash)."""
    runs = [load_run(d) for d in find_run_dirs(paths)]
    if not runs:
        raise ReportError("no run directories given")
    counts: dict[str, int] = {}
    for r in runs:
        base = r.record.name or r.captioner
        counts[base] = counts.get(base, 0) + 1
    for r in runs:
        base = r.record.name or r.captioner
        r.label = base if counts[base] == 1 else f"{base} [{r.path.name}]"
    return runs


def _describe(value: Any) -> str:
    return "not recorded" if value is None else repr(value)


def group_runs(runs: list[Run], group: bool = False) -> list[list[Run]]:
    """Runs comparable with each other; mixing settings is refused unless `group` is set.

    With `group`, runs go to one leaderboard per distinct setting (question sets included).
    """
    groups: list[list[Run]] = []
    for r in runs:
        home = next((g for g in groups if not r.settings.differences(g[0].settings)), None)
        if home is None:
            if groups and not group:
                first = groups[0][0]
                diff = r.settings.differences(first.settings)
                detail = "; ".join(f"{name} {_describe(b)} in {first.path} vs {_describe(a)} in {r.path}"
                                   for name, a, b in diff[:4])
                more = f" (and {len(diff) - 4} more)" if len(diff) > 4 else ""
                raise ReportError(f"cannot rank runs scored differently in one leaderboard: {detail}{more}; "
                                  "report them separately or pass --group for one leaderboard per setting")
            groups.append([r])
        else:
            home.append(r)
    return groups
