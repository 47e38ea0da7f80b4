"""Option shuffling and relabelling: seeded, every permutation reachable, the answer follows its option."""
import itertools

import pytest

from prism_eval.core.options import (
    CANNOT_ANSWER,
    OptionsError,
    format_caprl_question,
    parse_caprl_question,
    seeded_rng,
    show_options,
    split_inline_options,
)

OPTIONS = ("blue", "red", "green", "black")


def test_every_permutation_reachable_and_answer_follows_option():
    seen = set()
    for seed in range(600):
        shown = show_options(OPTIONS, "B", shuffle=True, rng=seeded_rng(seed, "q1", 0))
        seen.add(shown.texts)
        assert shown.texts[shown.labels.index(shown.gold)] == "red"
    assert seen == set(itertools.permutations(OPTIONS))


def test_shuffle_is_seeded_and_depends_on_identity():
    a = show_options(OPTIONS, "A", shuffle=True, rng=seeded_rng(7, "q1", 0))
    b = show_options(OPTIONS, "A", shuffle=True, rng=seeded_rng(7, "q1", 0))
    assert a == b
    orders = {show_options(OPTIONS, "A", shuffle=True, rng=seeded_rng(7, "q1", d)).order for d in range(20)}
    assert len(orders) > 5


def test_cannot_answer_option_next_letter_and_caprl_quirk():
    plain = show_options(OPTIONS, "C", shuffle=False, rng=None, cannot_answer=True)
    assert plain.labels == ("A", "B", "C", "D", "E") and plain.texts[-1] == CANNOT_ANSWER
    assert plain.gold == "C" and plain.cannot_answer == "E"
    quirk = show_options(OPTIONS, "C", shuffle=False, rng=None, cannot_answer=True, label_quirk=True)
    assert quirk.labels == ("A", "B", "C", "D", "F") and quirk.cannot_answer == "F"


def test_caprl_question_block_round_trip():
    shown = show_options(OPTIONS, "D", shuffle=True, rng=seeded_rng(1), cannot_answer=True, label_quirk=True)
    block = format_caprl_question("What colour is the car?", shown)
    assert block.splitlines()[1].startswith("   - A) ")
    assert block.endswith("\n   - F) Can not answer based on the caption")
    question, options = parse_caprl_question(block)
    assert question == "What colour is the car?"
    assert options == shown.texts[:-1]


@pytest.mark.parametrize("options,answer,problem", [
    (("only",), "A", "at least 2"),
    (OPTIONS, "E", "not one of the option letters"),
    (OPTIONS, "AB", "not one of the option letters"),
    (tuple(str(i) for i in range(26)), "A", "too many options"),
])
def test_bad_options_raise_clear_errors(options, answer, problem):
    with pytest.raises(OptionsError, match=problem):
        show_options(options, answer, shuffle=False, rng=None, cannot_answer=True)


def test_split_inline_options_mmstar_style():
    text = "Which animal is shown?\nOptions: A: cat, B: dog, C: horse, D: a bird of prey"
    question, options = split_inline_options(text)
    assert question == "Which animal is shown?"
    assert options == ("cat", "dog", "horse", "a bird of prey")
    assert split_inline_options("No options here at all.") is None
