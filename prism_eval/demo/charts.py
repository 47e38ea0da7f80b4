"""Bar-chart scenes: 3-5 labelled bars with values, a title and a vertical-axis label.

Facts: title, axis, each bar's value, and the highest and lowest bars (which
also follow from all the values together).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from PIL import Image

from prism_eval.demo import draw
from prism_eval.demo.model import NUMBER_WORDS, Facts, QuestionSpec, ask, join_words, number_pool


@dataclass(frozen=True)
class Theme:
    noun: str
    labels: tuple[str, ...]
    titles: tuple[str, ...]


THEMES = (
    Theme("fruit", ("apples", "bananas", "cherries", "grapes", "lemons", "mangoes", "pears", "plums"),
          ("Fruit sales", "Fruit harvest", "Fruit orders", "Favourite fruit", "Fruit stock")),
    Theme("pet", ("cats", "dogs", "rabbits", "hamsters", "parrots", "turtles", "horses", "goats"),
          ("Pet adoptions", "Pet survey", "Favourite pets", "Pets in town", "Pet shop sales")),
    Theme("sport", ("football", "tennis", "swimming", "cycling", "running", "hockey", "golf",
                    "rowing"),
          ("Sports club members", "Favourite sports", "Sports events", "Sports lessons",
           "Sports tickets")),
    Theme("city", ("Paris", "Tokyo", "Cairo", "Lima", "Oslo", "Delhi", "Sydney", "Toronto"),
          ("City visitors", "Rainy days", "New buildings", "City parks", "Bus routes")),
)
AXES = ("number sold", "votes", "visitors", "points", "hours", "kilograms", "people")
BAR_COLOURS = ((70, 130, 180), (205, 92, 92), (60, 150, 110), (150, 110, 190))
LO, HI, GAP = 5, 95, 4
W, H = 416, 320


def _values(rng: random.Random, n: int) -> list[int]:
    """n values in [LO, HI], at least GAP apart so the highest and lowest bars are clear."""
    while True:
        vals = rng.sample(range(LO, HI + 1), n)
        s = sorted(vals)
        if all(b - a >= GAP for a, b in zip(s, s[1:])):
            return vals


def _facts(title: str, axis: str, labels: list[str], values: list[int]) -> Facts:
    facts: Facts = {"title": title, "axis": axis}
    for lab, v in zip(labels, values):
        facts[f"value.{lab}"] = str(v)
    facts["max"] = labels[values.index(max(values))]
    facts["min"] = labels[values.index(min(values))]
    return facts


class ChartKind:
    category = "chart"
    prefix = "chart"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        theme = rng.choice(THEMES)
        n = rng.choice((3, 4, 5))
        labels = rng.sample(theme.labels, n)
        extra = rng.choice([lab for lab in theme.labels if lab not in labels])
        layout = {"theme": theme.noun, "labels": labels, "extra": extra,
                  "colour": rng.randrange(len(BAR_COLOURS))}
        return layout, _facts(rng.choice(theme.titles), rng.choice(AXES), labels, _values(rng, n))

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        theme = next(t for t in THEMES if t.noun == layout["theme"])
        labels = layout["labels"]
        entities = labels if len(labels) >= 4 else [*labels, layout["extra"]]
        every_value = [f"value.{lab}" for lab in labels]
        asked = rng.choice(labels)
        values = [str(v) for v in number_pool(rng, LO, HI, k=10)]
        return [
            ask("title", "What is the title of the bar chart?", theme.titles),
            ask("axis", "What does the vertical axis of the chart show?", AXES),
            ask("max", f"Which {theme.noun} has the highest bar?", entities, every_value,
                entity=True),
            ask("min", f"Which {theme.noun} has the lowest bar?", entities, every_value,
                entity=True),
            ask(f"value.{asked}", f"What value does the bar for {asked} show?", values),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        theme = next(t for t in THEMES if t.noun == layout["theme"])
        title = rng.choice([t for t in theme.titles if t != facts["title"]])
        axis = rng.choice([a for a in AXES if a != facts["axis"]])
        return _facts(title, axis, layout["labels"], _values(rng, len(layout["labels"])))

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        img, d = draw.canvas(W, H)
        labels = layout["labels"]
        draw.text(d, (W / 2, 22), facts["title"], 20)
        x0, x1, y0, y1 = 64, W - 16, 52, H - 44  # plot box: left, right, top, bottom (y1 = zero)
        for tick in (0, 25, 50, 75, 100):
            y = y1 - (y1 - y0) * tick / 100
            d.line((x0, y, x1, y), fill=(225, 225, 225), width=1)
            draw.text(d, (x0 - 6, y), str(tick), 11, fill=(110, 110, 110), anchor="rm")
        d.line((x0, y0, x0, y1), fill=(0, 0, 0), width=2)
        d.line((x0, y1, x1, y1), fill=(0, 0, 0), width=2)
        draw.vertical_text(img, (16, (y0 + y1) // 2), facts["axis"].capitalize(), 14)
        slot = (x1 - x0) / len(labels)
        colour = BAR_COLOURS[layout["colour"]]
        for i, lab in enumerate(labels):
            v = int(facts[f"value.{lab}"])
            cx = x0 + slot * (i + 0.5)
            top = y1 - (y1 - y0) * v / 100
            d.rectangle((cx - slot * 0.3, top, cx + slot * 0.3, y1), fill=colour)
            draw.text(d, (cx, top - 10), str(v), 14)
            draw.text(d, (cx, y1 + 16), lab.capitalize() if lab.islower() else lab, 14)
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        labels = layout["labels"]
        plural = "cities" if layout["theme"] == "city" else layout["theme"] + "s"
        out = [f"A bar chart with {NUMBER_WORDS[len(labels)]} bars, one for each of the {plural} named"
               f" along the horizontal axis: {join_words(labels)}."]
        if "title" in stated:
            out.append(f"The title of the bar chart is {facts['title']}.")
        if "axis" in stated:
            out.append(f"The vertical axis of the chart shows {facts['axis']}, from 0 to 100.")
        for lab in labels:
            if f"value.{lab}" in stated:
                out.append(f"The bar for {lab} shows {facts[f'value.{lab}']}.")
        if "max" in stated:
            out.append(f"The {layout['theme']} with the highest bar is {facts['max']}.")
        if "min" in stated:
            out.append(f"The {layout['theme']} with the lowest bar is {facts['min']}.")
        return " ".join(out)
