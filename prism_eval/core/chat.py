"""Literal ChatML rendering, the format the published CapRL reward prompt used."""
from __future__ import annotations

from prism_eval.core.records import JudgeRequest


def render_chatml(request: JudgeRequest) -> str:
    """Render a request as raw ChatML text, with no system turn unless one is given.

    `<|im_start|>{role}\\n{content}<|im_end|>\\n` per turn, then the open assistant
    turn with the prefill: exactly the string CapRL's reward server sent to vLLM.
    """
    parts = [f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in request.messages]
    parts.append(f"<|im_start|>assistant\n{request.prefill}")
    return "".join(parts)


def render_literal(request: JudgeRequest) -> str:
    """The text of a request that carries its own format: ChatML built from its turns, or a raw prompt as given.

    A raw request (chat_format "raw") is one whole prompt string written by the
    benchmark itself, as CapRL's evaluation files hold them; its prefill follows it.
    """
    if request.chat_format == "raw":
        return "".join(content for _, content in request.messages) + request.prefill
    return render_chatml(request)
