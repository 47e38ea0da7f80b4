"""Output locations checked before any work: a run that cannot write its results should stop in
seconds, naming the path, not after hours of captioning with an error that blames the model."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot be written; the message names the flag, the path and why."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or type(exc).__name__


def _probe(existing: Path, flag: str, path: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".prism-eval-write-check.", dir=existing)
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write in {existing} ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def check_writable_dir(path: str | Path, flag: str = "--out") -> None:
    """Raise OutputError unless `path` is (or can become) a folder this process can write files in.

    Nothing is left behind: a probe file is created in the folder (or in its nearest existing
    parent, when the folder does not exist yet) and removed again. A probe, not permission bits,
    because only writing tells (root ignores the bits, a read-only mount does not).
    """
    path = Path(path).expanduser()
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        what = "is a file" if existing.exists() else "is a broken link"
        if existing == path.absolute():
            raise OutputError(f"{flag} {path}: {what}, not a folder")
        raise OutputError(f"{flag} {path}: {existing} {what}, so no folder can be made under it")
    _probe(existing, flag, path)


def check_writable_file(path: str | Path, flag: str = "-o") -> None:
    """Raise OutputError unless a file can be written at `path` (its folder writable, the path no folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name")
    existing = _nearest_existing(path.absolute().parent)
    if not existing.is_dir():
        raise OutputError(f"{flag} {path}: {existing} is a file, so no folder can be made under it")
    _probe(existing, flag, path)
