"""prism-eval's metrics against lmms-eval 0.7.3's own scoring functions, on hard cases.

lmms-eval lives in its own venv (.venv-lmms, `make setup-lmms`): a helper
script runs there (tests/lmms_reference_scores.py) and prints lmms-eval's
scores as JSON. Every case either must agree, or carries the reason prism-eval
differs on purpose; for those the test checks that they really differ, so the
list of intended differences stays true.

Compared: ChartQA `relaxed_correctness`, InfoVQA/DocVQA `anls`, MMStar
`exact_match` (lmms-eval's extract_mcq_answer + compare) against
`extract_letter` + `exact_match`, MMMU multiple-choice
(`parse_multi_choice_response` + `eval_multi_choice`) and MMMU open
(`parse_open_response` + `eval_open`) against `mmmu_open`.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from prism_eval.core.answers import extract_letter
from prism_eval.core.metrics import anls, exact_match, mmmu_open, relaxed_accuracy

pytestmark = pytest.mark.needs_lmms

ROOT = Path(__file__).resolve().parents[2]
LMMS_PY = ROOT / ".venv-lmms" / "bin" / "python"

# reasons, named once
NORM_NUM = "prism normalises numbers (thousands separators, currency, units, scale words); lmms-eval calls float() only"
PCT = "prism reads '12%' as 12 or 0.12; lmms-eval only as 0.12, so '12%' vs '12' is a spurious miss there"
TEXT_NORM = "prism strips whitespace and a trailing period from text answers; lmms-eval compares raw lower-cased text"
ZERO = "a zero gold: prism compares numerically ('0.0' == '0'); lmms-eval falls back to string equality"
ANLS_EDGE = "ANLS at exactly 0.5: prism follows ST-VQA (0 unless the distance is below 0.5); lmms-eval keeps 0.5"
ANLS_LEN = "ANLS: prism divides by the normalised lengths; lmms-eval by the raw lengths (extra spaces shrink the distance)"
ANY_CAP = "lmms-eval's last-resort rule takes any capital choice letter anywhere (the article 'A', 'I'); prism counts it unanswered"
WORD_A = "a leading article 'A' is read as option A by lmms-eval; prism does not read 'A cat' as a letter"
SEVERAL = "several letters named: lmms-eval ranks formats and takes one; prism refuses to guess (unanswered)"
OPTION_TEXT = "prism also accepts a unique option text ('The answer is red'); lmms-eval's MMStar rule reads letters only"
MMMU_SPACE = "several letters: MMMU takes the one written last ('B or C' -> C); prism sees two letters and refuses"
MMMU_RANDOM = "MMMU's parser does not know 'D)' and guesses a letter at random; prism reads D"
NAN = "'nan': lmms-eval parses it as a float and NaN never compares equal; prism compares it as text"

CASES: list[tuple[str, str, object, str | None]] = []


def relaxed(pred, target, reason=None):
    CASES.append(("relaxed", pred, target, reason))


# ---------------------------------------------------------------- ChartQA relaxed accuracy
for t in ["12", "0.5", "1000", "3.14", "-7", "2019", "150", "0.03", "99.9", "45", "7.5", "250000", "1.2e3"]:
    v = float(t)
    relaxed(t, t)
    relaxed(repr(v * 1.04), t)
    relaxed(repr(v * 0.96), t)
    relaxed(repr(v * 1.06), t)
    relaxed(repr(v * 0.94), t)
    relaxed(f"{v:.1f}", t)
for pred, target in [("1,234", "1234"), ("12,500", "12500"), ("1,000,000", "1000000"), ("$5", "5"), ("€20.5", "20.5"),
                     ("12 kg", "12"), ("5 million", "5"), ("3.5 billion", "3.5"), ("45 percent", "45"),
                     ("2,019", "2019"), ("1 234", "1234"), ("−3", "-3")]:
    relaxed(pred, target, NORM_NUM)
for pred, target in [("1,234", "2000"), ("$5", "9"), ("12 kg", "20")]:
    relaxed(pred, target)  # normalised or not, these are wrong
for pred, target, reason in [("12%", "12", PCT), ("12", "12%", PCT), ("45.5%", "45.5", PCT), ("12%", "0.12", None),
                             ("0.12", "12%", None), ("50%", "50%", None), ("7%", "0.2", None), ("7%", "7.2%", None)]:
    relaxed(pred, target, reason)
for pred, target, reason in [("12.", "12", None), ("Yes.", "Yes", TEXT_NORM), ("blue.", "Blue", TEXT_NORM),
                             ("YES", "yes", None), ("Blue", "blue", None), (" 12", "12", None), ("12 ", "12", None),
                             ("yes ", "yes", TEXT_NORM), (" No", "no", TEXT_NORM), ("colour", "color", None),
                             ("United States", "united states", None), ("United  States", "United States", TEXT_NORM),
                             ("2018", "2019", None), ("Asia", "Europe", None), ("a", "A", None), ("", "0", None),
                             ("N/A", "n/a", None), ("3/4", "0.75", None), ("0.75", "3/4", None),
                             ("Linux", "Linux.", TEXT_NORM), ("0", "0", None), ("0.0", "0", ZERO), ("0.01", "0", None),
                             ("-0", "0", ZERO), ("1", "0", None), ("inf", "12", None), ("nan", "nan", NAN),
                             ("12.0.", "12", TEXT_NORM), ("twelve", "12", None), ("-12", "12", None)]:
    relaxed(pred, target, reason)

# ---------------------------------------------------------------- InfoVQA / DocVQA ANLS
for pred, targets, reason in [
    ("global warming", ["global warming"], None), ("Global Warming", ["global warming"], None),
    ("global warmin", ["global warming"], None), ("global", ["global warming"], None),
    ("glbal wrming", ["global warming"], None), ("warming global", ["global warming"], None),
    ("  global  warmin ", ["global warming"], ANLS_LEN), ("global  warming", ["global warming"], None),
    ("12", ["12", "twelve"], None), ("twelve", ["12", "twelve"], None), ("twelv", ["12", "twelve"], None),
    ("1,200", ["1200"], None), ("1200", ["1,200"], None), ("", ["abc"], None), ("abc", ["abc", ""], None),
    ("new york city", ["New York", "NYC"], None), ("nyc", ["New York", "NYC"], None), ("NY", ["New York", "NYC"], None),
    ("4.5%", ["4.5%"], None), ("4.5", ["4.5%"], None), ("45%", ["4.5%"], None), ("yes", ["no"], None),
    ("2019-2020", ["2019 - 2020"], None), ("facebook", ["Facebook", "fb"], None), ("face book", ["facebook"], None),
    ("the united kingdom", ["united kingdom"], None), ("uk", ["united kingdom", "UK"], None),
    ("african", ["africa"], None), ("a", ["b"], None), ("ab", ["abc"], None), ("abcd", ["abcdefgh"], ANLS_EDGE),
    ("abcdx", ["abcdefgh"], ANLS_EDGE), ("abcdefg", ["abcdefgh"], None), ("  ", ["x"], ANLS_LEN),
    ("million dollars", ["$1 million"], None), ("Ten ", ["ten"], None), ("ten\n", ["ten"], None),
    ("chlorofluorocarbons", ["chlorofluorocarbon"], None), ("co2", ["CO2", "carbon dioxide"], None),
    ("carbon-dioxide", ["carbon dioxide"], None), ("50,000", ["50000", "50k"], None),
    ("3 out of 10", ["3/10", "30%"], None), ("first", ["1st"], None), ("Tuesday", ["tuesday"], None),
    ("tues", ["tuesday"], None), ("tue", ["tuesday"], None),
]:
    CASES.append(("anls", pred, targets, reason))

# ---------------------------------------------------------------- MMStar answer matching
MM_OPTS = ["red", "blue", "green", "yellow"]
for pred, gold, reason in [
    ("A", "A", None), ("B", "A", None), ("(C)", "C", None), ("C.", "C", None), ("D)", "D", None),
    ("The answer is B.", "B", None), ("The answer is (D)", "D", None), ("Answer: C", "C", None),
    ("answer: c", "C", None), ("B. blue", "B", None), ("C: green", "C", None), ("**B**", "B", None),
    ("The correct option is D.", "D", None), ("I choose C", "C", None), ("Option B", "B", None),
    ("B is correct", "B", None), ("It is (A) red.", "A", None), ("A. red", "A", None),
    ("The answer is red", "A", OPTION_TEXT), ("yellow", "D", OPTION_TEXT), ("A cat sits on a mat.", "A", WORD_A),
    ("I cannot tell from the caption.", "C", None), ("Cannot determine.", "C", ANY_CAP), ("Based on the caption, I think it is B.", "B", None),
    ("Between A and B, the answer is B.", "B", None), ("B or C", "B", SEVERAL), ("None of these", "D", None), ("Definitely not sure", "D", ANY_CAP),
    ("", "A", None), ("The image shows a dog", "A", None), ("\\boxed{C}", "C", None),
    ("<answer>\\boxed{D}</answer>", "D", None), ("Answer: (A) red", "A", None), ("C) green", "C", None),
    ("Final answer: B", "B", None), ("d", "D", None), ("The best answer is A.", "A", None),
]:
    CASES.append(("mmstar", pred, {"target": gold, "options": MM_OPTS}, reason))

# ---------------------------------------------------------------- MMMU multiple choice
MMMU_OPTS = ["Baroque", "Rococo", "Gothic", "Romanesque"]
for pred, gold, reason in [
    ("A", "A", None), ("(B)", "B", None), ("B", "A", None), ("The answer is (C).", "C", None),
    ("The answer is C", "C", None), ("C.", "C", None), ("D) Romanesque", "D", MMMU_RANDOM), ("(A) Baroque", "A", None),
    ("The correct style is Gothic, so the answer is C.", "C", None),
    ("The style shown is clearly Rococo because of the ornament.", "B", None),
    ("B or C", "B", None), ("B or C", "C", MMMU_SPACE), ("(A) or (B)", "B", SEVERAL), ("d", "D", None), ("Answer: B", "B", None),
]:
    CASES.append(("mmmu_mc", pred, {"target": gold, "options": MMMU_OPTS}, reason))

# ---------------------------------------------------------------- MMMU open questions
for pred, targets in [
    ("3.5", ["3.5"]), ("The answer is 3.5", ["3.5"]), ("3.50", ["3.5"]), ("3.499", ["3.5"]), ("3.504", ["3.5"]),
    ("x = 7/2 so 3.5", ["3.5"]), ("The result is 3,500", ["3500"]), ("3500", ["3,500"]), ("-2", ["-2"]),
    ("2", ["-2"]), ("Paris", ["paris"]), ("The capital is Paris.", ["Paris"]), ("paris, france", ["Paris"]),
    ("London", ["Paris"]), ("1.2e3", ["1200"]), ("about 12 m", ["12"]), ("12%", ["12"]), ("0.12", ["12%"]),
    ("a", ["A"]), ("Thus the answer is b", ["b"]), ("the value is 24/7", ["24/7"]), ("3.429", ["24/7", "3.429"]),
    ("so it equals 10\n", ["10"]), ("Therefore 5 and 6", ["6"]), ("mitosis", ["Mitosis"]),
    ("It is meiosis.", ["mitosis"]), ("result 0", ["0"]), ("0.001", ["0"]), ("100", ["100.0"]), ("", ["1"]),
]:
    CASES.append(("mmmu_open", pred, {"targets": targets}, None))


def ours(kind: str, pred: str, arg) -> float:
    if kind == "relaxed":
        return relaxed_accuracy(pred, arg)
    if kind == "anls":
        return anls(pred, arg)
    if kind in ("mmstar", "mmmu_mc"):
        found = extract_letter(pred, "ABCD", tuple(arg["options"])).value
        return exact_match(found, arg["target"]) if found else 0.0
    return mmmu_open(pred, arg["targets"])


def as_probe_case(kind: str, pred: str, arg) -> dict:
    if kind == "relaxed":
        return {"kind": kind, "pred": pred, "target": arg}
    if kind == "anls":
        return {"kind": kind, "pred": pred, "targets": arg}
    return {"kind": kind, "pred": pred, **arg}


@pytest.fixture(scope="module")
def lmms_scores() -> list[float | None]:
    if not LMMS_PY.exists():
        pytest.fail(f"{LMMS_PY} is missing: run `make setup-lmms` (make test builds it)")
    payload = json.dumps([as_probe_case(k, p, a) for k, p, a, _ in CASES])
    proc = subprocess.run([str(LMMS_PY), str(ROOT / "tests" / "integrations" / "lmms_reference_scores.py")], input=payload,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_enough_hard_cases():
    assert len(CASES) >= 200
    kinds = {k for k, *_ in CASES}
    assert kinds == {"relaxed", "anls", "mmstar", "mmmu_mc", "mmmu_open"}


def test_metrics_agree_with_lmms_eval(lmms_scores):
    assert len(lmms_scores) == len(CASES)
    agree, intended, random_theirs, wrong = 0, 0, 0, []
    for (kind, pred, arg, reason), theirs in zip(CASES, lmms_scores):
        mine = ours(kind, pred, arg)
        if theirs is None:  # MMMU guessed at random; prism never guesses
            random_theirs += 1
            if mine != 0.0 and reason is None:
                wrong.append(f"{kind} {pred!r}: lmms-eval guessed at random, prism scored {mine}")
            continue
        same = abs(mine - theirs) < 1e-9
        if reason is None and not same:
            wrong.append(f"{kind} {pred!r} vs {arg!r}: prism {mine} lmms-eval {theirs}")
        elif reason is not None and same:
            wrong.append(f"{kind} {pred!r} vs {arg!r}: listed as an intended difference ({reason}) but both give {mine}")
        agree += same
        intended += (reason is not None)
    print(f"\n{len(CASES)} cases: {agree} agree, {intended} differ on purpose, {random_theirs} random in lmms-eval")
    assert not wrong, "\n".join(wrong)
