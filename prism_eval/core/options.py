"""Multiple-choice options: parse them, shuffle them reproducibly, relabel them.

CapRL shuffles the options every time a question is asked, to cancel the
judge's position bias; the shuffle here is seeded from the question's identity
so that an evaluation and a training reward asking the same thing see the same
order.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Literal, Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CANNOT_ANSWER = "Can not answer based on the caption"
_CAPRL_OPTION_LINE = re.compile(r"-\s*([A-Z])\)\s*(.+)")
_CAPRL_CANNOT_LINES = (f"\n   - E) {CANNOT_ANSWER}", f"\n   - F) {CANNOT_ANSWER}")


class OptionsError(ValueError):
    """A multiple-choice question whose options or answer do not fit together."""


def letter_index(letter: str, n_options: int) -> int:
    """Index of an answer letter, checked against the number of options."""
    letter = letter.strip().upper()
    if len(letter) != 1 or letter not in LETTERS[:n_options]:
        raise OptionsError(f"answer {letter!r} is not one of the option letters "
                           f"{LETTERS[0]}-{LETTERS[n_options - 1]}")
    return LETTERS.index(letter)


AnswerForm = Literal["letter", "index", "index1", "text"]
ANSWER_FORMS: tuple[str, ...] = ("letter", "index", "index1", "text")
MAX_OPTIONS = len(LETTERS) - 1  # one letter stays free for the appended "cannot answer" option
_LETTER_DECOR = re.compile(r"^[\s(\[*]*([A-Za-z])[\s)\].:*]*$")


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def normalize_mcq(options: Sequence[object], answer: object, answer_as: AnswerForm = "letter"
                  ) -> tuple[tuple[str, ...], str]:
    """The one check of a multiple-choice question: (option texts, answer letter) or OptionsError.

    Every loader (local JSONL, benchmark specs, training data) calls this, so a
    question is accepted or refused the same way wherever it comes from. Options
    must be 2..25 non-empty strings, distinct after case and space folding (a
    twin would split the gold's probability), and none may be the "cannot
    answer" text the protocols append. `answer_as`: "letter" ("B", "b", "(B)",
    "B.", or failing that an option's text), "index" / "index1" (0- or
    1-based), "text" (an option's text). Text matches exactly first, then after
    case and space folding.
    """
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise OptionsError("'options' must be a list of strings")
    if not all(isinstance(o, (str, int, float)) and not isinstance(o, bool) for o in options):
        raise OptionsError("'options' must be a list of strings")
    texts = tuple(str(o) for o in options)
    n = len(texts)
    if n < 2:
        raise OptionsError(f"a multiple-choice question needs at least 2 options, got {n}")
    if n > MAX_OPTIONS:
        raise OptionsError(f"{n} options; at most {MAX_OPTIONS} are supported")
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        folded = _fold(text)
        if not folded:
            raise OptionsError(f"option {LETTERS[i]} is empty")
        if folded == _fold(CANNOT_ANSWER):
            raise OptionsError(f"option {LETTERS[i]} is {CANNOT_ANSWER!r}, which the protocols add themselves")
        if folded in seen:
            raise OptionsError(f"options {LETTERS[seen[folded]]} and {LETTERS[i]} have the same text {text.strip()!r}")
        seen[folded] = i
    return texts, _answer_letter(texts, answer, answer_as)


def _answer_letter(texts: tuple[str, ...], answer: object, answer_as: str) -> str:
    n = len(texts)
    if answer is None or isinstance(answer, bool) or str(answer).strip() == "":
        raise OptionsError("empty answer")
    raw = str(answer).strip()
    span = f"{LETTERS[0]}-{LETTERS[n - 1]}"
    if answer_as in ("index", "index1"):
        try:
            index = int(float(raw)) - (1 if answer_as == "index1" else 0)
        except ValueError:
            raise OptionsError(f"answer {raw!r} is not an option index") from None
        if not 0 <= index < n:
            raise OptionsError(f"answer index {raw!r} is out of range for {n} options")
        return LETTERS[index]
    if answer_as == "letter":
        m = _LETTER_DECOR.match(raw)
        if m and m.group(1).upper() in LETTERS[:n]:
            return m.group(1).upper()
    exact = [i for i, t in enumerate(texts) if t.strip() == raw] or [
        i for i, t in enumerate(texts) if _fold(t) == _fold(raw)]
    if len(exact) == 1:
        return LETTERS[exact[0]]
    if answer_as == "text":
        raise OptionsError(f"answer {raw!r} matches none of the options {list(texts)!r}")
    raise OptionsError(f"answer {raw!r} is not one of the option letters {span} "
                       "or the exact text of one option")


def seeded_rng(*keys: object) -> random.Random:
    """A Random whose state depends only on `keys` (stable across processes and Python runs)."""
    digest = hashlib.sha256("\x1f".join(map(str, keys)).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class ShownOptions:
    """Options in the order the judge sees them.

    `order[i]` is the index in the original options of the option shown at
    position i; `gold` is the letter the correct option carries when shown;
    `labels[i]` is the letter printed before position i (it differs from
    LETTERS[i] only for CapRL's appended "cannot answer" option in quirk mode).
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    order: tuple[int, ...]
    gold: str
    cannot_answer: str | None = None  # the label of the appended "cannot answer" option

    @property
    def original_letters(self) -> str:
        """For each shown position, the letter that option had in the benchmark ("" if added)."""
        return "".join(LETTERS[i] if i >= 0 else "-" for i in self.order)


def show_options(options: tuple[str, ...], answer: str, *, shuffle: bool, rng: random.Random | None,
                 cannot_answer: bool = False, label_quirk: bool = False) -> ShownOptions:
    """Shuffle (optionally) and relabel options; append CapRL's "cannot answer" option.

    With `label_quirk`, the appended option is always labelled "F", as CapRL's
    released reward server does (so four options run A, B, C, D, F); without it
    the appended option takes the next free letter.
    """
    n = len(options)
    if n < 2:
        raise OptionsError(f"a multiple-choice question needs at least 2 options, got {n}")
    if n + int(cannot_answer) > len(LETTERS):
        raise OptionsError(f"too many options ({n}); at most {len(LETTERS) - int(cannot_answer)} fit A-Z")
    gold_index = letter_index(answer, n)
    order = list(range(n))
    if shuffle:
        if rng is None:
            raise ValueError("shuffling needs an rng")
        rng.shuffle(order)
    texts = [options[i] for i in order]
    labels = list(LETTERS[:n])
    cannot_label = None
    if cannot_answer:
        cannot_label = "F" if label_quirk and n <= 5 else LETTERS[n]
        texts.append(CANNOT_ANSWER)
        labels.append(cannot_label)
        order.append(-1)
    gold = labels[order.index(gold_index)]
    return ShownOptions(tuple(texts), tuple(labels), tuple(order), gold, cannot_label)


def format_caprl_question(question: str, shown: ShownOptions) -> str:
    """The question block as CapRL's shuffle_options rebuilt it: "q\\n   - A) ...\\n   - B) ..."."""
    return question + "".join(f"\n   - {label}) {text}" for label, text in zip(shown.labels, shown.texts))


def parse_caprl_question(block: str) -> tuple[str, tuple[str, ...]]:
    """Split a CapRL question block into the question text and its option texts.

    Any "cannot answer" line CapRL appended earlier is removed first, as its
    shuffle function does, so the result can be shuffled again.
    """
    for line in _CAPRL_CANNOT_LINES:
        block = block.replace(line, "")
    lines = block.split("\n")
    options = []
    for line in lines[1:]:
        if not line.strip():
            continue
        match = _CAPRL_OPTION_LINE.search(line)
        if not match:
            raise OptionsError(f"cannot parse option line {line.strip()!r}")
        options.append(match.group(2).strip())
    return lines[0], tuple(options)


_INLINE_OPTION = re.compile(r"(?:^|\s|\n)\(?([A-Z])[.:)]\s+")


def split_inline_options(text: str) -> tuple[str, tuple[str, ...]] | None:
    """Split "question ... Options: A: x, B: y" style text into the question and options.

    Returns None when no consecutive A, B, ... run of labels is found. Used for
    benchmarks such as MMStar that keep the options inside the question text.
    """
    head, sep, tail = text.partition("Options:")
    body = tail if sep else text
    marks = [m for m in _INLINE_OPTION.finditer(body)]
    picked, want = [], 0
    for m in marks:
        if m.group(1) == LETTERS[want]:
            picked.append(m)
            want += 1
    if want < 2:
        return None
    options = []
    for k, m in enumerate(picked):
        end = picked[k + 1].start() if k + 1 < len(picked) else len(body)
        options.append(body[m.end():end].strip().rstrip(",;").strip())
    question = head.strip() if sep else body[:picked[0].start()].strip()
    return question, tuple(options)
