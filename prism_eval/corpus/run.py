"""Caption an image corpus into parquet shards and a captions file, resuming from shards already written.

Outputs: `--out captions.parquet` gives one parquet file (columns image,
caption, captions, sha256, ...), usable as `--captioner file:captions.parquet`
and as pretraining data; `--out DIR` gives a dataset folder (DIR/data/*.parquet,
loadable with `datasets.load_dataset("parquet", data_dir=DIR/data)`) plus
DIR/captions.jsonl for `file:`. Images that cannot be read are listed in
failed.jsonl beside the output, never silently dropped.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

from prism_eval.core.protocols import CAPRL_CAPTION_PROMPT as DEFAULT_PROMPT
from prism_eval.core.records import Sampling
from prism_eval.corpus.shards import (
    CaptionJob,
    Layout,
    caption_shard,
    finalize,
    prepare,
    sha_keys,
    shard_keys,
    write_shard,
)
from prism_eval.corpus.source import CorpusError, CorpusImages


def run_shards(captioner: Any, source: CorpusImages, job: CaptionJob, layout: Layout, pending: Iterable[int],
               keys: Sequence[str], log: Any = None) -> int:
    """Caption and write the pending shards in this process; returns how many were written."""
    done = 0
    total = job.num_shards
    for i in pending:
        rows, failed = caption_shard(captioner, source, job, shard_keys(keys, job.shard_size, i))
        write_shard(layout.shard_path(i, total), rows, failed, job.embed_images)
        done += 1
        if log:
            log(f"shard {i + 1}/{total}: {len(rows)} captioned, {len(failed)} unreadable")
    return done


def caption_corpus(captioner: str, images: str, out: str, *, prompt: str = DEFAULT_PROMPT, n: int = 1,
                   sampling: Sampling | None = None, shard_size: int = 1000, use_ray: bool = False,
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
    source = CorpusImages.resolve(images, split, image_column, id_column)
    layout = Layout.for_out(out)
    keys = source.keys()
    job = CaptionJob(captioner=captioner, captioner_opts=dict(captioner_opts or {}), source=source.describe(),
                     prompt=prompt, n=n, sampling=(sampling or Sampling()).to_dict(), shard_size=shard_size,
                     num_items=len(keys),
                     keys_sha256=sha_keys(keys), embed_images=embed_images)
    t0 = time.time()
    already_final = layout.single_file and layout.out.is_file() and not overwrite
    pending = prepare(job, layout, overwrite)
    skipped = job.num_shards - len(pending)
    if log:
        log(f"{len(keys)} images in {job.num_shards} shards: {skipped} already done, {len(pending)} to caption")
    if pending:
        if use_ray:
            from prism_eval.corpus.ray_workers import run_shards_ray

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
