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
