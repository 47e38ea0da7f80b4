"""Letter extraction on real-world judge outputs: never a random guess."""
import pytest

from prism_eval.core.answers import extract_boxed, extract_letter, extract_letter_first, extract_short_answer

LABELS = "ABCDE"
TEXTS = ("blue", "red", "green", "black", "Can not answer based on the caption")


@pytest.mark.parametrize("text,expected", [
    ("The answer is C.", "C"),
    (" C.", "C"),
    ("C", "C"),
    ("C) red", "C"),
    ("C. green", "C"),
    ("(B)", "B"),
    ("**C**", "C"),
    ("The correct answer is **D**.", "D"),
    ("Answer: D", "D"),
    ("<think>maybe A, or B?</think>The answer is B", "B"),
    ("Looking at the caption, the car is described as red, so the option is B.", "B"),
    ("\\boxed{C}", "C"),
    ("<answer>The final answer is \\boxed{D}</answer>", "D"),
    ("green", "C"),
    ("It is red.", "B"),
])
def test_letter_cascade(text, expected):
    assert extract_letter(text, LABELS, TEXTS).value == expected


@pytest.mark.parametrize("text", [
    "I cannot tell",
    "A and B",
    "Either B or C could be right.",
    "",
    "The image shows something.",
    "red or green",
])
def test_unanswerable_outputs_are_unanswered_not_guessed(text):
    assert extract_letter(text, LABELS, TEXTS).value is None


def test_letters_outside_the_shown_labels_are_ignored():
    assert extract_letter("The answer is G.", LABELS).value is None
    assert extract_letter("The answer is F.", "ABCDF").value == "F"


def test_caprl_first_letter_parser_keeps_its_quirk():
    assert extract_letter_first(" C.").value == "C"
    assert extract_letter_first(" Can not answer").value == "C"  # the published parser's behaviour
    assert extract_letter_first(" none").value is None


def test_boxed_and_short_answers():
    assert extract_boxed("x \\boxed{\\frac{1}{2}} y") == "\\frac{1}{2}"
    assert extract_boxed("no box") is None
    assert extract_short_answer("</think><answer>So \\boxed{42}</answer>").value == "42"
    assert extract_short_answer("The answer is 17.").value == "17"
    assert extract_short_answer("   ").value is None
