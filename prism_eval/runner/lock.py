"""One run per output folder at a time: a second run on the same --out stops with one line.

Two runs writing one folder would each replace the other's results.json and
samples.jsonl (the last writer wins, silently). The lock is an advisory
`fcntl.flock` on `<out>/.prism-eval.lock`, which holds the holder's pid for the
message and is removed when the run ends. The kernel releases a flock when its
holder exits, however it exits, so a killed run may leave the file but never a
held lock. Locks are re-entrant within a process (the CLI locks --out, and
`evaluate` locks the same folder again for a single captioner).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".prism-eval.lock"

_held: dict[str, tuple[int, int]] = {}  # real path of the lock file -> (fd, depth)
_guard = threading.Lock()


class LockError(RuntimeError):
    """The output folder is in use by another run; the message names it and the holder's pid."""


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def acquire(folder: str | Path, what: str = "--out", lock_file: str | Path | None = None) -> str:
    """Take the folder's lock (creating the folder); returns a token for `release`. LockError if taken.

    `lock_file`: another file to lock instead of `<folder>/.prism-eval.lock` (an output that is one file,
    or a folder its command may empty).
    """
    folder = Path(folder)
    path = Path(lock_file) if lock_file is not None else folder / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return key
        fd = _lock(path)
        if fd is None:
            raise LockError(f"{what} {folder}: another prism-eval run{_holder(path)} is writing there; "
                            "wait for it to finish or choose another output")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _held[key] = (fd, 1)
        return key


def _lock(path: Path) -> int | None:
    """A descriptor holding the lock on `path`, or None when another process holds it.

    The holder deletes the file when it is done, so a process that opened the old file
    just before may lock a file no longer at `path`: it checks, and tries again on the new one.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def release(token: str) -> None:
    with _guard:
        fd, depth = _held[token]
        if depth > 1:
            _held[token] = (fd, depth - 1)
            return
        del _held[token]
        try:
            os.unlink(token)  # removed while still locked, so no output folder keeps a lock file
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def output_lock(folder: str | Path, what: str = "--out", lock_file: str | Path | None = None) -> Iterator[None]:
    """Hold `folder`'s lock for the block."""
    token = acquire(folder, what, lock_file)
    try:
        yield
    finally:
        release(token)
