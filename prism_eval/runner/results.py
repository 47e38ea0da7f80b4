"""The run record: what `prism-eval run` writes (results.json, samples.jsonl) and what the report reads.

Typed, so the writer and every reader agree on one schema: `RunRecord` (one
captioner's run), `BenchmarkResult` (one benchmark of it), `SampleRecord` (one
judge answer) and `RunSettings` (every setting that changes a score). Two runs
can share a leaderboard only when their `RunSettings.comparability_key()`
agree; `RunSettings.differences` names what differs.

results.json carries `"version"`; files written before it (version 1) still load,
with the settings they did not record left unknown.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from prism_eval.core.diagnostics import VisionRequiredScore
from prism_eval.core.resilience import redact_secrets
from prism_eval.io.atomic import write_atomic
from prism_eval.io.jsonl import iter_jsonl, jsonl_line

RESULTS_VERSION = 2
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


class RecordError(ValueError):
    """A results.json or samples.jsonl that does not fit the schema; one line naming the file and the problem."""


def _need(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise RecordError(f"{where}: missing key {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list"}
        raise RecordError(f"{where}: {key!r} should be {names.get(kinds[-1], kinds[-1].__name__)}, "
                          f"got {json.dumps(value)[:60]}")
    return value


def _number(value: Any, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{where}: {key!r} should be a finite number, got {json.dumps(value)[:60]}")
    return float(value)


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class RunSettings:
    """Every setting that changes a score; runs compare only when these agree.

    None means "not recorded" (a results.json from before these were kept).
    `question_sets` maps each benchmark to the identity of the questions it
    scored (ids, answers, options, images), so --limit 15 and --limit 3, or two
    versions of a benchmark file, are told apart.
    """

    judge: str
    protocol: str
    scoring: str
    estimator: str
    judge_identity: str | None = None
    option_norm: str | None = None  # option-loglik only; None for other scoring modes
    compat: str | None = None
    permutations: int | None = None
    num_captions: int | None = None
    caption_prompt: str | None = None
    caption_temperature: float | None = None
    caption_top_p: float | None = None
    caption_max_tokens: int | None = None
    label_quirk: bool | None = None
    seed: int | None = None
    limit: int | None = None
    question_sets: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    KEY_FIELDS = ("judge", "judge_identity", "protocol", "scoring", "estimator", "option_norm", "compat",
                  "permutations", "num_captions", "caption_prompt", "caption_temperature", "caption_top_p",
                  "caption_max_tokens", "label_quirk", "seed", "limit")

    def comparability_key(self) -> tuple[tuple[str, Any], ...]:
        """(setting, value) pairs that must be equal for two runs' scores to be comparable."""
        return tuple((name, getattr(self, name)) for name in self.KEY_FIELDS)

    def differences(self, other: "RunSettings") -> list[tuple[str, Any, Any]]:
        """(setting, this value, other value) for every setting that differs, question sets included."""
        out = [(name, a, b) for (name, a), (_, b) in zip(self.comparability_key(), other.comparability_key())
               if a != b]
        for bench in sorted(set(self.question_sets) & set(other.question_sets)):
            a, b = self.question_sets[bench], other.question_sets[bench]
            if a != b:
                out.append((f"question set of {bench}", a, b))
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> "RunSettings":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("judge", "protocol", "scoring", "estimator"):
            _need(raw, key, str, where)
        return cls(**values)


# ---------------------------------------------------------------- per benchmark

