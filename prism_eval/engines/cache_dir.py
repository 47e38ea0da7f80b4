"""Where converted models live, and how a folder is published there safely.

Several processes (test workers, a demo and a run) may want the same converted
model at once; each builds into its own temporary folder and renames it into
place, so a reader never sees a half-written checkpoint.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

DONE_MARKER = ".prism-eval-complete"


def cache_root() -> Path:
    """$PRISM_EVAL_CACHE, else ~/.cache/prism-eval."""
    env = os.environ.get("PRISM_EVAL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prism-eval"


def models_dir() -> Path:
    return cache_root() / "models"


def is_complete(folder: Path) -> bool:
    return (folder / DONE_MARKER).is_file()


def publish_dir(final: Path, build: Callable[[Path], None]) -> Path:
    """Make `final` exist with what `build(tmp)` writes, atomically.

    `build` fills a fresh temporary folder next to `final`; the folder is then
    renamed into place. If another process published first, its folder is kept
    and ours is discarded, so concurrent callers all end with one complete copy.
    """
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        build(tmp)
        (tmp / DONE_MARKER).write_text("ok\n")
        _make_readable(tmp)
        if final.exists() and not is_complete(final):
            # A crashed earlier attempt cannot be renamed over; move it aside first.
            stale = Path(tempfile.mkdtemp(prefix=f".{final.name}.stale-", dir=final.parent))
            try:
                os.replace(final, stale / "old")
            except OSError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _make_readable(folder: Path) -> None:
    """mkdtemp makes 0700 folders; a shared cache should be readable like any download."""
    os.chmod(folder, 0o755)
    for p in folder.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
