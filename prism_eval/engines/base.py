"""The two small interfaces every model back end implements.

The core calls a Judge only through these three methods, and the pipeline
calls a Captioner only through `caption`, so a back end (transformers, vLLM, an
OpenAI-compatible server, a captions file) can be swapped without touching
scoring code.
"""
from __future__ import annotations

import inspect
from typing import Any, Protocol, Sequence, runtime_checkable

from prism_eval.core.records import JudgeRequest, Sampling

# Options callers may pass to any engine; one that has no use for them ignores them.
GENERIC_OPTIONS = frozenset({"trust_remote_code", "dtype", "device", "batch_size", "max_pixels", "revision", "spec"})


class EngineError(RuntimeError):
    """A model call failed in a way that retrying the same call will not fix."""


_CHATML_VISION_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>")


def takes_raw_chatml_vision(tokenizer: Any) -> bool:
    """Whether a captioner's tokenizer has the tokens of CapRL's raw prompt (the Qwen2-VL family's)."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return all(token in vocab for token in _CHATML_VISION_TOKENS)


def construct(factory: Any, *args: Any, **opts: Any) -> Any:
    """Call an engine constructor with only the options it takes.

    Callers pass one set of generic options (trust_remote_code, dtype, ...) to
    whatever engine a spec names; a captions file has no use for most of them.
    An option that is neither generic nor taken is an error (a typo, not noise).
    """
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in opts if k not in params and k not in GENERIC_OPTIONS)
        if unknown:
            raise ValueError(f"{getattr(factory, '__name__', factory)}: unknown option(s) {', '.join(unknown)}")
        opts = {k: v for k, v in opts.items() if k in params}
    return factory(*args, **opts)


@runtime_checkable
class Captioner(Protocol):
    spec: str

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this captioner's outputs (spec, weights revision, dtype...)."""

    def caption(self, images: Sequence[Sequence[Any]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        """Caption each entry (a list of PIL images) with its prompt; n texts per entry."""


@runtime_checkable
class Judge(Protocol):
    spec: str

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this judge's outputs (spec, weights revision, dtype...)."""

    def generate(self, requests: Sequence[JudgeRequest], sampling: Sampling) -> list[str]:
        """Continue each request after its prefill; return the generated text."""

    def letter_logprobs(self, requests: Sequence[JudgeRequest],
                        letters: Sequence[Sequence[str]]) -> list[list[float]]:
        """Log-probability of each letter as the next token after the prefill.

        Returned values are raw log-probabilities over the full vocabulary (not
        renormalised over the letters), so callers can see the letter mass.
        """

    def option_logliks(self, requests: Sequence[JudgeRequest],
                       continuations: Sequence[Sequence[str]]) -> list[list[tuple[float, int]]]:
        """(sum of token log-probs, token count) of each continuation after the prefill."""


@runtime_checkable
class TokenEnds(Protocol):
    """An optional judge capability: caption lengths in the judge's tokens, and truncation to k of them.

    A judge without it (a remote server) still scores; caption lengths then count words.
    """

    def token_ends(self, texts: Sequence[str]) -> list[list[int]] | None:
        """For each text, the character offset after each of its tokens (prism_eval.engines.tokens); None
        when the tokenizer cannot map tokens to characters."""
