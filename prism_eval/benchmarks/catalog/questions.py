"""One dataset row -> Question(s): the generic reading every spec uses, and what adapters build on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prism_eval.benchmarks.catalog.fields import as_list, get_value, read_answer, read_field, read_options
from prism_eval.benchmarks.catalog.schema import BenchmarkSpec, SpecError
from prism_eval.core.records import Question


@dataclass
class RowQuestion:
    """A question read from a row, before grouping by image."""

    question: Question
    image_values: list[Any]


def row_id(spec: BenchmarkSpec, row: dict, index: int, where: str) -> str:
    id_field = spec.fields.get("id")
    value = read_field(row, id_field, where) if id_field else None
    return str(value) if value not in (None, "") else str(index)


def _options(spec: BenchmarkSpec, row: dict, text: str, where: str) -> tuple[str, tuple[str, ...] | None]:
    """(question text, options) as the spec's kind allows: none for open, required for mcq unless inline."""
    text, options = read_options(row, spec.fields.get("options"), text, where)
    if spec.kind == "open":
        return text, None
    if spec.kind == "mcq" and options is None:
        opt_spec = spec.fields.get("options")
        if not (isinstance(opt_spec, dict) and "inline" in opt_spec):
            raise SpecError(f"{where}: no options found for a multiple-choice benchmark")
        # options inside free text that do not parse: keep the text whole, ask it open, compare the letter
    return text, options


def _more_targets(spec: BenchmarkSpec, row: dict, answer: str, targets: tuple[str, ...], where: str
                  ) -> tuple[str, ...]:
    more = as_list(read_field(row, spec.fields["targets"], where), "literal", where) or []
    merged = dict.fromkeys([*targets, *(str(t).strip() for t in more if str(t).strip())])
    return tuple(t for t in merged if t != answer)


def _image_values(spec: BenchmarkSpec, row: dict, where: str) -> list[Any]:
    values: list[Any] = []
    for col in spec.image_columns:
        value = get_value(row, col, where)
        if isinstance(value, (list, tuple)):
            values.extend(v for v in value if v is not None)
        elif value is not None and value != "":
            values.append(value)
    if not values:
        raise SpecError(f"{where}: no image in column(s) {', '.join(spec.image_columns)}")
    return values


def generic_question(spec: BenchmarkSpec, row: dict, index: int, text: str | None = None, qid: str | None = None,
                     answer_field: Any = None) -> RowQuestion:
    """The spec's ordinary reading of a row; adapters pass `text`, `qid` or `answer_field` to override parts."""
    f = spec.fields
    qid = qid or row_id(spec, row, index, f"{spec.name} row {index}")
    where = f"{spec.name} row {index} (id {qid})"
    if text is None:
        text = read_field(row, f["question"], where)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: empty question text")
    text, options = _options(spec, row, text.strip(), where)
    answer, targets = read_answer(row, answer_field or f["answer"], options, where)
    if options is None and f.get("targets"):
        targets = _more_targets(spec, row, answer, targets, where)
    context = read_field(row, f.get("context"), where) if f.get("context") else None
    if isinstance(context, str) and context.strip():
        text = f"{context.strip()}\n{text}"
    category = read_field(row, f.get("category"), where) if f.get("category") else None
    question = Question(id=qid, text=text + spec.prompt_suffix, answer=answer, options=options,
                        category=None if category in (None, "") else str(category), targets=targets)
    return RowQuestion(question, _image_values(spec, row, where))
