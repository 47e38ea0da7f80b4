r"""Read the judge's answer out of its text.

The letter cascade follows what lmms-eval, VLMEvalKit and CaptionQA learned
(explicit "answer is X" first, then a lone letter, then a unique option text)
but never guesses: text that names no option, or several, is *unanswered*,
which the scorer counts as not correct and reports separately.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_REFUSAL = re.compile(r"\b(cannot|can ?not|can't|unable to|not possible to|impossible to)\b"
                      r"|\bno(t)? (enough )?information\b|\bnone of the (options|above)\b", re.I)


@dataclass(frozen=True)
class Extraction:
    value: str | None  # the letter / answer text, None when unanswered
    method: str  # which rule matched, or why nothing did


def strip_reasoning(text: str) -> str:
    """Drop <think>...</think> blocks (and anything before a dangling </think>)."""
    text = _THINK.sub(" ", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text


def extract_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (balanced braces), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth, out = 1, []
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return "".join(out).strip()
        out.append(ch)
        i += 1
    return None


def _final_part(text: str) -> tuple[str, str | None]:
    """The part of a judge's text that holds its answer (after reasoning, inside <answer>), and any \\boxed{}."""
    body = strip_reasoning(text)
    tagged = _ANSWER_TAG.search(body)
    if tagged:
        body = tagged.group(1)
    boxed = extract_boxed(body)
    if boxed is not None:
        boxed = re.sub(r"\\text\{([^}]*)\}", r"\1", boxed).strip()
    return body, boxed


def _letters_pattern(valid: str) -> str:
    return f"[{valid}]"


def extract_letter(text: str, labels: str, option_texts: tuple[str, ...] = ()) -> Extraction:
    """The option letter a judge chose, from its free text.

    `labels` lists the valid letters as shown (e.g. "ABCDE", or "ABCDF" in
    CapRL's quirk mode); `option_texts` are the shown options in label order.
    """
    body, boxed = _final_part(text)
    if boxed is not None:
        inner = boxed.strip("().*$ ")
        if len(inner) == 1 and inner.upper() in labels:
            return Extraction(inner.upper(), "boxed")
        body = boxed
    L = _letters_pattern(labels)
    stripped = body.strip()
    # 1. the whole answer is a letter, maybe decorated: "C", "(C)", "C.", "**C**", "C) red", "C. red", "C: red"
    m = re.match(rf"^[\s*_`'\"]*\(?({L})\)?(?:[.):\]]|\*\*|$|\s*$)", stripped)
    if m and not re.match(rf"^({L})\s+[a-z]", stripped):
        return Extraction(m.group(1), "leading-letter")
    # 2. an explicit answer phrase; the last one wins (models restate after reasoning)
    phrase = re.compile(rf"(?:answer|option|choice)\s*(?:is|:|would be|should be)?\s*[:\-]?\s*"
                        rf"[*_`'\"]*\(?({L})\)?(?![A-Za-z])", re.I)
    hits = [h.group(1).upper() for h in phrase.finditer(body) if h.group(1).isupper()]
    if hits:
        return Extraction(hits[-1], "answer-phrase")
    # 3. a bold letter
    bold = re.findall(rf"\*\*\(?({L})\)?\*\*", body)
    if len(set(bold)) == 1:
        return Extraction(bold[0], "bold-letter")
    # 4. exactly one distinct valid letter standing alone as a word
    words = re.sub(r"[.,;:!?()\[\]{}*#\"'`]", " ", body).split()
    singles = {w for w in words if len(w) == 1 and w in labels}
    # "A" and "I" double as words; only trust them when nothing else competes and the text is short
    if len(singles) == 1:
        letter = next(iter(singles))
        if letter not in "AI" or len(words) <= 3:
            return Extraction(letter, "lone-letter")
    if len(singles) > 1:
        return Extraction(None, "several-letters")
    # 5. exactly one option's text appears in the answer
    low = body.lower()
    found = [labels[i] for i, t in enumerate(option_texts) if t and t.lower() in low]
    if len(found) == 1:
        return Extraction(found[0], "option-text")
    if _REFUSAL.search(body):
        return Extraction(None, "refusal")
    return Extraction(None, "no-letter" if not found else "several-option-texts")


def extract_letter_first(text: str) -> Extraction:
    """CapRL's parse_easy: the first capital A-I anywhere in the text.

    Kept for reproducing published rewards; note that "Can not answer" reads as C.
    """
    m = re.search(r"[A-I]", text)
    return Extraction(m.group(0) if m else None, "first-letter" if m else "no-letter")


def extract_short_answer(text: str) -> Extraction:
    r"""The answer to an open question: \boxed{} if present, else the text after "answer is"."""
    body, boxed = _final_part(text)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    m = re.search(r"answer\s*(?:is|:)\s*(.+)", body, re.I | re.S)
    value = (m.group(1) if m else body).strip().split("\n")[0].strip()
    value = value.strip("*_` ").rstrip(".").strip()
    if not value:
        return Extraction(None, "empty")
    return Extraction(value, "answer-phrase" if m else "whole-text")
