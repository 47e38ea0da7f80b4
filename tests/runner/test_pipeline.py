"""The two-stage evaluator end to end on a small local benchmark with real (tiny or bundled) models."""
import json
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.api import evaluate
from prism_eval.benchmarks import load_jsonl_benchmark
from prism_eval.runner.evaluator import Evaluator
from prism_eval.runner.options import RunOptions

FACTS = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "star")]
COLOURS = ["red", "blue", "green", "yellow"]


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    (root / "img").mkdir()
    rows, captions = [], []
    for i, (colour, shape) in enumerate(FACTS):
        Image.new("RGB", (48, 48), colour).save(root / "img" / f"{i}.png")
        others = [c for c in COLOURS if c != colour]
        options = others[:i % 4] + [colour] + others[i % 4:]
        rows.append({"id": f"q{i}", "image": f"img/{i}.png", "question": f"What colour is the {shape}?",
                     "options": options, "answer": "ABCD"[options.index(colour)], "category": "colour"})
        rows.append({"id": f"s{i}", "image": f"img/{i}.png", "question": "Which shape is shown?",
                     "options": ["circle", "square", "triangle", "star"],
                     "answer": "ABCD"[["circle", "square", "triangle", "star"].index(shape)], "category": "shape"})
        captions.append({"image": f"img/{i}.png", "caption": f"A {colour} {shape} on a plain background."})
    (root / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))
    return root


def _run(bench_dir: Path, tmp: Path, captioner: str, judge: str, store: Path, **kw):
    bench = load_jsonl_benchmark(bench_dir / "bench.jsonl")
    options = RunOptions(judge=judge, protocol="caprl", scoring=kw.pop("scoring", "option-loglik"),
                         estimator="argmax", num_captions=1, store=str(store), caption_max_tokens=12, **kw)
    evaluator = Evaluator(options)
    record = evaluate(captioner, [bench], session=evaluator, out=tmp)
    return evaluator, record


def test_results_files_follow_the_contract(bench_dir, tmp_path, builtin_judge_spec):
    _, result = _run(bench_dir, tmp_path / "out", f"file:{bench_dir / 'captions.jsonl'}", builtin_judge_spec,
                     tmp_path / "store.sqlite")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(data) >= {"captioner", "judge", "protocol", "scoring", "benchmarks", "average", "config", "versions"}
    b = data["benchmarks"]["bench"]
    assert set(b) >= {"score", "n", "ci95", "best_of_n", "categories", "unanswered", "failed"}
    assert b["n"] == 8 and b["failed"] == 0 and set(b["categories"]) == {"colour", "shape"}
    assert b["ci95"][0] <= b["score"] <= b["ci95"][1]
    lines = [json.loads(l) for l in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(l["caption"].startswith("A ") for l in lines)
    assert all(l["raw"] for l in lines)
    # the captions state every answer: the bundled judge should get most of them
    assert b["score"] >= 50, b


def test_rerun_makes_no_model_call_and_new_judge_reuses_captions(bench_dir, tmp_path, builtin_judge_spec,
                                                                 tiny_llava_dir, tiny_lm_dir):
    store = tmp_path / "store.sqlite"
    captioner = f"hf:{tiny_llava_dir}"
    first, _ = _run(bench_dir, tmp_path / "a", captioner, builtin_judge_spec, store)
    assert first.caption_calls == 4 and first.judge.model_calls == 8
    evaluator, _ = _run(bench_dir, tmp_path / "b", captioner, builtin_judge_spec, store)
    assert evaluator.caption_calls == 0 and evaluator.judge.model_calls == 0
    assert not evaluator.judge._judge.loaded  # a fully cached rerun does not even load the judge
    first_json = json.loads((tmp_path / "a" / "results.json").read_text())
    second_json = json.loads((tmp_path / "b" / "results.json").read_text())
    assert first_json["benchmarks"] == second_json["benchmarks"]
    # only the judge changes: every caption comes from the store
    third, _ = _run(bench_dir, tmp_path / "c", captioner, f"hf:{tiny_lm_dir}", store)
    assert third.caption_calls == 0 and third.judge.model_calls == 8


def test_blind_baseline_scores_below_informative_captions(bench_dir, tmp_path, builtin_judge_spec):
    store = tmp_path / "store.sqlite"
    _, informed = _run(bench_dir, tmp_path / "i", f"file:{bench_dir / 'captions.jsonl'}", builtin_judge_spec, store)
    _, blind = _run(bench_dir, tmp_path / "n", "none", builtin_judge_spec, store)
    assert informed.benchmarks["bench"].score > blind.benchmarks["bench"].score


def test_missing_caption_is_a_visible_failure(bench_dir, tmp_path, builtin_judge_spec):
    partial = tmp_path / "partial.jsonl"
    lines = (bench_dir / "captions.jsonl").read_text().splitlines()[:3]
    partial.write_text("\n".join(lines) + "\n")
    _, result = _run(bench_dir, tmp_path / "o", f"file:{partial}", builtin_judge_spec, tmp_path / "s.sqlite")
    b = result.benchmarks["bench"]
    assert b.failed == 2 and b.n == 6 and result.complete is False
    failed = [json.loads(l) for l in (tmp_path / "o" / "samples.jsonl").read_text().splitlines()
              if json.loads(l)["status"] == "failed"]
    assert len(failed) == 2 and "has no caption for image" in failed[0]["error"]


def test_cli_blind_flag_runs_the_baseline_beside_the_captioner(bench_dir, tmp_path, builtin_judge_spec):
    from click.testing import CliRunner

    from prism_eval.cli import main

    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["--captioner", f"file:{bench_dir / 'captions.jsonl'}", "--blind",
                                       "--benchmark", str(bench_dir / "bench.jsonl"), "--judge", builtin_judge_spec,
                                       "--scoring", "option-loglik", "--store", str(tmp_path / "s.sqlite"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["captions", "none"]
    blind = json.loads((out / "none" / "results.json").read_text())
    assert blind["captioner"] == "none" and blind["benchmarks"]["bench"]["n"] == 8
