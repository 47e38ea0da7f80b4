"""Where a corpus's images come from: a folder of files, a saved dataset, or a hub dataset."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class CorpusError(ValueError):
    """Bad corpus input or output; the message names it and the problem."""


@dataclass(frozen=True)
class CorpusImages:
    """Where the images come from: a folder of files, a saved dataset, or a hub dataset."""

    kind: str  # "dir" | "disk" | "hub"
    location: str
    split: str = "train"
    image_column: str = "image"
    id_column: str | None = None

    @classmethod
    def resolve(cls, images: str, split: str = "train", image_column: str = "image",
                id_column: str | None = None) -> "CorpusImages":
        p = Path(images).expanduser()
        if p.is_dir():
            if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file() \
                    or (p / "state.json").is_file():
                return cls("disk", str(p.resolve()), split, image_column, id_column)
            return cls("dir", str(p.resolve()), split, image_column, id_column)
        if p.exists():
            raise CorpusError(f"--images {images}: not a folder (give a folder of images or a dataset)")
        if images.count("/") == 1 and not images.startswith((".", "/")):
            from prism_eval.engines.hub import HubError, check_hub_repo

            try:  # one bounded request: a mistyped path or an offline machine fails now, not after retries
                check_hub_repo(images, "dataset", what="--images ")
            except HubError as exc:
                raise CorpusError(str(exc)) from None
            return cls("hub", images, split, image_column, id_column)
        raise CorpusError(f"--images {images}: no such folder, and not a hub dataset id (org/name)")

    def keys(self) -> list[str]:
        """Every image's key, sorted: the corpus order every run (and every worker) agrees on."""
        if self.kind == "dir":
            root = Path(self.location)
            keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                          if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
            if not keys:
                raise CorpusError(f"--images {self.location}: no image files ({', '.join(sorted(IMAGE_EXTS))})")
            return keys
        ds = self.dataset()
        if self.id_column is None:
            return [f"{i:09d}" for i in range(len(ds))]
        ids = [str(v) for v in ds[self.id_column]]
        if len(set(ids)) != len(ids):
            raise CorpusError(f"--images {self.location}: column {self.id_column!r} has duplicate ids")
        return sorted(ids)

    def dataset(self) -> Any:
        if getattr(self, "_ds", None) is None:
            import datasets

            if self.kind == "disk":
                ds = datasets.load_from_disk(self.location)
                if isinstance(ds, datasets.DatasetDict):
                    if self.split not in ds:
                        raise CorpusError(f"--images {self.location}: no split {self.split!r} "
                                          f"(splits: {', '.join(ds)})")
                    ds = ds[self.split]
            else:
                ds = datasets.load_dataset(self.location, split=self.split)
            if self.image_column not in ds.column_names:
                raise CorpusError(f"--images {self.location}: no image column {self.image_column!r} "
                                  f"(columns: {', '.join(ds.column_names)}; use --image-column)")
            if isinstance(ds.features.get(self.image_column), datasets.Image):
                # Keep the encoded bytes: they are what gets hashed and, with --embed-images, stored.
                ds = ds.cast_column(self.image_column, datasets.Image(decode=False))
            if self.id_column is not None and self.id_column not in ds.column_names:
                raise CorpusError(f"--images {self.location}: no column {self.id_column!r} "
                                  f"(columns: {', '.join(ds.column_names)})")
            object.__setattr__(self, "_ds", ds)
            if self.id_column:
                object.__setattr__(self, "_rows", {str(v): i for i, v in enumerate(ds[self.id_column])})
        return self._ds  # type: ignore[attr-defined]

    def load(self, key: str) -> tuple[Any, bytes | None]:
        """(PIL image in RGB, the original bytes when there are any) for one key."""
        from PIL import Image

        if self.kind == "dir":
            path = Path(self.location) / key
            data = path.read_bytes()
            with Image.open(path) as im:
                return im.convert("RGB"), data
        ds = self.dataset()
        row = self._rows[key] if self.id_column else int(key)  # type: ignore[attr-defined]
        value = ds[row][self.image_column]
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            import io

            data = value["bytes"] or Path(value["path"]).read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                return im.convert("RGB"), data
        if hasattr(value, "convert"):
            return value.convert("RGB"), None
        raise CorpusError(f"--images {self.location}: row {key} column {self.image_column!r} is not an image")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}
