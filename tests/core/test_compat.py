r"""caprl_score against CapRL's released evaluation code, case by case.

Expected values come from reading InternLM/CapRL at commit 9bbc1bb:
  E<n>  = Prism_Evaluation/Eval_CapRL.py line n
  V<n>  = Prism_Evaluation/openrlhf/models/remote_rm/vqa_eval.py line n
  M39   = Prism_Evaluation/openrlhf/models/remote_rm/vlm_misc.py istype()
and from math-verify's documented behaviour where the code hands over to it
(parse with the LaTeX extractor, verify(pred_slot, gold_slot)). Two behaviours
changed between math-verify releases; those cases state the expected value per
version (CapRL ran before 0.9.0 existed; see MV below).
"""
from __future__ import annotations

import threading
from importlib.metadata import version

import pytest

from prism_eval.core.compat import (
    CAPRL_FAMILIES,
    CaprlCompatError,
    caprl_family,
    caprl_score,
    caprl_scores,
    chart_check,
    extract_answer,
    family_for_data_path,
    gold_alternatives,
    math_check,
    math_verify_caveat,
    student_answer,
)
from prism_eval.core.metrics import math_equal

MV = tuple(int(p) for p in version("math-verify").split(".")[:2])


def box(inner: str) -> str:
    """A well-formed CapRL-Eval-3B answer."""
    return f"<think>Reading the caption.</think>\n<answer>The answer is \\boxed{{{inner}}}.</answer>"


# ---------------------------------------------------------------- extraction (E33-35, E50-52)

@pytest.mark.parametrize("output, expected_answer, why", [
    (box("45"), "45", "E33: </think>\\s*<answer>.*?\\boxed{(.*)}.*?</answer>"),
    ("</think><answer>\\boxed{45}</answer>", "45", "E33: \\s* also matches no whitespace; no <think> needed"),
    ("<answer>\\boxed{45}</answer>", "", "E33: no </think>, no match, E35: answer ''"),
    ("</think> So: <answer>\\boxed{45}</answer>", "", "E33: only whitespace may sit between </think> and <answer>"),
    ("</THINK>\n<answer>\\boxed{45}</answer>", "", "E33: no IGNORECASE flag"),
    ("</think>\n<answer>\\boxed {45}</answer>", "", "E33: no space allowed before the brace"),
    (box("1} or \\boxed{2"), "1} or \\boxed{2", "E33: greedy (.*) runs to the last } before </answer>"),
    (box("45") + " and a stray }", "45", "E33: a } after </answer> cannot end the capture"),
    (box("45") + "\n<answer>{x}</answer>", "45}.</answer>\n<answer>{x", "E33: a later } before a later </answer> can"),
    (box("\\frac{1}{2}"), "\\frac{1}{2}", "E33: nested braces survive the greedy capture"),
    ("</think>\n<answer>\nValue:\n\\boxed{45}\n</answer>", "45", "E33: re.DOTALL lets . cross newlines"),
    (box(""), "", "E33: an empty box is the empty answer"),
])
def test_extraction(output, expected_answer, why):
    assert extract_answer(output) == expected_answer, why


def test_student_answer_is_math_verify_extracted_string():
    # E55: math_parse(f'${answer}$')[-1]; E57: '' when math-verify finds nothing (IndexError)
    assert student_answer("45") == "45"
    assert student_answer("") == ""
    assert student_answer("0.5") == "\\frac{1}{2}"  # latex2sympy normalises 0.5; the chart check then sees no float
    assert student_answer("1} or \\boxed{2") == "{2"  # a garbled capture reaches the chart check as '{2'


# ---------------------------------------------------------------- the cases, one per quirk or family

