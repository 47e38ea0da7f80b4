"""Call a batched model function without losing items to a failure.

A failing batch is retried a bounded number of times, then split in halves
(an out-of-memory batch often fits when smaller); an item that fails on its
own is reported as a Failure, never silently dropped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    error: str


_SECRET_NAME = re.compile(r"API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s\"'<>]+@")  # scheme://user:password@host
_BEARER = re.compile(r"(?i)(?<=bearer )(?=[A-Za-z0-9._~+/=-]*[0-9_.~+/=-])[A-Za-z0-9._~+/=-]{16,}"
                     r"|(?i:(?<=basic ))(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}")
_KEY_PARAM = re.compile(r"(?i)(?<=[?&])((?:api[_-]?key|access[_-]?token|token|key)=)[^&\s\"'<>]+")


def redact_url_credentials(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://***@host` (a spec or URL can be printed and stored)."""
    return _URL_CREDENTIALS.sub("***@", text)


def redact_secrets(text: str) -> str:
    """`text` with credentials replaced by '***': the value of every secret-looking environment variable,
    `user:password@` in URLs, bearer tokens, basic-auth headers and `?api_key=` style URL parameters.

    Error messages come from engines and servers (a server may echo the key it
    rejected, an error may quote the URL it called) and end up in samples.jsonl,
    results.json, reports and the terminal, where a credential must never appear.
    """
    for name, value in os.environ.items():
        if len(value) >= 8 and value in text and _SECRET_NAME.search(name):
            text = text.replace(value, "***")
    if "@" in text:
        text = redact_url_credentials(text)
    if "earer " in text or "EARER " in text or "asic " in text or "ASIC " in text:
        text = _BEARER.sub("***", text)
    if "=" in text:
        text = _KEY_PARAM.sub(lambda m: m.group(1) + "***", text)
    return text


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line naming an exception, secrets redacted before it is cut to `limit` characters."""
    return redact_secrets(f"{type(exc).__name__}: {exc}").splitlines()[0][:limit]


class FatalError(Exception):
    """A failure no retry or smaller batch can fix (a model that cannot load, a broken store).

    `call_resilient` lets it through instead of recording every item as failed; the
    run stops with one error, and everything already committed to the store is kept.
    """


@dataclass
class RetryLog:
    """Counts of what was retried, for the run summary."""

    retries: int = 0
    splits: int = 0
    failures: int = 0


RETRY_LOG = RetryLog()


def call_resilient(fn: Callable[[list[T]], Sequence], items: Sequence[T],
                   done: Callable[[list[T], Sequence | Failure], None], batch_size: int = 256,
                   max_retries: int = 2) -> None:
    """Call `fn` on chunks of `items`; report each chunk's outputs (or a Failure) to `done`."""
    items = list(items)
    for start in range(0, len(items), max(batch_size, 1)):
        _call_chunk(fn, items[start:start + batch_size], done, max_retries)


def _call_chunk(fn, chunk: list, done, max_retries: int) -> None:
    if not chunk:
        return
    error = None
    for attempt in range(max_retries + 1):
        try:
            outputs = fn(chunk)
        except (KeyboardInterrupt, FatalError):
            raise
        except Exception as exc:  # noqa: BLE001 - any model-call failure is recorded, not raised
            error = describe(exc)
            if attempt < max_retries:
                RETRY_LOG.retries += 1
            if len(chunk) > 1:
                break  # split instead of retrying the whole batch again
            continue
        if len(outputs) != len(chunk):
            error = f"engine returned {len(outputs)} outputs for {len(chunk)} inputs"
            break
        done(chunk, outputs)
        return
    if len(chunk) > 1:
        RETRY_LOG.splits += 1
        mid = len(chunk) // 2
        _call_chunk(fn, chunk[:mid], done, max_retries)
        _call_chunk(fn, chunk[mid:], done, max_retries)
        return
    RETRY_LOG.failures += 1
    done(chunk, Failure(error or "unknown error"))
