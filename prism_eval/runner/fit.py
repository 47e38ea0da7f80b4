"""Captions fitted to the judge's context window: an over-long caption is cut from its end, and counted.

A judge reads the caption, the question and its options in one prompt. A caption
longer than the judge's context (a 24,500-token caption for an 8,192-token
judge) would otherwise run for minutes and be scored on whatever the model makes
of positions it was never trained on. Policy: keep the caption's beginning, cut
its end so the longest prompt of its sample fits with room for the answer, and
count every cut caption in results.json (`truncated` per benchmark).

Cheap first: a caption whose UTF-8 length plus its prompt's length (in bytes;
no tokenizer yields more tokens than bytes) fits in the context cannot be too
long, so the tokenizer is loaded only when a caption might be, and a fully
cached rerun still loads nothing. The context is read from the judge's config
files (never the weights); a judge whose context is unknown here (an
OpenAI-compatible server, a plugin engine) is sent captions whole, and the
server's error for a prompt that is too long marks that item failed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from prism_eval.core.protocols import Protocol
from prism_eval.core.records import JudgeRequest, Question
from prism_eval.core.utility import CaptionSet, UtilityConfig, shown_options_for

TEMPLATE_SLACK_BYTES = 512  # what a chat template adds around the turns (system prompt, role headers)
MARGIN_TOKENS = 16  # a cut caption may re-tokenize a few tokens longer at its new end
MAX_GENERATE_RESERVE = 256  # room kept for a generated answer (answers are short; the cap keeps captions)
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


@dataclass
class JudgeWindow:
    """The judge's context length (tokens) and how to get its tokenizer when a caption may not fit."""

    context: int
    folder: str | None = None  # where the tokenizer files are
    tokenizer: Any = field(default=None, repr=False)

    def get_tokenizer(self) -> Any:
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        return self.tokenizer


def _context_of(config: dict[str, Any]) -> int | None:
    for source in (config, config.get("text_config") or {}):
        for key in _CONTEXT_KEYS:
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def read_context(folder: str | Path) -> int | None:
    """The context length a model folder's config.json (and tokenizer_config.json) states, or None."""
    folder = Path(folder)
    try:
        context = _context_of(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return None
    try:
        limit = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError, AttributeError):
        limit = None
    if isinstance(limit, int) and 0 < limit < 10_000_000:  # tokenizers without a limit say 1e30
        context = min(context, limit) if context else limit
    return context


def _folder_of(spec: str) -> str | None:
    """The local folder holding a judge's config and tokenizer, without loading or downloading anything."""
    from prism_eval.engines.registry import ModelSpecError, parse_model_spec

    try:
        parsed = parse_model_spec(spec, "judge")
    except ModelSpecError:
        return None
    if parsed.kind == "builtin":
        from prism_eval.engines.builtin import converted_dir

        return str(converted_dir(parsed.target))
    if parsed.kind not in ("hf", "vllm"):
        return None
    target = Path(parsed.target).expanduser()
    if target.is_dir():
        return str(target)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(parsed.target, "config.json")
    except Exception:  # noqa: BLE001 - not a hub id, or no cache: the context is unknown
        return None
    return str(Path(found).parent) if isinstance(found, str) else None


def judge_window(spec: str, engine: Any = None) -> JudgeWindow | None:
    """The judge's window from a loaded engine (its tokenizer and model config) or from its files by spec."""
    if engine is not None and getattr(engine, "tokenizer", None) is not None:
        config = getattr(getattr(engine, "model", None), "config", None)
        context = _context_of(config.to_dict()) if hasattr(config, "to_dict") else None
        if context:
            return JudgeWindow(context, tokenizer=engine.tokenizer)
    folder = _folder_of(spec)
    context = read_context(folder) if folder else None
    return JudgeWindow(context, folder) if context else None


def _requests(caption: str, question: Question, protocol: Protocol, config: UtilityConfig
              ) -> tuple[JudgeRequest, tuple[str, ...]]:
    """The judge request for one question (first option order) and the continuations it scores."""
    if question.options is None:
        return protocol.open_request(caption, question, config.answer_format), ()
    shown = shown_options_for(question, 0, protocol, config.seed)
    if config.scoring == "option-loglik":
        return protocol.option_request(caption, question, shown)
    return protocol.mcq_request(caption, question, shown), ()


def _reserve(protocol: Protocol, config: UtilityConfig) -> int:
    if config.scoring == "generate":
        return min(protocol.judge_sampling.max_new_tokens, MAX_GENERATE_RESERVE)
    return 1


def _request_bytes(request: JudgeRequest, continuations: Sequence[str]) -> int:
    text = "".join(content for _, content in request.messages) + request.prefill
    return len(text.encode()) + max((len(c.encode()) for c in continuations), default=0)


class _Fitter:
    """Per sample: the tokens its longest empty-caption prompt takes, computed once when needed."""

    def __init__(self, window: JudgeWindow, protocol: Protocol, config: UtilityConfig) -> None:
        self.window, self.protocol, self.config = window, protocol, config
        self.reserve = _reserve(protocol, config) + MARGIN_TOKENS

    def may_overflow(self, caption: str, overhead_bytes: int) -> bool:
        return len(caption.encode()) + overhead_bytes + TEMPLATE_SLACK_BYTES + self.reserve > self.window.context

    def budget(self, questions: Sequence[Question]) -> int:
        from prism_eval.engines.judge_inputs import encode, prompt_ids

        tok = self.window.get_tokenizer()
        longest = 0
        for q in questions:
            request, conts = _requests("", q, self.protocol, self.config)
            tail = max((len(encode(tok, c)) for c in conts), default=0)
            longest = max(longest, len(prompt_ids(tok, request)) + tail)
        return self.window.context - longest - self.reserve

    def cut(self, caption: str, budget: int) -> str | None:
        """The caption cut to `budget` tokens from its end; None when it already fits."""
        from prism_eval.engines.judge_inputs import encode

        tok = self.window.get_tokenizer()
        ids = encode(tok, caption)
        if len(ids) <= budget:
            return None
        return tok.decode(ids[:budget], skip_special_tokens=False) if budget > 0 else ""


def fit_captions(sets: Sequence[CaptionSet], protocol: Protocol, config: UtilityConfig,
                 window: JudgeWindow | None) -> tuple[list[CaptionSet], int]:
    """The caption sets with every caption cut to fit the judge's window; and how many were cut."""
    if window is None:
        return list(sets), 0
    fitter = _Fitter(window, protocol, config)
    out: list[CaptionSet] = []
    truncated = 0
    for cs in sets:
        questions = cs.sample.questions
        overhead = max((_request_bytes(*_requests("", q, protocol, config)) for q in questions), default=0)
        if not any(fitter.may_overflow(c, overhead) for c in cs.captions):
            out.append(cs)
            continue
        budget = fitter.budget(questions)
        captions = []
        for caption in cs.captions:
            cut = fitter.cut(caption, budget) if fitter.may_overflow(caption, overhead) else None
            truncated += cut is not None
            captions.append(caption if cut is None else cut)
        out.append(replace(cs, captions=captions))
    return out, truncated
