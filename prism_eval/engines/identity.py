"""What identifies a model's outputs, computed without loading it (cache keys and comparability).

Two runs must not share cached answers when the weights, their revision or the
dtype they run in differ: a bf16 judge on a GPU and an fp32 judge on a CPU give
different log-probabilities.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any


def weights_identity(path_or_hub_id: str, revision: str | None = None) -> dict[str, Any]:
    """The resolved hub commit (from the local hub cache only: never a download), or for a local folder a
    digest of its files.

    Small files are hashed whole; files over 64 MB by size plus their first and
    last MiB, which is cheap and still changes whenever weights are re-saved.
    """
    p = Path(path_or_hub_id).expanduser()
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
            size = f.stat().st_size
            h.update(f"{f.relative_to(p)}\0{size}\0".encode())
            with open(f, "rb") as fh:
                if size <= 64 << 20:
                    h.update(fh.read())
                else:
                    h.update(fh.read(1 << 20))
                    fh.seek(size - (1 << 20))
                    h.update(fh.read())
        return {"revision": None, "files_sha256": h.hexdigest()[:16]}
    try:
        from transformers.utils import cached_file

        resolved = cached_file(path_or_hub_id, "config.json", revision=revision, local_files_only=True)
        m = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", str(resolved or ""))
        return {"revision": m.group(1) if m else revision}
    except Exception:  # noqa: BLE001 - identity is best effort; the spec still names the model
        return {"revision": revision}


def auto_dtype_name(dtype: str | None = "auto") -> str:
    """The dtype name 'auto' resolves to for transformers engines: float32 on a CPU, bfloat16 on a GPU."""
    name = (dtype or "auto").lower()
    if name != "auto":
        return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(name, name)
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"
