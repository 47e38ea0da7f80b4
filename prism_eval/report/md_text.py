"""Markdown text helpers shared by the report's Markdown tables: escaping and GFM tables."""
from __future__ import annotations

__all__ = ["md_escape", "md_table"]

_MD_SPECIAL = set("\\`*_[]<>|~")


def md_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation (and pipes) so any name shows literally in a GFM cell."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    """A GFM table's lines: the first column left-aligned, the others right-aligned unless `align` says."""
    align = align or [":---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]
