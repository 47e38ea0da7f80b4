"""Table scenes: a four-day weather forecast (day, weather, high temperature).

Facts: each day's weather and high, and the warmest and coldest days (which
also follow from all the highs together).
"""
from __future__ import annotations

import random
from typing import Any

from PIL import Image

from prism_eval.demo import draw
from prism_eval.demo.model import Facts, QuestionSpec, ask

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEATHER = ("sunny", "rainy", "cloudy", "windy", "foggy", "stormy", "hazy", "drizzly")
CITIES = ("Springfield", "Riverton", "Lakeside", "Hillview", "Brookfield", "Fairport")
LO, HI = 4, 34
W, H = 416, 256


def degrees(t: int) -> str:
    return f"{t}°C"


def _highs(rng: random.Random, n: int) -> list[int]:
    """n distinct highs at least 2 degrees apart, so the warmest and coldest are clear."""
    while True:
        t = rng.sample(range(LO, HI + 1), n)
        s = sorted(t)
        if all(b - a >= 2 for a, b in zip(s, s[1:])):
            return t


def _facts(days: list[str], weather: list[str], highs: list[int]) -> Facts:
    facts: Facts = {}
    for day, w, t in zip(days, weather, highs):
        facts[f"weather.{day}"] = w
        facts[f"high.{day}"] = degrees(t)
    facts["warmest"] = days[highs.index(max(highs))]
    facts["coldest"] = days[highs.index(min(highs))]
    return facts


class TableKind:
    category = "table"
    prefix = "table"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        start = rng.randrange(len(DAYS))
        days = [DAYS[(start + i) % len(DAYS)] for i in range(4)]
        layout = {"days": days, "city": rng.choice(CITIES)}
        weather = [rng.choice(WEATHER) for _ in days]
        return layout, _facts(days, weather, _highs(rng, len(days)))

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        days = layout["days"]
        every_high = [f"high.{d}" for d in days]
        w_day, t_day = rng.sample(days, 2)
        highs = [degrees(t) for t in rng.sample(range(LO, HI + 1), 10)]
        return [
            ask(f"weather.{w_day}", f"What will the weather be on {w_day}?", WEATHER),
            ask(f"high.{t_day}", f"What is the high temperature on {t_day}?", highs),
            ask("warmest", "Which day will be the warmest?", days, every_high, entity=True),
            ask("coldest", "Which day will be the coldest?", days, every_high, entity=True),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        days = layout["days"]
        true_weather = {facts[f"weather.{d}"] for d in days}
        weather = [rng.choice([w for w in WEATHER if w not in true_weather] or
                              [w for w in WEATHER if w != facts[f"weather.{d}"]]) for d in days]
        return _facts(days, weather, _highs(rng, len(days)))

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        img, d = draw.canvas(W, H)
        draw.text(d, (W / 2, 24), f"Weather forecast: {layout['city']}", 20)
        cols = (24, 164, 290, W - 24)
        top, row = 52, 38
        header = ("Day", "Weather", "High")
        d.rectangle((cols[0], top, cols[-1], top + row), fill=(225, 232, 245))
        for i, h in enumerate(header):
            draw.text(d, ((cols[i] + cols[i + 1]) / 2, top + row / 2), h, 16)
        for r, day in enumerate(layout["days"], start=1):
            y = top + r * row
            cells = (day, facts[f"weather.{day}"].capitalize(), facts[f"high.{day}"])
            for i, c in enumerate(cells):
                draw.text(d, ((cols[i] + cols[i + 1]) / 2, y + row / 2), c, 16)
        bottom = top + row * (len(layout["days"]) + 1)
        for r in range(len(layout["days"]) + 2):
            d.line((cols[0], top + r * row, cols[-1], top + r * row), fill=(60, 60, 60), width=1)
        for x in cols:
            d.line((x, top, x, bottom), fill=(60, 60, 60), width=1)
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        days = layout["days"]
        out = [f"A table shows the weather forecast for {layout['city']} over four days, "
               f"from {days[0]} to {days[-1]}, with columns for the day, the weather and the high."]
        for day in days:
            if f"weather.{day}" in stated:
                out.append(f"The weather on {day} will be {facts[f'weather.{day}']}.")
            if f"high.{day}" in stated:
                out.append(f"The high temperature on {day} is {facts[f'high.{day}']}.")
        if "warmest" in stated:
            out.append(f"The warmest day will be {facts['warmest']}.")
        if "coldest" in stated:
            out.append(f"The coldest day will be {facts['coldest']}.")
        return " ".join(out)
