"""Drawing helpers: Pillow's built-in font, a named colour palette, simple shapes.

Only Pillow is used, and only its embedded default font, so images are the same
on every machine with the same Pillow build and nothing is downloaded.
"""
from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

# Colour names are what captions and options say; RGB is what the image shows.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "blue": (31, 90, 200),
    "green": (44, 160, 44),
    "yellow": (240, 200, 20),
    "orange": (250, 130, 20),
    "purple": (128, 60, 170),
    "pink": (240, 120, 180),
    "brown": (130, 80, 40),
    "black": (25, 25, 25),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's embedded default font at `size` pixels."""
    return ImageFont.load_default(size=size)


def canvas(width: int, height: int, colour: tuple[int, int, int] = (255, 255, 255)
           ) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (width, height), colour)
    return img, ImageDraw.Draw(img)


def text(d: ImageDraw.ImageDraw, xy: tuple[float, float], s: str, size: int,
         fill: tuple[int, int, int] = (0, 0, 0), anchor: str = "mm") -> None:
    d.text(xy, s, font=font(size), fill=fill, anchor=anchor)


def vertical_text(img: Image.Image, centre: tuple[int, int], s: str, size: int,
                  fill: tuple[int, int, int] = (0, 0, 0)) -> None:
    """Text rotated 90 degrees (reads bottom to top), centred at `centre`."""
    f = font(size)
    left, top, right, bottom = f.getbbox(s)
    tile = Image.new("RGBA", (right - left + 4, bottom - top + 4), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((2 - left, 2 - top), s, font=f, fill=fill + (255,))
    tile = tile.rotate(90, expand=True)
    img.paste(tile, (centre[0] - tile.width // 2, centre[1] - tile.height // 2), tile)


def star_points(cx: float, cy: float, r: float, points: int = 5) -> list[tuple[float, float]]:
    out = []
    for i in range(points * 2):
        rad = r if i % 2 == 0 else r * 0.45
        a = -math.pi / 2 + i * math.pi / points
        out.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return out


def shape(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float,
          fill: tuple[int, int, int]) -> None:
    """Draw one shape of `kind` (singular name) centred at (cx, cy) with radius r."""
    outline = (40, 40, 40)
    if kind == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=2)
    elif kind == "square":
        s = r * 0.85
        d.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill, outline=outline, width=2)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)],
                  fill=fill, outline=outline, width=2)
    elif kind == "star":
        d.polygon(star_points(cx, cy, r), fill=fill, outline=outline, width=2)
    elif kind == "diamond":
        d.polygon([(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy)],
                  fill=fill, outline=outline, width=2)
    else:
        raise ValueError(f"shape kind {kind!r}: unknown")
