"""The training reward and the leaderboard score are one number: both call prism_eval.core.utility."""
import json
from collections import defaultdict

import pytest
from PIL import Image

from caprl_train.reward import CaptionUtilityReward, RewardConfig
from prism_eval.api import evaluate
from prism_eval.benchmarks import load_jsonl_benchmark
from prism_eval.engines.registry import load_judge
from prism_eval.runner.options import RunOptions


@pytest.fixture(scope="module")
def small_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("rb")
    rows, caps = [], []
    scenes = [("red", 3, "cat"), ("blue", 5, "dog"), ("green", 2, "bird")]
    for i, (colour, count, animal) in enumerate(scenes):
        Image.new("RGB", (32, 32), colour).save(root / f"{i}.png")
        rows += [
            {"id": f"{i}-c", "image": f"{i}.png", "question": "What colour is the wall?",
             "options": ["red", "blue", "green", "white"], "answer": "ABC"[i]},
            {"id": f"{i}-n", "image": f"{i}.png", "question": "How many animals are there?",
             "options": ["2", "3", "5", "7"], "answer": "ABCD"[["2", "3", "5", "7"].index(str(count))]},
            {"id": f"{i}-a", "image": f"{i}.png", "question": "Which animal is shown?",
             "options": ["cat", "dog", "bird", "fish"], "answer": "ABC"[i]},
        ]
        caps.append({"image": f"{i}.png", "caption": f"{count} {animal}s sit in front of a {colour} wall."})
    (root / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "c.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    return root, rows, caps


@pytest.mark.parametrize("scoring,estimator", [("letter-logprob", "expected"), ("option-loglik", "argmax"),
                                               ("letter-logprob", "sampled")])
def test_reward_equals_evaluator_utility(small_bench, tmp_path, builtin_judge_spec, scoring, estimator):
    root, rows, caps = small_bench
    seed = 11
    bench = load_jsonl_benchmark(root / "b.jsonl")
    options = RunOptions(judge=builtin_judge_spec, protocol="caprl", scoring=scoring, estimator=estimator,
                         num_captions=1, seed=seed, store=str(tmp_path / "store.sqlite"))
    evaluate(f"file:{root / 'c.jsonl'}", [bench], options=options, out=tmp_path / "run")
    per_sample = defaultdict(list)
    for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines():
        rec = json.loads(line)
        per_sample[rec["sample_id"]].append(rec["score"])
    evaluator_utility = {sid: sum(v) / len(v) for sid, v in per_sample.items()}

    reward = CaptionUtilityReward(RewardConfig(judge=builtin_judge_spec, scoring=scoring, estimator=estimator,
                                               questions_per_caption=None, seed=seed),
                                  judge=load_judge(builtin_judge_spec))
    qa = {s.id: [{"id": q.id, "question": q.text, "options": list(q.options), "answer": q.answer}
                 for q in s.questions] for s in bench.samples}
    completions = [[{"role": "assistant", "content": c["caption"]}] for c in caps]
    ids = [c["image"] for c in caps]
    rewards = reward(prompts=[None] * len(ids), completions=completions, qa=[qa[i] for i in ids], sample_id=ids)
    assert rewards == [evaluator_utility[i] for i in ids]
    assert len(set(rewards)) > 1 or estimator == "argmax"
