"""Image values of dataset rows (bytes, {'bytes','path'}, a PIL image, a path under image_root) as bytes."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from prism_eval.benchmarks.catalog.schema import BenchmarkSpec, SpecError


def encode_png(image) -> bytes:
    """Deterministic PNG bytes of a PIL image (no metadata), for images datasets gives only decoded."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class RowImageReader:
    """Turns a row's image value (bytes, {'bytes','path'}, a PIL image, a relative path) into bytes."""

    def __init__(self, spec: BenchmarkSpec, dataset_source: str):
        self.spec = spec
        self.local = Path(dataset_source).expanduser() if Path(dataset_source).expanduser().exists() else None
        self._zip: zipfile.ZipFile | None = None
        self._root: Path | None = None

    def _root_path(self) -> Path | None:
        if self._root is None and self.spec.image_root:
            if self.local is not None:
                self._root = self.local / self.spec.image_root
            else:  # hub: fetch only the image archive / folder next to the data
                from huggingface_hub import snapshot_download
                snap = snapshot_download(self.spec.dataset_path, repo_type="dataset", revision=self.spec.revision,
                                         allow_patterns=[self.spec.image_root, self.spec.image_root + "/*"])
                self._root = Path(snap) / self.spec.image_root
        return self._root

    def _from_path(self, rel: str, where: str) -> bytes:
        rel = rel.strip().lstrip("./") if rel.startswith("./") else rel.strip()
        root = self._root_path()
        if root is not None and root.suffix == ".zip":
            if self._zip is None:
                self._zip = zipfile.ZipFile(root)
            names = (rel, rel.split("/", 1)[-1])
            for n in names:
                try:
                    return self._zip.read(n)
                except KeyError:
                    continue
            raise SpecError(f"{where}: image {rel!r} not found in {root.name}")
        base = root or self.local
        if base is None:
            raise SpecError(f"{where}: image given as a path {rel!r} but the spec has no image_root")
        target = (base / rel).resolve()
        if not target.is_relative_to(base.resolve()):
            raise SpecError(f"{where}: image path {rel!r} escapes the dataset folder")
        if not target.is_file():
            raise SpecError(f"{where}: image file {rel!r} does not exist under {base}")
        return target.read_bytes()

    def to_bytes(self, value: Any, where: str) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, dict):
            if value.get("bytes"):
                return bytes(value["bytes"])
            if value.get("path"):
                path = Path(value["path"])
                if path.is_file():
                    return path.read_bytes()
                return self._from_path(str(value["path"]), where)
            raise SpecError(f"{where}: image value has neither bytes nor path")
        if isinstance(value, str):
            return self._from_path(value, where)
        if hasattr(value, "save") and hasattr(value, "size"):
            return encode_png(value)
        raise SpecError(f"{where}: unsupported image value of type {type(value).__name__}")
