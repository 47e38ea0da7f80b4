r"""CapRL's own Prism scoring (InternLM/CapRL, Prism_Evaluation/Eval_CapRL.py), reproduced case by case.

`caprl_score(benchmark, output, gold)` gives the reward CapRL's released
evaluation code gives one judge output, so `--compat caprl` numbers can be
compared with CapRL's Table 3. It follows that code's behaviour, quirks
included, and nothing here "improves" it:

* Answer extraction is strict. Only text matching
  ``</think>\s*<answer>.*?\\boxed{(.*)}.*?</answer>`` (DOTALL) counts, the last
  match wins, and the capture is *greedy*: ``\boxed{1} or \boxed{2}`` yields
  ``1} or \boxed{2``. Anything else is the empty answer.
* The gold is formatted as ``f"${gold}$"`` (a list becomes its Python repr).
  math-verify parses it with the LaTeX extractor only; a gold it cannot parse
  (including an empty gold) scores 1.0 whatever the judge wrote.
* The math check is ``max(verify(answer_text, gold), verify(parse("$answer$"), gold))``
  with the *prediction in math-verify's gold slot* (math-verify is asymmetric
  for equations, assignments and set/relation comparisons).
* The chart check reads the prediction as math-verify's extracted string of
  ``"$answer$"`` (the last element of the parse result), tries it x1, x0.01
  and x100 when it is a float, and calls relaxed correctness with the
  arguments swapped, so the relative error is divided by the prediction; a
  zero prediction falls back to string equality ("0.0" != "0").
* A gold whose text evaluates to a Python list (``"['a', 'b']"``, or a list in
  the data) is a set of alternatives for the chart and ANLS checks only; the
  math check sees the whole repr (math-verify reads ``['a', 'b']`` as the
  interval [a, b] and ``['2016']`` as 2016).
* InfoVQA adds ANLS (threshold 0.5, lengths of the raw upper-cased strings) to
  the chart check; ChartQA, ChartQA-Pro and CharXiv take max(chart, math);
  every other benchmark, multiple choice included, uses the math check only.
  CapRL chooses this by substrings of the data file's whole path ("char",
  "info"); `family_for_data_path` reproduces that rule.

Pure module: math-verify is imported lazily, nothing else outside the
standard library and prism_eval.core.metrics.
"""
from __future__ import annotations

import ast
import operator
import re
import threading
from typing import Any, Sequence

from prism_eval.core.metrics import anls, caprl_verify_math, relaxed_accuracy

# benchmark id -> scoring family ("chart": max(chart, math); "info": max(chart + ANLS, math); "math")
CAPRL_FAMILIES: dict[str, str] = {
    "chartqa": "chart",
    "chartqa-pro": "chart",
    "charxiv": "chart",
    "infovqa": "info",
    "mmstar": "math",
    "mmmu": "math",
    "mmmu-pro": "math",
    "seed": "math",
    "mathverse": "math",
    "mathvision": "math",
    "wemath": "math",
    "visulogic": "math",
}

# CapRL's released results are dated 2025-09-28 and its repo pins no math-verify; 0.9.0 appeared on
# 2026-01-10, so CapRL ran 0.8.0 (2025-07-02) or older. Scores here follow the installed release.
CAPRL_MATH_VERIFY = "0.8.0"

ANSWER_PATTERN = re.compile(r"</think>\s*<answer>.*?\\boxed{(.*)}.*?</answer>", re.DOTALL)
ANLS_THRESHOLD = 0.5
_SCALES = (1, 0.01, 100)
_PARSE_TIMEOUT = 5  # math-verify's defaults, which CapRL's calls keep


# Stage 1 (Eval_CapRL.py): the raw caption prompt, no system turn, the instruction without a final period.
CAPRL_CAPTION_INSTRUCTION = "Please describe this image in detail"
VISION_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"
# Stage 2: what Eval_CapRL.py replaces in each sample's own prompt, and with what.
VISION_PLACEHOLDER = "<|im_start|>user\n" + VISION_SLOT
CAPTION_PREFIX = "<|im_start|>user\nHere is a detailed caption of an image: "
CAPTION_SUFFIX = ". Please answer the question based on the caption."


class CaprlCompatError(ValueError):
    """A benchmark id, output or gold that CapRL's scoring cannot take; the message says which and why."""


