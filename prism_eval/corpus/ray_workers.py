"""`prism-eval caption --ray`: Ray Data hands shards to a pool of actors, one engine each (one vLLM per GPU).

The actors read the images and write the shards themselves, which is how
captioning scales to many GPUs and nodes (with a shared filesystem).
"""
from __future__ import annotations

import os
from typing import Any

from prism_eval.corpus.shards import CaptionJob, Layout, caption_shard, shard_keys, write_shard
from prism_eval.corpus.source import CorpusImages


class _ShardWorker:
    """A Ray Data actor: one engine, captions whole shards, writes them itself."""

    def __init__(self, job: dict[str, Any], source: dict[str, Any], out: str, keys: list[str],
                 spec: str | None = None) -> None:
        from prism_eval.engines.registry import load_captioner

        self.job = CaptionJob(**job)
        self.source = CorpusImages(**source)
        self.layout = Layout.for_out(out)
        self.keys = keys
        # the job records the spec with credentials redacted; the engine needs the spec itself
        self.captioner = load_captioner(spec or self.job.captioner, **self.job.captioner_opts)

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


def run_shards_ray(job: CaptionJob, source: CorpusImages, layout: Layout, pending: list[int], keys: list[str],
                   workers: int, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                   log: Any = None, spec: str | None = None) -> list[dict[str, Any]]:
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
                                                "out": str(layout.out), "keys": keys, "spec": spec}, **kwargs)
    results = []
    for row in out.iter_rows():
        results.append(dict(row))
        if log:
            log(f"shard {int(row['shard']) + 1}/{job.num_shards}: {row['rows']} captioned, "
                f"{row['failed']} unreadable (ray worker pid {row['pid']})")
    return results
