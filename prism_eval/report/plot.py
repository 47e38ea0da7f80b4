"""Small static SVG charts written by hand: no charting library, no script, no request.

Why: the report must open offline and stay small; two charts of a few dozen points
do not justify a 1-5 MB JavaScript bundle. Every label is escaped (captioner names
are user input).
"""
from __future__ import annotations

import math

from markupsafe import Markup, escape

from prism_eval.report.board import LengthStats

__all__ = ["PALETTE", "BLIND_COLOR", "colors_for", "nice_ticks", "length_scatter_svg", "length_bins_svg",
           "length_curve_svg", "CurveSeries"]

# (run label, blind, [(length, score 0-100, what the point is)]) per captioner, points in length order.
CurveSeries = list[tuple[str, bool, list[tuple[float, float, str]]]]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#ff9da7", "#3b5b92")
BLIND_COLOR = "#6b7280"

W, H = 560, 330
ML, MR, MT, MB = 52, 16, 16, 44


def colors_for(labels: list[tuple[str, bool]]) -> dict[str, str]:
    """One fixed colour per run label (grey for the blind baseline), shared by every chart."""
    out, i = {}, 0
    for label, blind in labels:
        if blind:
            out[label] = BLIND_COLOR
        else:
            out[label] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


class _Frame:
    """Axes, grid and the mapping from data to pixels."""

    def __init__(self, xs: list[float], ys: list[float], xlabel: str, ylabel: str):
        self.xt = nice_ticks(0.0, max(xs + [1.0]) * 1.05)
        ylo, yhi = min(ys + [100.0]), max(ys + [0.0])
        self.yt = nice_ticks(max(0.0, ylo - 5), min(100.0, yhi + 5)) if ys else nice_ticks(0, 100)
        self.xlabel, self.ylabel = xlabel, ylabel

    def x(self, v: float) -> float:
        lo, hi = self.xt[0], self.xt[-1]
        return ML + (v - lo) / (hi - lo) * (W - ML - MR)

    def y(self, v: float) -> float:
        lo, hi = self.yt[0], self.yt[-1]
        return H - MB - (v - lo) / (hi - lo) * (H - MT - MB)

    def axes(self) -> list[str]:
        p = []
        for t in self.yt:
            y = self.y(t)
            p.append(f'<line class="grid" x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}"/>')
            p.append(f'<text class="tick" x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
        for t in self.xt:
            x = self.x(t)
            p.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{H - MB}"/>')
            p.append(f'<text class="tick" x="{x:.1f}" y="{H - MB + 16}" text-anchor="middle">{_fmt(t)}</text>')
        p.append(f'<line class="axis" x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}"/>')
        p.append(f'<line class="axis" x1="{ML}" x2="{ML}" y1="{MT}" y2="{H - MB}"/>')
        p.append(f'<text class="label" x="{(ML + W - MR) / 2:.0f}" y="{H - 8}" text-anchor="middle">'
                 f'{escape(self.xlabel)}</text>')
        p.append(f'<text class="label" transform="translate(14 {(MT + H - MB) / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(self.ylabel)}</text>')
        return p

    def baseline(self, score: float, label: str) -> list[str]:
        y = self.y(score)
        return [f'<line class="baseline" x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}"/>',
                f'<text class="note" x="{W - MR - 4}" y="{y - 5:.1f}" text-anchor="end">'
                f'{escape(label)} {score:.1f}</text>']


def _svg(parts: list[str], title: str) -> Markup:
    body = "\n".join(parts)
    return Markup(f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
                  f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>\n{body}\n</svg>')


def _short(label: str, n: int = 26) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def length_scatter_svg(stats: LengthStats, colors: dict[str, str]) -> Markup:
    """Average score against mean caption length, one point per captioner."""
    pts = [p for p in stats.points if not p[1]]
    blind = [p for p in stats.points if p[1]]
    f = _Frame([p[2] for p in pts], [p[3] for p in stats.points],
               f"mean caption length ({stats.unit})", "average score")
    parts = f.axes()
    for label, _, _, score in blind:
        parts += f.baseline(score, f"blind baseline ({_short(label, 18)})")
    for label, _, length, score in pts:
        x, y = f.x(length), f.y(score)
        anchor, dx = ("end", -9) if x > W - 150 else ("start", 9)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colors[label]}">'
                     f'<title>{escape(label)}: {score:.1f} at {length:.0f} {stats.unit}</title></circle>')
        parts.append(f'<text class="point" x="{x + dx:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}">'
                     f'{escape(_short(label))}</text>')
    return _svg(parts, "Average score against mean caption length")


def length_bins_svg(stats: LengthStats, bench: str, colors: dict[str, str]) -> Markup:
    """Per captioner, on one benchmark: score of its answers in each caption-length bin."""
    runs = stats.bins[bench]
    series = [b for b in runs if not b[1] and b[2]]
    xs = [p[0] for _, _, s in series for p in s]
    ys = [p[1] for _, _, s in runs for p in s]
    f = _Frame(xs, ys, f"caption length ({stats.unit}), binned", "score of captions in the bin")
    parts = f.axes()
    for label, blind, s in runs:
        if blind and s:
            parts += f.baseline(s[0][1], "blind baseline")
    for label, _, s in series:
        c = colors[label]
        pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y, _ in s)
        parts.append(f'<polyline class="series" points="{pts}" stroke="{c}"/>')
        for x, y, n in s:
            parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="4" fill="{c}">'
                         f'<title>{escape(label)}: {y:.1f} over {n} answers, mean {x:.0f} {stats.unit}'
                         f'</title></circle>')
    return _svg(parts, f"Score against caption length within each captioner on {bench}")


def length_curve_svg(series: CurveSeries, colors: dict[str, str], unit: str) -> Markup:
    """Per captioner, its score with every caption cut to K tokens, against K (a line per run)."""
    xs = [x for _, _, s in series for x, _, _ in s]
    ys = [y for _, _, s in series for _, y, _ in s]
    f = _Frame(xs, ys, f"caption length budget ({unit})", "score")
    parts = f.axes()
    for label, _, s in series:
        c = colors.get(label, BLIND_COLOR)
        pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y, _ in s)
        parts.append(f'<polyline class="series curve" data-label="{escape(label)}" points="{pts}" stroke="{c}"/>')
        for x, y, what in s:
            parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="4" fill="{c}">'
                         f'<title>{escape(label)}: {y:.1f} {escape(what)}</title></circle>')
    return _svg(parts, "Score against caption length budget")