# ---------------------------------------------------------------- small pieces, each one step of CapRL's code

def math_verify_caveat() -> str | None:
    """None when the installed math-verify is the release CapRL most likely ran, else a one-line note to report."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("math-verify")
    except PackageNotFoundError:
        return "math-verify is not installed; CapRL's scoring needs it"
    if installed.split(".")[:2] == CAPRL_MATH_VERIFY.split(".")[:2]:
        return None
    changes = {True: "0.9 scores an integer X% equal to X, which 0.8 did not",
               False: "before 0.8 a unit inside the box ('5 m') was not stripped"}
    newer = tuple(int(p) for p in installed.split(".")[:2] if p.isdigit()) >= (0, 9)
    return (f"math-verify {installed} is installed; CapRL most likely ran {CAPRL_MATH_VERIFY} "
            f"({changes[newer]}), so a few answers can score differently")


def caprl_caption_prompt(instruction: str = CAPRL_CAPTION_INSTRUCTION, n_images: int = 1) -> str:
    """The raw ChatML caption prompt Eval_CapRL.py sends a Qwen2.5-VL captioner (no system turn)."""
    return f"<|im_start|>user\n{VISION_SLOT * n_images}{instruction}<|im_end|>\n<|im_start|>assistant\n"


def build_judge_prompt(prompt: str, caption: str, strict: bool = True) -> str:
    """The stage-2 prompt Eval_CapRL.py sends CapRL-Eval-3B: every occurrence of the image placeholder
    replaced by the caption sentence (`{caption}. Please answer ...`, so a caption ending in '.' gets '..').

    A prompt without the placeholder would reach the judge with no caption at
    all; CapRL does that silently (strict=False reproduces it), strict raises.
    """
    if not isinstance(prompt, str) or not isinstance(caption, str):
        raise TypeError(f"prompt and caption must be strings, got {type(prompt).__name__} and "
                        f"{type(caption).__name__}")
    if strict and VISION_PLACEHOLDER not in prompt:
        raise ValueError(f"prompt has no image placeholder {VISION_PLACEHOLDER!r} to put the caption in")
    return prompt.replace(VISION_PLACEHOLDER, CAPTION_PREFIX + caption + CAPTION_SUFFIX)


def caprl_family(benchmark: str) -> str:
    """The scoring family of one of our benchmark ids; unknown ids raise, naming the known ones."""
    try:
        return CAPRL_FAMILIES[benchmark]
    except (KeyError, TypeError):
        raise CaprlCompatError(f"unknown CapRL benchmark {benchmark!r}; "
                               f"known: {', '.join(CAPRL_FAMILIES)}") from None


def family_for_data_path(path: str) -> str:
    """CapRL's own dispatch: 'char' or 'info' anywhere in the lower-cased data path (folders included)
    selects the chart check, and 'info' adds ANLS. A folder named e.g. 'charlie' flips every benchmark."""
    lowered = str(path).lower()
    if "char" in lowered or "info" in lowered:
        return "info" if "info" in lowered else "chart"
    return "math"


def extract_answer(output: str) -> str:
    r"""The boxed answer CapRL reads: the last greedy capture of ANSWER_PATTERN, or '' when none."""
    matches = ANSWER_PATTERN.findall(output)
    return matches[-1] if matches else ""


def gold_text(gold: Any) -> str:
    """The gold as CapRL's f-string writes it between the dollars: str() of the stored value."""
    if gold is None or isinstance(gold, (bool, dict)) or not isinstance(gold, (str, int, float, list)):
        raise CaprlCompatError(f"gold must be a string, a number or a list of alternatives, got "
                               f"{type(gold).__name__}: {gold!r}")
    return str(gold)


class _NotLiteral(Exception):
    pass


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert}


