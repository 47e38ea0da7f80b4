"""The expected estimator is unbiased for CapRL's sampled reward (same captions, same option orders)."""
import math

from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import ImageRef, Question, Sample
from prism_eval.core.utility import CaptionSet, UtilityConfig, score_caption_sets
from prism_eval.engines.registry import load_judge
from prism_eval.runner.store import CachingJudge, Lazy, Store

QUESTIONS = (
    Question(id="colour", text="What colour is the car?", answer="B", options=("blue", "red", "green", "white")),
    Question(id="count", text="How many people are in the car?", answer="C", options=("one", "three", "two", "four")),
    Question(id="place", text="Where is the car parked?", answer="A", options=("beach", "garage", "street", "field")),
)
CAPTIONS = ["A red car with two people inside is parked on a sandy beach.",
            "A car is parked somewhere.",
            "A white car with four people inside is parked in a field."]


def test_expected_equals_mean_of_sampled_rewards(tmp_path, builtin_judge_spec):
    judge = CachingJudge(Lazy(lambda: load_judge(builtin_judge_spec), builtin_judge_spec),
                         Store(tmp_path / "s.sqlite"), {"spec": builtin_judge_spec})
    protocol = get_protocol("caprl")
    sample = Sample(id="img", images=(ImageRef("img", "0"),), questions=QUESTIONS)
    sets = [CaptionSet(sample, CAPTIONS)]
    diffs = []
    n_seeds = 500
    for seed in range(n_seeds):
        rows = {}
        for estimator in ("expected", "sampled"):
            config = UtilityConfig(scoring="letter-logprob", estimator=estimator, draws=4, seed=seed)
            rows[estimator] = [c.utility for c in score_caption_sets(judge, protocol, sets, config)[0]]
        diffs.extend(s - e for s, e in zip(rows["sampled"], rows["expected"]))
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    stderr = sd / math.sqrt(len(diffs))
    # Stated tolerance: the mean difference lies within 4 standard errors of 0 (false alarm rate < 1e-4).
    assert abs(mean) <= 4 * stderr, (mean, stderr)
    assert sd > 0  # the sampled reward really is noisy; the expected one is its noise-free mean