CASES = [
    # --- chart family: max(verify_chart, verify_math) (E215-217)
    ("chartqa", box("45"), "45", 1.0, "E61-64 relaxed x1, and E39 math"),
    ("chartqa", box("95.5"), "100", 1.0, "V215-219 swapped: |100-95.5|/95.5 = 0.047"),
    ("chartqa", box("95"), "100", 0.0, "V215-219 swapped: |100-95|/95 = 0.053 > 0.05 (5.0% of the gold)"),
    ("chartqa", box("105.2"), "100", 1.0, "V215-219 swapped: 5.2/105.2 = 0.049 although 5.2% of the gold"),
    ("chartqa", box("1"), "100", 1.0, "E62: the x100 try"),
    ("chartqa", box("5000"), "50", 1.0, "E62: the x0.01 try"),
    ("chartqa", box("-5"), "5", 0.0, "V215-219: sign matters; no scale fixes it"),
    ("chartqa", box("45"), "45%", 1.0, "V206-207 gold '45%' reads 0.45, matched by the x0.01 try (E62)"),
    ("chartqa", box("0.25"), "25", 1.0, "E62 x100 try on student '0.25'"),
    ("chartqa", box("0.5"), "50", 0.0, "E55: math-verify rewrites 0.5 as \\frac{1}{2}, float() fails (E61)"),
    ("chartqa", box("1,234"), "1234", 1.0, "E61 float fails -> V221 string compare fails; E39 math 1234 = 1234"),
    ("chartqa", box("12.5 million"), "12.5", 0.0, "E66 string compare; math reads m*i*l*l*i*o*n"),
    ("chartqa", box("Yes"), "yes", 1.0, "V221: lower-cased string equality"),
    ("chartqa", box("blue"), "red", 0.0, "V221: different words"),
    ("chartqa", box("nan"), "NaN", 1.0, "E61 float('nan'); V217 nan is truthy but the comparison is False;"
                                        " V221 then 'nan' == 'nan'"),
    ("chartqa", box("1e3"), "1000", 1.0, "E61: Python float() reads 1e3"),
    ("chartqa", box("12} or \\boxed{13"), "13", 0.0, "E33 greedy capture garbles two boxes"),
    ("chartqa", "The answer is 45.", "45", 0.0, "E35: no match, empty answer"),
    ("chartqa", "no answer at all", "", 1.0, "E30-31: '$$' does not parse, so the item counts as correct"),
    ("chartqa", box("45"), 45, 1.0, "E217 f'${gt}$' with an int gold"),
    ("chartqa", box("45"), ["44", "45"], 1.0, "E48 + V257-259: a list gold is alternatives for the chart check"),
    ("chartqa", box("45"), "['44', '45']", 1.0, "M39 istype() evals the gold *string* too"),
    ("chartqa", box("45"), "[1/2]", 0.0, "V258 eval('[1/2]') = [0.5]; 45, 0.45, 4500 are not within 5%"),
    ("chartqa-pro", box("2016"), ["2016"], 1.0, "V257-259; math-verify also reads ['2016'] as 2016"),
    ("chartqa-pro", box("2016"), ["2015", "2016"], 1.0, "V257-259 alternatives; math sees Interval(2015, 2016)"),
    ("chartqa-pro", box("2017"), ["2015", "2016"], 1.0, "V215-219: a year is a number, 1/2017 < 5%"),
    ("chartqa-pro", box("1900"), ["2015", "2016"], 0.0, "V215-219: 115/1900 > 5%; math: 1900 is not the interval"),
    ("charxiv", box("0.3"), "0.31", 1.0, "V215-219: |0.31-0.3|/0.3 = 0.033"),
    ("charxiv", box("\\frac{1}{2}"), "0.5", 1.0, "E39: math 1/2 = 0.5 though the chart check fails"),
    ("charxiv", box("Increasing"), "increasing", 1.0, "V221 lower-cased equality"),
    # --- info family: ANLS added (E216, E71-74)
    ("infovqa", box("global warmin"), "global warming", 1 - 1 / 14, "V238-244 ANLS 1 - 1/14"),
    ("infovqa", box("glob"), "global warming", 0.0, "E73: 1 - 10/14 < 0.5 -> 0"),
    ("infovqa", box("abcdx"), "abcdefgh", 0.5, "E73: similarity exactly 0.5 is kept (the test is < 0.5)"),
    ("infovqa", box("nyc"), ["New York", "NYC"], 1.0, "V257-259 + V239-240: best alternative, lower-cased"),
    ("infovqa", box("New York City"), ["New York", "NYC"], 1 - 5 / 13, "V242 length of the longer raw string"),
    ("infovqa", box("a  b"), "abc", 0.5, "V242 raw lengths: 1 - 2/4 (normalised lengths would give 1 - 2/3 < 0.5)"),
    ("infovqa", box("ßß"), "ss", 0.5, "V242 len('ßß'.upper()) == 4: 1 - 2/4"),
    ("infovqa", box("95.5"), "100", 1.0, "E216-217: the relaxed check still runs for info"),
    # --- math family: verify_math only (E219), multiple choice included
    ("mmstar", box("A"), "A", 1.0, "E39 verify('A', [a, 'A']): string equality"),
    ("mmstar", box("a"), "A", 1.0, "E39 second term: math-verify reads both letters as the symbol a"),
    ("mmstar", box("(A)"), "A", 1.0, "E39 second term: (A) parses to a"),
    ("mmstar", box("A. cat"), "A", 0.0, "E37: 'A. cat' does not parse; string 'A. cat' != 'A'"),
    ("mmstar", box("B"), "A", 0.0, "E39"),
    ("seed", box("The answer is B"), "B", 0.0, "E37: prose in the box does not parse to the letter"),
    ("seed", box("C"), "C", 1.0, "E39"),
    ("mmmu-pro", box("J"), "J", 1.0, "E39 ten-option letters work the same"),
    ("wemath", box("A"), "B", 0.0, "E39"),
    ("visulogic", box("D"), "D", 1.0, "E39"),
    ("mmmu", box("95.5"), "100", 0.0, "E219: no relaxed tolerance outside char/info paths"),
    ("mmmu", box("1"), "100", 0.0, "E219: no x100 try outside char/info paths"),
    ("mmmu", box("Mot"), "Tom", 1.0, "E37-39: math-verify reads words as products of symbols, so anagrams match"),
    ("mmmu", box("0.45"), "45%", 1.0, "E39: 0.45 equals 45/100"),
    ("mmmu", box("45"), ["44", "45"], 0.0, "E28: the math check sees '[44, 45]' as an interval, not alternatives"),
    ("mathverse", box("x > 1"), "(1, \\infty)", 1.0, "E39 verify(pred, gold): relation vs interval allowed"),
    ("mathverse", box("(1, \\infty)"), "x > 1", 0.0, "E39 verify(pred, gold): math-verify compares a set only "
                                                      "when its second argument (here the gold) is the set"),
    ("mathverse", box("5"), "x=5", 1.0, "E39: math-verify reduces the assignment x=5 to 5"),
    ("mathvision", box("\\frac{1}{2}"), "0.5", 1.0, "E39"),
    ("mathvision", box("\\sqrt{2}"), "1.414", 0.0, "E39: math-verify's precision keeps 1.41421 != 1.414"),
    ("mathvision", "garbage", "", 1.0, "E30-31: empty gold counts as correct on every family"),
    ("mmstar", "garbage", " ", 1.0, "E30-31: '$ $' does not parse either"),
    ("mathverse", box("7"), "\\text{}", 1.0, "E30-31: nor does '$\\text{}$'"),
    ("mmstar", "garbage", "[]", 0.0, "E28: '[]' parses (as a string), so no free point"),
    ("mmstar", box("[]"), "[]", 1.0, "E39 string equality of '[]'"),
]


