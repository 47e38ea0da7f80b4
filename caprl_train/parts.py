"""Which parts of a policy VLM train: the vision encoder, the projector, the language model.

Parameters are told apart by name, the way transformers lays out its VLMs
(Qwen2-VL family: `visual.*` with the projector at `visual.merger`; LLaVA
family: `vision_tower`, `multi_modal_projector`, `language_model`). A part that
is asked to freeze or train but has no parameter of its own is an error rather
than a silent full fine-tune.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from caprl_train.config import TRAIN_PARTS

_PROJECTOR = ("multi_modal_projector", "visual.merger", "mm_projector", "connector", "vision_projection")
_VISION = ("visual.", "vision_tower", "vision_model", "vision_encoder", "image_encoder")


def part_of(name: str) -> str:
    """'projector', 'vision' or 'language' for a parameter name."""
    if any(key in name for key in _PROJECTOR):
        return "projector"
    if any(key in name for key in _VISION):
        return "vision"
    return "language"


def check_parts(parts: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))
    unknown = [p for p in chosen if p not in TRAIN_PARTS]
    if unknown or not chosen:
        raise ValueError(f"--train-parts {','.join(chosen) or '(empty)'}: choose from {', '.join(TRAIN_PARTS)}")
    return chosen


def freeze_parts(model: Any, parts: Iterable[str]) -> Counter:
    """Train only `parts` of `model` (requires_grad off elsewhere); returns trainable parameters per part."""
    chosen = check_parts(parts)
    named = list(model.named_parameters())
    found = Counter(part_of(name) for name, _ in named)
    if set(chosen) == set(TRAIN_PARTS):
        return Counter({part: sum(p.numel() for n, p in named if part_of(n) == part) for part in found})
    missing = [p for p in TRAIN_PARTS if not found[p]]
    if missing:
        raise ValueError(f"--train-parts: cannot find the {' or '.join(missing)} parameters of "
                         f"{type(model).__name__} by name; train every part or freeze modules with --grpo-arg")
    trainable: Counter = Counter()
    for name, param in named:
        part = part_of(name)
        param.requires_grad_(part in chosen)
        if part in chosen:
            trainable[part] += param.numel()
    return trainable
