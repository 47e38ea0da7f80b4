"""A SQLite cache of captions and judge outputs, keyed by content hashes.

Every model call goes through it, so an interrupted run resumes where it
stopped and a rerun of the same command makes no model call. Keys hash the
model's fingerprint and the exact inputs (prompt, sampling, image bytes, seed),
so changing only the judge re-uses every caption. WAL mode keeps committed
batches safe when the process is killed.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.core.resilience import FatalError


class StoreError(FatalError):
    """The cache database cannot be opened or written (not SQLite, disk full, no permission)."""


class EngineLoadError(FatalError):
    """A model that cannot be built: one clear error, not one failed item per batch."""


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Store:
    """Key-value cache on SQLite; values are JSON."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a long busy timeout: several runs may share one store and take turns writing
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, kind TEXT, value TEXT)")
        except (OSError, sqlite3.Error) as exc:
            advice = "pass another --store or delete this file" if self.path.is_file() else "pass another --store"
            raise StoreError(f"{self.path}: cannot open the cache database ({_reason(exc)}); {advice}") from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), 500):
                    chunk = list(keys[start:start + 500])
                    marks = ",".join("?" * len(chunk))
                    for key, value in self._db.execute(f"SELECT key, value FROM cache WHERE key IN ({marks})",
                                                       chunk):
                        found[key] = json.loads(value)
            except (sqlite3.Error, ValueError) as exc:
                raise StoreError(f"{self.path}: cannot read the cache database ({_reason(exc)})") from None
        return found

    def put_many(self, kind: str, items: dict[str, Any]) -> None:
        if not items:
            return
        rows = [(k, kind, json.dumps(v, ensure_ascii=False)) for k, v in items.items()]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO cache (key, kind, value) VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: cannot write the cache database ({_reason(exc)})") from None

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM cache WHERE kind = ?", (kind,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _load_reason(exc: BaseException, spec: str) -> str:
    """The first line of a load error, without the spec and 'cannot load' the engine may have put first."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in (f"{spec}: ", "cannot load model: ", "cannot load: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if type(exc).__name__ != "EngineError":  # the engines' own errors already say what went wrong
        text = f"{type(exc).__name__}: {text}"
    chain = f"{exc} {exc.__cause__ or ''}"
    if "trust_remote_code" in chain and "--trust-remote-code" not in text:
        text = text[:450] + " (the model ships its own code: pass --trust-remote-code only if you trust it)"
    return text[:600]


class Lazy:
    """Build an engine only when a cache miss needs it (a fully cached rerun loads no model).

    A factory that fails raises EngineLoadError, which batch retries let through:
    a model that cannot load stops the run with one error instead of failing every item.
    """

    def __init__(self, factory: Callable[[], Any], spec: str, hint: str = "") -> None:
        self._factory, self.spec, self._obj, self.hint = factory, spec, None, hint

    def get(self) -> Any:
        if self._obj is None:
            try:
                self._obj = self._factory()
            except FatalError:
                raise
            except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
                hint = f"; {self.hint}" if self.hint else ""
                raise EngineLoadError(f"{self.spec}: cannot load: {_load_reason(exc, self.spec)}{hint}") from exc
        return self._obj

    @property
    def loaded(self) -> bool:
        return self._obj is not None


class CachingJudge:
    """A Judge that answers from the store and forwards only misses to the real judge."""

    def __init__(self, judge: Lazy, store: Store, identity: dict[str, Any]) -> None:
        self._judge, self._store, self.identity = judge, store, identity
        self.spec = judge.spec
        self.model_calls = 0  # requests forwarded to the real judge

    def fingerprint(self) -> dict[str, Any]:
        return self.identity

    @property
    def loaded_engine(self) -> Any:
        """The real judge if it is already built (None otherwise: asking never loads it)."""
        return self._judge.get() if self._judge.loaded else None

    def _cached(self, method: str, requests: Sequence[JudgeRequest], extras: Sequence[Any],
                call: Callable[[list[int]], list]) -> list:
        keys = [content_key("judge", self.identity, method, r.to_dict(), e) for r, e in zip(requests, extras)]
        found = self._store.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            outputs = call(missing)
            if len(outputs) != len(missing):
                raise RuntimeError(f"judge returned {len(outputs)} outputs for {len(missing)} requests")
            self.model_calls += len(missing)
            fresh = {keys[i]: out for i, out in zip(missing, outputs)}
            self._store.put_many("judge", fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def generate(self, requests: Sequence[JudgeRequest], sampling: Sampling) -> list[str]:
        return self._cached("generate", requests, [sampling.to_dict()] * len(requests),
                            lambda idx: self._judge.get().generate([requests[i] for i in idx], sampling))

    def letter_logprobs(self, requests, letters):
        return self._cached("letter_logprobs", requests, [list(x) for x in letters],
                            lambda idx: self._judge.get().letter_logprobs([requests[i] for i in idx],
                                                                          [letters[i] for i in idx]))

    def token_ends(self, texts: Sequence[str]) -> list[list[int]] | None:
        """Where each text's judge tokens end (engines.tokens), from the store where possible.

        None when the judge has no tokenizer that maps tokens to characters (then lengths count words).
        Not a model call: the judge is loaded only if some text was never measured.
        """
        support_key = content_key("token_ends", self.identity, None)
        keys = [content_key("token_ends", self.identity, t) for t in texts]
        found = self._store.get_many([support_key, *keys])
        if found.get(support_key) is False:
            return None
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            engine = self._judge.get()
            method = getattr(engine, "token_ends", None)
            outputs = method([texts[i] for i in missing]) if method is not None else None
            if outputs is None:
                self._store.put_many("tokens", {support_key: False})
                return None
            fresh = {keys[i]: [int(e) for e in ends] for i, ends in zip(missing, outputs)}
            self._store.put_many("tokens", fresh)
            found.update(fresh)
        return [list(found[k]) for k in keys]

    def option_logliks(self, requests, continuations):
        out = self._cached("option_logliks", requests, [list(x) for x in continuations],
                           lambda idx: [[list(p) for p in row] for row in self._judge.get().option_logliks(
                               [requests[i] for i in idx], [continuations[i] for i in idx])])
        return [[tuple(p) for p in row] for row in out]
