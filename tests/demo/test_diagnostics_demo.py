"""The diagnostics on a slice of the embedded demo, with both built-in judges: what a user should see.

The slice is the demo's receipts and documents (the `text` category, first four images): captions state
words there, which the small built-in judges read best. Each judge scores the four demo captioners under
the caprl protocol's own estimator (expected: the probability of each option), so omission is the mean
probability on "Can not answer based on the caption" and hallucination the mass on wrong options.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from prism_eval.runner.results import RunRecord

IMAGES = 4
LENGTHS = "8,16,32"


@pytest.fixture(scope="module")
def demo_slice(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    from prism_eval.demo import build_demo

    demo = build_demo(tmp_path_factory.mktemp("demo"), seed=0)
    rows = [json.loads(line) for line in demo.benchmark.read_text().splitlines()]
    images = list(dict.fromkeys(r["image"] for r in rows if r["category"] == "text"))[:IMAGES]
    path = demo.benchmark.with_name("text-slice.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["image"] in images))
    return path, demo.captions


def _run(bench: Path, captions: dict[str, Path], judge: str, out: Path) -> dict[str, RunRecord]:
    from click.testing import CliRunner

    from prism_eval.cli import main

    common = ["-b", str(bench), "--judge", judge, "--estimator", "expected", "--store", str(out / "store.sqlite")]
    with_curve = CliRunner().invoke(main, ["run", "-c", f"file:{captions['reference']}", *common,
                                           "--length-curve", LENGTHS, "--out", str(out / "reference")])
    assert with_curve.exit_code == 0, with_curve.output
    others = CliRunner().invoke(main, ["run", "-c", f"file:{captions['partial']}", "-c", f"file:{captions['wrong']}",
                                       "--blind", *common, "--out", str(out / "others")])
    assert others.exit_code == 0, others.output
    return {"reference": RunRecord.read(out / "reference"), "partial": RunRecord.read(out / "others" / "partial"),
            "wrong": RunRecord.read(out / "others" / "wrong"), "none": RunRecord.read(out / "others" / "none")}


def _check_done_when(runs: dict[str, RunRecord]) -> None:
    b = {name: next(iter(r.benchmarks.values())) for name, r in runs.items()}
    ref = b["reference"]
    assert ref.score > b["none"].score  # the judge reads the captions
    # Captions that lack the facts are answered "cannot answer" more often than captions that state them.
    assert b["none"].omission > ref.omission and b["partial"].omission > ref.omission
    # Captions that state wrong facts lead the judge to wrong options.
    assert b["wrong"].hallucination > ref.hallucination
    # The reference captions earn more the more of them the judge reads (on 16 questions the middle
    # points may swap; the shortest cut is the lowest and the whole caption the highest).
    curve = [ref.by_length[k] for k in (*LENGTHS.split(","), "full")]
    assert min(curve) == curve[0] < curve[-1] == max(curve), ref.by_length
    # Vision-required: over the questions the blind baseline does not answer above chance, fewer than all.
    for name in ("partial", "wrong", "none"):
        assert 0 < b[name].vision_required.n < b[name].n
    assert ref.vision_required is None  # scored in a run without the blind baseline
    assert ref.length_unit == "judge tokens" and ref.mean_caption_tokens > 0


@pytest.mark.slow  # four captioners, a blind run and a three-point length curve (about a minute on 2 busy cores)
def test_smollm2_on_the_demo_slice(demo_slice, tmp_path, builtin_judge_spec):
    bench, captions = demo_slice
    _check_done_when(_run(bench, captions, builtin_judge_spec, tmp_path))


@pytest.mark.slow  # loads the 270M judge (about 10 s; its first conversion about two minutes)
def test_gemma_on_the_demo_slice(demo_slice, tmp_path):
    from tests.engines.test_builtin_gemma import needs_gemma

    if needs_gemma.args[0]:
        pytest.skip(needs_gemma.kwargs["reason"])
    bench, captions = demo_slice
    _check_done_when(_run(bench, captions, "builtin:gemma3-270m", tmp_path))
