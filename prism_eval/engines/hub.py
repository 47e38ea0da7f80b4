"""Hugging Face hub ids checked with one bounded request before anything downloads.

Without it, an id on a machine with no network (or a mistyped id) is found by
transformers or datasets after minutes of retries with backoff ("Retrying in
8s" again and again) and a traceback. Here: one request with a short timeout.
A model already in the local cache is used offline when the hub cannot be
reached (HF_HUB_OFFLINE is switched on for this process, so no library retries);
otherwise the run stops with one line that says what to do.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")
PROBE_TIMEOUT_S = 5.0


class HubError(ValueError):
    """A hub id that cannot be used here; the message names it and what to do."""


def looks_local(target: str) -> bool:
    """A path rather than a hub id: it exists, or is written as one ('./x', '/x', '~/x', 'a/b/c')."""
    return (os.path.lexists(os.path.expanduser(target)) or target.startswith((".", "/", "~", "\\"))
            or target.count("/") > 1 or "\\" in target or not HUB_ID.match(target))


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in (
        "1", "true", "yes", "on")


def go_offline() -> None:
    """Use the local cache only, in this process and the ones it starts (no request, so no retries)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    import sys

    if "datasets" in sys.modules:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True


def is_cached(repo_id: str, kind: str = "model") -> bool:
    """Whether the local hub cache holds a snapshot of the repository."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"{kind}s--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def _probe(repo_id: str, kind: str) -> tuple[int | None, str]:
    """(HTTP status, or None when no answer came; a short reason) for the repository's API page."""
    import httpx
    from huggingface_hub import constants, get_token

    url = f"{constants.ENDPOINT.rstrip('/')}/api/{kind}s/{repo_id}"
    headers = {}
    try:
        token = get_token()
    except Exception:  # noqa: BLE001 - an unreadable token file is the same as none
        token = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = httpx.get(url, headers=headers, timeout=PROBE_TIMEOUT_S, follow_redirects=True)
    except httpx.TimeoutException:
        return None, f"no answer within {PROBE_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        return None, f"{type(exc).__name__}: {reason}"
    return resp.status_code, f"HTTP {resp.status_code}"


def check_hub_repo(repo_id: str, kind: str = "model", what: str = "") -> None:
    """Raise HubError unless `repo_id` can be loaded: reachable on the hub, or in the local cache.

    `kind`: "model" or "dataset". `what`: a prefix naming the input in the message.
    """
    from huggingface_hub import constants

    cached = is_cached(repo_id, kind)
    if _offline():
        if not cached and kind == "model":
            raise HubError(f"{what}{repo_id}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}), "
                           "and HF_HUB_OFFLINE is set; download it where there is a network, or give a local "
                           "folder")
        return
    status, reason = _probe(repo_id, kind)
    if status is None:
        if cached:
            go_offline()
            return
        raise HubError(f"{what}{repo_id}: not in the local Hugging Face cache, and the hub "
                       f"({constants.ENDPOINT}) cannot be reached ({reason}); connect, download it first, "
                       "or give a local folder")
    if status in (401, 403, 404):
        if cached:
            return
        raise HubError(f"{what}{repo_id}: no local folder of that name, and no such {kind} on the hub ({reason}; "
                       "a private or gated one needs `hf auth login`)")
