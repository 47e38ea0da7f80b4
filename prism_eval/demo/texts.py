"""Rendered-text scenes: shop receipts and opening-hours signs.

Receipt facts: store name, each item's price, the total (also the sum of all
prices) and the most expensive item (also from all prices). Sign facts: the
place's name, opening and closing time, and the day it is closed.
"""
from __future__ import annotations

import random
from typing import Any

from PIL import Image

from prism_eval.demo import draw
from prism_eval.demo.model import NUMBER_WORDS, Facts, QuestionSpec, a_an, ask, join_words

STORES = ("Corner Market", "Sunny Bakery", "Maple Grocery", "Harbor Deli", "Pine Street Shop",
          "Golden Spoon", "Fresh Basket", "Hilltop Foods", "Blue Door Store", "Village Pantry")
ITEMS = ("coffee", "bread", "milk", "eggs", "cheese", "tea", "juice", "butter", "rice", "pasta",
         "soap", "honey")
PLACES = ("Green Leaf Cafe", "Sunset Bakery", "Riverside Books", "Lucky Star Diner",
          "Maple Library", "City Gym", "Silver Barber", "Oak Tree Pharmacy", "Happy Paws Vet",
          "Old Mill Museum")
OPENS = ("6 AM", "7 AM", "8 AM", "9 AM", "10 AM", "11 AM")
CLOSES = ("4 PM", "5 PM", "6 PM", "7 PM", "8 PM", "9 PM", "10 PM")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SIGN_COLOURS = {"green": (34, 110, 60), "blue": (30, 70, 150), "red": (170, 40, 40),
                "brown": (110, 70, 40), "black": (30, 30, 30)}


def money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def _prices(rng: random.Random, n: int) -> list[int]:
    """n distinct prices in cents ($0.95-$9.95, 5-cent steps) with one clear maximum."""
    while True:
        cents = rng.sample(range(95, 1000, 5), n)
        s = sorted(cents)
        if s[-1] - s[-2] >= 50:
            return cents


def _receipt_facts(store: str, items: list[str], cents: list[int]) -> Facts:
    facts: Facts = {"store": store}
    for it, c in zip(items, cents):
        facts[f"price.{it}"] = money(c)
    facts["total"] = money(sum(cents))
    facts["most_expensive"] = items[cents.index(max(cents))]
    return facts


