"""Read run directories (results.json + samples.jsonl) and group them by scoring setting.

Why a separate module: the run-directory contract is the only coupling between the
pipeline and the report, so it is checked in one place with one-line errors that
name the file and the problem.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prism_eval.jsonl import iter_jsonl

__all__ = ["ReportError", "BenchResult", "Run", "Setting", "find_run_dirs", "load_run",
           "load_runs", "group_runs"]


class ReportError(ValueError):
    """Bad report input; the message is one line naming the input and the problem."""


@dataclass(frozen=True)
class Setting:
    """What must be equal for two runs' scores to be comparable."""

    judge: str
    protocol: str
    scoring: str
    estimator: str

    FIELDS = ("judge", "protocol", "scoring", "estimator")


@dataclass
class BenchResult:
    score: float | None  # None: no question could be scored
    n: int
    ci95: tuple[float, float] | None
    best_of_n: float | None
    categories: dict[str, float]
    unanswered: int
    failed: int
    num_captions: int | None
    mean_caption_tokens: float | None


@dataclass
class Run:
    """One captioner's run, as written by `prism-eval run`."""

    path: Path
    captioner: str
    setting: Setting
    benchmarks: dict[str, BenchResult]
    average: float | None
    config: dict[str, Any]
    versions: dict[str, str]
    created: str | None
    complete: bool
    samples: list[dict[str, Any]] | None  # None: the run has no samples.jsonl
    label: str = ""  # unique display name, set by load_runs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def blind(self) -> bool:
        """The `none` captioner: empty captions, so the judge answers from text priors alone."""
        return self.captioner.strip().lower() == "none"


_SAMPLE_REQUIRED = ("benchmark", "question_id", "caption_index", "score")


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Each path is a run dir, a results.json, or a folder whose subfolders are run dirs."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise ReportError(f"{p}: no such file or directory")
        if p.is_file():
            if p.name != "results.json":
                raise ReportError(f"{p}: not a run directory or results.json")
            found.append(p.parent)
        elif (p / "results.json").is_file():
            found.append(p)
        else:
            subs = sorted(d for d in p.iterdir() if d.is_dir() and (d / "results.json").is_file())
            if not subs:
                raise ReportError(f"{p}: no results.json in it or in its subfolders (one level down)")
            found.extend(subs)
    unique: dict[Path, Path] = {}
    for d in found:
        unique.setdefault(d.resolve(), d)
    return list(unique.values())


def _need(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ReportError(f"{where}: missing key {key!r}")
    val = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(val, kinds) or (isinstance(val, bool) and bool not in kinds):
        names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
        raise ReportError(f"{where}: {key!r} should be {names.get(kinds[-1], kinds[-1].__name__)}, "
                          f"got {json.dumps(val)[:60]}")
    return val


def _bench(name: str, raw: Any, where: str) -> BenchResult:
    w = f"{where}: benchmark {name!r}"
    if not isinstance(raw, dict):
        raise ReportError(f"{w}: should be an object")
    if "score" not in raw:
        raise ReportError(f"{w}: missing key 'score'")
    score = None if raw["score"] is None else float(_need(raw, "score", (int, float), w))
    n = int(_need(raw, "n", int, w))
    ci = raw.get("ci95")
    if ci is not None:
        if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci)):
            raise ReportError(f"{w}: 'ci95' should be [lo, hi], got {ci!r:.60}")
        ci = (float(ci[0]), float(ci[1]))
    cats = raw.get("categories") or {}
    if not isinstance(cats, dict):
        raise ReportError(f"{w}: 'categories' should be an object")
    bon = raw.get("best_of_n")
    tokens = raw.get("mean_caption_tokens")
    return BenchResult(score=score, n=n, ci95=ci, best_of_n=None if bon is None else float(bon),
                       categories={str(k): float(v) for k, v in cats.items() if v is not None},
                       unanswered=int(raw.get("unanswered") or 0), failed=int(raw.get("failed") or 0),
                       num_captions=raw.get("num_captions"),
                       mean_caption_tokens=None if tokens is None else float(tokens))


def _load_samples(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, row in iter_jsonl(path.read_bytes(), str(path), ReportError):
        where = f"{path}:{i}"
        for key in _SAMPLE_REQUIRED:
            if key not in row:
                raise ReportError(f"{where}: missing key {key!r}")
        if row.get("caption_index") is None:  # the caption itself failed
            row["caption_index"] = -1
        if not isinstance(row["caption_index"], int):
            raise ReportError(f"{where}: 'caption_index' should be an integer, got {row['caption_index']!r:.40}")
        if not isinstance(row["score"], (int, float)) or not 0.0 <= float(row["score"]) <= 1.0:
            raise ReportError(f"{where}: 'score' should be a number in [0, 1], got {row['score']!r:.40}")
        rows.append(row)
    return rows


def load_run(d: Path) -> Run:
    """Read one run directory; samples.jsonl is optional (no sample browser or paired tests then)."""
    rpath = d / "results.json"
    try:
        raw = json.loads(rpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ReportError(f"{rpath}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except OSError as e:
        raise ReportError(f"{rpath}: cannot read ({e.strerror})") from None
    w = str(rpath)
    if not isinstance(raw, dict):
        raise ReportError(f"{w}: should be a JSON object")
    setting = Setting(judge=_need(raw, "judge", str, w), protocol=_need(raw, "protocol", str, w),
                      scoring=_need(raw, "scoring", str, w), estimator=str(raw.get("estimator") or "argmax"))
    benches = _need(raw, "benchmarks", dict, w)
    if not benches:
        raise ReportError(f"{w}: 'benchmarks' is empty")
    spath = d / "samples.jsonl"
    avg = raw.get("average")
    return Run(path=d, captioner=_need(raw, "captioner", str, w), setting=setting,
               benchmarks={str(k): _bench(str(k), v, w) for k, v in benches.items()},
               average=None if avg is None else float(avg),
               config=raw.get("config") or {}, versions={str(k): str(v) for k, v in (raw.get("versions") or {}).items()},
               created=raw.get("created"), complete=bool(raw.get("complete", True)),
               samples=_load_samples(spath) if spath.is_file() else None)


def load_runs(paths: list[Path]) -> list[Run]:
    """Find and load every run; give each a unique label (the captioner, plus the folder on a clash)."""
    runs = [load_run(d) for d in find_run_dirs(paths)]
    if not runs:
        raise ReportError("no run directories given")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.captioner] = counts.get(r.captioner, 0) + 1
    for r in runs:
        r.label = r.captioner if counts[r.captioner] == 1 else f"{r.captioner} [{r.path.name}]"
    return runs


def group_runs(runs: list[Run], group: bool = False) -> list[list[Run]]:
    """Runs comparable with each other; mixing settings is refused unless `group` is set."""
    groups: dict[Setting, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.setting, []).append(r)
    if len(groups) > 1 and not group:
        first, other = runs[0], next(r for r in runs if r.setting != runs[0].setting)
        diff = [f for f in Setting.FIELDS if getattr(first.setting, f) != getattr(other.setting, f)]
        detail = "; ".join(f"{f} {getattr(first.setting, f)!r} in {first.path} vs "
                           f"{getattr(other.setting, f)!r} in {other.path}" for f in diff)
        raise ReportError(f"cannot put runs scored differently in one leaderboard: {detail}; "
                          f"report them separately or pass --group for one leaderboard per setting")
    return list(groups.values())
