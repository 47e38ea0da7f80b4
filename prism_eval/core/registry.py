"""One registry type for everything chosen by name: engines, metrics, protocols, row adapters.

A name that is not registered fails with one line listing the choices and the
closest one ("did you mean ...?"). Entries may be registered lazily as an import
string ("package.module:attribute"), so a registry can name an optional part
(vLLM, lmms-eval) without importing it, and a user can add an entry from their
own module without editing the package.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_ref(ref: str) -> Any:
    """The object an import string "package.module:attribute" names; ImportError/AttributeError otherwise."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{ref!r} is not an import string of the form 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class RegistryError(ValueError):
    """An unknown or clashing name; the message lists the choices."""


class Registry(Generic[T]):
    """Name -> entry (or an import string resolved on first use)."""

    def __init__(self, kind: str, error: type[Exception] = RegistryError) -> None:
        self.kind = kind
        self._error = error
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str, *, replace: bool = False) -> None:
        if not replace and name in self._entries:
            raise self._error(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(entry: T) -> T:
            self.register(name, entry)
            return entry
        return wrap

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise self._error(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                              f"choose one of {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_ref(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    __getitem__ = get

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