@dataclass
class BenchmarkResult:
    """One benchmark of one run: the score (0-100, mean over questions of the mean over captions) and its context."""

    score: float | None  # None: no question could be scored
    n: int  # questions scored
    ci95: tuple[float, float] | None = None
    best_of_n: float | None = None
    categories: dict[str, float] = field(default_factory=dict)
    unanswered: int = 0
    failed: int = 0
    num_captions: int | None = None
    mean_caption_tokens: float | None = None
    kind: str = ""
    source: str = ""
    question_set: str | None = None
    shipped: bool = False  # a benchmark spec that ships with prism-eval (published reference rows may apply)
    truncated: int = 0  # captions cut from their end to fit the judge's context window
    # Diagnostics (prism_eval.core.diagnostics; None or empty when not measured, e.g. in older files):
    omission: float | None = None  # percent of multiple-choice asks answered "cannot answer"
    hallucination: float | None = None  # percent answered with a wrong content option
    outcomes: dict[str, float] | None = None  # right/omission/hallucination/unanswered percents, n questions
    by_length: dict[str, float | None] = field(default_factory=dict)  # --length-curve: "16": score, ..., "full"
    vision_required: VisionRequiredScore | None = None  # score over the questions the blind baseline missed
    length_unit: str | None = None  # unit of mean_caption_tokens: "judge tokens" or "words" (None: words)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci95"] = None if self.ci95 is None else list(self.ci95)
        return out

    @classmethod
    def from_dict(cls, name: str, raw: Any, where: str) -> "BenchmarkResult":
        w = f"{where}: benchmark {name!r}"
        if not isinstance(raw, dict):
            raise RecordError(f"{w}: should be an object")
        if "score" not in raw:
            raise RecordError(f"{w}: missing key 'score'")
        ci = raw.get("ci95")
        if ci is not None:
            if not (isinstance(ci, (list, tuple)) and len(ci) == 2
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ci)):
                raise RecordError(f"{w}: 'ci95' should be [lo, hi], got {json.dumps(ci)[:60]}")
            ci = (float(ci[0]), float(ci[1]))
        cats = raw.get("categories") or {}
        if not isinstance(cats, dict):
            raise RecordError(f"{w}: 'categories' should be an object")
        return cls(score=_number(raw["score"], "score", w), n=int(_need(raw, "n", int, w)), ci95=ci,
                   best_of_n=_number(raw.get("best_of_n"), "best_of_n", w),
                   categories={str(k): float(v) for k, v in cats.items() if v is not None},
                   unanswered=int(raw.get("unanswered") or 0), failed=int(raw.get("failed") or 0),
                   num_captions=raw.get("num_captions"),
                   mean_caption_tokens=_number(raw.get("mean_caption_tokens"), "mean_caption_tokens", w),
                   kind=str(raw.get("kind") or ""), source=str(raw.get("source") or ""),
                   question_set=raw.get("question_set"), shipped=bool(raw.get("shipped", False)),
                   truncated=int(raw.get("truncated") or 0), **_diagnostics(raw, w))


