"""QA curation end to end on the demo images: generate, filter, and feed the result to training."""
import json

import pytest
from click.testing import CliRunner

from caprl_train.cli import main
from caprl_train.curate import FILTER_PROMPT, GENERATE_SYSTEM_PROMPT, FilterConfig, filter_qa, with_system_prompt
from caprl_train.curate.filter import _correct, _prompt
from caprl_train.data import DataConfig, load_training_data

ROUNDS = 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from prism_eval.demo.build import build_demo

    return build_demo(tmp_path_factory.mktemp("curate") / "demo")


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_generate_then_filter_with_the_tiny_vlm_through_the_cli(demo, tiny_qwen_vl_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "gen.jsonl"
    res = runner.invoke(main, ["curate", "generate", str(demo.root / "images"), "--out", str(out), "--vlm",
                               f"hf:{tiny_qwen_vl_dir}", "--limit", "3", "--max-new-tokens", "24"],
                        catch_exceptions=False)
    assert res.exit_code == 1, res.output  # an empty training file is a failed step
    assert "Error: " in res.output and "no question could be read from any image's output" in res.output
    report = json.loads((tmp_path / "gen.jsonl.report.json").read_text())
    raw = read_jsonl(tmp_path / "gen.jsonl.raw.jsonl")
    assert report["images"] == 3 and len(raw) == 3 and report["system_prompt"] == "system-message"
    # A random-weight model writes word salad: nothing parses, and the report says so per image.
    assert report["unparsed_images"] == 3 and report["questions"] == 0 and read_jsonl(out) == []
    assert all(r["raw"] and r["problems"][-1] == "no question found" for r in raw)
    assert "3 images gave none" in res.output

    filtered = tmp_path / "kept.jsonl"
    res = runner.invoke(main, ["curate", "filter", str(demo.benchmark), "--out", str(filtered), "--vlm",
                               f"hf:{tiny_qwen_vl_dir}", "--rounds", str(ROUNDS), "--limit", "2"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    stats = read_jsonl(tmp_path / "kept.jsonl.stats.jsonl")
    assert stats and len({s["sample_id"] for s in stats}) == 2
    for s in stats:
        assert len(s["image_correct"]) == len(s["text_correct"]) == ROUNDS
        assert s["image_acc"] == sum(s["image_correct"]) / ROUNDS
        assert s["text_acc"] == sum(s["text_correct"]) / ROUNDS
        assert s["kept"] == (s["image_acc"] > 0.75 and s["text_acc"] < 0.25)
    kept_rows = read_jsonl(filtered)
    kept = [q for r in kept_rows for q in r["reward_model"]["ground_truth"]]
    assert len(kept) == sum(s["kept"] for s in stats)
    summary = json.loads((tmp_path / "kept.jsonl.report.json").read_text())
    assert summary["questions"] == len(stats) and summary["config"]["rounds"] == ROUNDS


def test_filter_keeps_by_the_thresholds_and_writes_the_training_layout(demo, tiny_llava_dir, tmp_path):
    from prism_eval.engines.registry import load_captioner

    vlm = load_captioner(f"hf:{tiny_llava_dir}")
    out = tmp_path / "all.jsonl"
    everything = FilterConfig(rounds=ROUNDS, image_threshold=-1.0, text_threshold=2.0, limit=2, match="substring")
    report = filter_qa(demo.benchmark, out, everything, captioner=vlm)
    assert report.kept_questions == report.questions > 0 and report.kept_images == 2
    rows = read_jsonl(out)
    for row in rows:
        assert row["prompt"] == "<image> Please describe this image in detail."
        for q in row["reward_model"]["ground_truth"]:
            assert q["choices"][0].startswith("A) ") and q["answer"] in "ABCD"
            assert q["rounds"] == ROUNDS and len(q["image_correct"]) == ROUNDS and 0 <= q["image_acc"] <= 1
    data = load_training_data(DataConfig(source=str(out)))  # curated data feeds training as is
    assert len(data) == 2 and json.loads(data[0]["qa"])[0]["image_acc"] == rows[0]["reward_model"][
        "ground_truth"][0]["image_acc"]

    nothing = FilterConfig(rounds=ROUNDS, image_threshold=1.0, limit=2)  # accuracy is never above 1
    report = filter_qa(demo.benchmark, tmp_path / "none.jsonl", nothing, captioner=vlm)
    assert report.kept_questions == 0 and read_jsonl(tmp_path / "none.jsonl") == []
    assert report.reasons["image accuracy too low"] + report.reasons[
        "image accuracy too low and answerable without the image"] == report.questions


def test_generate_reparses_saved_outputs_from_a_file(demo, tmp_path):
    from caprl_train.curate import GenerateConfig, generate_qa

    images = sorted(p.relative_to(demo.root / "images").as_posix() for p in (demo.root / "images").iterdir())[:3]
    good = ("#### 1. **What is shown?**\n   - A) a chart\n   - B) a cat\n\n**Answer:** A) a chart\n------\n"
            "#### 2. **How many bars?**\n   - A) 2\n   - B) 3\n   - C) 4\n\n**Answer:** C) 4\n------\n")
    outputs = [good, "1. Broken question\n   - A) x\n------\n" + good.split("------\n")[0], "no questions here"]
    (tmp_path / "outputs.jsonl").write_text("".join(json.dumps({"image": i, "caption": o}) + "\n"
                                                    for i, o in zip(images, outputs)))
    report = generate_qa(demo.root / "images", tmp_path / "qa.jsonl",
                         GenerateConfig(vlm=f"file:{tmp_path / 'outputs.jsonl'}", limit=3))
    assert (report.questions, report.images_with_questions, report.unparsed_images) == (3, 2, 1)
    assert report.system_prompt == "prepended" and report.wrong_count == 2  # 2 and 1 questions, not 5
    assert report.problems["fewer than 2 options"] == 1 and report.problems["no question found"] == 1
    rows = read_jsonl(tmp_path / "qa.jsonl")
    assert [r["id"] for r in rows] == images[:2]
    assert rows[0]["reward_model"]["ground_truth"][1] == {"question": "How many bars?", "choices": ["A) 2", "B) 3",
                                                          "C) 4"], "answer": "C", "id": f"{images[0]}#1"}


def test_prompts_and_answer_matching():
    q = {"id": "q1", "question": "What colour?", "options": ["red", "blue", "green", "white"], "answer": "B"}
    with_image, gold, labels = _prompt(q, 0, 0, True, True)
    text_only, gold2, labels2 = _prompt(q, 0, 0, False, True)
    assert gold == gold2 and labels == "ABCDE" and labels2 == "ABCD"
    assert with_image.startswith("What colour?\n   - ") and with_image.endswith(
        "\n   - E) None of the above. Answer the question with only the correct letter")
    assert text_only == FILTER_PROMPT.format(with_image.split("\n   - E)")[0])
    assert {_prompt(q, r, 0, True, True)[0] for r in range(8)} != {with_image}  # reshuffled across rounds
    assert _correct("C", "C", "ABCDE", "letter") and not _correct("Answer: C", "A", "ABCDE", "letter")
    assert _correct("Answer: C", "A", "ABCDE", "substring")  # the released script's lenient test


def test_system_prompt_goes_into_the_chat_template(tiny_qwen_vl_dir):
    from prism_eval.engines.registry import load_captioner

    vlm, how = with_system_prompt(load_captioner(f"hf:{tiny_qwen_vl_dir}"), GENERATE_SYSTEM_PROMPT)
    text = vlm.render(1, "Here is the image")
    assert how == "system-message"
    assert text.startswith("<|im_start|>system\n" + GENERATE_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("Here is the image<|im_end|>\n<|im_start|>assistant\n")
