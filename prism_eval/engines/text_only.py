"""A judge from any checkpoint: causal LMs as they are, Qwen2-VL-family checkpoints as their language model.

CapRL's evaluator, internlm/CapRL-Eval-3B, is a fine-tuned Qwen2.5-VL-3B: an
image-text-to-text checkpoint. A judge only ever reads text, and for text alone
Qwen2-VL's multimodal rotary embedding (three position ids, all equal) is
ordinary rotary embedding, so the checkpoint's language model and head, loaded
into a plain Qwen2 causal LM, give the same logits (a test checks it to 0.0)
with none of the vision tower's memory, and every judge capability (shared-prefix
scoring included) works unchanged.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

# model_type -> how its language model becomes a plain causal LM
_QWEN2_VL_FAMILY = ("qwen2_vl", "qwen2_5_vl")


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """The vision tower's weights are left out on purpose: transformers' "unexpected keys" report is noise here."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def text_config_of(config: Any) -> Any:
    """A Qwen2Config with a Qwen2-VL-family checkpoint's language-model settings (RoPE without mrope sections)."""
    from transformers import Qwen2Config

    values = config.text_config.to_dict()
    values.pop("model_type", None)
    rope = dict(values.get("rope_parameters") or {})
    rope.pop("mrope_section", None)
    values["rope_parameters"] = rope or None
    text = Qwen2Config(**values)
    text.tie_word_embeddings = bool(getattr(config, "tie_word_embeddings", text.tie_word_embeddings))
    return text


def load_text_model(path_or_hub_id: str, dtype: Any, **load_kw: Any) -> Any:
    """The causal LM a judge runs: AutoModelForCausalLM, or a Qwen2-VL-family checkpoint's language model."""
    from transformers import AutoConfig, AutoModelForCausalLM, Qwen2ForCausalLM

    config = AutoConfig.from_pretrained(path_or_hub_id, **{k: v for k, v in load_kw.items() if k != "gguf_file"}) \
        if "gguf_file" not in load_kw else None
    if config is not None and getattr(config, "model_type", "") in _QWEN2_VL_FAMILY:
        with _quiet_loading():
            # newer checkpoints keep the language model under model.language_model, older ones under model
            return Qwen2ForCausalLM.from_pretrained(path_or_hub_id, config=text_config_of(config), dtype=dtype,
                                                    key_mapping={r"^model\.language_model\.": "model."},
                                                    **load_kw)
    return AutoModelForCausalLM.from_pretrained(path_or_hub_id, dtype=dtype, **load_kw)


def processor_chat_template(path_or_hub_id: str, **load_kw: Any) -> str | None:
    """The chat template a vision-language checkpoint keeps beside its processor, not in its tokenizer."""
    import json

    from transformers.utils import cached_file

    kw = {k: v for k, v in load_kw.items() if k in ("revision", "local_files_only")}
    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            found = cached_file(path_or_hub_id, name, _raise_exceptions_for_missing_entries=False, **kw)
        except OSError:
            found = None
        if found:
            with open(found, encoding="utf-8") as fh:
                text = fh.read()
            return json.loads(text).get("chat_template") if name.endswith(".json") else text
    return None
