"""JSONL read the same way everywhere (one object a line, errors naming file and line) and written safely."""
from __future__ import annotations

import json
from typing import Any, Iterator

MAX_LINE_CHARS = 1_000_000  # one question or caption line; a larger one is refused before it is parsed


def iter_jsonl(data: bytes, name: str, error: type[Exception], max_line_chars: int | None = MAX_LINE_CHARS
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; raises `error("name:line: problem")`.

    A leading byte-order mark is accepted. Lines are split on newlines only:
    str.splitlines() also breaks at U+2028 and U+0085, which JSON allows raw
    inside strings, and would cut valid lines in two. A line longer than
    `max_line_chars` is refused unparsed (a 50 MB line would hold gigabytes once
    parsed and tokenized).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{name}:{line}: not valid UTF-8 text") from None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if max_line_chars is not None and len(line) > max_line_chars:
            raise error(f"{name}:{lineno}: line of {len(line):,} characters, over the "
                        f"{max_line_chars:,}-character limit")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{name}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise error(f"{name}:{lineno}: each line must be a JSON object")
        yield lineno, row


# json.dumps(ensure_ascii=False) leaves these raw: U+2028, U+2029 and U+0085, at which
# str.splitlines() (and many JSONL readers) break lines, other C1 controls (a terminal may act on
# them when the file is printed) and bidirectional overrides. Escaped, the JSON means the same.
_UNSAFE_RAW = str.maketrans({c: f"\\u{ord(c):04x}" for c in
                             [*map(chr, range(0x7F, 0xA0)), "\u2028", "\u2029",
                              *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]})


def jsonl_line(record: Any) -> str:
    """One JSONL line that every line splitter reads as one line and a terminal prints inertly.

    NaN and infinities are refused (they are not JSON).
    """
    return json.dumps(record, ensure_ascii=False, allow_nan=False).translate(_UNSAFE_RAW) + "\n"
