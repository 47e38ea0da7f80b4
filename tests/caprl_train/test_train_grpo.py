"""caprl-train end to end on CPU: trl GRPO on a tiny random Qwen2.5-VL, rewarded by the built-in judge.

One short training run (module fixture) backs every test here: it takes 3 GRPO
steps on 2 demo images (2 captions each, 16 tokens), records what trl's reward
path computed, evaluates during training with the evaluator, and saves the
policy, which the evaluator then loads with `hf:<dir>`.
"""
import json

import pytest
import torch

from caprl_train.config import EvalSettings
from caprl_train.data import DataConfig
from caprl_train.parts import part_of
from caprl_train.reward import RewardConfig
from caprl_train.train import GRPOSettings, TrainConfig, build_trainer, save_final
from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import ImageRef, Question, Sample
from prism_eval.core.utility import CaptionSet, UtilityConfig, score_caption_sets

REWARD_SEED = 7
STEPS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_qwen_vl_dir, tiny_lm_dir, builtin_judge):
    from prism_eval.demo.build import build_demo

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("grpo")
    demo = build_demo(root / "demo")
    cfg = TrainConfig(
        model=str(tiny_qwen_vl_dir), output_dir=str(root / "out"), train_parts=("projector", "language"),
        data=DataConfig(source=str(demo.benchmark), limit=2, image_size=56),
        grpo=GRPOSettings(num_generations=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                          max_completion_length=16, max_steps=STEPS, learning_rate=5e-3, warmup_steps=0,
                          gradient_checkpointing=False, save_steps=2, logging_steps=1),
        reward=RewardConfig(judge="builtin:smollm2-135m", scoring="option-loglik", questions_per_caption=2,
                            seed=REWARD_SEED),
        eval=EvalSettings(benchmarks=(str(demo.benchmark),), steps=STEPS, limit=3, judge=f"hf:{tiny_lm_dir}",
                          batch_size=4),
    )
    built = build_trainer(cfg, judge=builtin_judge)
    trainer = built.trainer
    calls = []
    original = trainer._calculate_rewards

    def spy(inputs, prompts, completions, completion_ids_list):
        step = trainer.state.global_step
        out = original(inputs, prompts, completions, completion_ids_list)
        calls.append({"step": step, "captions": [c[0]["content"] for c in completions],
                      "qa": [x["qa"] for x in inputs], "sample_id": [x["sample_id"] for x in inputs],
                      "rewards": out[:, 0].tolist()})
        return out

    trainer._calculate_rewards = spy  # record what trl itself gets back from the reward path
    trainer.train()
    out = save_final(built, cfg)
    return {"cfg": cfg, "built": built, "trainer": trainer, "calls": calls, "out": out, "demo": demo}


def test_three_grpo_steps_log_the_reward_and_its_diagnostics(run):
    trainer = run["trainer"]
    assert trainer.state.global_step == STEPS
    rows = [r for r in trainer.state.log_history if "reward" in r]
    assert len(rows) == STEPS
    for row in rows:
        for key in ("judge_accuracy", "caption_length", "truncation_rate", "unparsed_rate", "failed_rate"):
            assert f"caption_utility/{key}" in row
        assert 0.0 <= row["caption_utility/judge_accuracy"] <= 1.0
        assert 0 < row["caption_utility/caption_length"] <= 16
        assert row["rewards/caption_utility/mean"] == pytest.approx(row["caption_utility/judge_accuracy"], abs=1e-6)
    assert len(run["calls"]) == STEPS and all(len(c["captions"]) == 4 for c in run["calls"])


def test_reward_given_to_trl_equals_prism_eval_utility(run, builtin_judge):
    protocol = get_protocol("caprl", shuffle=True, cannot_answer=True)
    for call in run["calls"]:
        sets: list[CaptionSet] = []
        for sid, qa, caption in zip(call["sample_id"], call["qa"], call["captions"]):
            if sets and sets[-1].sample.id == sid:
                sets[-1].captions.append(caption)
                continue
            questions = tuple(Question(id=q["id"], text=q["question"], answer=q["answer"], options=tuple(q["options"]))
                              for q in json.loads(qa))
            sample = Sample(id=sid, images=(ImageRef(key=sid, sha256=sid),), questions=questions)
            sets.append(CaptionSet(sample, [caption]))
        assert [len(s.captions) for s in sets] == [2, 2]  # two images, a group of two captions each
        # the reward's defaults, spelled out: option-loglik (mean per token), expected estimator, 2 draws
        config = UtilityConfig(scoring="option-loglik", option_norm="mean", estimator="expected", draws=2,
                               seed=REWARD_SEED + call["step"])
        expected = [c.utility for row in score_caption_sets(builtin_judge, protocol, sets, config) for c in row]
        assert call["rewards"] == pytest.approx(expected, abs=1e-6)


