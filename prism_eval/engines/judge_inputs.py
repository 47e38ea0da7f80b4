"""Turn JudgeRequests into the exact token ids a judge model scores.

Every engine that has the judge's tokenizer (vLLM offline, a vLLM server through
its /tokenize endpoint) builds its inputs here, so they all feed the model the
same ids and their scores agree. Pure functions of a Hugging Face tokenizer; no
torch or vLLM import.
"""
from __future__ import annotations

from typing import Any, Sequence

from prism_eval.core.chat import render_literal
from prism_eval.core.records import JudgeRequest


def chat_messages(request: JudgeRequest) -> list[dict[str, str]]:
    """The request's turns as chat messages, with the prefill as an open assistant turn."""
    msgs = [{"role": role, "content": content} for role, content in request.messages]
    if request.prefill:
        msgs.append({"role": "assistant", "content": request.prefill})
    return msgs


def template_flags(request: JudgeRequest) -> dict[str, bool]:
    """How to apply a chat template: continue the prefill, or open a fresh assistant turn."""
    if request.prefill:
        return {"add_generation_prompt": False, "continue_final_message": True}
    return {"add_generation_prompt": True, "continue_final_message": False}


def prompt_text(request: JudgeRequest, tokenizer: Any) -> str:
    """The full prompt text: literal ChatML, or the tokenizer's chat template with the prefill continued.

    A tokenizer without a chat template (a base model) gets the plain turns
    separated by blank lines, then the prefill, as the transformers judge does.
    """
    if request.literal:
        return render_literal(request)
    if request.chat_format != "model":
        raise ValueError(f"chat_format {request.chat_format!r}: expected 'chatml', 'raw' or 'model'")
    if not getattr(tokenizer, "chat_template", None):
        text = "\n\n".join(c for _, c in request.messages)
        return f"{text}\n\n{request.prefill}" if request.prefill else f"{text}\n\n"
    return tokenizer.apply_chat_template(chat_messages(request), tokenize=False, **template_flags(request))


def adds_special_tokens(request: JudgeRequest, tokenizer: Any) -> bool:
    """Literal ChatML (and plain text) is a raw prompt: the tokenizer adds its specials, as a
    server does for a text completion; a chat-template rendering already holds any BOS it wants."""
    return request.literal or not getattr(tokenizer, "chat_template", None)


def encode(tokenizer: Any, text: str, add_special_tokens: bool = False) -> list[int]:
    """Token ids of text as written."""
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def prompt_ids(tokenizer: Any, request: JudgeRequest) -> list[int]:
    """The ids the judge model reads for a request (its prompt, ending with the prefill)."""
    ids = encode(tokenizer, prompt_text(request, tokenizer), adds_special_tokens(request, tokenizer))
    if not ids:
        raise ValueError("judge request renders to an empty prompt")
    return ids


def continuation_ids(tokenizer: Any, continuation: str) -> list[int]:
    """A scored continuation's ids, encoded on its own and appended to the prompt ids
    (lm-eval-harness style): needs nothing but an encode, so a server's /tokenize
    builds the same ids."""
    ids = encode(tokenizer, continuation)
    if not ids:
        raise ValueError(f"option continuation {continuation!r} has no tokens")
    return ids


def letter_token_ids(tokenizer: Any, letter: str) -> list[int]:
    """Single-token spellings of an option letter: "A" and " A" where each is one token.

    After a prefill such as "The answer is" a model writes " A"; right after a
    chat header it writes "A". A letter's log-probability is the log-sum-exp
    over its spellings, so neither position is penalised.
    """
    ids: list[int] = []
    for spelling in (letter, " " + letter):
        enc = encode(tokenizer, spelling)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(enc[0])
    if not ids:
        raise ValueError(f"option letter {letter!r} is not a single token for this judge's tokenizer")
    return ids


def logsumexp(values: Sequence[float]) -> float:
    import math

    vals = [v for v in values if v != float("-inf")]
    if not vals:
        return float("-inf")
    top = max(vals)
    return top + math.log(sum(math.exp(v - top) for v in vals))
