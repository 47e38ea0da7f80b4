"""The rows of a spec's dataset split: from a local copy or the hub, filtered and subset deterministically.

Loading goes through `datasets.load_dataset` or `load_from_disk`, the same path
for a hub id and for a local folder, so tests exercise the real code on small
local datasets. A spec's dataset can be pointed at a local copy with the
`dataset_path` argument, the environment variable PRISM_EVAL_DATA_<NAME> (name
upper-cased, '-' -> '_'), or PRISM_EVAL_DATA_DIR/<name> when that folder exists.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from prism_eval.benchmarks.catalog.schema import BenchmarkSpec, SpecError


def _env_name(name: str) -> str:
    return "PRISM_EVAL_DATA_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def resolve_dataset_path(spec: BenchmarkSpec, dataset_path: str | None = None) -> str:
    """The local override if any (argument, PRISM_EVAL_DATA_<NAME>, PRISM_EVAL_DATA_DIR/<name>), else the hub id."""
    if dataset_path:
        return str(dataset_path)
    env = os.environ.get(_env_name(spec.name))
    if env:
        return env
    root = os.environ.get("PRISM_EVAL_DATA_DIR")
    if root and (Path(root) / spec.name).exists():
        return str(Path(root) / spec.name)
    return spec.dataset_path


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def load_rows(spec: BenchmarkSpec, dataset_path: str | None = None):
    """The spec's split as a `datasets.Dataset`, from a local copy or the hub."""
    import datasets

    source = resolve_dataset_path(spec, dataset_path)
    local = Path(source).expanduser()
    try:
        if local.exists():
            folder = local
            if spec.dataset_name and (folder / spec.dataset_name).is_dir():
                folder = folder / spec.dataset_name
            if _is_saved_dataset(folder):
                loaded = datasets.load_from_disk(str(folder))
                if isinstance(loaded, datasets.DatasetDict):
                    if spec.split not in loaded:
                        raise SpecError(f"{spec.name}: split {spec.split!r} not in {folder} "
                                        f"(it has {', '.join(loaded)})")
                    return loaded[spec.split]
                return loaded
            return datasets.load_dataset(str(folder), data_files=spec.data_files, split=spec.split)
        return datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.split,
                                     revision=spec.revision, data_files=spec.data_files)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds (network, missing split, bad files)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if local.exists() else f"; offline? point {_env_name(spec.name)} at a local copy"
        raise SpecError(f"{spec.name}: cannot load dataset {source!r} split {spec.split!r}: "
                        f"{type(exc).__name__}: {first}{hint}") from None


def filter_indices(spec: BenchmarkSpec, ds) -> list[int]:
    """Row indices kept by the spec's filter ({column, equals | in}), read without decoding images."""
    n = len(ds)
    if not spec.filter:
        return list(range(n))
    column = spec.filter.get("column")
    if column not in ds.column_names:
        raise SpecError(f"{spec.name}: filter column {column!r} not in the dataset ({', '.join(ds.column_names)})")
    values = ds[column]
    if "equals" in spec.filter:
        keep = {spec.filter["equals"]}
    elif "in" in spec.filter:
        keep = set(spec.filter["in"])
    else:
        raise SpecError(f"{spec.name}: filter needs 'equals' or 'in'")
    keep_s = {str(k) for k in keep}
    return [i for i, v in enumerate(values) if v in keep or str(v) in keep_s]


def subset_indices(spec: BenchmarkSpec, ds, indices: list[int]) -> list[int]:
    """A deterministic subset: rows ranked by sha256(seed:id), the first `size` kept, in dataset order.

    Independent of row order and of library versions, so the same rows are picked anywhere.
    """
    if not spec.subset:
        return indices
    size = int(spec.subset.get("size", 0))
    if size <= 0:
        raise SpecError(f"{spec.name}: subset.size must be a positive integer")
    if len(indices) <= size:
        return indices
    seed = str(spec.subset.get("seed", 0))
    key_col = spec.subset.get("by")
    keys = ds[key_col] if key_col else None
    if key_col and key_col not in ds.column_names:
        raise SpecError(f"{spec.name}: subset column {key_col!r} not in the dataset")

    def rank(i: int) -> str:
        key = str(keys[i]) if keys is not None else str(i)
        return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()

    chosen = set(sorted(indices, key=rank)[:size])
    return [i for i in indices if i in chosen]


def undecode_images(ds, columns: list[str]):
    """Ask datasets for the original encoded bytes instead of decoded PIL images."""
    import datasets

    for col in columns:
        feature = ds.features.get(col)
        if isinstance(feature, datasets.Image) and feature.decode:
            ds = ds.cast_column(col, datasets.Image(decode=False))
        elif isinstance(feature, (datasets.List, datasets.Sequence)) and isinstance(
                getattr(feature, "feature", None), datasets.Image):
            ds = ds.cast_column(col, type(feature)(datasets.Image(decode=False)))
    return ds
