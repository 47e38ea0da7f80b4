"""Plain records that flow through evaluation and training.

They carry no behaviour beyond small derived properties, so every stage can be
tested with hand-built values and serialised to JSON without custom encoders.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "unanswered", "failed"]


@dataclass(frozen=True)
class Question:
    """One benchmark question about one or more images.

    `options` is None for an open question; for a multiple-choice question
    `answer` is the correct option letter ("A", "B", ...). For an open question
    `answer` is the target text and `targets` may hold further accepted answers.
    """

    id: str
    text: str
    answer: str
    options: tuple[str, ...] | None = None
    category: str | None = None
    metric: str | None = None  # None: the benchmark's default metric
    targets: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_mcq(self) -> bool:
        return self.options is not None

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every accepted answer for an open question (answer first)."""
        return (self.answer, *[t for t in self.targets if t != self.answer])


@dataclass(frozen=True)
class ImageRef:
    """An image as the benchmark names it.

    `key` is the benchmark's own image string (a path relative to the benchmark
    file, or a dataset row id); captions files use it to name the image.
    `sha256` is the hash of the image bytes, the identity caches use.
    Exactly one of `path` and `data` locates the bytes.
    """

    key: str
    sha256: str
    path: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class Sample:
    """The unit a captioner sees: one image (or several) and every question about it."""

    id: str
    images: tuple[ImageRef, ...]
    questions: tuple[Question, ...]
    benchmark: str = ""

    @property
    def image_key(self) -> str:
        return "|".join(i.key for i in self.images)

    @property
    def image_hash(self) -> str:
        return "|".join(i.sha256 for i in self.images)


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; `temperature == 0` means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RawPrompt(str):
    """A captioning prompt already rendered as the whole model input (CapRL's raw ChatML, image slots included).

    A plain `str` prompt is an instruction the captioner wraps in its own chat
    template; a RawPrompt is sent as written by engines that can (transformers and
    vLLM for models whose vocabulary has the prompt's image tokens). Others use its
    `instruction` with their chat template.
    """

    def __new__(cls, text: str, instruction: str = "") -> "RawPrompt":
        prompt = super().__new__(cls, text)
        prompt.instruction = instruction
        return prompt

    def __getnewargs__(self) -> tuple[str, str]:  # pickles whole (data-parallel replicas receive prompts)
        return str(self), self.instruction


@dataclass(frozen=True)
class JudgeRequest:
    """One prompt for the text-only judge.

    `messages` are chat turns ({"role", "content"}); `prefill` starts the
    assistant's turn (CapRL prefills "The answer is"). `chat_format` is
    "chatml" to render the literal ChatML text the published protocol used, "raw"
    for a whole prompt string a benchmark wrote itself (its one message), or
    "model" to use the judge tokenizer's own chat template.
    """

    messages: tuple[tuple[str, str], ...]
    prefill: str = ""
    chat_format: Literal["chatml", "raw", "model"] = "model"

    @property
    def literal(self) -> bool:
        """Whether the request is sent as text it fully determines (not through the judge's chat template)."""
        return self.chat_format in ("chatml", "raw")

    def to_dict(self) -> dict[str, Any]:
        return {"messages": [list(m) for m in self.messages], "prefill": self.prefill,
                "chat_format": self.chat_format}


@dataclass
class Caption:
    """The n sampled captions of one sample from one captioner."""

    sample_id: str
    captioner: str
    texts: list[str]
    status: Status = "ok"
    error: str | None = None


@dataclass
class Answer:
    """The judge's answer to one question about one caption, under one option order."""

    question_id: str
    caption_index: int
    draw: int
    raw: str  # judge text, or a JSON summary of scores in the log-prob modes
    extracted: str | None
    score: float  # in [0, 1]; an expectation in the expected estimator
    correct: bool
    status: Status = "ok"
    letters: str = ""  # option order shown, e.g. "CADB": shown position i holds original option letters[i]
    gold: str = ""  # the gold answer as shown to the judge (letter after shuffling)
    error: str | None = None
