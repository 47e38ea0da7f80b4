"""What generation and filtering share: the images, the VLM calls, the output files, and their errors."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from prism_eval.core.records import Sampling

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class CurateError(ValueError):
    """Bad curation input; the message names it and the problem."""


def with_system_prompt(captioner, system: str) -> tuple[Any, str]:
    """Make `captioner` send `system` as a system message; returns (captioner, how).

    The transformers and OpenAI captioners build their messages in one method
    (`render` / `messages`); that method is wrapped on this instance only.
    Other engines get the system text prepended to the user turn ("prepended").
    """
    if hasattr(captioner, "processor") and callable(getattr(captioner, "render", None)):
        processor = captioner.processor

        def render(n_images: int, prompt: str) -> str:
            content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
            content.append({"type": "text", "text": prompt})
            return processor.apply_chat_template(
                [{"role": "system", "content": [{"type": "text", "text": system}]},
                 {"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)

        captioner.render = render
        return captioner, "system-message"
    if callable(getattr(captioner, "messages", None)):
        original = captioner.messages

        def messages(images, prompt):
            return [{"role": "system", "content": system}, *original(images, prompt)]

        captioner.messages = messages
        return captioner, "system-message"
    return captioner, "prepended"


def _ask(captioner, images: Sequence[Sequence[Any]], prompts: Sequence[str], sampling: Sampling, batch: int,
         on_batch: Callable[[int], None] | None = None) -> list[str]:
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        texts = captioner.caption(images[start:start + batch], prompts[start:start + batch], 1, sampling)
        out.extend(t[0] if t else "" for t in texts)
        if on_batch:
            on_batch(len(texts))
    return out


@dataclass
class ImageItem:
    id: str
    path: Path  # absolute
    key: str  # what the output's "image" field says


def _image_key(path: Path, out_dir: Path) -> str:
    try:
        return path.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def find_images(source: str | Path, out_dir: Path, limit: int | None = None) -> list[ImageItem]:
    """Images from a folder (recursive), one image file, or a text file listing paths (one a line)."""
    src = Path(source)
    if src.is_dir():
        paths = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        base = src
    elif src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS:
        paths, base = [src], src.parent
    elif src.is_file() and src.suffix.lower() == ".txt":
        base = src.parent
        paths = []
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                p = Path(line.strip())
                p = p if p.is_absolute() else base / p
                if not p.is_file():
                    raise CurateError(f"{src}:{lineno}: image {line.strip()!r} does not exist")
                paths.append(p)
    else:
        raise CurateError(f"{src}: not a folder of images, an image, or a .txt list of image paths")
    if not paths:
        raise CurateError(f"{src}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    if limit is not None:
        paths = paths[:limit]
    items, seen = [], set()
    for p in paths:
        ident = p.resolve().relative_to(base.resolve()).as_posix() if p.resolve().is_relative_to(
            base.resolve()) else str(p.resolve())
        if ident in seen:
            continue
        seen.add(ident)
        items.append(ImageItem(ident, p.resolve(), _image_key(p, out_dir)))
    return items


def _open(path: Path):
    from prism_eval.io.images import ImageError, image_ref_from_file, open_image

    try:
        return open_image(image_ref_from_file(path.parent, path.name))
    except ImageError as exc:
        raise CurateError(str(exc)) from None


def _jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
