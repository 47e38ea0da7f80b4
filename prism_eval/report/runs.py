"""Read run directories (results.json + samples.jsonl) and group them into comparable sets.

Why a separate module: the run-directory contract is the only coupling between the
pipeline and the report. The files are read through the run record's own types
(prism_eval.runner.results), and two runs share a leaderboard only when every
setting that changes a score agrees (RunSettings.comparability_key).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from prism_eval.report.paths import PathScrubber
from prism_eval.runner.naming import display_names
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

__all__ = ["ReportError", "Run", "find_run_dirs", "load_run", "load_runs", "group_runs", "parse_labels",
           "JUDGE_SETTINGS", "judge_only"]

JUDGE_SETTINGS = ("judge", "judge_identity")  # what may differ between boards shown side by side for agreement


class ReportError(ValueError):
    """Bad report input; the message is one line naming the input and the problem."""


@dataclass
class Run:
    """One captioner's run, as written by `prism-eval run`, with a display label."""

    path: Path
    record: RunRecord
    samples: list[SampleRecord] | None  # None: the run has no samples.jsonl
    label: str = ""  # unique display name, set by load_runs
    spec: str = ""  # the captioner spec as a report shows it (no absolute local path)
    folder: str = ""  # the run folder as a report shows it
    scrubber: PathScrubber | None = field(default=None, repr=False)

    def shown(self, text: Any) -> str:
        """A string from this run's record as a report may show it (local paths rewritten)."""
        text = "" if text is None else str(text)
        return self.scrubber.text(text, self.path) if self.scrubber else text

    def shown_value(self, value: Any) -> Any:
        """A JSON-like value from this run's record (config, versions) with local paths rewritten."""
        return self.scrubber.value(value, self.path) if self.scrubber else value

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


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """`RUN=NAME` pairs (RUN: a run folder, its name, a captioner spec or a default name) as a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, name = str(item).rpartition("=")
        if not sep or not key.strip() or not name.strip():
            raise ReportError(f"--label {item!r}: expected RUN=NAME (RUN: a run folder, a captioner spec or its "
                              "shown name)")
        out[key.strip()] = name.strip()
    return out


def _label_keys(r: Run, default: str) -> set[str]:
    """Every way a --label may name this run."""
    keys = {str(r.path), r.path.name, str(r.path.resolve()), r.captioner, default, r.folder}
    if r.record.name:
        keys.add(r.record.name)
    return {k.rstrip("/") for k in keys if k}


def _apply_labels(runs: list[Run], defaults: dict[str, str], labels: Mapping[str, str]) -> dict[int, str]:
    """id(run) -> the name a --label gives it; a label that names no run is an error."""
    given: dict[int, str] = {}
    for key, name in labels.items():
        hits = [r for r in runs if key.rstrip("/") in _label_keys(r, defaults[r.captioner])]
        if not hits:
            known = ", ".join(sorted({defaults[r.captioner] for r in runs}))
            raise ReportError(f"--label {key}={name}: {key!r} names no run (give a run folder, a captioner spec "
                              f"or one of: {known})")
        for r in hits:
            given[id(r)] = name
    return given


def load_runs(paths: list[Path], labels: Mapping[str, str] | None = None) -> list[Run]:
    """Find and load every run and give each a unique label.

    The label is a --label given for it, else the name the run was given (`run --name`), else the
    short name of its captioner (`reference` for file:.../captions/reference.jsonl); the judge (when
    each was scored by another judge) or else the folder is added where two would read the same.
    """
    runs = [load_run(d) for d in find_run_dirs(paths)]
    if not runs:
        raise ReportError("no run directories given")
    scrubber = PathScrubber([r.path for r in runs])
    for r in runs:
        r.scrubber = scrubber
        r.spec = scrubber.text(r.captioner, r.path)
        r.folder = scrubber.folder(r.path)
    defaults = display_names([r.captioner for r in runs])
    given = _apply_labels(runs, defaults, labels or {})
    bases = [given.get(id(r)) or r.record.name or defaults[r.captioner] for r in runs]
    counts: dict[str, int] = {}
    for base in bases:
        counts[base] = counts.get(base, 0) + 1
    judges: dict[str, set[str]] = {}
    for r, base in zip(runs, bases):
        judges.setdefault(base, set()).add(r.settings.judge)
    taken: set[str] = set()
    for r, base in zip(runs, bases):
        # The same captioner under several judges is told apart by its judge, otherwise by its folder.
        tag = r.shown(r.settings.judge) if len(judges[base]) == counts[base] else r.path.name
        label = base if counts[base] == 1 else f"{base} [{tag}]"
        k = 2
        while label in taken:
            label, k = f"{base} [{r.path.name} {k}]", k + 1
        taken.add(label)
        r.label = label
    return runs


def _describe(value: Any) -> str:
    return "not recorded" if value is None else repr(value)


def judge_only(a: RunSettings, b: RunSettings) -> bool:
    """Whether two runs' settings differ, and only in the judge (so their rankings can be compared)."""
    diff = a.differences(b)
    return bool(diff) and all(name in JUDGE_SETTINGS for name, _, _ in diff)


def group_runs(runs: list[Run], group: bool = False) -> list[list[Run]]:
    """Runs comparable with each other; mixing settings is refused unless `group` is set.

    Runs that differ only in the judge go to one leaderboard per judge (the report then adds
    the judges' agreement). With `group`, runs go to one leaderboard per distinct setting
    (question sets included).
    """
    groups: list[list[Run]] = []
    for r in runs:
        home = next((g for g in groups if not r.settings.differences(g[0].settings)), None)
        if home is None:
            if groups and not group and not all(judge_only(r.settings, g[0].settings) for g in groups):
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
