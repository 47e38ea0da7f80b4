"""`prism-eval caption`: caption an image corpus (resumable by shards; --ray for many GPUs or nodes)."""
from __future__ import annotations

import json

import click

from prism_eval.cli.common import fail
from prism_eval.core.protocols import CAPRL_CAPTION_PROMPT as DEFAULT_PROMPT

__all__ = ["caption_command"]


def _engine_options(items: tuple[str, ...]) -> dict:
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--captioner-opt")
        try:
            opts[key] = json.loads(value)
        except ValueError:
            opts[key] = value
    return opts


@click.command("caption")
@click.option("--captioner", required=True, help="Captioner spec (hf:, vllm:, openai:<model>@<url>).")
@click.option("--images", required=True, help="A folder of images, a saved dataset folder, or a hub dataset id.")
@click.option("--out", required=True, help="captions.parquet (one file) or a folder (parquet shards + captions.jsonl).")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True)
@click.option("--n", "n", default=1, show_default=True, type=click.IntRange(1), help="Captions per image.")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(0, 10))
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--max-new-tokens", default=512, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True)
@click.option("--shard-size", default=1000, show_default=True, type=click.IntRange(1),
              help="Images per shard (the unit of resume).")
@click.option("--ray", "use_ray", is_flag=True, help="Caption shards on a Ray cluster (RAY_ADDRESS, else local).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="With --ray: engine actors (e.g. one per GPU).")
@click.option("--cpus-per-worker", default=1.0, show_default=True)
@click.option("--gpus-per-worker", default=0.0, show_default=True)
@click.option("--split", default="train", show_default=True, help="Dataset split (dataset inputs).")
@click.option("--image-column", default="image", show_default=True)
@click.option("--id-column", default=None, help="Dataset column that names each image (default: row number).")
@click.option("--data-parallel", default=1, show_default=True, type=click.IntRange(1),
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
    from prism_eval.core.records import Sampling
    from prism_eval.corpus import CorpusError, caption_corpus

    try:
        summary = caption_corpus(
            captioner, images, out, prompt=prompt, n=n,
            sampling=Sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed),
            shard_size=shard_size, use_ray=use_ray, workers=workers, cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker, split=split, image_column=image_column, id_column=id_column,
            embed_images=embed_images, overwrite=overwrite, data_parallel=data_parallel,
            captioner_opts=_engine_options(captioner_opt), log=lambda msg: click.echo(msg, err=True))
    except CorpusError as exc:
        raise fail(exc) from None
    click.echo(json.dumps(summary))
