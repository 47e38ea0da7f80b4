"""Prism's query-specific protocol: the judge writes what to observe; captions are then per question."""
import json

from PIL import Image

from prism_eval.api import evaluate
from prism_eval.benchmarks import load_jsonl_benchmark
from prism_eval.runner.evaluator import Evaluator
from prism_eval.runner.options import RunOptions


def test_query_specific_captions_are_keyed_per_question(tmp_path, builtin_judge_spec, tiny_llava_dir):
    Image.new("RGB", (40, 40), "orange").save(tmp_path / "a.png")
    rows = [
        {"id": "bars", "image": "a.png", "question": "What is the value of the smallest bar?",
         "options": ["3", "5", "8", "13"], "answer": "A"},
        {"id": "colour", "image": "a.png", "question": "What colour is the background?",
         "options": ["orange", "grey", "blue", "pink"], "answer": "A"},
    ]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = load_jsonl_benchmark(tmp_path / "b.jsonl")
    options = RunOptions(judge=builtin_judge_spec, protocol="prism-query", scoring="option-loglik",
                         caption_max_tokens=8, store=str(tmp_path / "s.sqlite"))
    session = Evaluator(options)
    record = evaluate(f"hf:{tiny_llava_dir}", [bench], session=session, out=tmp_path / "out")
    # one caption per question, not per image: the instruction depends on the question
    assert session.caption_calls == 2
    lines = [json.loads(l) for l in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    prompts = {l["question_id"]: l["caption_prompt"] for l in lines}
    generic = "Describe the fine-grained content of the image, including scenes, objects, relationships, " \
              "instance location, and any text present."
    for prompt in prompts.values():
        assert prompt.startswith(generic + " Especially, pay attention to ") and prompt.endswith(".")
    assert prompts["bars"] != prompts["colour"]
    assert record.benchmarks["b"].n == 2
    # a rerun reuses the judge's instructions and the captions from the store
    again = Evaluator(options)
    evaluate(f"hf:{tiny_llava_dir}", [bench], session=again, out=tmp_path / "out2")
    assert again.caption_calls == 0 and again.judge.model_calls == 0


def _one_question_bench(tmp_path):
    Image.new("RGB", (40, 40), "orange").save(tmp_path / "a.png")
    row = {"id": "bars", "image": "a.png", "question": "What is the value of the smallest bar?",
           "options": ["3", "5"], "answer": "A", "hint": "The chart shows sales."}
    (tmp_path / "b.jsonl").write_text(json.dumps(row) + "\n")
    return load_jsonl_benchmark(tmp_path / "b.jsonl")


def test_query_writer_sees_vlmevalkits_question_text_and_its_whole_reply_is_kept(tmp_path, tiny_llava_dir):
    from tests.scripted_judge import serve

    bench = _one_question_bench(tmp_path)
    reply = "the heights of all bars\nand the numbers printed on them"
    with serve(lambda prompt: reply if "Contents to observe" in prompt else "A") as judge:
        options = RunOptions(judge=judge.spec, protocol="prism-query", caption_max_tokens=4,
                             store=str(tmp_path / "s.sqlite"))
        evaluate(f"hf:{tiny_llava_dir}", [bench], options=options, out=tmp_path / "out")
        query = judge.prompts[0]
    assert query.endswith("Question: What is the value of the smallest bar?\nHint: The chart shows sales.\n"
                          "Options:\nA. 3\nB. 5\nPlease select the correct answer from the options above. \n"
                          "Contents to observe: ")
    line = json.loads((tmp_path / "out" / "samples.jsonl").read_text())
    assert line["caption_prompt"].endswith("Especially, pay attention to " + reply + ".")


def test_a_failed_query_writer_fails_the_item_unless_compat_prism(tmp_path, tiny_llava_dir):
    from tests.scripted_judge import serve

    bench = _one_question_bench(tmp_path)
    with serve(lambda prompt: "" if "Contents to observe" in prompt else "A") as judge:
        runs = {}
        for compat in (None, "prism"):
            options = RunOptions(judge=judge.spec, protocol="prism-query", compat=compat, caption_max_tokens=4,
                                 store=str(tmp_path / f"s-{compat}.sqlite"))
            out = tmp_path / f"out-{compat}"
            evaluate(f"hf:{tiny_llava_dir}", [bench], options=options, out=out)
            runs[compat] = json.loads((out / "samples.jsonl").read_text())
    assert runs[None]["status"] == "failed" and "the query writer replied nothing" in runs[None]["error"]
    assert runs["prism"]["status"] != "failed"
    assert runs["prism"]["caption_prompt"] == ("Describe the fine-grained content of the image, including scenes, "
                                               "objects, relationships, instance location, and any text present.")
