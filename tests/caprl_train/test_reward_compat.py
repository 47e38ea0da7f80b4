"""`caprl-train --compat caprl`: CapRL's reward procedure exactly, and the default's agreement with it."""
from __future__ import annotations

import json
import math

import pytest

from caprl_train.reward import CaptionUtilityReward, RewardConfig
from prism_eval.benchmarks import load_jsonl_benchmark
from prism_eval.core.records import Question, Sample
from tests.scripted_judge import serve

CANNOT = "Can not answer based on the caption"


def five_questions() -> Sample:
    qs = tuple(Question(id=f"q{i}", text=f"Question number {i}?", options=("cat", "dog", "bird", "fish"),
                        answer="ABCD"[i % 4]) for i in range(5))
    return Sample(id="img", images=(), questions=qs)


def asked(prompt: str) -> str:
    """The part of a judge prompt after the caption (the protocol's worked examples come before it)."""
    return prompt.split("a caption", 1)[1]


def asked_orders(score) -> list[tuple[str, str]]:
    return [(a.question_id, a.letters) for a in score.answers]


def test_compat_reward_reads_the_first_capital_as_caprls_server_did():
    sample = five_questions()
    with serve(lambda prompt: " " + CANNOT) as judge:
        compat = CaptionUtilityReward(RewardConfig(judge=judge.spec, compat="caprl"))
        scored = compat.score([sample], [["a caption"]])[0][0]
        # CapRL's parse_easy takes the first capital A-I: the refusal's own "C" becomes an answer
        assert [a.extracted for a in scored.answers] == ["C"] * 8
        assert scored.utility == pytest.approx(sum(a.gold == "C" for a in scored.answers) / 8)
        body = judge.bodies[0]
        assert body["temperature"] == 0.6 and body["max_tokens"] == 10  # one short sampled answer
        assert all("F) " + CANNOT in asked(p) for p in judge.prompts)  # appended, labelled F

        ours = CaptionUtilityReward(RewardConfig(judge=judge.spec, scoring="generate", estimator="sampled"))
        refused = ours.score([sample], [["a caption"]])[0][0]
        # the default parser reads a refusal as the appended option, never as a letter it happens to contain
        assert {a.extracted for a in refused.answers} == {"E"} and refused.utility == 0.0


def test_compat_draws_questions_and_shuffles_anew_for_every_caption():
    sample = five_questions()
    with serve(lambda prompt: "The answer is A") as judge:
        compat = CaptionUtilityReward(RewardConfig(judge=judge.spec, compat="caprl", seed=3))
        first, second = compat.score([sample], [["same caption", "same caption"]])[0]
        shared = CaptionUtilityReward(RewardConfig(judge=judge.spec, scoring="generate", estimator="sampled",
                                                   seed=3))
        one, two = shared.score([sample], [["same caption", "same caption"]])[0]
    assert asked_orders(first) != asked_orders(second)  # CapRL: independent per caption
    assert asked_orders(one) == asked_orders(two)  # ours: a group shares draws and orders
    assert {len(a.letters) for a in first.answers} == {5}  # four options and the appended one


def test_released_launcher_neither_shuffles_nor_appends():
    sample = five_questions()
    with serve(lambda prompt: "B") as judge:
        released = CaptionUtilityReward(RewardConfig(judge=judge.spec, compat="caprl", caprl_launcher="released"))
        scored = released.score([sample], [["a caption"]])[0][0]
        assert all(CANNOT not in asked(p) for p in judge.prompts)
    assert {a.letters for a in scored.answers} == {"ABCD"}
    assert scored.utility == pytest.approx(sum(a.gold == "B" for a in scored.answers) / 8)


def test_compat_settings_resolve_to_caprls_procedure():
    settings = RewardConfig(compat="caprl").resolved()
    assert (settings.scoring, settings.estimator, settings.shuffle, settings.cannot_answer, settings.label_quirk) \
        == ("generate", "sampled", True, True, True)
    assert RewardConfig().resolved().scoring == "letter-logprob"  # CapRL's 3B judge answers letters
    assert RewardConfig(judge="builtin:smollm2-135m").resolved().scoring == "option-loglik"
    assert RewardConfig(judge="builtin:smollm2-135m", scoring="generate").resolved().scoring == "generate"


@pytest.mark.slow
def test_default_expected_reward_matches_caprls_sampled_reward_in_expectation(tmp_path, builtin_judge):
    """The default (letter log-probabilities, expected) is the mean of CapRL's sampled reward.

    Same protocol (shuffled, appended option labelled F, T=0.6); the sampled side
    takes CapRL's first capital A-I from 10 generated tokens. The two can differ
    by the judge's probability mass off the option letters (2.4% measured on
    these prompts with the built-in judge), plus sampling noise.
    """
    from prism_eval.demo.build import build_demo

    demo = build_demo(tmp_path / "demo")
    bench = load_jsonl_benchmark(demo.benchmark)
    captions = {json.loads(x)["image"]: json.loads(x)["caption"]
                for x in demo.captions["reference"].read_text().splitlines()}
    samples = list(bench.samples)[:4]  # CapRL's side generates 10 tokens per ask: the suite's slowest test
    groups = [[captions[s.images[0].key]] * 4 for s in samples]
    base = dict(judge="builtin:smollm2-135m", questions_per_caption=None, seed=5)
    sampled = CaptionUtilityReward(RewardConfig(**base, compat="caprl"), judge=builtin_judge)
    expected = CaptionUtilityReward(RewardConfig(**base, scoring="letter-logprob", estimator="expected",
                                                 label_quirk=True), judge=builtin_judge)
    draws = [a.score for row in sampled.score(samples, groups) for cs in row for a in cs.answers]
    means = [a.score for row in expected.score(samples, groups) for cs in row for a in cs.answers]
    # every question asked once per caption on both sides (4 images, 4 captions each)
    assert len(draws) == len(means) == 4 * sum(len(s.questions) for s in samples) >= 60
    mean_sampled, mean_expected = sum(draws) / len(draws), sum(means) / len(means)
    se = math.sqrt(mean_sampled * (1 - mean_sampled) / len(draws))
    print(f"\n{len(draws)} asks: CapRL's sampled reward {mean_sampled:.4f}, expected {mean_expected:.4f}, SE {se:.4f}")
    assert abs(mean_sampled - mean_expected) <= 4 * se + 0.05, (mean_sampled, mean_expected, se)
