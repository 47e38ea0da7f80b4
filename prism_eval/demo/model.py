"""Records and rules shared by every demo scene kind.

A scene is a `layout` (what every caption names anyway: which shapes, which bar
labels, which receipt items) plus `facts` (fact id -> value text). Questions ask
for one fact; a caption "covers" a question when it states one full set of facts
from which the answer follows. The same facts rendered with other values give
the wrong-facts caption, so validity comes from construction, not from a judge.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Collection, Protocol, Sequence

from PIL import Image

Facts = dict[str, str]


@dataclass(frozen=True)
class QuestionSpec:
    """A question about one fact, before its options are drawn.

    `pool` holds candidate option texts of the answer's type (colours, counts,
    prices...). `needs` lists the alternative fact sets that let a reader answer
    (e.g. "the highest bar" follows from the `max` fact or from every value).
    `entity` marks answers that name an object every caption names anyway (a bar
    label, a day), so the wrong caption is expected to contain that word too.
    """

    fact: str
    text: str
    pool: tuple[str, ...]
    needs: tuple[frozenset[str], ...]
    entity: bool = False


def ask(fact: str, text: str, pool: Sequence[str], *alternatives: Collection[str],
        entity: bool = False) -> QuestionSpec:
    """A question answered by `fact` itself or by any of the `alternatives` sets."""
    needs = (frozenset({fact}),) + tuple(frozenset(a) for a in alternatives)
    return QuestionSpec(fact, text, tuple(pool), needs, entity)


@dataclass
class Scene:
    """One generated image with its facts, wrong facts, questions and partial fact set."""

    name: str
    category: str
    kind: "SceneKind"
    layout: dict[str, Any]
    facts: Facts
    wrong: Facts
    questions: list[QuestionSpec]
    partial: frozenset[str] = field(default_factory=frozenset)

    def caption(self, which: str) -> str:
        if which == "reference":
            return self.kind.caption(self.layout, self.facts, set(self.facts))
        if which == "partial":
            return self.kind.caption(self.layout, self.facts, set(self.partial))
        if which == "wrong":
            return self.kind.caption(self.layout, self.wrong, set(self.wrong))
        raise ValueError(f"caption kind {which!r}: expected reference, partial or wrong")


class SceneKind(Protocol):
    """What a category module provides; see shapes.py for a worked example."""

    category: str
    prefix: str

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]: ...

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]: ...

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts: ...

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image: ...

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str: ...


def covered(q: QuestionSpec, stated: Collection[str]) -> bool:
    """True when the stated facts are enough to answer `q`."""
    return any(alt <= set(stated) for alt in q.needs)


def mentions(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as a whole token sequence (case-insensitive).

    "3" does not match "13", "3.50" or "3:00"; "red" does not match "hundred".
    """
    pattern = r"(?<![A-Za-z0-9])" + re.escape(phrase) + r"(?![A-Za-z0-9]|[.,:]\d)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def choose_partial(questions: Sequence[QuestionSpec], facts: Collection[str], target: int,
                   rng: random.Random) -> frozenset[str]:
    """Pick about half of the facts so that exactly `target` questions are covered.

    Questions are visited in a seeded order and their own fact is added while
    the covered count stays within `target`; then further facts are added (up
    to half of all facts) only where they cover no extra question, so what is
    left out cannot be inferred from what is stated.
    """
    def n_covered(s: set[str]) -> int:
        return sum(covered(q, s) for q in questions)

    stated: set[str] = set()
    order = list(questions)
    rng.shuffle(order)
    for q in order:
        if n_covered(stated) >= target:
            break
        if not covered(q, stated) and n_covered(stated | {q.fact}) <= target:
            stated.add(q.fact)
    rest = sorted(set(facts) - stated)
    rng.shuffle(rest)
    for f in rest:
        if len(stated) >= len(facts) / 2:
            break
        if n_covered(stated | {f}) == n_covered(stated):
            stated.add(f)
    return frozenset(stated)


def number_pool(rng: random.Random, lo: int, hi: int, k: int = 8, step: int = 1) -> list[int]:
    """k distinct numbers in [lo, hi] on a grid of `step`: distractors of a numeric answer."""
    return rng.sample(range(lo, hi + 1, step), k)


def a_an(word: str) -> str:
    """'a red door', 'an orange door'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def join_words(parts: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    parts = list(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
