"""Model spec strings -> engines (the contract in DESIGN.md).

  hf:<path-or-hub-id>        transformers
  vllm:<path-or-hub-id>      vLLM
  openai:<model>@<base-url>  an OpenAI-compatible server
  file:<captions.jsonl>      captions from a file (captioner only)
  none                       empty captions, the blind baseline (captioner only)
  builtin:<name>             an embedded model (judge only; builtin:smollm2-135m)
  org/name                   vLLM if importable and a CUDA GPU is visible, else transformers

Engine modules are imported only when their spec is used, so a missing optional
stack (vLLM, openai) only matters to the runs that ask for it.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass
from typing import Any, Literal

from prism_eval.engines.base import EngineError

Role = Literal["captioner", "judge"]
_BARE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_OPENAI = re.compile(r"^(?P<model>[^@\s]+(?:@[^@\s]+)*?)@(?P<url>https?://\S+)$")


@dataclass(frozen=True)
class ParsedSpec:
    kind: Literal["hf", "vllm", "openai", "file", "none", "builtin"]
    target: str = ""  # path / hub id / model name / file / builtin name
    base_url: str = ""  # openai only


def parse_spec(spec: str, role: Role) -> ParsedSpec:
    """Parse a spec for a role; ValueError with a one-line message when it is not valid."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"model spec {spec!r}: empty")
    s = spec.strip()
    if s == "none":
        if role != "captioner":
            raise ValueError("model spec 'none': only valid as a captioner (the blind baseline)")
        return ParsedSpec("none")
    prefix, sep, rest = s.partition(":")
    if sep and prefix in ("hf", "vllm", "openai", "file", "builtin"):
        if not rest.strip():
            raise ValueError(f"model spec {spec!r}: nothing after '{prefix}:'")
        rest = rest.strip()
        if prefix == "openai":
            m = _OPENAI.match(rest)
            if not m:
                raise ValueError(f"model spec {spec!r}: expected openai:<model>@<http(s)://base-url>")
            return ParsedSpec("openai", m.group("model"), m.group("url"))
        if prefix == "file" and role != "captioner":
            raise ValueError(f"model spec {spec!r}: file: is only valid as a captioner")
        if prefix == "builtin" and role != "judge":
            raise ValueError(f"model spec {spec!r}: builtin: models are judges, not captioners")
        return ParsedSpec(prefix, rest)  # type: ignore[arg-type]
    if _BARE.match(s):
        return ParsedSpec("vllm" if _vllm_usable() else "hf", s)
    raise ValueError(f"model spec {spec!r}: unknown form (use hf:, vllm:, openai:<model>@<url>, file:, none, "
                     "builtin:, or org/name)")


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


# Options callers may pass to any engine; one that has no use for them ignores them.
GENERIC_OPTIONS = frozenset({"trust_remote_code", "dtype", "device", "batch_size", "max_pixels", "revision"})


def _make(cls, *args: Any, **opts: Any):
    """Construct an engine, passing only the options its constructor takes.

    Callers pass one set of generic options (trust_remote_code, dtype, ...) to
    whatever engine a spec names; a captions file has no use for most of them.
    """
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in opts if k not in params and k not in GENERIC_OPTIONS)
        if unknown:
            raise ValueError(f"{getattr(cls, '__name__', cls)}: unknown option(s) {', '.join(unknown)}")
        opts = {k: v for k, v in opts.items() if k in params}
    return cls(*args, **opts)


def _engine_class(module: str, name: str, spec: str):
    try:
        mod = importlib.import_module(f"prism_eval.engines.{module}")
        return getattr(mod, name)
    except (ImportError, AttributeError) as err:
        raise EngineError(f"{spec}: the {module} engine is not available here ({err})") from err


def load_captioner(spec: str, **opts: Any):
    """A Captioner for a spec string; opts go to the engine's constructor."""
    p = parse_spec(spec, "captioner")
    if p.kind == "none":
        return _make(_engine_class("files", "NoCaptioner", spec), **opts)
    if p.kind == "file":
        return _make(_engine_class("files", "FileCaptioner", spec), p.target, **opts)
    if p.kind == "hf":
        from prism_eval.engines.hf import HFCaptioner

        return _make(HFCaptioner, p.target, spec=f"hf:{p.target}", **opts)
    if p.kind == "vllm":
        return _make(_engine_class("vllm", "VLLMCaptioner", spec), p.target, **opts)
    if p.kind == "openai":
        return _make(_engine_class("openai", "OpenAICaptioner", spec), p.target, p.base_url, **opts)
    raise ValueError(f"model spec {spec!r}: not usable as a captioner")


def load_judge(spec: str, **opts: Any):
    """A Judge for a spec string; opts go to the engine's constructor."""
    p = parse_spec(spec, "judge")
    if p.kind == "builtin":
        from prism_eval.engines.builtin import load_builtin_judge

        return _make(load_builtin_judge, p.target, **opts)
    if p.kind == "hf":
        from prism_eval.engines.hf import HFJudge

        return _make(HFJudge, p.target, spec=f"hf:{p.target}", **opts)
    if p.kind == "vllm":
        return _make(_engine_class("vllm", "VLLMJudge", spec), p.target, **opts)
    if p.kind == "openai":
        return _make(_engine_class("openai", "OpenAIJudge", spec), p.target, p.base_url, **opts)
    raise ValueError(f"model spec {spec!r}: not usable as a judge")
