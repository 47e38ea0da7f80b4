"""Caption an image corpus: `prism-eval caption --captioner X --images DIR|dataset --out OUT`.

The corpus is split into fixed shards (sorted image keys, `--shard-size` each).
Each shard is captioned with one captioner call and written atomically as its
own parquet file, so an interrupted run resumes by skipping the shards already
on disk, and a shard's captions do not depend on which process made them. With
`--ray`, Ray Data hands shards to a pool of actors (one engine each, e.g. one
vLLM per GPU); the actors read the images and write the shards themselves,
which is how it scales to many GPUs and nodes (with a shared filesystem).

Outputs: `--out captions.parquet` gives one parquet file (columns image,
caption, captions, sha256, ...), usable as `--captioner file:captions.parquet`
and as pretraining data; `--out DIR` gives a dataset folder (DIR/data/*.parquet,
loadable with `datasets.load_dataset("parquet", data_dir=DIR/data)`) plus
DIR/captions.jsonl for `file:`. Images that cannot be read are listed in
failed.jsonl beside the output, never silently dropped.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import click

from prism_eval.core.records import Sampling

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DEFAULT_PROMPT = "Please describe this image in detail."
MANIFEST_KEY = b"prism_eval_manifest"
FAILED_KEY = b"prism_eval_failed"


class CorpusError(ValueError):
    """Bad corpus input or output; the message names it and the problem."""


# -- image sources --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSource:
    """Where the images come from: a folder of files, a saved dataset, or a hub dataset."""

    kind: str  # "dir" | "disk" | "hub"
    location: str
    split: str = "train"
    image_column: str = "image"
    id_column: str | None = None

    @classmethod
    def resolve(cls, images: str, split: str = "train", image_column: str = "image",
                id_column: str | None = None) -> "ImageSource":
        p = Path(images).expanduser()
        if p.is_dir():
            if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file() \
                    or (p / "state.json").is_file():
                return cls("disk", str(p.resolve()), split, image_column, id_column)
            return cls("dir", str(p.resolve()), split, image_column, id_column)
        if p.exists():
            raise CorpusError(f"--images {images}: not a folder (give a folder of images or a dataset)")
        if images.count("/") == 1 and not images.startswith((".", "/")):
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


# -- the plan: shards and their files ------------------------------------------------------------

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


def _sha_keys(keys: Sequence[str]) -> str:
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
        if existing != job.identity():
            raise CorpusError(f"--out {layout.out}: holds a run with other settings ({layout.manifest}); "
                              "choose another --out or pass --overwrite")
    else:
        _atomic_write(layout.manifest, json.dumps(job.identity(), indent=1, sort_keys=True).encode())
    total = job.num_shards
    return [i for i in range(total) if not layout.shard_path(i, total).is_file()]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _parquet_manifest(path: Path) -> dict[str, Any] | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(MANIFEST_KEY)
    return json.loads(raw) if raw else None


# -- captioning one shard ---------------------------------------------------------------------------

def caption_shard(captioner: Any, source: ImageSource, job: CaptionJob, keys: Sequence[str]
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


def run_shards(captioner: Any, source: ImageSource, job: CaptionJob, layout: Layout, pending: Iterable[int],
               keys: Sequence[str], log: Any = None) -> int:
    """Caption and write the pending shards in this process; returns how many were written."""
    done = 0
    total = job.num_shards
    block_after = os.environ.get("PRISM_EVAL_CORPUS_BLOCK_AFTER")  # test hook: see tests/test_corpus*.py
    for i in pending:
        rows, failed = caption_shard(captioner, source, job, shard_keys(keys, job.shard_size, i))
        write_shard(layout.shard_path(i, total), rows, failed, job.embed_images)
        done += 1
        if log:
            log(f"shard {i + 1}/{total}: {len(rows)} captioned, {len(failed)} unreadable")
        if block_after is not None and done >= int(block_after):
            sys.stdin.read()  # hold here until killed (or stdin closes) so a test can interrupt mid-run
    return done


class _ShardWorker:
    """A Ray Data actor: one engine, captions whole shards, writes them itself."""

    def __init__(self, job: dict[str, Any], source: dict[str, Any], out: str, keys: list[str]) -> None:
        from prism_eval.engines.registry import load_captioner

        self.job = CaptionJob(**job)
        self.source = ImageSource(**source)
        self.layout = Layout.for_out(out)
        self.keys = keys
        self.captioner = load_captioner(self.job.captioner, **self.job.captioner_opts)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        written, n_rows, n_failed = [], [], []
        total = self.job.num_shards
        for i in batch["shard"]:
            i = int(i)
            rows, failed = caption_shard(self.captioner, self.source, self.job,
                                         shard_keys(self.keys, self.job.shard_size, i))
            write_shard(self.layout.shard_path(i, total), rows, failed, self.job.embed_images)
            written.append(i)
            n_rows.append(len(rows))
            n_failed.append(len(failed))
        return {"shard": written, "rows": n_rows, "failed": n_failed, "pid": [os.getpid()] * len(written)}


def run_shards_ray(job: CaptionJob, source: ImageSource, layout: Layout, pending: list[int], keys: list[str],
                   workers: int, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                   log: Any = None) -> list[dict[str, Any]]:
    """Ray Data: shards are rows; an actor pool of `workers` engines captions and writes them."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None)
    if not pending:
        return []
    ctx = ray.data.DataContext.get_current()
    if ctx.wait_for_min_actors_s <= 0:
        # Start handing out shards once every engine actor is up, so none sits idle at the start.
        ctx.wait_for_min_actors_s = 3600
    ds = ray.data.from_items([{"shard": i} for i in pending], override_num_blocks=len(pending))
    kwargs: dict[str, Any] = {"num_cpus": cpus_per_worker}
    if gpus_per_worker:
        kwargs["num_gpus"] = gpus_per_worker
    # One shard in flight per actor: a shard is a long task, and queueing several on one
    # actor would leave the others without work.
    pool = ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1)
    out = ds.map_batches(_ShardWorker, batch_size=1, compute=pool,
                         fn_constructor_kwargs={"job": job.identity(), "source": source.describe(),
                                                "out": str(layout.out), "keys": keys}, **kwargs)
    results = []
    for row in out.iter_rows():
        results.append(dict(row))
        if log:
            log(f"shard {int(row['shard']) + 1}/{job.num_shards}: {row['rows']} captioned, "
                f"{row['failed']} unreadable (ray worker pid {row['pid']})")
    return results


