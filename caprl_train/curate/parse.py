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
_HEADER = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*)?\s*"
                     r"(?:(?:Q(?:uestion)?\s*)?(\d{1,2})\s*[.):]|Q(?:uestion)?\s*(\d{1,2})\s*[:.]?)"
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


class _Problem(Exception):
    """Why a block is not a usable question (one sentence)."""


def _block_options(block: _Block) -> tuple[str, list[tuple[str, str]]]:
    """(question text, labelled options): option lines, or options written inline in the question."""
    question = _clean_question(" ".join(block.question))
    options = block.options
    if not options and question:
        inline = split_inline_options(question)
        if inline:
            question, opts = inline
            options = [(LETTERS[i], o) for i, o in enumerate(opts)]
    if not question:
        raise _Problem("no question text")
    if len(options) < 2:
        raise _Problem(f"fewer than 2 options ({question[:60]!r})")
    labels = [lab for lab, _ in options]
    if labels != list(LETTERS[:len(labels)]):
        raise _Problem(f"option letters are not A, B, C, ... in order ({''.join(labels)})")
    return question, options


def _answer_letter(block: _Block, texts: list[str], labels: list[str]) -> str:
    """The answer's letter: by its letter, by its text, or both when they agree."""
    if block.answer is None:
        raise _Problem("no answer line")
    if block.answer_lines > 1:
        raise _Problem("more than one answer line")
    value = block.answer.replace("**", "").strip()
    m = _ANSWER_VALUE.match(value)
    letter, rest = (m.group(1).upper(), m.group(2).strip()) if m else (None, value)
    whole = _same_text(texts, value)
    if letter is not None and rest and whole and _same_text(texts, rest) != [letter] and whole != [letter]:
        letter, rest = None, value  # "A dog" is an option's text, not letter A
    by_text = _same_text(texts, rest) if rest else []
    if letter is None:
        if len(by_text) != 1:
            raise _Problem(f"answer names no option ({value!r})")
        letter = by_text[0]
    if letter not in labels:
        raise _Problem(f"answer letter is not among the options ({letter} not in {''.join(labels)})")
    if by_text and letter not in by_text:
        raise _Problem(f"answer letter contradicts its text ({letter}, text of {by_text[0]})")
    return letter


def _block_to_question(block: _Block, report: ParseReport) -> None:
    try:
        question, options = _block_options(block)
        texts = [t.replace("**", "").strip() for _, t in options]
        if len({t.lower() for t in texts}) != len(texts):
            raise _Problem("two options have the same text")
        letter = _answer_letter(block, texts, [lab for lab, _ in options])
    except _Problem as problem:
        report.problems.append(f"question {block.number}: {problem}")
        return
    report.questions.append(ParsedQuestion(question, texts, letter))


class _Reader:
    """Line by line: question headers start blocks, option and answer lines fill the current one."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.current: _Block | None = None
        self.stray: list[str] = []

    def _start(self, first_line: str) -> None:
        self.current = _Block(number=len(self.blocks) + 1, question=[first_line] if first_line else [])
        self.blocks.append(self.current)

    def _answer(self, line: str, value: str) -> None:
        if self.current is None and self.blocks and self.blocks[-1].answer is None:
            self.current = self.blocks[-1]  # "------" between options and answer
        if self.current is None:
            self.stray.append(line.strip())
        else:
            self.current.answer_lines += 1
            self.current.answer = value

    def feed(self, line: str) -> None:
        cur = self.current
        if _SEPARATOR.match(line):
            self.current = None
        elif answer := _ANSWER.match(line):
            self._answer(line, answer.group(1))
        elif (option := _OPTION.match(line)) and cur is not None and cur.answer is None and (cur.question
                                                                                            or cur.options):
            cur.options.append((option.group(1).upper(), option.group(2).strip()))
        elif header := _HEADER.match(line):
            self._start((header.group(3) or "").strip())
        elif heading := _HEADING.match(line):
            self._start(heading.group(1))
        elif cur is None or cur.options or cur.answer is not None:
            self._start(line)  # a question without a number: plain text that options will follow
        else:
            cur.question.append(line.strip())


def parse_mcqs(text: str) -> ParseReport:
    """Every well-formed question in `text`; problems name what was skipped and why."""
    report = ParseReport()
    if not isinstance(text, str) or not text.strip():
        report.problems.append("empty output")
        return report
    reader = _Reader()
    for line in _strip_fences(text).split("\n"):
        if line.strip():
            reader.feed(line)
    for block in reader.blocks:
        if not block.options and block.answer is None and split_inline_options(_clean_question(
                " ".join(block.question))) is None:
            reader.stray.append(" ".join(block.question)[:80])  # prose, not a question: count it as stray text
            continue
        report.blocks += 1
        block.number = report.blocks
        _block_to_question(block, report)
    if reader.stray:
        report.problems.append(f"text outside any question ({len(reader.stray)} line(s), e.g. "
                               f"{reader.stray[0][:60]!r})")
    if not report.blocks:
        report.problems.append("no question found")
    return report


__all__ = ["ParsedQuestion", "ParseReport", "parse_mcqs"]
