"""Tiny random-weight models, built locally so the real model code paths run offline.

`build_tiny_vlm` writes an ordinary Hugging Face folder (LLaVA or Qwen2.5-VL)
that `hf:<dir>` loads like any hub checkpoint; `build_tiny_lm` writes a text-only
chat model for judge tests. The tokenizer is a byte-level BPE trained on a fixed
English text, and generation suppresses tokens that decode to unprintable bytes,
so the random captions read as word salad rather than control characters.
Everything is seeded: the same arguments give byte-identical weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
PAD, EOS = "<|endoftext|>", "<|im_end|>"

# Plain English the tokenizer learns its merges from, so most tokens are whole words.
CORPUS = """\
A red car is parked next to a blue bicycle on a quiet street in the morning.
Two children are playing with a yellow ball in the green park near the river.
The kitchen has a white table, four wooden chairs and a large window facing the garden.
A woman in a black coat walks her brown dog across the snowy square.
The chart shows sales for each month; the tallest bar is in July and the shortest in February.
There are three apples, two oranges and one banana in the bowl on the counter.
A man is reading a newspaper while sitting on a bench under a tall tree.
The sign above the door reads OPEN in bold orange letters.
Several boats float in the harbor, and the sky is cloudy with a hint of rain.
A small cat sleeps on a soft pillow beside the fireplace in the living room.
The road curves to the left past a farm with horses, cows and a red barn.
On the desk there is a laptop, a cup of coffee, a notebook and a pen.
The mountain is covered with snow, and a narrow path leads up to the summit.
A group of people stand in line outside the bakery waiting for fresh bread.
The diagram has a circle, a square and a triangle, each drawn in a different color.
A train crosses the bridge over the valley as the sun sets behind the hills.
The photo shows a crowded market with stalls selling fruit, vegetables and flowers.
A girl holds an umbrella while she waits at the bus stop in the rain.
The table lists the population of five cities, with the largest value in the first row.
Birds fly over the lake, and a fisherman sits in a small wooden boat.
The bedroom has a bed with blue sheets, a lamp on the night table and a painting on the wall.
A chef is cutting vegetables on a board in a bright restaurant kitchen.
The text at the bottom of the poster gives the date and the time of the concert.
Three students are looking at a map spread out on the floor of the classroom.
The building is tall and made of glass, and its windows reflect the clouds.
A player kicks the ball toward the goal while the crowd watches from the stands.
The picture is dark, with a single light shining on an old stone wall.
A vase of white flowers stands in the middle of the round dining table.
The line graph rises steadily from left to right and then drops sharply at the end.
An airplane is flying high above the city, leaving a long white trail behind it.
"""

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- IMAGE -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
IMAGE_PLACEHOLDER = {"llava": "'<image>'", "qwen2_5_vl": "'<|vision_start|><|image_pad|><|vision_end|>'",
                     "text": "''"}

Arch = Literal["llava", "qwen2_5_vl"]


# Qwen2.5-VL-Instruct's own template opens with this system turn unless the messages bring one.
QWEN_DEFAULT_SYSTEM = (
    "{%- if messages[0]['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
)


def _chat_template(arch: str) -> str:
    template = CHAT_TEMPLATE.replace("IMAGE", IMAGE_PLACEHOLDER[arch])
    return QWEN_DEFAULT_SYSTEM + template if arch == "qwen2_5_vl" else template


def build_tokenizer(vocab_size: int = 1024, arch: str = "text"):
    """A byte-level BPE on CORPUS with the chat and vision special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=SPECIAL_TOKENS[1:])
    fast.chat_template = _chat_template(arch)
    return fast


def unprintable_token_ids(tok) -> list[int]:
    """Ids that decode to control or non-ASCII bytes, or are specials other than EOS."""
    bad = []
    eos = tok.convert_tokens_to_ids(EOS)
    for i in range(len(tok)):
        if i == eos:
            continue
        if tok.convert_ids_to_tokens(i) in SPECIAL_TOKENS:
            bad.append(i)
            continue
        text = tok.decode([i])
        if not text or any(not (ch.isascii() and (ch.isprintable() or ch == "\n")) for ch in text):
            bad.append(i)
    return bad


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _finish(model, tok, out: Path) -> None:
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids(EOS)
    model.generation_config.pad_token_id = tok.convert_tokens_to_ids(PAD)
    model.generation_config.bos_token_id = None
    model.generation_config.suppress_tokens = unprintable_token_ids(tok)
    model.generation_config.do_sample = False
    model.save_pretrained(out)


def _text_config_kwargs(tok) -> dict:
    return dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                tie_word_embeddings=False, pad_token_id=tok.convert_tokens_to_ids(PAD),
                eos_token_id=tok.convert_tokens_to_ids(EOS), bos_token_id=None)


def build_tiny_vlm(out_dir: str | Path, arch: Arch = "llava", seed: int = 0) -> Path:
    """Write a tiny random VLM that `hf:<out_dir>` loads; return the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if arch == "llava":
        _build_llava(out, seed)
    elif arch == "qwen2_5_vl":
        _build_qwen2_5_vl(out, seed)
    else:
        raise ValueError(f"build_tiny_vlm: unknown arch {arch!r} (use 'llava' or 'qwen2_5_vl')")
    (out / "prism_eval_tiny.json").write_text(json.dumps({"arch": arch, "seed": seed}) + "\n")
    return out


def _build_llava(out: Path, seed: int) -> None:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = build_tokenizer(arch="llava")
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=64)
    text = LlamaConfig(**_text_config_kwargs(tok))
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_select_strategy="default", vision_feature_layer=-1,
                      tie_word_embeddings=False)
    _seed_everything(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    imgp = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = LlavaProcessor(image_processor=imgp, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=tok.chat_template, image_token="<image>")
    _finish(model, tok, out)
    proc.save_pretrained(out)


def _build_qwen2_5_vl(out: Path, seed: int) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = build_tokenizer(arch="qwen2_5_vl")
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(_text_config_kwargs(tok), rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                           "mrope_section": [2, 3, 3]})
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                  fullatt_block_indexes=[1], window_size=56, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3)
    cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False)
    _seed_everything(seed)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    imgp = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, temporal_patch_size=2,
                                    merge_size=2)
    _finish(model, tok, out)
    # The Qwen2.5-VL processor cannot be saved without a (torchvision) video processor:
    # save its parts; HFCaptioner reassembles it.
    tok.save_pretrained(out)
    imgp.save_pretrained(out)
    (out / "chat_template.jinja").write_text(tok.chat_template)


def build_tiny_lm(out_dir: str | Path, arch: Literal["llama", "qwen2"] = "llama", seed: int = 0) -> Path:
    """A tiny random text-only chat model (ChatML template), for fast judge tests."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(arch="text")
    if arch == "llama":
        cfg, cls = LlamaConfig(**_text_config_kwargs(tok)), LlamaForCausalLM
    elif arch == "qwen2":
        cfg, cls = Qwen2Config(**_text_config_kwargs(tok)), Qwen2ForCausalLM
    else:
        raise ValueError(f"build_tiny_lm: unknown arch {arch!r} (use 'llama' or 'qwen2')")
    _seed_everything(seed)
    model = cls(cfg).eval()
    _finish(model, tok, out)
    tok.save_pretrained(out)
    (out / "prism_eval_tiny.json").write_text(json.dumps({"arch": arch, "seed": seed}) + "\n")
    return out