def _evaluate(node: ast.AST) -> Any:
    """Python's value of a literal-and-arithmetic expression; anything needing names or calls is refused."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_evaluate(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_evaluate(e) for e in node.elts}
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 1000:
            raise _NotLiteral  # keeps a hostile "[9**9**9]" from hanging; eval would grind on it
        if isinstance(node.op, ast.Mult) and any(isinstance(v, (str, list, tuple)) for v in (left, right)) \
                and any(isinstance(v, int) and v > 10_000 for v in (left, right)):
            raise _NotLiteral
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Subscript):
        return _evaluate(node.value)[_evaluate(node.slice)]
    if isinstance(node, ast.Slice):
        return slice(*(None if p is None else _evaluate(p) for p in (node.lower, node.upper, node.step)))
    raise _NotLiteral


def gold_alternatives(text: str) -> list[str]:
    """The answers CapRL's vqa_eval.process_line compares against.

    CapRL calls Python's eval() on the gold text and, when that yields a list,
    uses str() of each element as an alternative; otherwise the whole text is
    the one answer. Here the text is evaluated without eval(): literals and
    arithmetic only (what gold strings hold). A gold that would need names or
    calls (e.g. "list('ab')") stays a single answer, where CapRL's eval would
    have run it.
    """
    try:
        tree = ast.parse(text.lstrip(" \t"), mode="eval")
        value = _evaluate(tree.body)
    except (_NotLiteral, SyntaxError, ValueError, TypeError, ArithmeticError, IndexError, KeyError,
            RecursionError, MemoryError):
        return [text]
    return [str(v) for v in value] if isinstance(value, list) else [text]


def _timeout() -> int | None:
    # math-verify times out with signal.alarm, which works only in the main thread; CapRL ran there.
    return _PARSE_TIMEOUT if threading.current_thread() is threading.main_thread() else None


def latex_parse(text: str) -> list:
    """CapRL's math_parse: math-verify's LaTeX extractor, first match, with the string fallback."""
    from math_verify import LatexExtractionConfig, parse

    return parse(text, extraction_mode="first_match", extraction_config=[LatexExtractionConfig()],
                 parsing_timeout=_timeout())


def student_answer(answer: str) -> str:
    """What CapRL's chart check compares: the last element (the extracted string) of parse('$answer$'),
    '' when math-verify finds nothing."""
    try:
        parsed = latex_parse(f"${answer}$")
        value = parsed[-1]
    except Exception:  # noqa: BLE001 - CapRL uses a bare except here
        return ""
    return value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------- the two checks

def math_check(output: str, gold: Any) -> float:
    """CapRL's verify_math on the judge's whole output (its strict extraction first)."""
    return caprl_verify_math(extract_answer(output), gold_text(gold))


def chart_check(output: str, gold: Any, use_anls: bool = False) -> float:
    """CapRL's verify_chart: relaxed correctness (x1, x0.01, x100 tries), plus ANLS when use_anls."""
    alternatives = gold_alternatives(gold_text(gold))
    if not alternatives:
        raise CaprlCompatError(f"gold {gold!r} is an empty list of alternatives; CapRL's Eval_CapRL.py "
                               f"crashes on it (numpy max of an empty match list)")
    student = student_answer(extract_answer(output))
    # relaxed_accuracy(compat="caprl") is CapRL's per-answer rule: float(pred) tried at x1, x0.01, x100,
    # relaxed_correctness with the arguments swapped, else a lower-cased string compare.
    reward = max(relaxed_accuracy(student, alt, compat="caprl") for alt in alternatives)
    if use_anls:
        reward = max(reward, anls(student, alternatives, threshold=ANLS_THRESHOLD, compat="caprl"))
    return float(reward)


# ---------------------------------------------------------------- entry point

def caprl_score(benchmark: str, output: str, gold: Any) -> float:
    """The reward CapRL's Eval_CapRL.py gives one judge output for one question of `benchmark`.

    `output` is the judge's whole raw text; `gold` the stored answer (a string,
    a number, or a list of alternatives, as CapRL's JSON holds it).
    """
    return score_by_family(caprl_family(benchmark), output, gold)


def score_by_family(family: str, output: str, gold: Any) -> float:
    """CapRL's score in one scoring family: "math", "chart" (max of chart and math) or "info" (chart with ANLS)."""
    if family not in ("math", "chart", "info"):
        raise CaprlCompatError(f"unknown CapRL scoring family {family!r}; use math, chart or info")
    if not isinstance(output, str):
        raise CaprlCompatError(f"judge output must be a string, got {type(output).__name__}")
    if family == "math":
        return math_check(output, gold)
    return max(chart_check(output, gold, use_anls=(family == "info")), math_check(output, gold))


def caprl_scores(benchmark: str, outputs: Sequence[str], gold: Any) -> list[float]:
    """One reward per judge output (CapRL asks once per caption); mean and max of these are its Mean and BoN."""
    return [caprl_score(benchmark, output, gold) for output in outputs]
