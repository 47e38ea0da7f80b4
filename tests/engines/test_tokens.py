"""Caption lengths in the judge's tokens, and truncation to the first k tokens at a word boundary."""
from __future__ import annotations

import pytest

from prism_eval.engines.tokens import token_ends, truncate, word_ends

TEXT = "A red double-decker bus, parked beside 3 yellow taxis; the café's sign reads «OPEN»."


def test_truncate_cuts_at_word_boundaries_at_or_below_k():
    text = "The red car is parked."
    ends = word_ends([text])[0]
    assert ends == [3, 7, 11, 14, 22]
    assert truncate(text, ends, 2) == "The red"
    assert truncate(text, ends, 5) == text and truncate(text, ends, 50) == text
    assert truncate(text, ends, 0) == ""
    # Sub-word tokens: "The| r|ed| car": two tokens end inside "red", so the cut moves back to "The".
    assert truncate(text, [3, 5, 7, 11, 14, 22], 2) == "The"
    assert truncate(text, [3, 5, 7, 11, 14, 22], 3) == "The red"
    assert truncate("Supercalifragilistic words", [5, 10, 20, 26], 2) == ""  # nothing fits: empty
    with pytest.raises(ValueError):
        truncate(text, ends, -1)


def _check_tokenizer(tok):
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    ends = token_ends(tok, [TEXT, ""])
    assert ends is not None and len(ends[0]) == len(ids) and ends[1] == []
    assert ends[0] == sorted(ends[0]) and ends[0][-1] == len(TEXT)
    for k in range(1, len(ids) + 1):
        cut = truncate(TEXT, ends[0], k)
        assert TEXT.startswith(cut) and (cut == TEXT or TEXT[len(cut)].isspace() or cut == "")
        assert len(tok(cut, add_special_tokens=False)["input_ids"]) <= k
    # The longest cut within k: one more word would pass k.
    k = len(ids) // 2
    cut = truncate(TEXT, ends[0], k)
    longer = TEXT[:TEXT.index(" ", len(cut) + 1)] if " " in TEXT[len(cut) + 1:] else TEXT
    assert len(tok(longer, add_special_tokens=False)["input_ids"]) > k


def test_the_builtin_judges_tokenizer(builtin_judge_spec):
    from transformers import AutoTokenizer

    from prism_eval.engines.builtin import converted_dir

    _check_tokenizer(AutoTokenizer.from_pretrained(converted_dir("smollm2-135m")))


def test_a_tiny_judges_tokenizer(tiny_judge):
    assert tiny_judge.token_ends(["a b", "abc"]) == token_ends(tiny_judge.tokenizer, ["a b", "abc"])
    _check_tokenizer(tiny_judge.tokenizer)


def test_a_tokenizer_without_offsets_falls_back():
    class Slow:
        is_fast = False

    assert token_ends(Slow(), ["x"]) is None
