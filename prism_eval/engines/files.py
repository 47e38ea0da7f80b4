"""Captioners that need no model: captions read from a file, or none at all.

`none` is the blind baseline: the judge answers from priors alone, which shows
how much of a benchmark needs no image. Both read the benchmark's image keys,
not pixels (needs_pixels = False).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from prism_eval.core.records import ImageRef, Sampling
from prism_eval.io.jsonl import iter_jsonl


class CaptionsFileError(ValueError):
    """A captions file that cannot be used; names the file, line and problem."""


class MissingCaption(KeyError):
    """The captions file has no caption for an image."""

    def __str__(self) -> str:
        return self.args[0]


class FileCaptioner:
    """Captions from a JSONL file ({"image", "caption"} or {"image", "captions": [...]}) or parquet."""

    needs_pixels = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.spec = f"file:{path}"
        if not self.path.is_file():
            raise CaptionsFileError(f"{self.path}: captions file does not exist")
        data = self.path.read_bytes()
        self._sha = hashlib.sha256(data).hexdigest()
        self.captions: dict[str, list[str]] = {}
        if self.path.suffix == ".parquet":
            self._load_rows(self._parquet_rows())
        else:
            self._load_rows(self._jsonl_rows(data))

    def _jsonl_rows(self, data: bytes):
        return iter_jsonl(data, str(self.path), CaptionsFileError)

    def _parquet_rows(self):
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(self.path).to_pylist(), 1):
            yield i, row

    def _load_rows(self, rows) -> None:
        for lineno, row in rows:
            where = f"{self.path}:{lineno}"
            if not isinstance(row, dict) or not isinstance(row.get("image"), str):
                raise CaptionsFileError(f"{where}: each row needs an 'image' string")
            texts = row.get("captions")
            if texts is None and "caption" in row:
                texts = [row["caption"]]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                raise CaptionsFileError(f"{where}: needs 'caption' (a string) or 'captions' (a list of strings)")
            self.captions.setdefault(row["image"], []).extend(texts)

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": self.spec, "sha256": self._sha}

    def caption(self, images: Sequence[Sequence[ImageRef]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        out = []
        for refs in images:
            key = "|".join(r.key for r in refs)
            if key not in self.captions:
                raise MissingCaption(f"{self.path} has no caption for image {key!r}")
            out.append(self.captions[key][:n])
        return out


class NoCaptioner:
    """The blind baseline: every caption is empty."""

    needs_pixels = False
    spec = "none"

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": "none"}

    def caption(self, images, prompts, n, sampling) -> list[list[str]]:
        return [[""] * n for _ in images]
