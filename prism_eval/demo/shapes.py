"""Shapes scenes: three groups of coloured shapes, one group per corner.

Facts per group: colour, count and corner; plus which shapes are the most
numerous (also answerable from all the counts).
"""
from __future__ import annotations

import random
from typing import Any

from PIL import Image

from prism_eval.demo import draw
from prism_eval.demo.model import Facts, QuestionSpec, ask, join_words

KINDS = ("circles", "squares", "triangles", "stars", "diamonds")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
COUNTS = (2, 3, 4, 5)
SIZE = 384


def _most(counts: dict[str, int]) -> str | None:
    best = max(counts.values())
    winners = [k for k, n in counts.items() if n == best]
    return winners[0] if len(winners) == 1 else None


class ShapesKind:
    category = "shapes"
    prefix = "shapes"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        kinds = rng.sample(KINDS, 3)
        absent = rng.choice([k for k in KINDS if k not in kinds])
        colours = rng.sample(draw.COLOUR_NAMES, 3)
        corners = rng.sample(CORNERS, 3)
        while True:
            counts = {k: rng.choice(COUNTS) for k in kinds}
            if _most(counts):
                break
        facts: Facts = {}
        for k, c, p in zip(kinds, colours, corners):
            facts[f"{k}.colour"] = c
            facts[f"{k}.count"] = str(counts[k])
            facts[f"{k}.corner"] = p
        facts["most"] = _most(counts) or ""
        layout = {"kinds": kinds, "absent": absent, "draw_seed": rng.randrange(2**31)}
        return layout, facts

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        kinds = layout["kinds"]
        a, b = rng.sample(kinds, 2)
        counted, placed = rng.choice(kinds), rng.choice(kinds)
        all_counts = [f"{k}.count" for k in kinds]
        count_pool = [str(n) for n in range(1, 8)]
        return [
            ask(f"{a}.colour", f"What colour are the {a}?", draw.COLOUR_NAMES),
            ask(f"{b}.colour", f"What colour are the {b}?", draw.COLOUR_NAMES),
            ask(f"{counted}.count", f"How many {counted} are there?", count_pool),
            ask(f"{placed}.corner", f"In which corner are the {placed}?", CORNERS),
            ask("most", "Which shapes are the most numerous?", [*kinds, layout["absent"]],
                all_counts, entity=True),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        kinds = layout["kinds"]
        used = {facts[f"{k}.colour"] for k in kinds}
        colours = rng.sample([c for c in draw.COLOUR_NAMES if c not in used], 3)
        corners = rng.sample(CORNERS, 3)
        counts = {k: rng.choice([n for n in range(1, 8) if str(n) != facts[f"{k}.count"]])
                  for k in kinds}
        wrong: Facts = {}
        for k, c, p in zip(kinds, colours, corners):
            wrong[f"{k}.colour"] = c
            wrong[f"{k}.count"] = str(counts[k])
            wrong[f"{k}.corner"] = p
        wrong["most"] = _most(counts) or ""
        return wrong

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        rng = random.Random(layout["draw_seed"])
        img, d = draw.canvas(SIZE, SIZE)
        half = SIZE // 2
        # Faint lines split the canvas into the four corners the captions talk about.
        d.line((half, 0, half, SIZE), fill=(215, 215, 215), width=2)
        d.line((0, half, SIZE, half), fill=(215, 215, 215), width=2)
        for k in layout["kinds"]:
            corner = facts[f"{k}.corner"]
            x0 = half if "right" in corner else 0
            y0 = half if "bottom" in corner else 0
            cells = rng.sample([(i, j) for i in range(3) for j in range(2)], int(facts[f"{k}.count"]))
            for i, j in sorted(cells):
                cx = x0 + 40 + i * 56 + rng.randint(-3, 3)
                cy = y0 + 52 + j * 88 + rng.randint(-6, 6)
                draw.shape(d, k[:-1], cx, cy, 22, draw.COLOURS[facts[f"{k}.colour"]])
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        kinds = layout["kinds"]
        out = [f"A drawing on a white background shows three groups of shapes: {join_words(kinds)}."]
        for k in kinds:
            if f"{k}.colour" in stated:
                out.append(f"The {k} are {facts[f'{k}.colour']}.")
            if f"{k}.count" in stated:
                out.append(f"There are {facts[f'{k}.count']} {k}.")
            if f"{k}.corner" in stated:
                out.append(f"The {k} are in the {facts[f'{k}.corner']} corner.")
        if "most" in stated:
            out.append(f"The most numerous shapes are the {facts['most']}.")
        return " ".join(out)
