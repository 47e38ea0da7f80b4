"""Scores for open answers: exact match, relaxed accuracy, ANLS, math equivalence, MMMU's open rule.

Every function returns a float in [0, 1]. The default behaviour is the
corrected one; CapRL's published evaluation code has quirks (relative error
divided by the *prediction*, an unparseable gold answer counting as correct,
ANLS lengths taken before normalisation) that are reproduced only when
`compat="caprl"` is passed, so published numbers can be matched while the
difference stays visible in the metric name (`relaxed_accuracy:caprl`).

Metric expressions, as used in benchmark specs and `Question.metric`:
`name` or `name:caprl`, several joined by `+` meaning "the best of them"
(CapRL scores ChartQA as `relaxed_accuracy:caprl+math_equal:caprl`).
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

from prism_eval.core.records import Question
from prism_eval.core.registry import Registry, did_you_mean

COMPAT_MODES = ("caprl",)
RELAXED_TOLERANCE = 0.05
ANLS_THRESHOLD = 0.5
_MAX_MATH_CHARS = 400  # longer strings are compared as text: sympy parsing of prose is slow and meaningless


class MetricError(ValueError):
    """An unknown metric name or compatibility mode; the message names it and the choices."""


def _check_compat(compat: str | None) -> None:
    if compat is not None and compat not in COMPAT_MODES:
        raise MetricError(f"unknown compatibility mode {compat!r}; choose one of {', '.join(COMPAT_MODES)} or none")


# ---------------------------------------------------------------- text normalisation

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Case-folded, NFKC, whitespace collapsed, surrounding quotes and trailing sentence punctuation dropped."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    text = _WS.sub(" ", text).casefold()
    text = text.strip("\"'`")
    while text and text[-1] in ".。!?;,":
        text = text[:-1].rstrip()
    return text


def exact_match(prediction: str, target: str) -> float:
    """1.0 when the two strings agree after normalize_text (case, spaces, trailing period), else 0.0."""
    if prediction is None:
        return 0.0
    return 1.0 if normalize_text(prediction) == normalize_text(target) else 0.0


# ---------------------------------------------------------------- numbers

_CURRENCY = "$€£¥₹₩"
_NUMBER = re.compile(
    r"""^\s*
    (?P<sign>[-+−–]?)\s*
    (?P<cur>[""" + _CURRENCY + r"""]|usd|eur|rs\.?)?\s*
    (?P<num>(?:(?:\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)
    \s*(?P<pct>%|percent|per\s?cent)?
    \s*(?P<unit>[a-zA-Zµ°²³/]+(?:\s+[a-zA-Zµ°²³/]+){0,2})?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_SCALE_WORDS = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9,
                "b": 1e9, "trillion": 1e12, "tn": 1e12}


def parse_number(text: str) -> tuple[float, bool, float] | None:
    """(value, had_percent_sign, scale_word_factor) for strings such as "1,234", "$12.5", "45 %", "3 kg".

    A trailing period, thousands separators, a currency sign and a unit are
    dropped; a scale word ("12 million") is reported separately because chart
    answers are usually given in the chart's own unit. None when it is not a number.
    """
    if text is None:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip().rstrip(".").strip()
    m = _NUMBER.match(s)
    if not m:
        return None
    digits = re.sub(r"[,\u202f\u00a0 ]", "", m.group("num"))
    try:
        value = float(digits)
    except ValueError:
        return None
    if m.group("sign") in ("-", "−", "–"):
        value = -value
    unit = (m.group("unit") or "").strip().lower()
    scale = _SCALE_WORDS.get(unit.split()[0], 1.0) if unit else 1.0
    return value, bool(m.group("pct")), scale


def _number_readings(text: str) -> list[float]:
    """Every plausible value of a number string: as written, and /100 if it carries a percent sign."""
    parsed = parse_number(text)
    if parsed is None:
        return []
    value, pct, scale = parsed
    out = [value]
    if pct:
        out.append(value / 100.0)
    if scale != 1.0:
        out.append(value * scale)
    return out


def _close(pred: float, gold: float, tolerance: float) -> bool:
    if gold == 0:
        return abs(pred) <= 1e-9
    return abs(pred - gold) / abs(gold) <= tolerance


# ---------------------------------------------------------------- relaxed accuracy

def _ref_float(text: str) -> float | None:
    """The reference implementations' float reading: plain float(), or a trailing % divided by 100."""
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def _relaxed_reference(prediction: str, target: str, tolerance: float) -> bool:
    """Pix2Struct / lmms-eval relaxed correctness, unnormalised (the CapRL compat path uses it swapped)."""
    p, t = _ref_float(prediction), _ref_float(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= tolerance
    return prediction.lower() == target.lower()


def relaxed_accuracy(prediction: str, target: str, tolerance: float = RELAXED_TOLERANCE,
                     compat: str | None = None) -> float:
    """ChartQA's relaxed accuracy: numbers within 5% of the gold, other answers by exact match.

    Default: both sides normalised alike (commas, currency, units, percent signs,
    a trailing period); a percent sign is read both as written and /100, so
    "12%" matches "12" and "0.12"; a zero gold needs an exact zero.
    compat="caprl": CapRL's Eval_CapRL.py behaviour, the prediction tried as
    x1, x0.01 and x100, with the relative error divided by the prediction
    (its arguments are passed swapped) and no normalisation.
    """
    _check_compat(compat)
    if prediction is None:
        return 0.0
    prediction, target = str(prediction), str(target)
    if compat == "caprl":
        pred = prediction.strip()
        try:
            value = float(pred)
        except ValueError:
            return 1.0 if _relaxed_reference(target, pred, tolerance) else 0.0
        return 1.0 if any(_relaxed_reference(target, str(scale * value), tolerance)
                          for scale in (1, 0.01, 100)) else 0.0
    golds = _number_readings(target)
    preds = _number_readings(prediction)
    if golds and preds:
        return 1.0 if any(_close(p, g, tolerance) for p in preds for g in golds) else 0.0
    return exact_match(prediction, target)


# ---------------------------------------------------------------- ANLS

def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit costs (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _anls_norm(text: str) -> str:
    return " ".join(str(text).strip().lower().split())


def anls(prediction: str, targets: str | Sequence[str], threshold: float = ANLS_THRESHOLD,
         compat: str | None = None) -> float:
    """Average Normalised Levenshtein Similarity for one question (DocVQA / InfoVQA).

    max over the accepted answers of 1 - lev(norm(pred), norm(gold)) / max(len),
    with norm = lowercase + collapsed whitespace. Default: the ST-VQA definition,
    lengths of the normalised strings and 0 unless the normalised distance is
    below the threshold (a similarity of exactly 0.5 scores 0). compat="caprl"
    (also lmms-eval and VLMEvalKit): lengths of the raw strings, which shrinks the
    distance when the raw text carries extra spaces, and exactly 0.5 is kept.
    """
    _check_compat(compat)
    if prediction is None:
        return 0.0
    if isinstance(targets, str):
        targets = [targets]
    targets = [str(t) for t in targets]
    if not targets:
        raise MetricError("anls needs at least one accepted answer")
    pred_n = _anls_norm(prediction)
    best = 0.0
    for gold in targets:
        gold_n = _anls_norm(gold)
        if compat == "caprl":
            length = max(len(gold.upper()), len(str(prediction).upper()))
        else:
            length = max(len(gold_n), len(pred_n))
        similarity = 1.0 if length == 0 else 1.0 - levenshtein(gold_n, pred_n) / length
        best = max(best, similarity)
    kept = best >= threshold if compat == "caprl" else best > threshold
    return best if kept else 0.0


# ---------------------------------------------------------------- math equivalence

_PLAIN_WORDS = re.compile(r"^[^\W\d_]+(?:[\s'\-][^\W\d_]+)*$")


def _timeout() -> int | None:
    # math-verify's timeout uses signal.alarm, which only works in the main thread.
    return 5 if threading.current_thread() is threading.main_thread() else None


def _mv_parse(text: str, latex_only: bool = False):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    config = [LatexExtractionConfig()] if latex_only else [LatexExtractionConfig(), ExprExtractionConfig()]
    mode = "first_match" if latex_only else "any_match"
    try:
        return parse(text, extraction_config=config, extraction_mode=mode, parsing_timeout=_timeout())
    except Exception:  # noqa: BLE001 - math-verify raises anything sympy raises
        return []


def _mv_verify(gold, pred) -> bool:
    from math_verify import verify

    try:
        return bool(verify(gold, pred, timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001
        return False


def _strip_math_delimiters(text: str) -> str:
    text = str(text).strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            return text[len(left):len(text) - len(right)].strip()
    return text


def caprl_verify_math(answer: str, gold: str) -> float:
    """CapRL's verify_math on an extracted answer: the gold parsed as `$gold$` with the LaTeX extractor (an
    unparseable gold scores 1.0), then max(verify(answer, gold), verify(parse($answer$), gold)) with the
    answer in math-verify's first slot, and any error in either call scoring 0."""
    from math_verify import verify

    gold_parsed = _mv_parse(f"${gold}$", latex_only=True)
    if not gold_parsed:
        return 1.0
    answer_parsed = _mv_parse(f"${answer}$", latex_only=True)
    try:
        return float(max(verify(answer, gold_parsed, timeout_seconds=_timeout()),
                         verify(answer_parsed, gold_parsed, timeout_seconds=_timeout())))
    except Exception:  # noqa: BLE001 - CapRL scores any verify error as 0
        return 0.0


def math_equal(prediction: str, target: str, compat: str | None = None) -> float:
    """Mathematical equivalence through the math-verify package (numbers, fractions, LaTeX, sets).

    Default: normalised string equality counts first; a gold that is plain words
    ("yes", "Tom") is compared as text only, because sympy reads words as
    products of symbols (so "abc" would equal "cab"); a gold that math-verify
    cannot parse falls back to exact match.
    compat="caprl": CapRL's verify_math (caprl_verify_math), quirks included.
    """
    _check_compat(compat)
    if prediction is None:
        return 0.0
    prediction, target = str(prediction), str(target)
    if compat == "caprl":
        return caprl_verify_math(prediction, target)
    if exact_match(prediction, target):
        return 1.0
    pred_s, gold_s = _strip_math_delimiters(prediction), _strip_math_delimiters(target)
    if normalize_text(pred_s) == normalize_text(gold_s):
        return 1.0
    if _PLAIN_WORDS.match(normalize_text(gold_s)) or len(pred_s) > _MAX_MATH_CHARS or len(gold_s) > _MAX_MATH_CHARS:
        return 0.0
    gold = _mv_parse(f"${gold_s}$") or _mv_parse(gold_s)
    if not gold:
        return 0.0
    pred = _mv_parse(f"${pred_s}$") or _mv_parse(pred_s)
    return 1.0 if pred and _mv_verify(gold, pred) else 0.0


# ---------------------------------------------------------------- MMMU's open-question rule

_NUM_IN_TEXT = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b"  # 1,234,567
                          r"|-?\d+(?:\.\d+)?[eE][+-]?\d+"  # 1.5e-3
                          r"|-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")  # 12, 3.5, .5
_KEY_MARKERS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")


def _mmmu_norm(text: str) -> list:
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


def _mmmu_candidates(response: str) -> list:
    """MMMU's reading of a free-form answer: the tail after key phrases, plus every number in it."""
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys: list[str] = []
    for index, part in enumerate(parts):
        markers = list(_KEY_MARKERS) + (["="] if index == len(parts) - 1 else [])
        tails = [part.split(m)[-1].strip() for m in markers if m in part]
        if tails:
            shortest = min(tails, key=len)
            if shortest not in (":", ",", ".", "!", "?", ";", "'"):
                keys.append(shortest)
    keys = keys or [response]
    found = list(keys)
    for key in keys:
        found.extend(_NUM_IN_TEXT.findall(key))
    out: list = []
    for item in found:
        for norm in _mmmu_norm(item):
            if norm not in out:
                out.append(norm)
    return out


def mmmu_open(prediction: str, targets: str | Sequence[str]) -> float:
    """MMMU's official open-question rule: a gold number equals a number read from the answer
    (rounded to 2 decimals), or a gold string occurs inside the answer's key phrase."""
    if prediction is None:
        return 0.0
    if isinstance(targets, str):
        targets = [targets]
    golds: list = []
    for t in targets:
        golds.extend(_mmmu_norm(str(t)))
    for cand in _mmmu_candidates(str(prediction)):
        if isinstance(cand, str):
            if any(isinstance(g, str) and g in cand for g in golds):
                return 1.0
        elif cand in golds:
            return 1.0
    return 0.0


# ---------------------------------------------------------------- the metric registry

MetricFn = Callable[[str, Question, "str | None"], float]


@dataclass(frozen=True)
class Metric:
    """A metric: `fn(prediction, question, compat)` -> [0, 1], and the compatibility modes it knows."""

    fn: MetricFn
    compat_modes: tuple[str, ...] = ()


METRICS: Registry[Metric] = Registry("metric", MetricError)


def register_metric(name: str, fn: MetricFn, compat_modes: tuple[str, ...] = (), *, replace: bool = False) -> None:
    """Make `name` usable in metric expressions (a bridge such as lmms:<task> registers its task's scorer)."""
    if "+" in name:
        raise MetricError(f"metric name {name!r} may not contain '+'")
    METRICS.register(name, Metric(fn, compat_modes), replace=replace)


def _best_over_accepted(fn: Callable[..., float]) -> MetricFn:
    def scored(prediction: str, question: Question, compat: str | None) -> float:
        return max((fn(prediction, t, compat=compat) for t in question.accepted), default=0.0)
    return scored


register_metric("exact_match", lambda p, q, c: max((exact_match(p, t) for t in q.accepted), default=0.0))
register_metric("relaxed_accuracy", _best_over_accepted(relaxed_accuracy), COMPAT_MODES)
register_metric("anls", lambda p, q, c: anls(p, list(q.accepted), compat=c), COMPAT_MODES)
register_metric("math_equal", _best_over_accepted(math_equal), COMPAT_MODES)
register_metric("mmmu_open", lambda p, q, c: mmmu_open(p, list(q.accepted)))


def parse_metric(expression: str) -> list[tuple[str, str | None]]:
    """'relaxed_accuracy:caprl+math_equal' -> [('relaxed_accuracy', 'caprl'), ('math_equal', None)].

    A registered name that itself holds ':' (lmms:<task>) is taken whole.
    """
    if not expression or not isinstance(expression, str):
        raise MetricError(f"metric must be a non-empty string, got {expression!r}")
    if expression in METRICS:
        return [(expression, None)]
    terms: list[tuple[str, str | None]] = []
    for raw in expression.split("+"):
        name, _, compat = raw.strip().partition(":")
        name, compat = name.strip(), (compat.strip() or None)
        if name not in METRICS:
            raise MetricError(f"unknown metric {name!r} in {expression!r}{did_you_mean(name, METRICS)}; "
                              f"choose from {', '.join(METRICS.names())}")
        _check_compat(compat)
        if compat and compat not in METRICS.get(name).compat_modes:
            raise MetricError(f"metric {name!r} has no {compat!r} variant (in {expression!r})")
        terms.append((name, compat))
    return terms


def with_compat(expression: str, compat: str | None) -> str:
    """The same metric expression with every term that has a variant switched to `compat` (or back)."""
    terms = parse_metric(expression)
    if len(terms) == 1 and terms[0][0] == expression:
        return expression
    if compat is not None:
        _check_compat(compat)
    return "+".join(f"{n}:{compat}" if compat and compat in METRICS.get(n).compat_modes else n for n, _ in terms)


def score_open(prediction: str | None, question: Question, metric: str) -> float:
    """Score an extracted open answer against every accepted answer of the question; the best term wins."""
    if prediction is None:
        return 0.0
    if not [a for a in question.accepted if a is not None and str(a) != ""]:
        raise MetricError(f"question {question.id!r} has no accepted answer to score against")
    best = 0.0
    for name, compat in parse_metric(metric):
        value = float(METRICS.get(name).fn(str(prediction), question, compat))
        best = max(best, 0.0 if math.isnan(value) else value)
        if best >= 1.0:
            break
    return min(1.0, max(0.0, best))
