"""Load the policy VLM and its processor, and save checkpoints the evaluator loads with `hf:<dir>`.

The processor comes from `prism_eval.engines.hf.load_vlm_processor`, the same
loader the evaluator's HFCaptioner uses, so training and evaluation tokenize a
prompt identically. A Qwen2-VL-family processor assembled without a video
processor (no torchvision here) cannot `save_pretrained` itself; the processor
returned here saves its parts instead (tokenizer, image processor, chat
template), which is exactly what the loader reassembles.
"""
from __future__ import annotations

import types
from pathlib import Path
from typing import Any


def _save_parts(self, save_directory, *args: Any, **kwargs: Any):
    """save_pretrained for a processor without a video processor: its parts, then the chat template."""
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    self.tokenizer.save_pretrained(out)
    self.image_processor.save_pretrained(out)
    if getattr(self, "chat_template", None):
        (out / "chat_template.jinja").write_text(self.chat_template)
    return [str(out)]


def make_saveable(processor):
    """Give a processor assembled without a video processor a working save_pretrained (in place)."""
    if hasattr(processor, "video_processor") and getattr(processor, "video_processor", None) is None:
        processor.save_pretrained = types.MethodType(_save_parts, processor)
    return processor


def load_processor(model: str, trust_remote_code: bool = False, revision: str | None = None):
    """The policy's processor, left-padded (trl generates from left-padded prompts)."""
    from prism_eval.engines.hf import load_vlm_processor

    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kw["revision"] = revision
    try:
        processor = load_vlm_processor(model, **kw)
    except (OSError, ValueError, ImportError, KeyError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{model}: cannot load the policy's processor: {first}") from None
    tok = getattr(processor, "tokenizer", None)
    if tok is None:
        raise ValueError(f"{model}: the processor has no tokenizer; caprl-train needs an image-text-to-text model")
    if not getattr(processor, "chat_template", None):
        raise ValueError(f"{model}: the processor has no chat template; caprl-train needs a chat VLM")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return make_saveable(processor)


def resolve_dtype(name: str, device: str):
    import torch

    key = (name or "auto").lower()
    if key == "auto":
        if device == "cpu":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if key not in table:
        raise ValueError(f"dtype {name!r}: unknown (use auto, float32, bfloat16 or float16)")
    return table[key]


def load_policy(model: str, dtype: str = "auto", trust_remote_code: bool = False, revision: str | None = None,
                attn_implementation: str | None = None, device: str | None = None):
    """(model, processor) for any image-text-to-text model (hub id or local folder)."""
    import torch
    from transformers import AutoModelForImageTextToText

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code, "dtype": resolve_dtype(dtype, device)}
    if revision:
        kw["revision"] = revision
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    processor = load_processor(model, trust_remote_code=trust_remote_code, revision=revision)
    try:
        policy = AutoModelForImageTextToText.from_pretrained(model, **kw)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{model}: cannot load the policy as an image-text-to-text model: {first}") from None
    return policy, processor


def save_for_evaluator(model, processor, out_dir: str | Path) -> Path:
    """Write a plain (merged) checkpoint + processor that `hf:<out_dir>` loads."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


__all__ = ["load_policy", "load_processor", "make_saveable", "save_for_evaluator", "resolve_dtype"]
