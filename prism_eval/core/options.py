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
