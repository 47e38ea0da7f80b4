"""Where benchmark specs and suites are found: the package's own, then folders the user names.

Shipped specs are package data (prism_eval/benchmarks/data/*.yaml, read through
importlib.resources, so they are found wherever the package is installed);
PRISM_EVAL_BENCHMARKS adds folders of a user's own specs (os.pathsep-separated,
earlier folders win over later ones and over the shipped ones).
"""
from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

from prism_eval.benchmarks.catalog.schema import (
    BenchmarkSpec,
    SpecError,
    SuiteSpec,
    parse_benchmark_spec,
    parse_suite_spec,
)
from prism_eval.core.registry import did_you_mean

ENV_DIRS = "PRISM_EVAL_BENCHMARKS"


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a file, or one SpecError line (not a parser traceback)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML ({problem}{at})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping")
    return data


def user_dirs() -> list[Path]:
    """The folders PRISM_EVAL_BENCHMARKS names; a path that is not a folder is an error, not ignored."""
    dirs = []
    for part in os.environ.get(ENV_DIRS, "").split(os.pathsep):
        if not part.strip():
            continue
        folder = Path(part).expanduser()
        if not folder.is_dir():
            what = "is a file" if folder.is_file() else "does not exist"
            raise SpecError(f"{ENV_DIRS}: {part!r} {what}; it must name folders of spec YAML files")
        dirs.append(folder)
    return dirs


def shipped_dir() -> Path:
    return Path(str(resources.files("prism_eval.benchmarks") / "data"))


@functools.lru_cache(maxsize=16)
def _scan(files: tuple[tuple[Path, bool, int], ...]) -> dict[str, tuple[Path, dict, bool]]:
    found: dict[str, tuple[Path, dict, bool]] = {}
    for path, is_shipped, _mtime in files:
        data = read_yaml(path)
        name = data.get("suite") or data.get("name")
        if not name:
            raise SpecError(f"{path}: needs a 'name' (benchmark) or 'suite' key")
        found.setdefault(str(name), (path, data, is_shipped))
    return found


def spec_files() -> dict[str, tuple[Path, dict, bool]]:
    """name -> (file, parsed YAML, shipped?) for every spec and suite; earlier folders win.

    Parsed once per set of files and modification times, so a listing is cheap and an edited spec is re-read.
    """
    files = []
    for folder, is_shipped in [*((d, False) for d in user_dirs()), (shipped_dir(), True)]:
        files.extend((p, is_shipped, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.y*ml")))
    return _scan(tuple(files))


def list_specs() -> list[str]:
    """Names of every benchmark spec (suites excluded)."""
    return sorted(n for n, (_, d, _s) in spec_files().items() if "suite" not in d)


def list_suites() -> list[str]:
    return sorted(n for n, (_, d, _s) in spec_files().items() if "suite" in d)


def get_suite(name: str) -> SuiteSpec | None:
    """The suite of that name, or None when `name` is not a suite."""
    entry = spec_files().get(name)
    if entry is None or "suite" not in entry[1]:
        return None
    return parse_suite_spec(entry[1], entry[0])


def get_spec(name_or_path: str | Path) -> BenchmarkSpec:
    """A benchmark spec by name (see list_specs) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SpecError(f"{path}: spec file does not exist")
        return parse_benchmark_spec(read_yaml(path), path)
    entry = spec_files().get(str(name_or_path))
    if entry is None or "suite" in entry[1]:
        raise SpecError(f"{name_or_path}: no benchmark spec of that name{did_you_mean(name_or_path, list_specs())}"
                        f" (known: {', '.join(list_specs())})")
    return parse_benchmark_spec(entry[1], entry[0], shipped=entry[2])


def catalogue() -> list[dict[str, Any]]:
    """One row per benchmark and suite, for `prism-eval benchmarks` (and its --json)."""
    rows: list[dict[str, Any]] = []
    for name in list_specs():
        spec = get_spec(name)
        rows.append({"id": name, "kind": spec.kind, "dataset": spec.dataset_path, "config": spec.dataset_name,
                     "split": spec.split, "questions": spec.count, "metric": spec.metric,
                     "caprl_metric": spec.caprl_metric, "protocol": spec.protocol, "answer_format": spec.answer_format,
                     "verified": spec.verified, "path": str(spec.path) if not spec.shipped else None})
    for name in list_suites():
        suite = get_suite(name)
        assert suite is not None
        counts = []
        for member in suite.members:
            try:
                counts.append(get_spec(member).count)
            except SpecError:
                counts.append(None)
        rows.append({"id": name, "kind": "suite", "dataset": None, "config": None, "split": None,
                     "questions": sum(counts) if counts and None not in counts else None, "metric": "per benchmark",
                     "caprl_metric": None, "protocol": suite.protocol, "answer_format": None, "verified": None,
                     "members": suite.members, "average_over": suite.average_over, "judge": suite.judge,
                     "path": None})
    return rows