@pytest.mark.parametrize("benchmark, output, gold, expected, why", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_caprl_score(benchmark, output, gold, expected, why):
    assert caprl_score(benchmark, output, gold) == pytest.approx(expected), why


# ---------------------------------------------------------------- the checks on their own

@pytest.mark.parametrize("output, gold, use_anls, expected, why", [
    (box("0"), "0", False, 0.0, "V216-217: a zero prediction is falsy, so V221 compares '0.0' with '0'"),
    (box("0"), "0.0", False, 1.0, "V221: '0.0' == '0.0'"),
    (box("45%"), "45", False, 0.0, "E61 float('45%') fails; V206 reads the prediction as 0.45 vs gold 45"),
    (box("45%"), "45%", False, 1.0, "V206 both sides 0.45"),
    (box("4.5%"), "4.5", False, 0.0, "as above, non-integer"),
    (box("1,234"), "1234", False, 0.0, "V221 string compare without normalisation"),
    (box("a  b"), "abc", True, 0.5, "V242 raw length 4"),
    (box("ßß"), "ss", False, 0.0, "no ANLS without 'info' in the path"),
    (box("ßß"), "ss", True, 0.5, "V242 upper() doubles ß"),
    (box("x"), "", True, 0.0, "V243: gold '' vs 'x': 1 - 1/1"),
    ("nothing", "", False, 1.0, "V221: '' == '' (E57 empty student, empty gold)"),
])
def test_chart_check(output, gold, use_anls, expected, why):
    assert chart_check(output, gold, use_anls) == pytest.approx(expected), why


def test_math_check_catches_no_extraction_but_pays_for_unparseable_gold():
    assert math_check("</think><answer>no box</answer>", "45") == 0.0  # E35: ''
    assert math_check("</think><answer>no box</answer>", "") == 1.0   # E30-31


# ---------------------------------------------------------------- math-verify version dependence

@pytest.mark.parametrize("benchmark, output, gold, expected_08, expected_09, why", [
    ("chartqa", box("45%"), "45", 0.0, 1.0, "0.9.0 added 'integer X% equals X' to verify; chart check is 0 anyway"),
    ("mmmu", box("45"), "45%", 0.0, 1.0, "same rule, gold side"),
    ("chartqa", box("50\\%"), "50", 0.0, 1.0, "same rule with an escaped percent sign"),
    ("mmmu", box("4.5%"), "4.5", 0.0, 0.0, "the 0.9.0 rule covers integers only"),
])
def test_percent_rule_depends_on_math_verify(benchmark, output, gold, expected_08, expected_09, why):
    expected = expected_09 if MV >= (0, 9) else expected_08
    assert caprl_score(benchmark, output, gold) == expected, why


def test_math_verify_caveat_names_the_installed_release():
    note = math_verify_caveat()
    if MV == (0, 8):
        assert note is None
    else:
        assert note is not None and version("math-verify") in note and "0.8.0" in note
        assert ("integer X%" in note) == (MV >= (0, 9))


def test_units_in_the_box_depend_on_math_verify():
    # 0.8.0 strips a unit inside the box ("5 m" -> '5'), so E61 float() works; 0.7.0 keeps '5 m' and reads m.
    expected = 1.0 if MV >= (0, 8) else 0.0
    assert caprl_score("chartqa", box("5 m"), "5") == expected
    assert caprl_score("chartqa", box("3 kg"), "3") == expected


# ---------------------------------------------------------------- gold handling

@pytest.mark.parametrize("text", [
    "['a', 'b']", "[1/2]", "[2016]", " [1]", "\t[1, 2]", "(1, 2)", "{1, 2}", "abc", "45%", "[1, [2]]",
    "[\"it's\"]", "[True, None]", "[1e3]", "[-1]", "[]", "[1, 2][0]", "[[1, 2]][0]", "'[1]'", "[0.1+0.2]",
    "['a'*2]", "[2**10]", "[1//0]", "{'a': 1}", "[x]", "None", "", "[1,", "[1 2]", "['a' 'b']", "[~1]",
])
def test_gold_alternatives_match_python_eval(text):
    """M39 + V258: CapRL eval()s the gold; our evaluator must agree on these literal/arithmetic strings."""
    try:
        value = eval(text)  # noqa: S307 - fixed, harmless test strings
        expected = [str(v) for v in value] if isinstance(value, list) else [text]
    except Exception:  # noqa: BLE001
        expected = [text]
    assert gold_alternatives(text) == expected


def test_gold_alternatives_refuse_code():
    # CapRL's eval() would run these; we never evaluate names or calls, so they stay one literal answer.
    assert gold_alternatives("list('ab')") == ["list('ab')"]
    assert gold_alternatives("[__import__('os').getcwd()]") == ["[__import__('os').getcwd()]"]
    assert gold_alternatives("[9**9**9]") == ["[9**9**9]"]  # refused rather than computed for minutes


@pytest.mark.parametrize("benchmark", ["chartqa", "chartqa-pro", "charxiv", "infovqa"])
def test_empty_list_gold_crashes_caprl_so_it_is_refused(benchmark):
    # V273 np.max of an empty match list raises ValueError at E67, outside the E60-65 try: CapRL's run dies
    for gold in ([], "[]"):
        with pytest.raises(CaprlCompatError, match="empty list"):
            caprl_score(benchmark, box("1"), gold)


@pytest.mark.parametrize("gold", [None, True, {"a": 1}, b"45"])
def test_gold_type_errors(gold):
    with pytest.raises(CaprlCompatError, match="gold must be"):
        caprl_score("mmstar", box("A"), gold)


def test_unknown_benchmark_names_the_known_ids():
    with pytest.raises(ValueError) as info:
        caprl_score("chart-qa", box("1"), "1")
    message = str(info.value)
    assert "'chart-qa'" in message and all(b in message for b in CAPRL_FAMILIES)


def test_output_must_be_text():
    with pytest.raises(CaprlCompatError, match="judge output must be a string"):
        caprl_score("chartqa", None, "1")


# ---------------------------------------------------------------- families and the path rule (E214-219)

def test_families():
    assert {b for b, f in CAPRL_FAMILIES.items() if f == "chart"} == {"chartqa", "chartqa-pro", "charxiv"}
    assert {b for b, f in CAPRL_FAMILIES.items() if f == "info"} == {"infovqa"}
    assert len(CAPRL_FAMILIES) == 12 and caprl_family("seed") == "math"


@pytest.mark.parametrize("path, family", [
    ("/data/CapRL-Evaluation-Files/json_file/lmm_eval_chartqa.json", "chart"),
    ("/data/CapRL-Evaluation-Files/json_file/lmm_eval_infovqa.json", "info"),
    ("/data/CapRL-Evaluation-Files/json_file/lmm_eval_CharXiv.json", "chart"),
    ("/data/CapRL-Evaluation-Files/json_file/lmm_eval_MMStar.json", "math"),
    ("/data/CapRL-Evaluation-Files/json_file/lmm_eval_MathVerse_MINIVInt.json", "math"),
    ("/home/charlotte/lmm_eval_MMStar.json", "chart"),  # E214: the whole path is searched
    ("/mnt/information/lmm_eval_seed2k.json", "info"),
])
def test_family_for_data_path(path, family):
    assert family_for_data_path(path) == family


def test_twelve_file_names_fall_in_our_families():
    from prism_eval.benchmarks.caprl_files import CAPRL_EVAL_FILES

    assert set(CAPRL_EVAL_FILES) == set(CAPRL_FAMILIES)
    for benchmark, name in CAPRL_EVAL_FILES.items():
        assert family_for_data_path(f"/CapRL-Evaluation-Files/json_file/{name}") == CAPRL_FAMILIES[benchmark]


# ---------------------------------------------------------------- use from worker threads, batches

def test_scores_in_a_worker_thread():
    # math-verify's signal-based timeout only works in the main thread; the compat path must still score.
    results: list = []
    thread = threading.Thread(target=lambda: results.append(caprl_score("mathvision", box("\\frac{1}{2}"), "0.5")))
    thread.start()
    thread.join()
    assert results == [1.0]


def test_caprl_scores_mean_and_bon():
    rewards = caprl_scores("chartqa", [box("45"), box("46"), "no answer", box("44.9")], "45")
    assert rewards == [1.0, 1.0, 0.0, 1.0]  # 46: |45-46|/46 = 0.022


def test_metrics_math_equal_caprl_is_caprls_verify_math():
    # One implementation: the metric's caprl variant puts the answer in math-verify's first slot, as CapRL does.
    assert math_equal("(1, \\infty)", "x > 1", compat="caprl") == 0.0 == caprl_score("mathverse", box("(1, \\infty)"),
                                                                                      "x > 1")
    assert math_equal("x > 1", "(1,\\infty)", compat="caprl") == 1.0 == caprl_score("mathverse", box("x > 1"),
                                                                                     "(1,\\infty)")