def _number_map(raw: Any, key: str, where: str) -> dict[str, float | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: {key!r} should be an object")
    return {str(k): v if isinstance(v, int) and not isinstance(v, bool) else _number(v, f"{key}.{k}", where)
            for k, v in raw.items()}


def _diagnostics(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The optional diagnostic fields of a benchmark result, checked."""
    vision = raw.get("vision_required")
    if vision is not None:
        if not isinstance(vision, dict) or not isinstance(vision.get("n"), int) or isinstance(vision["n"], bool):
            raise RecordError(f"{where}: 'vision_required' should be {{\"score\": s, \"n\": k}}, "
                              f"got {json.dumps(vision)[:60]}")
        vision = VisionRequiredScore(_number(vision.get("score"), "vision_required.score", where), vision["n"])
    outcomes = _number_map(raw.get("outcomes"), "outcomes", where) or None
    unit = raw.get("length_unit")
    if unit is not None and not isinstance(unit, str):
        raise RecordError(f"{where}: 'length_unit' should be a string, got {json.dumps(unit)[:60]}")
    return {"omission": _number(raw.get("omission"), "omission", where),
            "hallucination": _number(raw.get("hallucination"), "hallucination", where),
            "outcomes": outcomes, "by_length": _number_map(raw.get("by_length"), "by_length", where),
            "vision_required": vision, "length_unit": unit}


# ---------------------------------------------------------------- per answer

@dataclass(slots=True)
class SampleRecord:
    """One line of samples.jsonl: one judge answer to one question about one caption (and draw)."""

    captioner: str = ""
    benchmark: str = ""
    sample_id: str = ""
    question_id: str = ""
    category: str | None = None
    image: str = ""
    thumb: str | None = None
    caption_index: int | None = None  # None: the caption itself failed
    caption: str | None = None
    caption_prompt: str | None = None
    caption_tokens: int | None = None  # in the judge's tokens where the judge has a tokenizer, else words
    draw: int = 0
    question: str = ""
    options: list[str] | None = None
    gold: str | None = None
    raw: str = ""
    extracted: str | None = None
    score: float = 0.0
    correct: bool = False
    status: str = "ok"  # ok | unanswered | failed
    error: str | None = None
    outcome: str | None = None  # right | omission | hallucination | unanswered (core.diagnostics); None: n/a

    REQUIRED = ("benchmark", "question_id", "caption_index", "score")

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_line(self) -> str:
        return jsonl_line({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str) -> "SampleRecord":
        for key in cls.REQUIRED:
            if key not in row:
                raise RecordError(f"{where}: missing key {key!r}")
        index = row.get("caption_index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise RecordError(f"{where}: 'caption_index' should be an integer, got {json.dumps(index)[:40]}")
        score = row["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= float(score) <= 1.0:
            raise RecordError(f"{where}: 'score' should be a number in [0, 1], got {json.dumps(score)[:40]}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        values.update(benchmark=str(row["benchmark"]), question_id=str(row["question_id"]), score=float(score),
                      captioner=str(row.get("captioner") or ""), sample_id=str(row.get("sample_id") or ""),
                      image=str(row.get("image") or row.get("sample_id") or ""))
        return cls(**values)


def read_samples(path: Path) -> list[SampleRecord]:
    """Every line of a samples.jsonl, checked; RecordError names the file and line of the first bad one."""
    return [SampleRecord.from_dict(row, f"{path}:{i}")
            for i, row in iter_jsonl(Path(path).read_bytes(), str(path), RecordError, max_line_chars=None)]


# ---------------------------------------------------------------- the run

@dataclass
class RunRecord:
    """One captioner's run over one or more benchmarks: what results.json holds."""

    captioner: str
    settings: RunSettings
    benchmarks: dict[str, BenchmarkResult]
    average: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    complete: bool = True
    name: str | None = None  # a display name given with --name
    average_over: list[str] | None = None  # the benchmarks the headline average covers (None: all of them)
    version: int = RESULTS_VERSION

    @property
    def judge(self) -> str:
        return self.settings.judge

    @property
    def blind(self) -> bool:
        """The `none` captioner: empty captions, so the judge answers from text priors alone."""
        return self.captioner.strip().lower() == "none"

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {"version": self.version, "captioner": self.captioner, "name": self.name, "judge": s.judge,
                "protocol": s.protocol, "scoring": s.scoring, "estimator": s.estimator,
                "benchmarks": {k: b.to_dict() for k, b in self.benchmarks.items()}, "average": self.average,
                "average_over": self.average_over, "settings": s.to_dict(), "config": self.config,
                "versions": self.versions, "created": self.created, "complete": self.complete}

    def write(self, out_dir: Path) -> Path:
        path = Path(out_dir) / RESULTS_FILE
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        write_atomic(path, redact_secrets(text))  # no credential reaches a file that is shared and published
        return path

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "RunRecord":
        if not isinstance(raw, dict):
            raise RecordError(f"{where}: should be a JSON object")
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > RESULTS_VERSION:
            raise RecordError(f"{where}: results version {version!r} is newer than this prism-eval reads "
                              f"({RESULTS_VERSION}); upgrade prism-eval")
        benches = _need(raw, "benchmarks", dict, where)
        if not benches:
            raise RecordError(f"{where}: 'benchmarks' is empty")
        results = {str(k): BenchmarkResult.from_dict(str(k), v, where) for k, v in benches.items()}
        for key in ("judge", "protocol", "scoring"):  # the documented top-level keys, in every version
            _need(raw, key, str, where)
        settings = (RunSettings.from_dict(_need(raw, "settings", dict, where), f"{where}: settings")
                    if version >= 2 else _v1_settings(raw, results, where))
        for key in ("judge", "protocol", "scoring"):
            if raw[key] != getattr(settings, key):
                raise RecordError(f"{where}: {key!r} is {raw[key]!r} but its settings say {getattr(settings, key)!r}")
        return cls(captioner=_need(raw, "captioner", str, where), settings=settings, benchmarks=results,
                   average=_number(raw.get("average"), "average", where), config=raw.get("config") or {},
                   versions={str(k): str(v) for k, v in (raw.get("versions") or {}).items()},
                   created=raw.get("created"), complete=bool(raw.get("complete", True)), name=raw.get("name"),
                   average_over=raw.get("average_over"), version=version)

    @classmethod
    def read(cls, run_dir: Path) -> "RunRecord":
        path = Path(run_dir) / RESULTS_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        return cls.from_dict(raw, str(path))


def _v1_settings(raw: dict[str, Any], results: dict[str, BenchmarkResult], where: str) -> RunSettings:
    """The settings a version-1 results.json recorded (in its config block); the rest unknown."""
    config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    scoring = _need(raw, "scoring", str, where)
    return RunSettings(
        judge=_need(raw, "judge", str, where), protocol=_need(raw, "protocol", str, where), scoring=scoring,
        estimator=str(raw.get("estimator") or "argmax"),
        option_norm=config.get("option_norm") if scoring == "option-loglik" else None,
        compat=config.get("compat"), permutations=config.get("permutations"),
        num_captions=config.get("num_captions"), label_quirk=config.get("label_quirk"), seed=config.get("seed"),
        limit=config.get("limit"), caption_max_tokens=config.get("caption_max_tokens"),
        caption_temperature=config.get("caption_temperature"),
        question_sets={name: None for name in results})
