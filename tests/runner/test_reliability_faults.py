"""Model-call failures through the real `prism-eval run`: bounded retries, smaller batches, visible failures.

The engines are real (the built-in SmolLM2 judge, the tiny LLaVA captioner);
the test wraps them in classes that fail the way real back ends do: an
out-of-memory error for batches above a size, a timeout the first time a
request is seen, an exception for particular inputs every time, NaN scores
(an fp16 overflow). The wrapped engine is handed to the CLI through the
registry's loader, so everything between the command line and the model runs
for real.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from prism_eval.cli import main
from prism_eval.cli.common import EXIT_INCOMPLETE
from prism_eval.core.records import JudgeRequest
from prism_eval.engines import registry

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
ALWAYS, ONCE, NAN = "[fault:always]", "[fault:once]", "[fault:nan]"
MAX_RETRIES = 2  # UtilityConfig.max_retries: attempts per request = MAX_RETRIES + 1


class FaultyJudge:
    """The real judge, failing like a real back end for chosen requests and batch sizes."""

    def __init__(self, inner, max_batch: int | None = None) -> None:
        self.inner, self.spec, self.max_batch = inner, inner.spec, max_batch
        self.batches: list[tuple[int, str]] = []  # (size, outcome) of every call
        self.attempts: Counter[str] = Counter()  # prompt text -> calls that included it
        self.alone: Counter[str] = Counter()  # prompt text -> calls with it alone in the batch
        self.timed_out: set[str] = set()

    def fingerprint(self):
        return self.inner.fingerprint()

    def _enter(self, requests: list[JudgeRequest]) -> None:
        for r in requests:
            self.attempts[r.messages[-1][1]] += 1
        if len(requests) == 1:
            self.alone[requests[0].messages[-1][1]] += 1
        if self.max_batch is not None and len(requests) > self.max_batch:
            self.batches.append((len(requests), "oom"))
            raise MemoryError(f"CUDA out of memory (injected): a batch of {len(requests)} needs too much")
        for r in requests:
            text = r.messages[-1][1]
            if ALWAYS in text:
                self.batches.append((len(requests), "error"))
                raise RuntimeError("injected engine failure for this caption")
            if ONCE in text and text not in self.timed_out:
                self.timed_out.add(text)
                self.batches.append((len(requests), "timeout"))
                raise TimeoutError("injected timeout (first attempt)")
        self.batches.append((len(requests), "ok"))

    def letter_logprobs(self, requests, letters):
        self._enter(list(requests))
        out = self.inner.letter_logprobs(requests, letters)
        return [[math.nan] * len(row) if NAN in r.messages[-1][1] else row for r, row in zip(requests, out)]

    def generate(self, requests, sampling):
        self._enter(list(requests))
        return self.inner.generate(requests, sampling)

    def option_logliks(self, requests, continuations):
        self._enter(list(requests))
        return self.inner.option_logliks(requests, continuations)


class FaultyCaptioner:
    """The real captioner, out of memory above one image per call, and broken for one image."""

    needs_pixels = True

    def __init__(self, inner, bad_size: tuple[int, int]) -> None:
        self.inner, self.spec, self.bad_size = inner, inner.spec, bad_size
        self.batches: list[tuple[int, str]] = []

    def fingerprint(self):
        return self.inner.fingerprint()

    def caption(self, images, prompts, n, sampling):
        if len(images) > 1:
            self.batches.append((len(images), "oom"))
            raise MemoryError("out of memory (injected)")
        if images[0][0].size == self.bad_size:
            self.batches.append((1, "error"))
            raise RuntimeError("injected captioner failure for this image")
        self.batches.append((1, "ok"))
        return self.inner.caption(images, prompts, n, sampling)


def build(root: Path, tags: dict[int, str]) -> tuple[Path, Path]:
    """Six images, two questions each, and a captions file whose captions carry the fault tags."""
    (root / "img").mkdir(parents=True)
    rows, caps = [], []
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (32 + i, 32), colour).save(root / "img" / f"{i}.png")
        options = [c for c in COLOURS if c != colour][:3]
        options.insert(i % 4, colour)
        rows.append({"id": f"c{i}", "image": f"img/{i}.png", "question": "What colour is the picture?",
                     "options": options, "answer": "ABCD"[i % 4]})
        rows.append({"id": f"b{i}", "image": f"img/{i}.png", "question": "Is the picture bright or dark?",
                     "options": ["dark", "bright"], "answer": "B"})
        caps.append({"image": f"img/{i}.png", "caption": f"A plain {colour} picture. {tags.get(i, '')}".strip()})
    bench, captions = root / "bench.jsonl", root / "captions.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    captions.write_text("".join(json.dumps(c) + "\n" for c in caps))
    return bench, captions


def run(args: list[str], monkeypatch, judge=None, captioner=None):
    if judge is not None:
        monkeypatch.setattr(registry, "load_judge", lambda spec, **kw: judge)
    if captioner is not None:
        monkeypatch.setattr(registry, "load_captioner", lambda spec, **kw: captioner)
    if judge is not None and "--judge" not in args and "-j" not in args:
        args = [*args, "--judge", "builtin:smollm2-135m"]  # the spec the checks see; the injected judge answers
    result = CliRunner().invoke(main, ["run", *args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def samples(out: Path) -> dict[str, dict]:
    return {json.loads(line)["question_id"]: json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()}


def test_judge_faults_are_retried_split_and_failed_visibly(tmp_path, monkeypatch, builtin_judge):
    bench, captions = build(tmp_path / "b", {2: ALWAYS, 4: ONCE, 5: NAN})
    common = ["--benchmark", str(bench), "--captioner", f"file:{captions}", "--judge-batch", "8",
              "--scoring", "letter-logprob"]  # the mode whose NaN output the wrapper injects

    clean = run([*common, "--store", str(tmp_path / "clean.sqlite"), "--out", str(tmp_path / "clean")],
                monkeypatch, judge=builtin_judge)
    assert clean.exit_code == 0, clean.output

    faulty = FaultyJudge(builtin_judge, max_batch=3)
    result = run([*common, "--store", str(tmp_path / "faulty.sqlite"), "--out", str(tmp_path / "faulty")],
                 monkeypatch, judge=faulty)

    # the run finishes, and says it is incomplete
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    assert "incomplete" in result.stderr and "(4 failed)" in result.stdout
    summary = json.loads((tmp_path / "faulty" / "results.json").read_text())
    bench_summary = summary["benchmarks"]["bench"]
    assert summary["complete"] is False and bench_summary["failed"] == 4 and bench_summary["n"] == 8

    # the failed items are listed with their reason, and never scored as wrong answers
    got, ref = samples(tmp_path / "faulty"), samples(tmp_path / "clean")
    failed = {q: s for q, s in got.items() if s["status"] == "failed"}
    assert set(failed) == {"c2", "b2", "c5", "b5"}
    assert all("RuntimeError: injected engine failure" in failed[q]["error"] for q in ("c2", "b2"))
    assert all("unusable scores [nan" in failed[q]["error"] for q in ("c5", "b5"))
    # everything else matches the clean run: the out-of-memory split and the retried timeout changed nothing
    for q, s in got.items():
        if q not in failed:
            assert s["status"] == "ok" and s["extracted"] == ref[q]["extracted"]
            assert s["score"] == pytest.approx(ref[q]["score"], abs=1e-5)
    kept = [ref[q]["score"] for q in got if q not in failed]
    assert bench_summary["score"] == pytest.approx(100 * sum(kept) / len(kept), abs=1e-3)

    # bounded: a request that always fails is tried MAX_RETRIES + 1 times on its own, then given up;
    # a timeout is retried once; no batch above the limit ever ran
    always = [n for text, n in faulty.alone.items() if ALWAYS in text]
    assert always == [MAX_RETRIES + 1] * 2, faulty.alone
    assert len(faulty.timed_out) == 2 and all(got[q]["status"] == "ok" for q in ("c4", "b4"))
    assert all(size <= 3 for size, outcome in faulty.batches if outcome == "ok")
    assert sum(outcome == "oom" for _, outcome in faulty.batches) >= 2
    assert len(faulty.batches) < 40

    # the leaderboard report shows the failures next to the score
    from prism_eval.report import write_report

    board = json.loads(write_report([tmp_path / "faulty"], tmp_path / "board.json", reference=False,
                                    n_resamples=200).read_text())
    assert '"failed": 4' in json.dumps(board)

    # a rerun answers the finished requests from the store and tries only the failed ones again
    again = FaultyJudge(builtin_judge, max_batch=3)
    result = run([*common, "--store", str(tmp_path / "faulty.sqlite"), "--out", str(tmp_path / "again")],
                 monkeypatch, judge=again)
    assert result.exit_code == EXIT_INCOMPLETE
    assert set(again.attempts) == {text for text in faulty.attempts if ALWAYS in text}


def test_captioner_faults_split_the_batch_and_flag_only_the_broken_image(tmp_path, monkeypatch, tiny_llava_dir,
                                                                         tiny_lm_dir):
    from prism_eval.engines.hf import HFCaptioner

    bench, _ = build(tmp_path / "b", {})
    inner = HFCaptioner(str(tiny_llava_dir))
    faulty = FaultyCaptioner(inner, bad_size=(33, 32))  # image 1
    out = tmp_path / "out"
    result = run(["--benchmark", str(bench), "--captioner", f"hf:{tiny_llava_dir}", "--judge", f"hf:{tiny_lm_dir}",
                  "--caption-max-tokens", "4", "--caption-batch", "4", "--store", str(tmp_path / "s.sqlite"),
                  "--out", str(out)], monkeypatch, captioner=faulty)
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    summary = json.loads((out / "results.json").read_text())["benchmarks"]["bench"]
    assert summary["failed"] == 2 and summary["n"] == 10
    got = samples(out)
    assert {q for q, s in got.items() if s["status"] == "failed"} == {"c1", "b1"}
    assert "RuntimeError: injected captioner failure" in got["c1"]["error"]
    assert got["c1"]["caption"] is None  # no caption was made up for it
    # every image but the broken one was captioned exactly once, one at a time after the split
    assert sum(o == "ok" for _, o in faulty.batches) == 5
    # captioning gets one retry: the broken image was tried twice alone
    assert sum(o == "error" for _, o in faulty.batches) == 2


def test_a_failed_prism_query_instruction_flags_its_item(tmp_path, monkeypatch, tiny_judge):
    """prism-query: the judge writes what to describe for each question; if that call fails, the item
    is failed, not silently captioned with the generic prompt."""
    root = tmp_path / "b"
    (root / "img").mkdir(parents=True)
    Image.new("RGB", (32, 32), "red").save(root / "img" / "0.png")
    rows = [{"id": "ok", "image": "img/0.png", "question": "What colour is the picture?",
             "options": ["red", "blue"], "answer": "A"},
            {"id": "bad", "image": "img/0.png", "question": f"What shape is drawn? {ALWAYS}",
             "options": ["circle", "square"], "answer": "B"}]
    bench = root / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = run(["--benchmark", str(bench), "--captioner", "none", "--protocol", "prism-query",
                  "--store", str(tmp_path / "s.sqlite"), "--out", str(out)], monkeypatch,
                 judge=FaultyJudge(tiny_judge))
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    got = samples(out)
    assert got["ok"]["status"] != "failed"
    assert got["bad"]["status"] == "failed" and "query-specific instruction" in got["bad"]["error"]
    assert json.loads((out / "results.json").read_text())["benchmarks"]["bench"]["failed"] == 1
