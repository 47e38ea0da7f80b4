"""Captioners that need no model: captions read from a file, or none at all.

`none` is the blind baseline: the judge answers from priors alone, which shows
how much of a benchmark needs no image. Both read the benchmark's image keys,
not pixels (needs_pixels = False).
"""
from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
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


def normalise_key(key: str) -> str:
    """The one spelling of an image key: './img/a.png', 'img//a.png' and 'img/a.png' name one image
    ('|' joins the images of a multi-image item; absolute keys stay absolute)."""
    return "|".join(posixpath.normpath(part.replace("\\", "/")) if part else part for part in key.split("|"))


def captions_path(path: str | Path) -> Path:
    """The captions file a `file:` spec names: the file itself, or DIR/captions.jsonl for a folder
    (what `prism-eval caption --out DIR` writes)."""
    path = Path(path)
    if path.is_dir():
        inner = path / "captions.jsonl"
        if not inner.is_file():
            raise CaptionsFileError(f"{path}: a folder without captions.jsonl; give the captions file itself")
        return inner
    if not path.is_file():
        raise CaptionsFileError(f"{path}: captions file does not exist")
    return path


@dataclass
class Coverage:
    """How a captions file covers a benchmark's images."""

    total: int  # images (or image sets) the benchmark asks about
    matched: int
    missing: list[str] = field(default_factory=list)  # benchmark keys without captions, in order
    fewest: int | None = None  # the fewest captions any matched image has


class FileCaptioner:
    """Captions from a JSONL file ({"image", "caption"} or {"image", "captions": [...]}) or parquet.

    Image keys are normalised ('./img/a.png' is 'img/a.png'); an absolute key names
    the image file itself, wherever the benchmark lies. A key given twice is an
    error naming both lines, never a silent merge.
    """

    needs_pixels = False

    def __init__(self, path: str | Path) -> None:
        self.spec = f"file:{path}"
        self.path = captions_path(path)
        data = self.path.read_bytes()
        self._sha = hashlib.sha256(data).hexdigest()
        self.captions: dict[str, list[str]] = {}
        self._absolute: dict[str, str] = {}  # real path of an absolute key -> its normalised key
        self._lines: dict[str, int] = {}
        if self.path.suffix == ".parquet":
            self._load_rows(self._parquet_rows())
        else:
            self._load_rows(self._jsonl_rows(data))
        if not self.captions:
            raise CaptionsFileError(f"{self.path}: the captions file is empty (no caption lines)")

    def _jsonl_rows(self, data: bytes):
        return iter_jsonl(data, str(self.path), CaptionsFileError)

    def _parquet_rows(self):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise CaptionsFileError(f"{self.path}: not a readable parquet file ({type(exc).__name__})") from None
        for i, row in enumerate(table.to_pylist(), 1):
            yield i, row

    def _load_rows(self, rows) -> None:
        for lineno, row in rows:
            where = f"{self.path}:{lineno}"
            if not isinstance(row, dict) or not isinstance(row.get("image"), str) or not row["image"]:
                raise CaptionsFileError(f"{where}: each row needs an 'image' string")
            texts = row.get("captions")
            if texts is None and "caption" in row:
                texts = [row["caption"]]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                raise CaptionsFileError(f"{where}: needs 'caption' (a string) or 'captions' (a list of strings)")
            key = normalise_key(row["image"])
            if key in self._lines:
                raise CaptionsFileError(f"{where}: image {row['image']!r} already has captions on line "
                                        f"{self._lines[key]} (give one line per image, several captions as "
                                        "'captions': [...])")
            self._lines[key] = lineno
            self.captions[key] = list(texts)
            if all(os.path.isabs(part) for part in key.split("|")):
                self._absolute["|".join(os.path.realpath(p) for p in key.split("|"))] = key

    def lookup(self, refs: Sequence[ImageRef]) -> list[str] | None:
        """The captions of one item's images, by key or (for absolute keys) by file; None when absent."""
        found = self.captions.get(normalise_key("|".join(r.key for r in refs)))
        if found is None and self._absolute and all(r.path for r in refs):
            key = self._absolute.get("|".join(os.path.realpath(str(r.path)) for r in refs))
            found = self.captions.get(key) if key is not None else None
        return found

    def coverage(self, samples: Sequence[Any]) -> Coverage:
        """Which of the samples' images this file has captions for (checked before any model call)."""
        cov = Coverage(total=len(samples), matched=0)
        for s in samples:
            texts = self.lookup(s.images)
            if texts is None:
                cov.missing.append("|".join(r.key for r in s.images))
                continue
            cov.matched += 1
            cov.fewest = len(texts) if cov.fewest is None else min(cov.fewest, len(texts))
        return cov

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": self.spec, "sha256": self._sha}

    def caption(self, images: Sequence[Sequence[ImageRef]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        out = []
        for refs in images:
            if not all(isinstance(r, ImageRef) for r in refs):
                raise CaptionsFileError(f"{self.spec}: a captions file reads captions by image key and cannot "
                                        "caption pixels")
            texts = self.lookup(refs)
            if texts is None:
                key = "|".join(r.key for r in refs)
                raise MissingCaption(f"{self.path} has no caption for image {key!r}")
            out.append(texts[:n])
        return out


class NoCaptioner:
    """The blind baseline: every caption is empty."""

    needs_pixels = False
    spec = "none"

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": "none"}

    def caption(self, images, prompts, n, sampling) -> list[list[str]]:
        return [[""] * n for _ in images]