class ReceiptKind:
    category = "text"
    prefix = "receipt"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        n = rng.choice((3, 4))
        items = rng.sample(ITEMS, n)
        extra = rng.choice([i for i in ITEMS if i not in items])
        layout = {"items": items, "extra": extra}
        return layout, _receipt_facts(rng.choice(STORES), items, _prices(rng, n))

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        items = layout["items"]
        every_price = [f"price.{i}" for i in items]
        asked = rng.choice(items)
        total = int(facts["total"].replace("$", "").replace(".", ""))
        prices = [money(c) for c in rng.sample(range(95, 1000, 5), 10)]
        totals = [money(c) for c in rng.sample(range(total // 2 // 5 * 5, total * 3 // 2, 5), 10)]
        entities = [*items, layout["extra"]] if len(items) < 4 else items
        # The total minus the other prices gives the missing one: that counts as stated too.
        all_but = [["total", *(p for p in every_price if p != f"price.{i}")] for i in items]
        return [
            ask("store", "What is the name of the store on the receipt?", STORES),
            ask(f"price.{asked}", f"How much does the {asked} cost?", prices,
                ["total", *(p for p in every_price if p != f"price.{asked}")]),
            ask("total", "What is the total on the receipt?", totals, every_price),
            ask("most_expensive", "Which item on the receipt is the most expensive?", entities,
                every_price, *all_but, entity=True),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        store = rng.choice([s for s in STORES if s != facts["store"]])
        return _receipt_facts(store, layout["items"], _prices(rng, len(layout["items"])))

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        items = layout["items"]
        w, h = 320, 200 + 34 * len(items)
        img, d = draw.canvas(w, h, (200, 200, 205))
        d.rectangle((30, 12, w - 30, h - 12), fill=(255, 255, 252), outline=(150, 150, 150))
        draw.text(d, (w / 2, 40), facts["store"], 20)
        draw.text(d, (w / 2, 66), "RECEIPT", 12, fill=(90, 90, 90))
        y = 100
        for it in items:
            draw.text(d, (50, y), it.capitalize(), 16, anchor="lm")
            draw.text(d, (w - 50, y), facts[f"price.{it}"], 16, anchor="rm")
            y += 34
        for x in range(50, w - 50, 10):
            d.line((x, y - 8, x + 5, y - 8), fill=(60, 60, 60))
        draw.text(d, (50, y + 16), "TOTAL", 18, anchor="lm")
        draw.text(d, (w - 50, y + 16), facts["total"], 18, anchor="rm")
        draw.text(d, (w / 2, h - 36), "Thank you!", 13, fill=(90, 90, 90))
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        items = layout["items"]
        out = [f"A printed receipt on a grey background lists {NUMBER_WORDS[len(items)]} items:"
               f" {join_words(items)}, each with its price on the right, then a dashed line, the total,"
               " and \"Thank you!\" at the bottom."]
        if "store" in stated:
            out.append(f"The name of the store on the receipt is {facts['store']}.")
        for it in items:
            if f"price.{it}" in stated:
                out.append(f"The {it} costs {facts[f'price.{it}']}.")
        if "total" in stated:
            out.append(f"The total on the receipt is {facts['total']}.")
        if "most_expensive" in stated:
            out.append(f"The most expensive item on the receipt is {facts['most_expensive']}.")
        return " ".join(out)


class SignKind:
    category = "text"
    prefix = "sign"

    def sample(self, rng: random.Random) -> tuple[dict[str, Any], Facts]:
        layout = {"colour": rng.choice(sorted(SIGN_COLOURS))}
        facts = {"name": rng.choice(PLACES), "opens": rng.choice(OPENS),
                 "closes": rng.choice(CLOSES), "closed_day": rng.choice(DAYS)}
        return layout, facts

    def questions(self, layout: dict[str, Any], facts: Facts,
                  rng: random.Random) -> list[QuestionSpec]:
        return [
            ask("name", "What is the name of the place on the sign?", PLACES),
            ask("opens", "At what time does it open?", OPENS),
            ask("closes", "At what time does it close?", CLOSES),
            ask("closed_day", "On which day of the week is it closed?", DAYS),
        ]

    def perturb(self, layout: dict[str, Any], facts: Facts, rng: random.Random) -> Facts:
        return {k: rng.choice([v for v in pool if v != facts[k]])
                for k, pool in (("name", PLACES), ("opens", OPENS), ("closes", CLOSES),
                                ("closed_day", DAYS))}

    def draw(self, layout: dict[str, Any], facts: Facts) -> Image.Image:
        w, h = 384, 288
        img, d = draw.canvas(w, h, (226, 220, 205))
        d.rectangle((24, 40, w - 24, h - 40), fill=SIGN_COLOURS[layout["colour"]],
                    outline=(60, 50, 40), width=4)
        white = (255, 255, 255)
        draw.text(d, (w / 2, 90), facts["name"], 26, fill=white)
        d.line((60, 120, w - 60, 120), fill=white, width=2)
        draw.text(d, (w / 2, 150), f"Open {facts['opens']} - {facts['closes']}", 20, fill=white)
        draw.text(d, (w / 2, 190), f"Closed on {facts['closed_day']}", 20, fill=white)
        return img

    def caption(self, layout: dict[str, Any], facts: Facts, stated: set[str]) -> str:
        board = a_an(layout["colour"]).capitalize()
        out = [f"{board} sign with white letters hangs on a wall. A name is written at the top, above"
               " a thin white line, and the opening hours are written below it."]
        if "name" in stated:
            out.append(f"The name of the place on the sign is {facts['name']}.")
        if "opens" in stated:
            out.append(f"It opens at {facts['opens']}.")
        if "closes" in stated:
            out.append(f"It closes at {facts['closes']}.")
        if "closed_day" in stated:
            out.append(f"It is closed on {facts['closed_day']}.")
        return " ".join(out)
