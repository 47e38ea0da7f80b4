"""Paths as a report may show them: never an absolute path of the machine that made it.

Why: a report is published (a paper's supplement, a README, a leaderboard
page), and run records hold local paths (`file:/home/alice/captions.jsonl`,
`hf:/home/alice/.cache/prism-eval/models/...`, a benchmark's source file). Every
string that reaches a report from a run record goes through `PathScrubber`,
which rewrites each absolute path it finds: relative to the run folder when it
is near it, `$PRISM_EVAL_CACHE/...` or `~/...` when under those, else only its
last two parts.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from prism_eval.engines.cache_dir import cache_root

__all__ = ["PathScrubber", "ABSOLUTE_PATH"]

# An absolute POSIX path in free text: a "/" that starts a word (not inside a URL, a
# relative path or a fraction) followed by at least one path character.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~$/\-])/(?!/)[^\s\"'<>|,;()\[\]{}*?`]+")
MAX_UPS = 3  # a path at most this many folders above the run folder is shown relative to it


def _under(path: str, root: str) -> str | None:
    """`path` relative to `root` when it lies inside it (root itself: "")."""
    if root in ("", "/"):
        return None
    if path == root:
        return ""
    return path[len(root) + 1:] if path.startswith(root.rstrip("/") + "/") else None


class PathScrubber:
    """Rewrites absolute paths in strings from run records so that none of the machine's shows in a report."""

    def __init__(self, run_dirs: Sequence[Path]):
        self.cache = os.path.normpath(str(cache_root().expanduser().absolute()))
        self.home = os.path.normpath(str(Path.home()))
        resolved = [os.path.normpath(str(Path(d).absolute())) for d in run_dirs]
        self.common = os.path.commonpath(resolved) if resolved else ""
        if len(resolved) == 1:
            self.common = os.path.dirname(resolved[0])

    def path(self, path: str, run_dir: Path | None = None) -> str:
        """One absolute path as shown: relative to the run folder, under the cache or home, or its last parts."""
        p = os.path.normpath(path)
        rel = _under(p, self.cache)
        if rel is not None:
            return "$PRISM_EVAL_CACHE" + (f"/{rel}" if rel else "")
        if run_dir is not None:  # as given and with links resolved (/tmp may be a link to /private/tmp)
            bases = {os.path.normpath(str(Path(run_dir).absolute())), str(Path(run_dir).resolve())}
            relative = min((os.path.relpath(p, b) for b in bases), key=lambda r: Path(r).parts.count(".."))
            if Path(relative).parts.count("..") <= MAX_UPS:
                return relative
        rel = _under(p, self.home) if self.home != "/" else None
        if rel is not None:
            return "~" + (f"/{rel}" if rel else "")
        parts = [x for x in Path(p).parts if x != "/"]
        return "…/" + "/".join(parts[-2:]) if parts else "/"

    def text(self, text: str | None, run_dir: Path | None = None) -> str:
        """Free text (a spec, an error, a config value) with every absolute path rewritten."""
        if not text:
            return "" if text is None else text
        return ABSOLUTE_PATH.sub(lambda m: self.path(m.group(0), run_dir), str(text))

    def folder(self, run_dir: Path) -> str:
        """A run folder named from the folder all runs share (`runs/reference`), never from the root."""
        p = os.path.normpath(str(Path(run_dir).absolute()))
        rel = _under(p, self.common) if self.common else None
        if rel is None:
            return self.path(p)
        head = os.path.basename(self.common)
        return "/".join(x for x in (head, rel) if x) or "."

    def value(self, obj, run_dir: Path | None = None):
        """A JSON-like value (config, versions) with every string scrubbed."""
        if isinstance(obj, str):
            return self.text(obj, run_dir)
        if isinstance(obj, dict):
            return {str(k): self.value(v, run_dir) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.value(v, run_dir) for v in obj]
        return obj
