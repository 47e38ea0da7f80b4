"""How a report words p-values (one spelling everywhere: tooltips, cells, Markdown)."""
from __future__ import annotations

__all__ = ["p_text"]


def p_text(p: float, short: bool = False) -> str:
    """`p < 0.001`, `p = 0.012`, `p = 0.34`; short drops the spaces for a table cell."""
    if p < 0.001:
        text = "p < 0.001"
    else:
        text = f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"
    return text.replace(" ", "") if short else text
