"""`prism-eval bench judge` on a tiny judge: the workload and the report's structure
and internal consistency (speed itself is measured by the benchmark, never tested)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from prism_eval.cli.bench import bench
from prism_eval.core.options import CANNOT_ANSWER
from prism_eval.core.protocols import get_protocol
from prism_eval.tools.bench_judge import QUESTIONS_PER_CAPTION, make_workload, to_markdown

MODES = ["reference", "letter-logprob", "option-loglik", "generate-greedy"]


def test_workload_is_fixed_and_mirrors_caprl():
    a, b = make_workload(20, seed=0), make_workload(20, seed=0)
    assert a.captions == b.captions and [i.shown for i in a.items] == [i.shown for i in b.items]
    assert make_workload(20, seed=1).captions != a.captions
    assert len(a.items) == 20 and len(a.captions) == 3
    assert all(len(c.split()) >= 200 for c in a.captions)
    per_caption = [sum(1 for i in a.items if i.caption_index == c) for c in range(len(a.captions))]
    assert per_caption[:2] == [QUESTIONS_PER_CAPTION] * 2
    for item in a.items:
        assert len(item.question.options) == 4
        assert item.shown.texts[-1] == CANNOT_ANSWER and len(item.shown.labels) == 5
        gold_text = item.question.options["ABCD".index(item.question.answer)]
        assert item.shown.texts[item.shown.labels.index(item.shown.gold)] == gold_text
    # shuffled: the shown order is not always the benchmark's order
    assert any(item.shown.order[:4] != (0, 1, 2, 3) for item in a.items)
    # answerable questions ask about facts stated in the caption
    for item in a.items:
        if item.answerable:
            gold_text = item.question.options["ABCD".index(item.question.answer)]
            assert gold_text.split()[-1] in a.captions[item.caption_index]


def test_workload_rejects_zero_questions():
    with pytest.raises(ValueError, match="--questions must be >= 1"):
        make_workload(0)


def test_bench_judge_writes_consistent_reports(tmp_path, tiny_lm_dir):
    out = tmp_path / "bench"
    result = CliRunner().invoke(bench, ["judge", "--judge", f"hf:{tiny_lm_dir}", "--questions", "12",
                                        "--rounds", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (jpath,) = out.glob("judge_*.json")
    (mpath,) = out.glob("judge_*.md")
    data = json.loads(jpath.read_text())
    assert data["judge"] == f"hf:{tiny_lm_dir}" and data["workload"]["questions"] == 12
    assert data["workload"]["rounds"] == 2 and data["workload"]["protocol"] == "caprl"
    assert list(data["modes"]) == MODES
    ref = data["modes"]["reference"]
    assert ref["ratio_to_reference"] == 1.0
    peak = data["peak_forward"]["tokens_per_s"]
    for name, m in data["modes"].items():
        assert m["questions"] == 12 and m["seconds"] > 0
        assert m["questions_per_s"] == pytest.approx(12 / m["seconds"], rel=1e-3)
        assert m["ratio_to_reference"] == pytest.approx(m["questions_per_s"] / ref["questions_per_s"], abs=0.01)
        assert m["peak_rss_mb"] >= m["rss_before_mb"] > 0
        assert m["model_tokens"] > 0 and m["padded_tokens"] >= m["model_tokens"] and m["model_calls"] > 0
        assert m["fraction_of_peak"] == pytest.approx(m["model_tokens"] / m["seconds"] / peak, abs=2e-3)
        assert 0 <= m["accuracy_answerable"] <= 1 and 0 <= m["decided"] <= 12
        if m["agreement_with_greedy"] is not None:
            assert 0 <= m["agreement_with_greedy"] <= 1
    greedy = data["modes"]["generate-greedy"]
    if greedy["agreement_items"]:
        assert greedy["agreement_with_greedy"] == 1.0  # greedy agrees with itself
    # the shared prefix is computed once: the scoring modes run far fewer tokens than full prompts
    full_prompt_tokens = data["workload"]["mean_prompt_tokens"] * 12
    assert data["modes"]["letter-logprob"]["model_tokens"] < full_prompt_tokens / 2
    assert data["modes"]["reference"]["model_tokens"] >= full_prompt_tokens
    assert data["targets"]["letter_logprob_ratio"] == data["modes"]["letter-logprob"]["ratio_to_reference"]
    md = mpath.read_text()
    assert md == to_markdown(data)
    assert all(f"| {name} |" in md for name in MODES)
    assert md in result.output


def test_bench_rejects_a_bad_judge_spec(tmp_path):
    result = CliRunner().invoke(bench, ["judge", "--judge", "nonsense", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown form" in result.output


def test_protocol_prompt_comes_from_the_core():
    item = make_workload(1).items[0]
    request = get_protocol("caprl").mcq_request("CAPTION", item.question, item.shown)
    assert request.prefill == "The answer is" and request.chat_format == "chatml"
