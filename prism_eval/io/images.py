"""Safe image handling: paths that stay inside the benchmark, images that decode sanely.

Benchmark files are untrusted input: an image path may try to escape its
folder, a file may be truncated or a decompression bomb, and modes such as
CMYK, 16-bit or palette-with-alpha confuse image processors. Everything
leaves here as an RGB PIL image or a one-line error.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from prism_eval.core.records import ImageRef

MAX_PIXELS = 64_000_000  # anything larger is refused as a likely decompression bomb
MAX_SIDE = 4096  # larger images are downscaled before captioning


class ImageError(ValueError):
    """An image that cannot be used; the message names the image and the problem."""


def resolve_inside(root: Path, relative: str, what: str = "image") -> Path:
    """Resolve `relative` under `root`, refusing absolute paths and anything that escapes root."""
    if not relative or not isinstance(relative, str):
        raise ImageError(f"{what} path is empty")
    if Path(relative).is_absolute() or relative.startswith(("~", "\\")):
        raise ImageError(f"{what} path {relative!r} is absolute; paths must be relative to the benchmark file")
    shown = relative if len(relative) <= 200 else relative[:200] + "..."
    try:
        root_real = root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root_real):
            raise ImageError(f"{what} path {shown!r} escapes the benchmark folder {str(root)!r}")
        if not target.exists():
            raise ImageError(f"{what} {shown!r} does not exist")
        if not target.is_file():
            raise ImageError(f"{what} {shown!r} is not a file")
    except (OSError, ValueError) as exc:  # NUL bytes, names too long, unreadable folders
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{what} path {shown!r} cannot be used: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    return target


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_image_bytes(data: bytes, name: str) -> None:
    """Decode the header and verify the data stream; raise ImageError on anything wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"image {name!r} is {w}x{h} pixels, over the {MAX_PIXELS:,}-pixel limit "
                                     "(possible decompression bomb)")
                img.verify()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image {name!r} is too large to decode safely ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"image {name!r} cannot be decoded: not an image format PIL can read "
                         f"({len(data)} bytes)") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise ImageError(f"image {name!r} cannot be decoded: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def image_ref_from_file(root: Path, relative: str) -> ImageRef:
    """An ImageRef for a benchmark-relative file, checked and hashed."""
    path = resolve_inside(root, relative)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"image {relative!r} cannot be read: {exc.strerror or exc}") from None
    check_image_bytes(data, relative)
    return ImageRef(key=relative, sha256=sha256_bytes(data), path=str(path))


def image_ref_from_bytes(key: str, data: bytes) -> ImageRef:
    check_image_bytes(data, key)
    return ImageRef(key=key, sha256=sha256_bytes(data), data=data)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency composited on white; 16-bit and CMYK converted; EXIF rotation applied."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        return background
    return img.convert("RGB")


def open_image(ref: ImageRef, max_side: int = MAX_SIDE) -> Image.Image:
    """Load an ImageRef as an RGB image no larger than `max_side` on its long side."""
    data = ref.data if ref.data is not None else Path(ref.path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as raw:
            raw.load()
            img = to_rgb(raw)
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"image {ref.key!r} cannot be decoded: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def thumbnail_jpeg(ref: ImageRef, max_side: int = 192, quality: int = 70) -> bytes:
    img = open_image(ref)
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