# -- finishing ---------------------------------------------------------------------------------------

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
        _atomic_write(layout.failed_path, "".join(json.dumps(f) + "\n" for f in failed).encode())
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
        _atomic_write(captions_file, lines.encode())
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


# -- the command -------------------------------------------------------------------------------------

def caption_corpus(captioner: str, images: str, out: str, *, prompt: str = DEFAULT_PROMPT, n: int = 1,
                   sampling: Sampling = Sampling(), shard_size: int = 1000, use_ray: bool = False,
                   workers: int = 1, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                   split: str = "train", image_column: str = "image", id_column: str | None = None,
                   embed_images: bool = False, overwrite: bool = False, data_parallel: int = 1,
                   captioner_opts: dict[str, Any] | None = None, log: Any = None) -> dict[str, Any]:
    """Caption every image of a corpus into `out`, resuming from shards already written."""
    if shard_size < 1:
        raise CorpusError(f"--shard-size must be >= 1, got {shard_size}")
    if n < 1:
        raise CorpusError(f"--n must be >= 1, got {n}")
    if workers < 1:
        raise CorpusError(f"--workers must be >= 1, got {workers}")
    if data_parallel < 1:
        raise CorpusError(f"--data-parallel must be >= 1, got {data_parallel}")
    source = ImageSource.resolve(images, split, image_column, id_column)
    layout = Layout.for_out(out)
    keys = source.keys()
    job = CaptionJob(captioner=captioner, captioner_opts=dict(captioner_opts or {}), source=source.describe(),
                     prompt=prompt, n=n, sampling=sampling.to_dict(), shard_size=shard_size, num_items=len(keys),
                     keys_sha256=_sha_keys(keys), embed_images=embed_images)
    t0 = time.time()
    already_final = layout.single_file and layout.out.is_file() and not overwrite
    pending = prepare(job, layout, overwrite)
    skipped = job.num_shards - len(pending)
    if log:
        log(f"{len(keys)} images in {job.num_shards} shards: {skipped} already done, {len(pending)} to caption")
    if pending:
        if use_ray:
            run_shards_ray(job, source, layout, pending, keys, workers, cpus_per_worker, gpus_per_worker, log)
        else:
            from prism_eval.engines.dp import data_parallel_captioner

            engine = data_parallel_captioner(captioner, data_parallel, **job.captioner_opts)
            try:
                run_shards(engine, source, job, layout, pending, keys, log)
            finally:
                if hasattr(engine, "close"):
                    engine.close()
    if already_final:
        summary = {"images": job.num_items, "shards": job.num_shards, "output": str(layout.out),
                   "captions_file": str(layout.out)}
    else:
        summary = finalize(job, layout)
    summary.update({"computed_shards": len(pending), "skipped_shards": skipped,
                    "seconds": round(time.time() - t0, 2)})
    return summary


