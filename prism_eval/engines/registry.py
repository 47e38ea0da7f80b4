"""Model spec strings -> engines: the one parser and the one table of back ends.

  hf:<path-or-hub-id>        transformers
  vllm:<path-or-hub-id>      vLLM
  openai:<model>@<base-url>  an OpenAI-compatible server
  file:<captions.jsonl>      captions from a file (captioner only)
  none                       empty captions, the blind baseline (captioner only)
  builtin:<name>             an embedded model (judge only; builtin:smollm2-135m, builtin:gemma3-270m)
  org/name                   vLLM if importable and a CUDA GPU is visible, else transformers

Engines are registered by (role, prefix) as import strings, so an engine module
is imported only when its spec is used (a missing optional stack such as vLLM
only matters to runs that ask for it), and a user can add a back end with
`register_engine("judge", "myprefix", "mypackage.module:MyJudge")` without
editing the package.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any, Literal

from prism_eval.core.registry import Registry, RegistryError, did_you_mean
from prism_eval.core.resilience import redact_url_credentials
from prism_eval.engines.base import EngineError, construct

Role = Literal["captioner", "judge"]
ROLES: tuple[str, ...] = ("captioner", "judge")
_BARE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_OPENAI = re.compile(r"^(?P<model>[^@\s]+(?:@[^@\s]+)*?)@(?P<url>https?://\S+)$")


class ModelSpecError(ValueError):
    """A model spec that cannot be used; the message names the spec and what is wrong."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which back end (`kind`), what it loads (`target`), and an OpenAI base URL."""

    kind: str  # a registered prefix (hf, vllm, openai, file, builtin, ...) or "none"
    target: str = ""  # path / hub id / model name / file / builtin name
    base_url: str = ""  # openai only

    @property
    def text(self) -> str:
        """The canonical spec string."""
        if self.kind == "none":
            return "none"
        if self.kind == "openai":
            return f"openai:{self.target}@{self.base_url}"
        return f"{self.kind}:{self.target}"


# (role, prefix) -> factory import string; the factory is called with (*args_for(spec), **options).
ENGINES: Registry[Any] = Registry("engine", ModelSpecError)


def register_engine(role: Role, prefix: str, factory: Any, *, replace: bool = False) -> None:
    """Make `<prefix>:<target>` a model spec for `role`; `factory` is a callable or an import string."""
    if role not in ROLES:
        raise ModelSpecError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", prefix):
        raise ModelSpecError(f"engine prefix {prefix!r}: use lower-case letters, digits, '-' and '_'")
    ENGINES.register(f"{role}:{prefix}", factory, replace=replace)


for _role, _prefix, _factory in (
        ("captioner", "none", "prism_eval.engines.files:NoCaptioner"),
        ("captioner", "file", "prism_eval.engines.files:FileCaptioner"),
        ("captioner", "hf", "prism_eval.engines.hf:HFCaptioner"),
        ("captioner", "vllm", "prism_eval.engines.vllm:VLLMCaptioner"),
        ("captioner", "openai", "prism_eval.engines.openai:OpenAICaptioner"),
        ("judge", "builtin", "prism_eval.engines.builtin:load_builtin_judge"),
        ("judge", "hf", "prism_eval.engines.hf:HFJudge"),
        ("judge", "vllm", "prism_eval.engines.vllm:VLLMJudge"),
        ("judge", "openai", "prism_eval.engines.openai:OpenAIJudge")):
    register_engine(_role, _prefix, _factory)  # type: ignore[arg-type]


def prefixes(role: Role) -> list[str]:
    """The `<prefix>:` forms a role accepts (`none` is a whole spec, not a prefix)."""
    return [name.split(":", 1)[1] for name in ENGINES if name.startswith(f"{role}:") and name != "captioner:none"]


def _all_prefixes() -> set[str]:
    return {name.split(":", 1)[1] for name in ENGINES}


def parse_model_spec(spec: str, role: Role) -> ModelSpec:
    """Parse a spec for a role; ModelSpecError with a one-line message when it is not valid."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"model spec {spec!r}: empty")
    s = spec.strip()
    shown = redact_url_credentials(s)
    if s == "none":
        if role != "captioner":
            raise ModelSpecError("model spec 'none': only valid as a captioner (the blind baseline)")
        return ModelSpec("none")
    prefix, sep, rest = s.partition(":")
    if sep and prefix in _all_prefixes():
        if f"{role}:{prefix}" not in ENGINES:
            other = "captioners" if role == "judge" else "judges"
            raise ModelSpecError(f"model spec {shown!r}: {prefix}: models are {other}, not {role}s")
        rest = rest.strip()
        if not rest:
            raise ModelSpecError(f"model spec {shown!r}: nothing after '{prefix}:'")
        if prefix == "openai":
            m = _OPENAI.match(rest)
            if not m:
                raise ModelSpecError(f"model spec {shown!r}: expected openai:<model>@<http(s)://base-url>, e.g. "
                                     "openai:Qwen/Qwen2.5-3B-Instruct@http://127.0.0.1:8000/v1")
            return ModelSpec("openai", m.group("model"), m.group("url").rstrip("/"))
        return ModelSpec(prefix, rest)
    if _BARE.match(s):
        return ModelSpec("vllm" if _vllm_usable() else "hf", s)
    hint = did_you_mean(prefix, _all_prefixes()) if sep else ""
    raise ModelSpecError(f"model spec {shown!r}: unknown form{hint} (use {', '.join(p + ':' for p in prefixes(role))}"
                         f"{' none,' if role == 'captioner' else ''} or org/name)")


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _args(spec: ModelSpec) -> tuple[Any, ...]:
    if spec.kind == "none":
        return ()
    if spec.kind == "openai":
        return (spec.target, spec.base_url)
    return (spec.target,)


def _factory(spec: ModelSpec, role: Role) -> Any:
    try:
        return ENGINES.get(f"{role}:{spec.kind}")
    except (ImportError, AttributeError) as err:
        raise EngineError(f"{spec.text}: the {spec.kind} engine is not available here ({err})") from err
    except RegistryError as err:  # pragma: no cover - parse_model_spec only yields registered kinds
        raise ModelSpecError(str(err)) from None


def check_model_spec(spec: str, role: Role) -> ModelSpec:
    """Parse a spec and import its engine, without building it: a bad spec fails before any work is done."""
    parsed = parse_model_spec(spec, role)
    _factory(parsed, role)
    return parsed


def load_engine(spec: str | ModelSpec, role: Role, **opts: Any) -> Any:
    """Build the captioner or judge a spec names; `opts` go to its constructor (ones it lacks are dropped)."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec, role)
    if parsed.kind == "hf":
        opts.setdefault("spec", parsed.text)
    return construct(_factory(parsed, role), *_args(parsed), **opts)


def load_captioner(spec: str | ModelSpec, **opts: Any) -> Any:
    """A Captioner for a spec string; opts go to the engine's constructor."""
    return load_engine(spec, "captioner", **opts)


def load_judge(spec: str | ModelSpec, **opts: Any) -> Any:
    """A Judge for a spec string; opts go to the engine's constructor."""
    return load_engine(spec, "judge", **opts)
