"""Read multiple-choice questions out of a VLM's text, in CapRL's QA-generation format.

The published format (gen_qa.py) is a numbered bold question, option lines
"   - A) text", then "**Answer:** D) text", blocks separated by "------". Models
drift from it (no "####", "A." instead of "A)", the answer without bold, options
on one line), so the parser accepts those variants, and says in words what it
could not read instead of guessing: a question without an answer, an answer that
names no option, an answer whose text contradicts its letter, stray text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from prism_eval.core.options import LETTERS, split_inline_options

_SEPARATOR = re.compile(r"^\s*(?:-{3,}|={3,}|\*{3,}|_{3,})\s*$")
_OPTION = re.compile(r"^\s*(?:[-*\u2022+]\s*)?(?:\*\*)?\(?([A-Ha-h])(?:\*\*)?\s*[).:](?:\*\*)?\s+(.*\S)\s*$")
_ANSWER = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*|__)?\s*(?:correct\s+|final\s+)?answer\s*(?:\*\*|__)?\s*[:：\-]\s*"
                     r"(?:\*\*|__)?\s*(.*?)\s*(?:\*\*|__)?\s*$", re.I)
_HEADER = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*)?\s*(?:(?:Q(?:uestion)?\s*)?(\d{1,2})\s*[.):]|Q(?:uestion)?\s*(\d{1,2})\s*[:.]?)"
                     r"\s*(.*)$", re.I)
_HEADING = re.compile(r"^\s*#{1,6}\s+(.*)$")
_ANSWER_VALUE = re.compile(r"^[\s*_`'\"]*\(?([A-Ha-h])\s*(?:[).:]|\*\*|$|\s)\s*(.*)$")


@dataclass
class ParsedQuestion:
    question: str
    options: list[str]
    answer: str  # the option letter

    def to_record(self) -> dict:
        return {"question": self.question, "options": list(self.options), "answer": self.answer}


@dataclass
class ParseReport:
    """What was read, and what was not (one sentence per problem)."""

    questions: list[ParsedQuestion] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocks: int = 0  # question-like blocks seen

    @property
    def rejected(self) -> int:
        return self.blocks - len(self.questions)


@dataclass
class _Block:
    number: int
    question: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    answer: str | None = None
    answer_lines: int = 0


def _clean_question(text: str) -> str:
    text = text.strip()
    text = re.sub(r"^(?:\*\*|__)+|(?:\*\*|__)+$", "", text).strip()
    return text.replace("**", "").strip()


def _strip_fences(text: str) -> str:
    return "\n".join(line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                     if not line.strip().startswith("```"))


def _same_text(texts: list[str], value: str) -> list[str]:
    want = value.strip().rstrip(".").strip().lower()
    return [LETTERS[i] for i, t in enumerate(texts) if t.lower() == want]


def _block_to_question(block: _Block, report: ParseReport) -> None:
    where = f"question {block.number}"
    question = _clean_question(" ".join(block.question))
    options = block.options
    if not options and question:
        inline = split_inline_options(question)
        if inline:
            question, opts = inline
            options = [(LETTERS[i], o) for i, o in enumerate(opts)]
    if not question:
        report.problems.append(f"{where}: no question text")
        return
    if len(options) < 2:
        report.problems.append(f"{where}: fewer than 2 options ({question[:60]!r})")
        return
    labels = [lab for lab, _ in options]
    if labels != list(LETTERS[:len(labels)]):
        report.problems.append(f"{where}: option letters are not A, B, C, ... in order ({''.join(labels)})")
        return
    texts = [t.replace("**", "").strip() for _, t in options]
    if len({t.lower() for t in texts}) != len(texts):
        report.problems.append(f"{where}: two options have the same text")
        return
    if block.answer is None:
        report.problems.append(f"{where}: no answer line")
        return
    if block.answer_lines > 1:
        report.problems.append(f"{where}: more than one answer line")
        return
    value = block.answer.replace("**", "").strip()
    m = _ANSWER_VALUE.match(value)
    letter, rest = (m.group(1).upper(), m.group(2).strip()) if m else (None, value)
    whole = _same_text(texts, value)
    if letter is not None and rest and whole and _same_text(texts, rest) != [letter] and whole != [letter]:
        letter, rest = None, value  # "A dog" is an option's text, not letter A
    by_text = _same_text(texts, rest) if rest else []
    if letter is None:
        if len(by_text) != 1:
            report.problems.append(f"{where}: answer names no option ({value!r})")
            return
        letter = by_text[0]
    if letter not in labels:
        report.problems.append(f"{where}: answer letter is not among the options ({letter} not in {''.join(labels)})")
        return
    if by_text and letter not in by_text:
        report.problems.append(f"{where}: answer letter contradicts its text ({letter}, text of {by_text[0]})")
        return
    report.questions.append(ParsedQuestion(question, texts, letter))


def parse_mcqs(text: str) -> ParseReport:
    """Every well-formed question in `text`; problems name what was skipped and why."""
    report = ParseReport()
    if not isinstance(text, str) or not text.strip():
        report.problems.append("empty output")
        return report
    blocks: list[_Block] = []
    current: _Block | None = None
    stray: list[str] = []

    def start(first_line: str) -> _Block:
        block = _Block(number=len(blocks) + 1, question=[first_line] if first_line else [])
        blocks.append(block)
        return block

    for line in _strip_fences(text).split("\n"):
        if not line.strip():
            continue
        if _SEPARATOR.match(line):
            current = None
            continue
        answer = _ANSWER.match(line)
        if answer:
            if current is None and blocks and blocks[-1].answer is None:
                current = blocks[-1]  # "------" between options and answer
            if current is None:
                stray.append(line.strip())
            else:
                current.answer_lines += 1
                current.answer = answer.group(1)
            continue
        option = _OPTION.match(line)
        if option and current is not None and current.answer is None and (current.question or current.options):
            current.options.append((option.group(1).upper(), option.group(2).strip()))
            continue
        header = _HEADER.match(line)
        heading = _HEADING.match(line)
        if header:
            current = start((header.group(3) or "").strip())
        elif heading:
            current = start(heading.group(1))
        elif current is None or current.options or current.answer is not None:
            # a question without a number: plain text that options will follow
            current = start(line)
        elif not current.options:
            current.question.append(line.strip())
        else:
            stray.append(line.strip())
    for block in blocks:
        if not block.options and block.answer is None and split_inline_options(_clean_question(
                " ".join(block.question))) is None:
            # prose, not a question: count it as stray text
            stray.append(" ".join(block.question)[:80])
            continue
        report.blocks += 1
        block.number = report.blocks
        _block_to_question(block, report)
    if stray:
        report.problems.append(f"text outside any question ({len(stray)} line(s), e.g. {stray[0][:60]!r})")
    if not report.blocks:
        report.problems.append("no question found")
    return report


__all__ = ["ParsedQuestion", "ParseReport", "parse_mcqs"]
