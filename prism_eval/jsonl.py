"""Read JSONL input files the same way everywhere: one object a line, errors naming file and line."""
from __future__ import annotations

import json
from typing import Any, Iterator


def iter_jsonl(data: bytes, name: str, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; raises `error("name:line: problem")`.

    A leading byte-order mark is accepted. Lines are split on newlines only:
    str.splitlines() also breaks at U+2028 and U+0085, which JSON allows raw
    inside strings, and would cut valid lines in two.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{name}:{line}: not valid UTF-8 text") from None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{name}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise error(f"{name}:{lineno}: each line must be a JSON object")
        yield lineno, row
