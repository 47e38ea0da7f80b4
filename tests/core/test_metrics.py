"""The core metrics: default (corrected) behaviour, the CapRL compatibility switch, and score_open."""
from __future__ import annotations

import threading

import pytest

from prism_eval.core.metrics import (
    METRICS,
    MetricError,
    anls,
    exact_match,
    math_equal,
    mmmu_open,
    parse_metric,
    parse_number,
    relaxed_accuracy,
    score_open,
    with_compat,
)
from prism_eval.core.records import Question


@pytest.mark.parametrize("pred, target, expected", [
    ("1,234", "1234", 1.0), ("$12.5", "12.5", 1.0), ("12%", "12", 1.0), ("12%", "0.12", 1.0), ("0.12", "12%", 1.0),
    ("12.", "12", 1.0), ("12 kg", "12", 1.0), ("5 million", "5000000", 1.0), ("1.2e3", "1200", 1.0),
    ("104", "100", 1.0), ("105", "100", 1.0), ("106", "100", 0.0), ("95", "100", 1.0), ("94", "100", 0.0),
    ("0", "0", 1.0), ("0.0", "0", 1.0), ("0.001", "0", 0.0), ("-5", "5", 0.0), ("−5", "-5", 1.0),
    ("Yes.", "yes", 1.0), ("  blue ", "Blue", 1.0), ("bleu", "blue", 0.0), ("twelve", "12", 0.0), (None, "12", 0.0),
])
def test_relaxed_accuracy_default(pred, target, expected):
    assert relaxed_accuracy(pred, target) == expected


@pytest.mark.parametrize("pred, target, expected, why", [
    # CapRL passes (gold, prediction) to relaxed_correctness: the error is divided by the prediction
    ("95.5", "100", 1.0, "|100-95.5|/95.5 = 0.047"),
    ("95.0", "100", 0.0, "|100-95|/95 = 0.053 > 0.05 although |100-95|/100 = 0.05"),
    ("1.0", "100", 1.0, "x100 of the prediction is tried"),
    ("5000", "50", 1.0, "x0.01 of the prediction is tried"),
    ("1,234", "1234", 0.0, "no normalisation: float('1,234') fails, string compare"),
    ("0", "0", 0.0, "str(0 * scale) is '0.0', which string-compares unequal to '0'"),
    ("Yes", "yes", 1.0, "case-insensitive string compare"),
])
def test_relaxed_accuracy_caprl_quirks(pred, target, expected, why):
    assert relaxed_accuracy(pred, target, compat="caprl") == expected, why


def test_relative_error_divisor_is_the_visible_difference():
    # 95 vs 100 is exactly 5% of the gold (correct by default) but 5.3% of the prediction (wrong in CapRL's code)
    assert relaxed_accuracy("95", "100") == 1.0 and relaxed_accuracy("95", "100", compat="caprl") == 0.0


def test_anls():
    assert anls("Global  Warming", ["global warming"]) == 1.0
    assert anls("global warmin", "global warming") == pytest.approx(1 - 1 / 14)
    assert anls("glob", ["global warming"]) == 0.0  # below the 0.5 threshold
    assert anls("nyc", ["New York", "NYC"]) == 1.0  # best over the accepted answers
    # exactly at the threshold: ST-VQA scores 0 (distance must be below 0.5); CapRL and lmms-eval keep 0.5
    assert anls("abcdx", ["abcdefgh"]) == 0.0 and anls("abcdef", ["abcxyz"]) == 0.0
    assert anls("abcdx", ["abcdefgh"], compat="caprl") == pytest.approx(0.5)
    # the raw-length quirk (lmms-eval, VLMEvalKit, CapRL): padding shrinks the normalised distance
    assert anls("  ", ["x"]) == 0.0 and anls("  ", ["x"], compat="caprl") == 0.5
    with pytest.raises(MetricError):
        anls("x", [])


