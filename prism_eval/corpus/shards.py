"""The plan of a corpus job: fixed shards of sorted keys, their files, the manifest, and the merged output.

Each shard is written atomically as its own parquet file, so an interrupted run
resumes by skipping the shards already on disk; the manifest (every setting
that determines the output) is checked on resume so a different job never
mixes into an old output.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from prism_eval.core.records import Sampling
from prism_eval.corpus.source import CorpusError, CorpusImages

MANIFEST_KEY = b"prism_eval_manifest"
FAILED_KEY = b"prism_eval_failed"


@dataclass
class CaptionJob:
    """Everything that determines the output; stored as the manifest and checked on resume."""

    captioner: str
    captioner_opts: dict[str, Any]
    source: dict[str, Any]
    prompt: str
    n: int
    sampling: dict[str, Any]
    shard_size: int
    num_items: int
    keys_sha256: str
    embed_images: bool = False
    version: int = 1

    @property
    def num_shards(self) -> int:
        return max(1, math.ceil(self.num_items / self.shard_size))

    def identity(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Layout:
    """Where shards, the final output and the side files go for one --out."""

    out: Path
    single_file: bool  # --out *.parquet
    shards_dir: Path = field(init=False)
    manifest: Path = field(init=False)

    def __post_init__(self) -> None:
        if self.single_file:
            self.shards_dir = self.out.with_name(self.out.name + ".parts")
            self.manifest = self.shards_dir / "manifest.json"
        else:
            self.shards_dir = self.out / "data"
            self.manifest = self.out / "manifest.json"

    @classmethod
    def for_out(cls, out: str) -> "Layout":
        p = Path(out).expanduser()
        if p.suffix == ".parquet":
            if p.is_dir():
                raise CorpusError(f"--out {out}: is a folder, but a .parquet name asks for one file")
            return cls(p, True)
        if p.exists() and not p.is_dir():
            raise CorpusError(f"--out {out}: exists and is not a folder (use a folder or a .parquet name)")
        return cls(p, False)

    def shard_path(self, i: int, total: int) -> Path:
        return self.shards_dir / f"shard-{i:05d}-of-{total:05d}.parquet"

    @property
    def failed_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".failed.jsonl") if self.single_file else self.out / "failed.jsonl"


def shard_keys(keys: Sequence[str], shard_size: int, i: int) -> list[str]:
    return list(keys[i * shard_size:(i + 1) * shard_size])


def sha_keys(keys: Sequence[str]) -> str:
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode())
        h.update(b"\n")
    return h.hexdigest()


def prepare(job: CaptionJob, layout: Layout, overwrite: bool) -> list[int]:
    """Check or write the manifest; return the shard indices still to do."""
    if overwrite:
        if layout.single_file:
            shutil.rmtree(layout.shards_dir, ignore_errors=True)
            layout.out.unlink(missing_ok=True)
        else:
            shutil.rmtree(layout.out, ignore_errors=True)
    if layout.single_file and layout.out.is_file():
        existing = _parquet_manifest(layout.out)
        if existing != job.identity():
            raise CorpusError(f"--out {layout.out}: holds captions made with other settings; "
                              "choose another --out or pass --overwrite")
        return []
    layout.shards_dir.mkdir(parents=True, exist_ok=True)
    for stale in layout.shards_dir.glob(".shard-*.tmp-*"):  # half-written by a killed run
        stale.unlink(missing_ok=True)
    if layout.manifest.is_file():
        try:
            existing = json.loads(layout.manifest.read_text())
        except ValueError:
            existing = None
        if existing != job.identity() and any(layout.shards_dir.glob("shard-*.parquet")):
            raise CorpusError(f"--out {layout.out}: holds a run with other settings ({layout.manifest}); "
                              "choose another --out or pass --overwrite")
        if existing != job.identity():  # a run that wrote no shard (it failed to start): nothing to keep
            atomic_write_bytes(layout.manifest, json.dumps(job.identity(), indent=1, sort_keys=True).encode())
    else:
        atomic_write_bytes(layout.manifest, json.dumps(job.identity(), indent=1, sort_keys=True).encode())
    total = job.num_shards
    return [i for i in range(total) if not layout.shard_path(i, total).is_file()]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _parquet_manifest(path: Path) -> dict[str, Any] | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(MANIFEST_KEY)
    return json.loads(raw) if raw else None


def caption_shard(captioner: Any, source: CorpusImages, job: CaptionJob, keys: Sequence[str]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Caption one shard's images in one call: (rows, failures)."""
    images, ok_keys, shas, blobs, failed = [], [], [], [], []
    for key in keys:
        try:
            img, data = source.load(key)
        except Exception as exc:  # noqa: BLE001 - an unreadable image is reported, not fatal
            failed.append({"image": key, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})
            continue
        images.append([img])
        ok_keys.append(key)
        shas.append(hashlib.sha256(data if data is not None else img.tobytes()).hexdigest())
        blobs.append(data)
    if not images:
        return [], failed
    sampling = Sampling(**job.sampling)
    texts = captioner.caption(images, [job.prompt] * len(images), job.n, sampling)
    if len(texts) != len(images):
        raise RuntimeError(f"captioner returned {len(texts)} results for {len(images)} images")
    rows = []
    for key, sha, blob, caps in zip(ok_keys, shas, blobs, texts):
        row = {"image": key, "caption": caps[0] if caps else "", "captions": list(caps), "sha256": sha,
               "captioner": job.captioner, "prompt": job.prompt}
        if job.embed_images:
            row["image_bytes"] = blob
        rows.append(row)
    return rows, failed


