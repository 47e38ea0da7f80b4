"""Short, unique names for captioners: what a leaderboard shows and what output folders are called.

A name is the part of the spec that tells it apart (`reference` for
file:runs/demo/captions/reference.jsonl, `tiny-llava-demo` for a local
checkpoint folder, `internlm/CapRL-3B` for a hub id), never a machine's
absolute path. Names that would collide are lengthened with parent folders
until they differ, so two captioners never share a name or a folder.
"""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Sequence

from prism_eval.engines.registry import ModelSpecError, parse_model_spec, redact_url_credentials


def _parts(spec: str) -> tuple[str, list[str]]:
    """(kind, path-like parts from most to least specific) of a captioner spec."""
    try:
        parsed = parse_model_spec(spec, "captioner")
    except ModelSpecError:
        return "", [redact_url_credentials(spec)]
    if parsed.kind == "none":
        return "none", ["none"]
    if parsed.kind == "openai":
        return "openai", [parsed.target]
    target = parsed.target.rstrip("/")
    path = PurePath(target)
    if parsed.kind == "file":
        parts = [path.stem, *reversed(path.parent.parts)]
    elif re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", target) and not target.startswith("."):
        parts = [target]  # a hub id: org/name is already short and unique
    else:
        parts = [path.name, *reversed(path.parent.parts)]
    return parsed.kind, [p for p in parts if p not in ("", "/", ".")] or [target]


def display_names(specs: Sequence[str]) -> dict[str, str]:
    """spec -> a short name, unique among `specs` (identical specs share one)."""
    unique = list(dict.fromkeys(specs))
    parts = {s: _parts(s)[1] for s in unique}
    depth = {s: 1 for s in unique}

    def name(s: str) -> str:
        return "/".join(reversed(parts[s][:depth[s]]))

    for _ in range(64):
        by_name: dict[str, list[str]] = {}
        for s in unique:
            by_name.setdefault(name(s), []).append(s)
        clashes = [group for group in by_name.values() if len(group) > 1]
        if not clashes:
            break
        grew = False
        for group in clashes:
            for s in group:
                if depth[s] < len(parts[s]):
                    depth[s] += 1
                    grew = True
        if not grew:
            break
    names = {s: name(s) for s in unique}
    seen: dict[str, int] = {}
    for s in unique:  # still equal after every parent folder (e.g. hf: and vllm: of one model): number them
        n = names[s]
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            kind = _parts(s)[0]
            names[s] = f"{n} ({kind})" if kind and f"{n} ({kind})" not in names.values() else f"{n} #{seen[n]}"
    return {s: names[s] for s in specs}


def folder_name(name: str) -> str:
    """A file-system-safe folder name for a display name."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")
    return text[:80] or "captioner"


def output_folders(specs: Sequence[str]) -> dict[str, str]:
    """spec -> folder name under --out, unique among `specs` (case-insensitively, for case-folding file systems)."""
    names = display_names(specs)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for spec in dict.fromkeys(specs):
        base = folder_name(names[spec])
        folder, k = base, 2
        while folder.lower() in taken:
            folder, k = f"{base}-{k}", k + 1
        taken.add(folder.lower())
        out[spec] = folder
    return out