def test_checkpoint_is_loaded_by_the_evaluator(run, tiny_qwen_vl_dir, tiny_lm_dir, tmp_path):
    from safetensors.torch import load_file

    from prism_eval.api import evaluate
    from prism_eval.benchmarks import load_jsonl_benchmark
    from prism_eval.runner.evaluator import Evaluator
    from prism_eval.runner.options import RunOptions

    out = run["out"]
    trained = load_file(out / "model.safetensors")
    initial = load_file(tiny_qwen_vl_dir / "model.safetensors")
    assert set(trained) == set(initial)
    assert any(not torch.equal(trained[k], initial[k]) for k in initial if part_of(k) == "language")  # it moved
    vision = [k for k in initial if part_of(k) == "vision"]
    assert vision and all(torch.equal(trained[k], initial[k]) for k in vision)  # --train-parts froze the encoder
    bench = load_jsonl_benchmark(run["demo"].benchmark, limit=3)
    evaluator = Evaluator(RunOptions(judge=f"hf:{tiny_lm_dir}", num_captions=1, caption_max_tokens=12,
                                     store=str(tmp_path / "store.sqlite")))
    record = evaluate(f"hf:{out}", [bench], session=evaluator, out=tmp_path / "run")
    assert evaluator.caption_calls == len(bench.samples)
    summary = record.benchmarks[bench.name]
    assert summary.n == 3 and summary.failed == 0
    lines = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert lines and all(isinstance(x["caption"], str) and x["caption"] for x in lines)
    from PIL import Image

    from prism_eval.core.records import Sampling
    from prism_eval.engines.registry import load_captioner

    mid = load_captioner(f"hf:{out / 'checkpoint-2'}")  # intermediate checkpoints load the same way
    texts = mid.caption([[Image.new("RGB", (56, 56), "red")]], ["Describe."], 1, Sampling(max_new_tokens=4))
    assert len(texts) == 1 and isinstance(texts[0][0], str)
    assert {"preprocessor_config.json", "tokenizer.json", "chat_template.jinja"} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / "caprl_train_config.json").read_text())
    assert saved["grpo"]["num_generations"] == 2 and saved["reward"]["questions_per_caption"] == 2


def test_evaluation_during_training_is_logged_next_to_the_reward(run):
    history = run["trainer"].state.log_history
    start = [r for r in history if r.get("step") == 0 and "eval/score" in r]
    assert len(start) == 1 and "reward" not in start[0]
    last = [r for r in history if r.get("step") == STEPS and "reward" in r]
    assert len(last) == 1 and "eval/score" in last[0] and "eval/demo" in last[0]
    evals = run["built"].eval_callback.history
    assert [e.step for e in evals] == [0, STEPS]
    results = json.loads((run["out"] / "eval" / f"step-{STEPS}" / "results.json").read_text())
    assert results["average"] == pytest.approx(last[0]["eval/score"])
    assert results["benchmarks"]["demo"]["n"] == 3
    lines = (run["out"] / "eval" / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, STEPS]
    assert json.loads(lines[1])["reward"] == pytest.approx(
        last[0]["reward"])  # the same step's reward


def test_policy_sees_the_evaluators_caption_prompt(run, tiny_qwen_vl_dir):
    from PIL import Image
    from trl.data_utils import prepare_multimodal_messages

    from prism_eval.engines.registry import load_captioner

    row = run["built"].dataset[0]
    messages = prepare_multimodal_messages(row["prompt"], images=[Image.new("RGB", (56, 56))])
    trained_on = run["built"].processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    evaluator = load_captioner(f"hf:{tiny_qwen_vl_dir}").render(1, get_protocol("caprl").caption_prompt)
    assert trained_on == evaluator
