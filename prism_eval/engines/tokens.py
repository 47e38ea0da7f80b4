"""Caption length in the judge's own tokens: where each token of a text ends.

Why: a caption's length should be counted the way its reader (the judge) sees
it, not in whitespace words, and a length-controlled score truncates captions to
the first k judge tokens. One call per caption gives both: the count is the
number of ends, and the cut after k tokens is `ends[k - 1]`. Engines with a
Hugging Face tokenizer (transformers, vLLM) offer `token_ends(texts)`; judges
without one (a remote server) do not, and lengths fall back to words.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

_WORD = re.compile(r"\S+")


def token_ends(tokenizer: Any, texts: Sequence[str]) -> list[list[int]] | None:
    """For each text, the character offset just after each of its tokens (special tokens left out).

    None when the tokenizer cannot map tokens to characters (a slow, pure-Python tokenizer).
    """
    if not getattr(tokenizer, "is_fast", False):
        return None
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, offsets in zip(texts, enc["offset_mapping"]):
        ends, last = [], 0
        for _, end in offsets:
            last = max(last, min(int(end), len(text)))  # byte-level pieces of one character share an end
            ends.append(last)
        out.append(ends)
    return out


def word_ends(texts: Sequence[str]) -> list[list[int]]:
    """The fallback unit: where each whitespace-separated word ends."""
    return [[m.end() for m in _WORD.finditer(t)] for t in texts]


def truncate(text: str, ends: Sequence[int], k: int) -> str:
    """The text cut to at most its first k tokens, at a word boundary (never inside a word).

    A text of k tokens or fewer comes back unchanged. Otherwise the cut falls
    after token k, moved back to the last whitespace at or before it when that
    token ends inside a word; trailing whitespace is dropped.
    """
    if k < 0:
        raise ValueError(f"truncate: k must be at least 0, got {k}")
    if len(ends) <= k:
        return text
    cut = ends[k - 1] if k > 0 else 0
    if 0 < cut < len(text) and not text[cut].isspace() and not text[cut - 1].isspace():
        cut = max((i for i in range(cut) if text[i].isspace()), default=0)
    return text[:cut].rstrip()
