"""`--compat caprl` end to end: CapRL's raw caption prompt, its judge prompts from its own files, its scoring."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.api import evaluate
from prism_eval.core.compat import caprl_score
from prism_eval.engines.hf import HFCaptioner
from prism_eval.io.images import image_ref_from_file, open_image
from prism_eval.runner.options import RunOptions
from tests.benchmarks.test_caprl_files import chat_prompt, conversation, make_dataset, png_bytes
from tests.scripted_judge import serve

# Eval_CapRL.py's stage-1 prompt, written out here as the issue quotes it (not built by the code under test).
CAPRL_RAW_CAPTION_PROMPT = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
                            "Please describe this image in detail<|im_end|>\n<|im_start|>assistant\n")


# ---------------------------------------------------------------- stage 1: the caption prompt

@pytest.fixture(scope="module")
def one_image_bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("one")
    Image.new("RGB", (64, 48), "orange").save(root / "a.png")
    row = {"id": "q1", "image": "a.png", "question": "What colour?", "options": ["orange", "blue"], "answer": "A"}
    (root / "b.jsonl").write_text(json.dumps(row) + "\n")
    return root


def _ids_the_captioner_receives(tiny_qwen_vl_dir: Path, bench: Path, judge: str, tmp: Path, **settings) -> list:
    captioner = HFCaptioner(str(tiny_qwen_vl_dir))
    seen = []
    generate = captioner.model.generate

    def recording(**inputs):
        seen.append(inputs["input_ids"][0].tolist())
        return generate(**inputs)

    captioner.model.generate = recording
    options = RunOptions(judge=judge, protocol="caprl-eval", num_captions=1, caption_max_tokens=4,
                         store=str(tmp / "s.sqlite"), **settings)
    evaluate(captioner, [str(bench / "b.jsonl")], options=options, out=tmp / "run")
    assert len(seen) == 1
    return seen[0]


def test_compat_caption_prompt_is_caprls_raw_prompt_byte_for_byte(tiny_qwen_vl_dir, tiny_lm_dir, one_image_bench,
                                                                    tmp_path):
    got = _ids_the_captioner_receives(tiny_qwen_vl_dir, one_image_bench, f"hf:{tiny_lm_dir}", tmp_path / "c",
                                      compat="caprl")
    processor = HFCaptioner(str(tiny_qwen_vl_dir)).processor
    image = open_image(image_ref_from_file(one_image_bench, "a.png"))
    expected = processor(text=[CAPRL_RAW_CAPTION_PROMPT], images=[image], return_tensors="pt")["input_ids"][0]
    assert got == expected.tolist()
    # without --compat the model's chat template applies, and Qwen2.5-VL's opens with a system turn
    plain = _ids_the_captioner_receives(tiny_qwen_vl_dir, one_image_bench, f"hf:{tiny_lm_dir}", tmp_path / "p")
    text = processor.tokenizer.decode(plain)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.") and plain != got


# ---------------------------------------------------------------- stage 2: CapRL's files, prompts and scoring

CHART = "bench_image_folder/lmm_eval_chartqa/c{}.png"
STAR = "bench_image_folder/lmm_eval_MMStar/s{}.png"
# What the scripted judge answers, chosen by a word in the caption (the caption reaches it inside the prompt).
REPLIES = {
    "TAGGED45": "<think>the bar reads 45</think> <answer>\\boxed{45}</answer>",
    "BARE45": "The answer is \\boxed{45}.",  # no </think><answer>: CapRL reads nothing
    "TWOBOXES": "</think><answer>\\boxed{45} or \\boxed{46}</answer>",  # greedy capture garbles it
    "PERCENT": "</think><answer>\\boxed{0.45}</answer>",  # tried x100 by the chart check
    "LETTERB": "</think>\n<answer>\\boxed{B}</answer>",
    "LETTERC": "</think><answer>\\boxed{C}</answer>",
}


@pytest.fixture(scope="module")
def caprl_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("caprl-files")
    chart_items, star_items, images = [], [], {}
    for i in range(3):
        images[CHART.format(i)] = png_bytes((10 * i, 50, 90))
        chart_items.append({"prompt": chat_prompt(f"What is the value of bar {i}? Put it in \\boxed{{}}."),
                            "answer": "45" if i < 2 else ["45", "46"], "image": conversation(CHART.format(i))})
        images[STAR.format(i)] = png_bytes((90, 10 * i, 50))
        star_items.append({"prompt": chat_prompt(f"Which shape is shown? A. circle B. square C. star (image {i})"),
                           "answer": "B", "image": conversation(STAR.format(i))})
    make_dataset(root, "chartqa", chart_items, images)
    make_dataset(root, "mmstar", star_items, images)
    return root


@pytest.fixture
def scripted_judge():
    def reply(prompt: str) -> str:
        word = next((w for w in REPLIES if w in prompt), None)
        return REPLIES[word] if word else "I do not know."

    with serve(reply, model="caprl-eval") as judge:
        yield judge


def test_compat_run_asks_with_caprls_own_prompts_and_scores_as_caprl_does(caprl_data, scripted_judge, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("PRISM_EVAL_CAPRL_DATA", str(caprl_data))
    judge = scripted_judge.spec
    captions = {  # two captions per image, as a 2-sample caption run would give
        "caprl:chartqa/chartqa:0/0": ["A bar chart TAGGED45", "A bar chart BARE45"],
        "caprl:chartqa/chartqa:1/0": ["Bars TWOBOXES", "Bars PERCENT"],
        "caprl:chartqa/chartqa:2/0": ["Bars TAGGED45", "Nothing useful."],
        "caprl:mmstar/mmstar:0/0": ["A square LETTERB", "A star LETTERC"],
        "caprl:mmstar/mmstar:1/0": ["A square LETTERB", "A square LETTERB"],
        "caprl:mmstar/mmstar:2/0": ["Shapes.", "A star LETTERC"],
    }
    caps = tmp_path / "caps.jsonl"
    caps.write_text("".join(json.dumps({"image": k, "captions": v}) + "\n" for k, v in captions.items()))
    options = RunOptions(judge=judge, protocol="caprl-eval", compat="caprl", num_captions=2,
                         store=str(tmp_path / "s.sqlite"))
    record = evaluate(f"file:{caps}", ["chartqa", "mmstar"], options=options, out=tmp_path / "run")

    lines = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(x["status"] != "failed" for x in lines)
    files = {b: json.loads((caprl_data / "json_file" / f).read_text())
             for b, f in (("chartqa", "lmm_eval_chartqa.json"), ("mmstar", "lmm_eval_MMStar.json"))}
    for x in lines:
        item = files[x["benchmark"]][int(x["question_id"].split(":")[1])]
        # the judge was asked with the sample's own prompt, the caption sentence in place of the image
        sent = item["prompt"].replace(
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>",
            f"<|im_start|>user\nHere is a detailed caption of an image: {x['caption']}. "
            "Please answer the question based on the caption.")
        assert sent in scripted_judge.prompts
        # and each answer scores exactly what CapRL's own scoring gives that output
        assert x["score"] == caprl_score(x["benchmark"], x["raw"], item["answer"])
    by = {(x["question_id"], x["caption_index"]): x["score"] for x in lines}
    assert by[("chartqa:0", 0)] == 1.0 and by[("chartqa:0", 1)] == 0.0  # untagged answer reads as empty
    assert by[("chartqa:1", 0)] == 0.0 and by[("chartqa:1", 1)] == 1.0  # two boxes garble; 0.45 x100 passes
    assert by[("mmstar:0", 0)] == 1.0 and by[("mmstar:0", 1)] == 0.0
    chart = record.benchmarks["chartqa"]
    assert chart.score == pytest.approx(100 * (0.5 + 0.5 + 0.5) / 3) and chart.best_of_n == pytest.approx(100.0)
    assert record.settings.compat == "caprl" and record.settings.num_captions == 2


def test_caprl_suite_averages_table_3s_eleven(tmp_path):
    from prism_eval.api import suite_average
    from prism_eval.benchmarks import default_judge, suite_of

    suite = suite_of("caprl")
    assert len(suite.members) == 12 and "visulogic" not in suite.average_over and len(suite.average_over) == 11
    assert suite_average(["caprl"]) == suite.average_over and suite_average(["mmstar"]) is None
    assert default_judge(["caprl"]) == "internlm/CapRL-Eval-3B" and default_judge(["mmstar"]) is None


def test_compat_needs_generated_answers():
    with pytest.raises(ValueError, match="--compat caprl"):
        RunOptions(judge="builtin:smollm2-135m", protocol="caprl", compat="caprl", scoring="option-loglik")
    options = RunOptions(judge="builtin:smollm2-135m", protocol="caprl", compat="caprl")
    assert (options.resolved_scoring, options.resolved_estimator) == ("generate", "sampled")


def test_default_judge_is_the_protocols_papers():
    assert RunOptions(protocol="caprl-eval").judge == "internlm/CapRL-Eval-3B"
    assert RunOptions(protocol="caprl").judge == "Qwen/Qwen2.5-3B-Instruct"
    assert re.match(r"openai:gpt-3\.5-turbo-0125@https://", RunOptions(protocol="prism").judge)


def test_a_judge_that_cannot_load_names_itself_and_the_offline_judge(one_image_bench, tmp_path):
    from click.testing import CliRunner

    from prism_eval.cli import main

    result = CliRunner().invoke(main, ["run", "-c", "none", "-b", str(one_image_bench / "b.jsonl"),
                                       "-j", f"hf:{tmp_path / 'no-such-judge'}", "--store", str(tmp_path / "s.db"),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: hf:") and "no-such-judge" in line and "--judge builtin:smollm2-135m" in line
