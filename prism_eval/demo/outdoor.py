"""Outdoor scenes: a house on grass under a coloured sky, with trees and something in the sky.

Facts: sky colour, what is in the sky, number of trees, door colour, roof colour.
"""
from __future__ import annotations

import random
from typing import Any

from PIL import Image, ImageDraw

from prism_eval.demo import draw
from prism_eval.demo.model import Facts, QuestionSpec, ask

SKIES = {"blue": (135, 195, 235), "orange": (245, 165, 90), "pink": (245, 180, 205),
         "grey": (170, 172, 178), "purple": (150, 125, 195), "black": (30, 30, 45),
         "yellow": (245, 225, 120), "red": (225, 95, 80)}
SKY_THINGS = ("the sun", "the moon", "a kite", "a balloon", "a rainbow")
TREES = (2, 3, 4, 5, 6)
HOUSE_COLOURS = ("red", "blue", "green", "yellow", "brown", "black", "purple", "orange")
W, H = 416, 320
GROUND = 236


def _sky_thing(d: ImageDraw.ImageDraw, thing: str, x: int, y: int, sky: tuple[int, int, int]) -> None:
    if thing == "the sun":
        for i in range(12):
            a = i * 30
            d.regular_polygon((x, y, 40), 3, rotation=a, fill=(250, 200, 40))
        d.ellipse((x - 28, y - 28, x + 28, y + 28), fill=(255, 215, 0))
    elif thing == "the moon":
        d.ellipse((x - 28, y - 28, x + 28, y + 28), fill=(245, 245, 215))
        d.ellipse((x - 14, y - 34, x + 38, y + 18), fill=sky)
    elif thing == "a kite":
        d.polygon([(x, y - 32), (x + 22, y), (x, y + 32), (x - 22, y)], fill=(220, 40, 40),
                  outline=(80, 0, 0), width=2)
        d.line([(x, y + 32), (x - 10, y + 50), (x + 6, y + 66), (x - 6, y + 84)], fill=(40, 40, 40),
               width=2)
    elif thing == "a balloon":
        d.ellipse((x - 22, y - 30, x + 22, y + 22), fill=(230, 60, 120), outline=(120, 20, 60), width=2)
        d.line([(x, y + 22), (x + 4, y + 50), (x - 3, y + 78)], fill=(40, 40, 40), width=2)
    elif thing == "a rainbow":
        bands = ((230, 40, 40), (250, 150, 30), (250, 230, 40), (60, 170, 60), (40, 90, 220),
                 (130, 60, 180))
        for i, c in enumerate(bands):
            r = 70 - i * 8
            d.arc((x - r, y - r + 40, x + r, y + r + 40), 180, 360, fill=c, width=8)
    else:
        raise ValueError(f"sky thing {thing!r}: unknown")


class OutdoorKind:
    category = "scene"
    prefix = "scene"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        door, roof = rng.sample(HOUSE_COLOURS, 2)
        facts = {"sky": rng.choice(sorted(SKIES)), "thing": rng.choice(SKY_THINGS),
                 "trees": str(rng.choice(TREES)), "door": door, "roof": roof}
        layout = {"house_left": rng.choice((True, False)), "draw_seed": rng.randrange(2**31)}
        return layout, facts

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        return [
            ask("sky", "What colour is the sky?", sorted(SKIES)),
            ask("thing", "What can be seen in the sky?", SKY_THINGS),
            ask("trees", "How many trees are there?", [str(n) for n in range(1, 9)]),
            ask("door", "What colour is the door of the house?", HOUSE_COLOURS),
            ask("roof", "What colour is the roof of the house?", HOUSE_COLOURS),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        shown = {facts["sky"], facts["door"], facts["roof"]}
        door, roof = rng.sample([c for c in HOUSE_COLOURS if c not in shown], 2)
        return {"sky": rng.choice([c for c in sorted(SKIES) if c not in shown]),
                "thing": rng.choice([t for t in SKY_THINGS if t != facts["thing"]]),
                "trees": rng.choice([str(n) for n in range(1, 9) if str(n) != facts["trees"]]),
                "door": door, "roof": roof}

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        rng = random.Random(layout["draw_seed"])
        sky = SKIES[facts["sky"]]
        img, d = draw.canvas(W, H, sky)
        d.rectangle((0, GROUND, W, H), fill=(110, 180, 80))
        hx = 40 if layout["house_left"] else W - 190
        d.rectangle((hx, GROUND - 100, hx + 150, GROUND), fill=(240, 230, 210), outline=(60, 60, 60),
                    width=2)
        d.polygon([(hx - 14, GROUND - 100), (hx + 75, GROUND - 165), (hx + 164, GROUND - 100)],
                  fill=draw.COLOURS[facts["roof"]], outline=(60, 60, 60), width=2)
        d.rectangle((hx + 58, GROUND - 62, hx + 92, GROUND), fill=draw.COLOURS[facts["door"]],
                    outline=(60, 60, 60), width=2)
        for wx in (hx + 16, hx + 106):
            d.rectangle((wx, GROUND - 80, wx + 28, GROUND - 52), fill=(200, 230, 250),
                        outline=(60, 60, 60), width=2)
        tree_x0 = W - 200 if layout["house_left"] else 16
        n = int(facts["trees"])
        step = 184 / n
        for i in range(n):
            tx = tree_x0 + step * (i + 0.5) + rng.randint(-3, 3)
            ty = GROUND + 14 + rng.randint(-6, 10)
            d.rectangle((tx - 5, ty - 40, tx + 5, ty), fill=(110, 70, 35))
            d.ellipse((tx - 13, ty - 80, tx + 13, ty - 30), fill=(30, 120, 50), outline=(20, 80, 30))
        thing_x = W - 70 if layout["house_left"] else 70
        _sky_thing(d, facts["thing"], thing_x, 60, sky)
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        side = "left" if layout["house_left"] else "right"
        out = [f"A simple drawing of a house with two windows, standing on a lawn on the {side} side"
               " of the picture, with trees next to it."]
        if "sky" in stated:
            out.append(f"The sky is {facts['sky']}.")
        if "thing" in stated:
            thing = facts["thing"]
            out.append(f"{thing[0].upper()}{thing[1:]} can be seen in the sky.")
        if "trees" in stated:
            out.append(f"There are {facts['trees']} trees.")
        if "door" in stated:
            out.append(f"The door of the house is {facts['door']}.")
        if "roof" in stated:
            out.append(f"The roof of the house is {facts['roof']}.")
        return " ".join(out)
