"""Caption an image corpus into parquet shards and a captions file, resuming from shards already written.

Outputs: `--out captions.parquet` gives one parquet file (columns image,
caption, captions, sha256, ...), usable as `--captioner file:captions.parquet`
and as pretraining data; `--out DIR` gives a dataset folder (DIR/data/*.parquet,
loadable with `datasets.load_dataset("parquet", data_dir=DIR/data)`) plus
DIR/captions.jsonl for `file:`. Images that cannot be read are listed in
failed.jsonl beside the output, never silently dropped.
"""
from __future__ import annotations

import math
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


def _check_settings(captioner: str, n: int, sampling: Sampling, shard_size: int, workers: int,
                    data_parallel: int) -> None:
    """Values that would fail late or mean nothing, refused before anything is read or loaded."""
    from prism_eval.engines.dp import NO_REPLICAS
    from prism_eval.engines.registry import ModelSpecError, parse_model_spec

    for flag, value in (("--shard-size", shard_size), ("--n", n), ("--workers", workers),
                        ("--data-parallel", data_parallel)):
        if value < 1:
            raise CorpusError(f"{flag} must be >= 1, got {value}")
    if not (math.isfinite(sampling.temperature) and 0 <= sampling.temperature <= 10):
        raise CorpusError(f"--temperature {sampling.temperature}: must be a number from 0 to 10")
    if not (math.isfinite(sampling.top_p) and 0 < sampling.top_p <= 1):
        raise CorpusError(f"--top-p {sampling.top_p}: must be a number in (0, 1]")
    try:
        kind = parse_model_spec(captioner, "captioner").kind
    except ModelSpecError as exc:
        raise CorpusError(f"--captioner {exc}") from None
    if kind in NO_REPLICAS:
        raise CorpusError(f"--captioner {captioner}: {'a captions file' if kind == 'file' else 'none'} computes no "
                          "captions; give a model (hf:, vllm:, openai:), or use the captions file directly with "
                          "`prism-eval run -c file:...`")


def caption_corpus(captioner: str, images: str, out: str, *, prompt: str = DEFAULT_PROMPT, n: int = 1,
                   sampling: Sampling | None = None, shard_size: int = 1000, use_ray: bool = False,
                   workers: int = 1, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                   split: str = "train", image_column: str = "image", id_column: str | None = None,
                   embed_images: bool = False, overwrite: bool = False, data_parallel: int = 1,
                   captioner_opts: dict[str, Any] | None = None, log: Any = None) -> dict[str, Any]:
    """Caption every image of a corpus into `out`, resuming from shards already written.

    Every input is checked before any model loads or any file is written: the settings, the
    captioner spec (and its model: a folder that exists, a hub id that is reachable or cached, a
    server that answers), the output location, and the images (a folder, or a reachable dataset).
    """
    from prism_eval.core.resilience import redact_secrets
    from prism_eval.io.writable import OutputError, check_writable_dir
    from prism_eval.runner.lock import LockError, output_lock
    from prism_eval.runner.preflight import check_model

    sampling = sampling or Sampling()
    _check_settings(captioner, n, sampling, shard_size, workers, data_parallel)
    layout = Layout.for_out(out)
    try:
        check_writable_dir(layout.out.parent if layout.single_file else layout.out, "--out")
        check_model(captioner, "captioner")
    except (OutputError, ValueError) as exc:
        raise CorpusError(str(exc)) from None
    source = CorpusImages.resolve(images, split, image_column, id_column)
    keys = source.keys()
    job = CaptionJob(captioner=redact_secrets(captioner), captioner_opts=dict(captioner_opts or {}),
                     source=source.describe(), prompt=prompt, n=n, sampling=sampling.to_dict(),
                     shard_size=shard_size, num_items=len(keys), keys_sha256=sha_keys(keys),
                     embed_images=embed_images)
    lock_file = layout.out.with_name(f".{layout.out.name}.lock")  # beside the output: --overwrite empties it
    try:
        with output_lock(layout.out, "--out", lock_file):
            return _caption(captioner, source, job, layout, keys, overwrite, use_ray=use_ray, workers=workers,
                            cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                            data_parallel=data_parallel, log=log)
    except LockError as exc:
        raise CorpusError(str(exc)) from None


def _caption(captioner: str, source: CorpusImages, job: CaptionJob, layout: Layout, keys: Sequence[str],
             overwrite: bool, *, use_ray: bool, workers: int, cpus_per_worker: float, gpus_per_worker: float,
             data_parallel: int, log: Any) -> dict[str, Any]:
    t0 = time.time()
    already_final = layout.single_file and layout.out.is_file() and not overwrite
    pending = prepare(job, layout, overwrite)
    skipped = job.num_shards - len(pending)
    if log:
        log(f"{len(keys)} images in {job.num_shards} shards: {skipped} already done, {len(pending)} to caption")
    if pending:
        if use_ray:
            from prism_eval.corpus.ray_workers import run_shards_ray

            run_shards_ray(job, source, layout, pending, list(keys), workers, cpus_per_worker, gpus_per_worker, log,
                           spec=captioner)
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
