"""The field mini-language of specs: how a value is read from a dataset row.

A field is a column name ('a.b' reads a key inside a dict column), or a mapping
{column, template, pick, parse, regex, map, default}; options may be a list
column, several choice columns, or inline in the question text (MMStar, WeMath);
answers are a letter, an index, an option's text, or target text.
"""
from __future__ import annotations

import ast
import re
from typing import Any

from prism_eval.benchmarks.catalog.schema import ANSWER_AS, SpecError
from prism_eval.core.options import LETTERS, OptionsError, normalize_mcq


def get_value(row: dict, column: str, where: str) -> Any:
    """row[column], with 'a.b' reading a key inside a dict column (MathVista's metadata.task)."""
    if column in row:
        return row[column]
    head, _, rest = column.partition(".")
    if rest and head in row:
        value = row[head]
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise SpecError(f"{where}: column {head!r} is not a mapping, cannot read {column!r}") from None
        if isinstance(value, dict) and rest in value:
            return value[rest]
    raise SpecError(f"{where}: no column {column!r} (row has {', '.join(sorted(row))})")


def as_list(value: Any, parse: str | None, where: str) -> list | None:
    if value is None:
        return None
    if isinstance(value, str) and parse == "literal":
        text = value.strip()
        if not text:
            return []
        if not text.startswith(("[", "(")):
            return [value]
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise SpecError(f"{where}: cannot parse {text[:60]!r} as a list") from None
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def read_field(row: dict, spec_value: Any, where: str) -> Any:
    """A field is a column name, or {column, template, pick, parse, map, default}."""
    if spec_value is None:
        return None
    if isinstance(spec_value, str):
        return get_value(row, spec_value, where)
    if not isinstance(spec_value, dict):
        raise SpecError(f"{where}: a field must be a column name or a mapping, got {spec_value!r}")
    if "template" in spec_value:
        names = re.findall(r"\{([^{}]+)\}", spec_value["template"])
        values = {n: get_value(row, n, where) for n in names}
        text = spec_value["template"]
        for n, v in values.items():
            text = text.replace("{" + n + "}", "" if v is None else str(v))
        return text
    column = spec_value.get("column")
    if not column:
        raise SpecError(f"{where}: field mapping needs 'column' or 'template': {spec_value!r}")
    value = get_value(row, column, where)
    if spec_value.get("parse") == "literal" and isinstance(value, str):
        value = as_list(value, "literal", where)
    if spec_value.get("pick") in ("last", "first") and isinstance(value, (list, tuple)):
        value = (value[-1] if spec_value["pick"] == "last" else value[0]) if value else None
    if "regex" in spec_value and value is not None:
        match = re.search(spec_value["regex"], str(value))
        value = (match.group(1) if match.groups() else match.group(0)) if match else None
    if "map" in spec_value and value is not None:
        value = spec_value["map"].get(value, spec_value["map"].get(str(value), value))
    if value is None or value == "":
        value = spec_value.get("default", value)
    return value


_INLINE_MARKERS = ("Options:", "Choices:", "Choice:")


def parse_inline_options(text: str, marker: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """Split 'stem Options: A: x, B: y' (MMStar) or 'A. x; B. y' (WeMath) into (stem, options).

    Letters must run A, B, C, ... in order, each followed by ':', '.' or ')';
    returns None when fewer than two are found, so the caller keeps the text.
    """
    body, stem = text, ""
    markers = (marker,) if marker else _INLINE_MARKERS
    for m in markers:
        idx = text.rfind(m)
        if idx != -1:
            stem, body = text[:idx].rstrip(), text[idx + len(m):]
            break
    starts: list[tuple[int, int]] = []  # (label start, text start)
    pos = 0
    for letter in LETTERS:
        pattern = re.compile(r"(?:^|(?<=[\s,;(]))\(?" + letter + r"\s?[:.)：]\s*")
        match = pattern.search(body, pos)
        if not match:
            break
        starts.append((match.start(), match.end()))
        pos = match.end()
    if len(starts) < 2:
        return None
    options = []
    for i, (_, text_start) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(body)
        option = body[text_start:end].strip().rstrip(",;").strip()
        options.append(option)
    if not stem:
        stem = body[:starts[0][0]].strip()
    if any(o == "" for o in options):
        return None
    return stem, tuple(options)


def read_options(row: dict, spec_value: Any, question_text: str, where: str) -> tuple[str, tuple[str, ...] | None]:
    """(question text, options or None) from a list column, choice columns, or inline text."""
    if spec_value is None:
        return question_text, None
    if isinstance(spec_value, str):
        spec_value = {"column": spec_value}
    if "columns" in spec_value:
        values = [get_value(row, c, where) for c in spec_value["columns"]]
        opts = tuple(str(v) for v in values if v is not None and str(v) != "")
        return question_text, opts or None
    if "inline" in spec_value:
        source = spec_value["inline"]
        text = question_text if source in (True, "question") else str(read_field(row, source, where) or "")
        parsed = parse_inline_options(text, spec_value.get("marker"))
        if parsed is None:  # no recognisable options: the question stays open, its text unchanged
            return question_text, None
        stem, opts = parsed
        return (stem if source in (True, "question") else question_text), opts
    value = read_field(row, {**spec_value, "parse": spec_value.get("parse", "literal")}, where)
    values = as_list(value, "literal", where)
    if not values:
        return question_text, None
    return question_text, tuple(str(v) for v in values)


def read_answer(row: dict, spec_value: Any, options: tuple[str, ...] | None, where: str) -> tuple[str, tuple[str, ...]]:
    """(answer, further targets): a letter for an MCQ, the target text(s) for an open question."""
    how = "letter"
    if isinstance(spec_value, dict) and "as" in spec_value:
        how = spec_value["as"]
        if how not in ANSWER_AS:
            raise SpecError(f"{where}: answer 'as' must be one of {', '.join(ANSWER_AS)}, got {how!r}")
    value = read_field(row, spec_value, where)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SpecError(f"{where}: empty answer")
    if options is None:
        answers = as_list(value, "literal" if isinstance(spec_value, dict) and spec_value.get("parse") == "literal"
                           else None, where)
        answers = [str(a).strip() for a in answers if str(a).strip()]
        if not answers:
            raise SpecError(f"{where}: empty answer")
        return answers[0], tuple(answers[1:])
    if isinstance(value, (list, tuple)):
        value = value[0]
    if how == "target":
        return str(value).strip(), ()
    try:
        return normalize_mcq(options, value, how)[1], ()
    except OptionsError as exc:
        raise SpecError(f"{where}: {exc}") from None
