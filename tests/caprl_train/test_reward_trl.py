"""The reward as trl calls it: groups, the length term, and the per-step diagnostics it logs."""
import json

import pytest

from caprl_train.reward import CaptionUtilityReward, RewardConfig, length_reward

QA = json.dumps([{"question": "What colour is the car?", "choices": ["A) red", "B) blue", "C) green"], "answer": "A"},
                 {"question": "How many dogs?", "options": ["1", "2", "3"], "answer": "B"}])


def call(reward, captions, ids, completion_ids):
    metrics, extra = {}, {}
    out = reward(prompts=[None] * len(captions), completions=[[{"role": "assistant", "content": c}] for c in captions],
                 completion_ids=completion_ids, qa=[QA] * len(captions), sample_id=ids,
                 log_metric=lambda k, v: metrics.__setitem__(k, v), log_extra=lambda k, v: extra.__setitem__(k, v))
    return out, metrics, extra


def test_length_term_and_truncation(tiny_judge):
    cfg = RewardConfig(judge="unused", questions_per_caption=3, length_beta=0.5, length_l1=4, length_l2=8,
                       max_completion_length=10, eos_token_ids=(99,))
    plain = CaptionUtilityReward(RewardConfig(judge="unused", questions_per_caption=3), judge=tiny_judge)
    shaped = CaptionUtilityReward(cfg, judge=tiny_judge)
    captions = ["a red car", "two dogs and a red car", "a blue car", "nothing"]
    ids = ["s1", "s1", "s2", "s2"]
    lengths = [[1] * 3, [1] * 6, [1] * 9 + [99], [1] * 10]  # 3, 6, 10 ending in EOS, 10 cut off
    base, _, _ = call(plain, captions, ids, lengths)
    out, metrics, extra = call(shaped, captions, ids, lengths)
    terms = [1.0, 0.5, 0.0, 0.0]
    assert out == pytest.approx([b + 0.5 * t for b, t in zip(base, terms)])
    assert metrics["caption_utility/truncation_rate"] == 0.25  # only the last one hit the cap without EOS
    assert metrics["caption_utility/length_term"] == pytest.approx(sum(terms) / 4)
    assert metrics["caption_utility/judge_accuracy"] == pytest.approx(sum(base) / 4)
    assert metrics["caption_utility/caption_length"] == pytest.approx((3 + 6 + 10 + 10) / 4)
    assert set(metrics) >= {"caption_utility/unparsed_rate", "caption_utility/failed_rate"}
    assert extra["judge_accuracy"] == pytest.approx(base) and extra["caption_tokens"] == [3, 6, 10, 10]
    assert [length_reward(n, 4, 8) for n in (4, 5, 8, 100)] == [1.0, 0.75, 0.0, 0.0]


def test_same_caption_same_sample_same_reward_and_missing_column(tiny_judge):
    reward = CaptionUtilityReward(RewardConfig(judge="unused", questions_per_caption=4), judge=tiny_judge)
    out, _, _ = call(reward, ["a red car", "a red car"], ["s1", "s1"], [[1], [1]])
    assert out[0] == pytest.approx(out[1])  # a group shares question draws and option orders
    with pytest.raises(ValueError, match="needs the dataset column 'qa'"):
        reward(completions=[[{"role": "assistant", "content": "x"}]])