def _schema(embed: bool) -> Any:
    import pyarrow as pa

    fields = [("image", pa.string()), ("caption", pa.string()), ("captions", pa.list_(pa.string())),
              ("sha256", pa.string()), ("captioner", pa.string()), ("prompt", pa.string())]
    if embed:
        fields.append(("image_bytes", pa.binary()))
    return pa.schema(fields)


def write_shard(path: Path, rows: list[dict[str, Any]], failed: list[dict[str, str]], embed: bool) -> None:
    """Write a shard atomically (temp file, then rename): a shard file on disk is always complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(embed).with_metadata({FAILED_KEY: json.dumps(failed).encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def finalize(job: CaptionJob, layout: Layout) -> dict[str, Any]:
    """Check every shard is there; write the merged outputs and failed.jsonl; return a summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = job.num_shards
    missing = [i for i in range(total) if not layout.shard_path(i, total).is_file()]
    if missing:
        raise CorpusError(f"--out {layout.out}: shards {missing[:5]} are missing; run the command again to resume")
    tables, failed = [], []
    for i in range(total):
        t = pq.read_table(layout.shard_path(i, total))
        failed.extend(json.loads((t.schema.metadata or {}).get(FAILED_KEY, b"[]")))
        tables.append(t.replace_schema_metadata(None))
    table = pa.concat_tables(tables) if tables else pa.Table.from_pylist([], schema=_schema(job.embed_images))
    if failed:
        atomic_write_bytes(layout.failed_path, "".join(json.dumps(f) + "\n" for f in failed).encode())
    if layout.single_file:
        meta = {MANIFEST_KEY: json.dumps(job.identity()).encode()}
        tmp = layout.out.with_name(f".{layout.out.name}.tmp-{os.getpid()}")
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, layout.out)
        shutil.rmtree(layout.shards_dir, ignore_errors=True)
        captions_file = layout.out
    else:
        lines = "".join(json.dumps({"image": r["image"], "captions": r["captions"]}, ensure_ascii=False) + "\n"
                        for r in table.select(["image", "captions"]).to_pylist())
        captions_file = layout.out / "captions.jsonl"
        atomic_write_bytes(captions_file, lines.encode())
    return {"images": job.num_items, "captioned": table.num_rows, "unreadable": len(failed),
            "shards": total, "output": str(layout.out), "captions_file": str(captions_file)}


def read_captions(path: str | Path) -> dict[str, list[str]]:
    """image key -> captions from any corpus output: a .parquet file, a dataset folder, or captions JSONL."""
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        files = sorted((p / "data").glob("*.parquet"))
        rows = [r for f in files for r in pq.read_table(f, columns=["image", "captions"]).to_pylist()]
    elif p.suffix == ".parquet":
        rows = pq.read_table(p, columns=["image", "captions"]).to_pylist()
    else:
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").split("\n") if line.strip()]
    out: dict[str, list[str]] = {}
    for r in rows:
        out[r["image"]] = list(r.get("captions") or [r.get("caption", "")])
    return out