@click.command("caption")
@click.option("--captioner", required=True, help="Captioner spec (hf:, vllm:, openai:<model>@<url>).")
@click.option("--images", required=True, help="A folder of images, a saved dataset folder, or a hub dataset id.")
@click.option("--out", required=True, help="captions.parquet (one file) or a folder (parquet shards + captions.jsonl).")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True)
@click.option("--n", "n", default=1, show_default=True, help="Captions per image.")
@click.option("--temperature", default=0.0, show_default=True)
@click.option("--top-p", default=1.0, show_default=True)
@click.option("--max-new-tokens", default=512, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--shard-size", default=1000, show_default=True, help="Images per shard (the unit of resume).")
@click.option("--ray", "use_ray", is_flag=True, help="Caption shards on a Ray cluster (RAY_ADDRESS, else local).")
@click.option("--workers", default=1, show_default=True, help="With --ray: engine actors (e.g. one per GPU).")
@click.option("--cpus-per-worker", default=1.0, show_default=True)
@click.option("--gpus-per-worker", default=0.0, show_default=True)
@click.option("--split", default="train", show_default=True, help="Dataset split (dataset inputs).")
@click.option("--image-column", default="image", show_default=True)
@click.option("--id-column", default=None, help="Dataset column that names each image (default: row number).")
@click.option("--data-parallel", default=1, show_default=True,
              help="Without --ray: engine replicas in this machine, one per GPU group.")
@click.option("--embed-images", is_flag=True, help="Store the image bytes in the output (self-contained data).")
@click.option("--overwrite", is_flag=True, help="Discard what --out holds and start again.")
@click.option("--captioner-opt", "captioner_opt", multiple=True, metavar="KEY=VALUE",
              help="Engine option, e.g. dtype=bfloat16 or max_pixels=1003520 (JSON values accepted).")
def caption_command(captioner: str, images: str, out: str, prompt: str, n: int, temperature: float, top_p: float,
                    max_new_tokens: int, seed: int, shard_size: int, use_ray: bool, workers: int,
                    cpus_per_worker: float, gpus_per_worker: float, split: str, image_column: str,
                    id_column: str | None, data_parallel: int, embed_images: bool, overwrite: bool,
                    captioner_opt: tuple[str, ...]) -> None:
    """Caption an image corpus (resumable by shards; --ray for many GPUs or nodes)."""
    opts = {}
    for item in captioner_opt:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--captioner-opt")
        try:
            opts[key] = json.loads(value)
        except ValueError:
            opts[key] = value
    try:
        summary = caption_corpus(
            captioner, images, out, prompt=prompt, n=n,
            sampling=Sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed),
            shard_size=shard_size, use_ray=use_ray, workers=workers, cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker, split=split, image_column=image_column, id_column=id_column,
            embed_images=embed_images, overwrite=overwrite, data_parallel=data_parallel, captioner_opts=opts,
            log=lambda msg: click.echo(msg, err=True))
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(summary))


if __name__ == "__main__":  # python -m prism_eval.corpus ... (the same as prism-eval caption)
    caption_command()