@pytest.mark.parametrize("pred, target, expected", [
    ("0.5", "\\frac{1}{2}", 1.0), ("1/2", "0.5", 1.0), ("12", "12.0", 1.0), ("1,234", "1234", 1.0),
    ("2", "\\sqrt{4}", 1.0), ("x^2", "x^{2}", 1.0), ("$3\\pi$", "3\\pi", 1.0), ("3.14", "\\pi", 0.0),
    ("B", "B", 1.0), ("b", "B", 1.0), ("C", "B", 0.0), ("yes", "Yes", 1.0), ("no", "yes", 0.0),
    ("cab", "abc", 0.0), ("Tom", "Mot", 0.0), ("50\\%", "0.5", 1.0), ("7", "8", 0.0), (None, "1", 0.0),
])
def test_math_equal_default(pred, target, expected):
    assert math_equal(pred, target) == expected


def test_math_equal_caprl_quirks():
    # sympy reads words as products of symbols: CapRL's check finds "cab" equal to "abc"
    assert math_equal("cab", "abc", compat="caprl") == 1.0 and math_equal("cab", "abc") == 0.0
    # an unparseable gold counts as correct in CapRL's verify_math
    assert math_equal("anything", "", compat="caprl") == 1.0 and math_equal("anything", "") == 0.0
    assert math_equal("0.5", "\\frac{1}{2}", compat="caprl") == 1.0


def test_math_equal_outside_the_main_thread():
    # math-verify's signal-based timeout only works in the main thread; the metric must not raise elsewhere
    out = []
    t = threading.Thread(target=lambda: out.append(math_equal("1/2", "0.5")))
    t.start()
    t.join()
    assert out == [1.0]


def test_exact_match_and_parse_number():
    assert exact_match("  The  Cat. ", "the cat") == 1.0 and exact_match("cat", "cats") == 0.0
    assert parse_number("$1,234.5") == (1234.5, False, 1.0)
    assert parse_number("45 %") == (45.0, True, 1.0) and parse_number("3 million")[2] == 1e6
    assert parse_number("2019 and 2020") is None and parse_number("abc") is None


def test_mmmu_open():
    assert mmmu_open("The answer is 3.50", "3.5") == 1.0
    assert mmmu_open("It is Paris.", ["paris"]) == 1.0 and mmmu_open("London", "Paris") == 0.0
    assert mmmu_open("3.429", ["24/7", "3.429"]) == 1.0


def test_score_open_uses_every_accepted_answer_and_the_best_term():
    q = Question(id="q", text="?", answer="Global Warming", targets=("climate change",))
    assert score_open("climate change", q, "anls") == 1.0
    assert score_open("climate chang", q, "exact_match") == 0.0
    chart = Question(id="c", text="?", answer="0.5")
    assert score_open("1/2", chart, "relaxed_accuracy") == 0.0  # not a plain number
    assert score_open("1/2", chart, "relaxed_accuracy+math_equal") == 1.0  # CapRL's max(chart, math)
    assert score_open(None, chart, "anls") == 0.0


def test_metric_expressions():
    assert parse_metric("relaxed_accuracy:caprl+math_equal") == [("relaxed_accuracy", "caprl"), ("math_equal", None)]
    assert with_compat("relaxed_accuracy+math_equal", "caprl") == "relaxed_accuracy:caprl+math_equal:caprl"
    assert with_compat("exact_match", "caprl") == "exact_match"
    assert with_compat("anls:caprl", None) == "anls"
    assert set(METRICS) >= {"exact_match", "relaxed_accuracy", "anls", "math_equal"}
    for bad, msg in [("bleu", "unknown metric 'bleu'"), ("anls:vqa", "unknown compatibility mode 'vqa'"),
                     ("exact_match:caprl", "no 'caprl' variant"), ("", "non-empty")]:
        with pytest.raises(MetricError, match=msg):
            parse_metric(bad)
    with pytest.raises(MetricError, match="unknown compatibility mode"):
        relaxed_accuracy("1", "1", compat="vlmeval")


def test_every_metric_stays_in_unit_interval():
    q = Question(id="q", text="?", answer="12", targets=("twelve",))
    for name in METRICS:
        for pred in ["12", "", "twelve", "1e9", "-3", "\\frac{1}{0}", "x" * 1000]:
            assert 0.0 <= score_open(pred, q, name) <= 1.0
