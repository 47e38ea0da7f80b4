"""A run's diagnostics end to end with the bundled judge: outcomes, judge-token lengths, the length curve,
vision-required scores, and their place in results.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.api import evaluate
from prism_eval.benchmarks import load_jsonl_benchmark
from prism_eval.runner.evaluator import Evaluator
from prism_eval.runner.options import OptionsError, RunOptions
from prism_eval.runner.results import BenchmarkResult, RecordError, RunRecord, read_samples

FACTS = [("red", "circle", "wooden table"), ("blue", "square", "stone floor"), ("green", "triangle", "white wall"),
         ("yellow", "star", "glass shelf")]
COLOURS = ["red", "blue", "green", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    """Eight questions on four images; captions that state both facts, and partial ones that state one."""
    root = tmp_path_factory.mktemp("bench")
    (root / "img").mkdir()
    rows, full, partial = [], [], []
    for i, (colour, shape, place) in enumerate(FACTS):
        Image.new("RGB", (32, 32), colour).save(root / "img" / f"{i}.png")
        others = [c for c in COLOURS if c != colour]
        options = others[:i % 4] + [colour] + others[i % 4:]
        rows.append({"id": f"c{i}", "image": f"img/{i}.png", "question": f"What colour is the {shape}?",
                     "options": options, "answer": "ABCD"[options.index(colour)]})
        rows.append({"id": f"s{i}", "image": f"img/{i}.png", "question": "Which shape is shown?",
                     "options": SHAPES, "answer": "ABCD"[SHAPES.index(shape)]})
        full.append({"image": f"img/{i}.png",
                     "caption": f"A {colour} {shape} lies on a {place}, photographed from above in soft light."})
        partial.append({"image": f"img/{i}.png", "caption": f"Something lies on a {place}."})
    (root / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, caps in (("full", full), ("partial", partial)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    return root


def _options(store: Path, judge: str, **kw) -> RunOptions:
    return RunOptions(judge=judge, protocol="caprl", scoring="option-loglik", estimator=kw.pop("estimator", "argmax"),
                      num_captions=1, store=str(store), **kw)


def test_a_run_records_outcomes_judge_token_lengths_and_the_length_curve(bench_dir, tmp_path, builtin_judge_spec):
    from transformers import AutoTokenizer

    from prism_eval.engines.builtin import converted_dir

    bench = load_jsonl_benchmark(bench_dir / "bench.jsonl")
    store = tmp_path / "store.sqlite"
    session = Evaluator(_options(store, builtin_judge_spec, length_curve="1,6,1000"))
    record = evaluate(f"file:{bench_dir / 'full.jsonl'}", [bench], session=session, out=tmp_path / "a")
    b = record.benchmarks["bench"]
    # 8 asks, then 8 more for each length that cuts the captions; at 1000 tokens nothing is cut: no new prompt.
    assert session.judge.model_calls == 8 * 3
    assert b.by_length["1000"] == b.by_length["full"] == b.score
    assert b.by_length["1"] < b.score  # one token ("A") states nothing
    assert set(b.by_length) == {"1", "6", "1000", "full"}
    # Outcomes: every ask classified; they add up to 100% with the score (all questions offer "cannot answer").
    assert b.outcomes["n"] == b.n == 8
    assert b.outcomes["right"] == pytest.approx(b.score)
    assert b.score + b.omission + b.hallucination + b.outcomes["unanswered"] == pytest.approx(100)
    samples = read_samples(tmp_path / "a" / "samples.jsonl")
    labels = [s.outcome for s in samples]
    assert labels.count("right") == round(b.score * 8 / 100) and set(labels) <= {"right", "omission", "hallucination"}
    assert labels.count("omission") == round(b.omission * 8 / 100)
    # Lengths are the judge's tokens, not words.
    tok = AutoTokenizer.from_pretrained(converted_dir("smollm2-135m"))
    counts = [len(tok(s.caption, add_special_tokens=False)["input_ids"]) for s in samples]
    assert [s.caption_tokens for s in samples] == counts and counts != [len(s.caption.split()) for s in samples]
    assert b.length_unit == "judge tokens" and b.mean_caption_tokens == pytest.approx(sum(counts) / len(counts))
    on_disk = json.loads((tmp_path / "a" / "results.json").read_text())["benchmarks"]["bench"]
    assert on_disk["by_length"]["full"] == b.score and on_disk["omission"] == b.omission
    assert on_disk["length_unit"] == "judge tokens"

    # A rerun asks nothing and does not even load the judge (token counts come from the store too).
    again = Evaluator(_options(store, builtin_judge_spec, length_curve="1,6,1000"))
    rerun = evaluate(f"file:{bench_dir / 'full.jsonl'}", [bench], session=again, out=tmp_path / "b")
    assert again.judge.model_calls == 0 and not again.judge._judge.loaded
    assert rerun.benchmarks["bench"].to_dict() == b.to_dict()


def test_expected_estimator_outcomes_are_probability_masses(bench_dir, tmp_path, builtin_judge_spec):
    bench = load_jsonl_benchmark(bench_dir / "bench.jsonl")
    session = Evaluator(_options(tmp_path / "s.sqlite", builtin_judge_spec, estimator="expected"))
    b = evaluate(f"file:{bench_dir / 'partial.jsonl'}", [bench], session=session, out=tmp_path / "p").benchmarks[
        "bench"]
    samples = read_samples(tmp_path / "p" / "samples.jsonl")
    masses = []
    for s in samples:
        probs = json.loads(s.raw)
        cannot = [label for label, text in zip(probs, s.options) if text.startswith("Can not answer")]
        masses.append(sum(probs[label] for label in cannot))
    assert b.omission == pytest.approx(100 * sum(masses) / len(masses), abs=1e-3)
    assert 0 < b.omission < 100 and b.score + b.omission + b.hallucination == pytest.approx(100, abs=1e-3)


def test_blind_runs_add_vision_required_scores(bench_dir, tmp_path, builtin_judge_spec):
    from click.testing import CliRunner

    from prism_eval.cli import main
    from prism_eval.runner.vision import add_vision_required

    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["run", "-c", f"file:{bench_dir / 'full.jsonl'}", "--blind",
                                       "-b", str(bench_dir / "bench.jsonl"), "--judge", builtin_judge_spec,
                                       "--estimator", "argmax", "--store", str(tmp_path / "s.sqlite"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    blind_samples = read_samples(out / "none" / "samples.jsonl")
    missed = {s.question_id for s in blind_samples if s.score == 0}  # argmax: the blind baseline got these wrong
    assert 0 < len(missed) < 8
    full = RunRecord.read(out / "full")
    vr = full.benchmarks["bench"].vision_required
    assert vr.n == len(missed) < full.benchmarks["bench"].n
    mine = {s.question_id: s.score for s in read_samples(out / "full" / "samples.jsonl")}
    assert vr.score == pytest.approx(100 * sum(mine[q] for q in missed) / len(missed))
    blind = RunRecord.read(out / "none")
    assert blind.benchmarks["bench"].vision_required.score == 0.0

    # Runs scored under other settings than the blind run are refused, not silently compared.
    full.settings = RunRecord.read(out / "full").settings.__class__(**{**full.settings.to_dict(), "seed": 7})
    with pytest.raises(ValueError, match="seed 7.*vision-required scores need both under the same settings"):
        add_vision_required([(out / "full", full), (out / "none", blind)])
    assert add_vision_required([(out / "full", RunRecord.read(out / "full"))]) == 0  # no blind run: nothing


def test_a_judge_without_a_tokenizer_counts_words(tmp_path):
    from prism_eval.runner.diagnostics import caption_ends
    from prism_eval.runner.store import CachingJudge, Lazy, Store

    builds = []

    class RemoteJudge:  # no token_ends: a server that only answers
        spec = "remote"

    def build():
        builds.append(1)
        return RemoteJudge()

    store = Store(tmp_path / "s.sqlite")
    judge = CachingJudge(Lazy(build, "remote"), store, {"spec": "remote"})
    ends, unit = caption_ends(judge, ["two words", "two words", "three words here"])
    assert unit == "words" and ends == {"two words": [3, 9], "three words here": [5, 11, 16]}
    again = CachingJudge(Lazy(build, "remote"), store, {"spec": "remote"})
    assert caption_ends(again, ["other text"])[1] == "words" and builds == [1]  # the store remembers


def test_length_curve_option_is_checked():
    assert RunOptions(length_curve="48, 8,16,8").length_curve == (8, 16, 48)
    assert RunOptions(length_curve=None).length_curve == () and "length_curve" not in RunOptions().to_config()
    for bad, why in (("8,x", "'x' is not a whole number"), ("0,8", "at least 1 token"), ("-4", "at least 1")):
        with pytest.raises(OptionsError, match=why):
            RunOptions(length_curve=bad)


def test_results_keep_the_diagnostics_and_old_files_still_load():
    from prism_eval.core.diagnostics import VisionRequiredScore

    res = BenchmarkResult(score=50.0, n=4, omission=12.5, hallucination=37.5,
                          outcomes={"right": 50.0, "omission": 12.5, "hallucination": 37.5, "unanswered": 0.0, "n": 4},
                          by_length={"8": 25.0, "full": 50.0}, vision_required=VisionRequiredScore(40.0, 3),
                          length_unit="judge tokens")
    raw = json.loads(json.dumps(res.to_dict()))
    assert raw["vision_required"] == {"score": 40.0, "n": 3}
    assert BenchmarkResult.from_dict("b", raw, "results.json") == res
    old = BenchmarkResult.from_dict("b", {"score": 50.0, "n": 4}, "old.json")
    assert (old.omission, old.by_length, old.vision_required, old.length_unit) == (None, {}, None, None)
    with pytest.raises(RecordError, match=r"^x.json: benchmark 'b': 'vision_required' should be"):
        BenchmarkResult.from_dict("b", {"score": 1.0, "n": 1, "vision_required": {"score": 1.0}}, "x.json")
    with pytest.raises(RecordError, match="'by_length.8' should be a finite number"):
        BenchmarkResult.from_dict("b", {"score": 1.0, "n": 1, "by_length": {"8": "high"}}, "x.json")
