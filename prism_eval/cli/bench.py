"""`prism-eval bench`: reproducible speed benchmarks (figures belong in reports/bench, never in tests)."""
from __future__ import annotations

from typing import Any

import click

from prism_eval.cli.common import fail

__all__ = ["bench"]


@click.group("bench")
def bench() -> None:
    """Reproducible speed benchmarks."""


@bench.command("judge")
@click.option("--judge", "judge_spec", default="builtin:smollm2-135m", show_default=True,
              help="Judge model spec (hf:, vllm:, openai:..., builtin:).")
@click.option("--questions", default=128, show_default=True, type=click.IntRange(1),
              help="Questions in the workload (8 per caption).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=None, type=click.IntRange(1), help="Judge batch size (rows per pass).")
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(1),
              help="Interleave the modes over this many groups of captions.")
@click.option("--threads", default=None, type=click.IntRange(1), help="torch intra-op threads (default: torch's).")
@click.option("--dtype", default=None, type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
              help="Judge weights' dtype (default: the engine's auto choice).")
@click.option("--out", "out_dir", default="reports/bench", show_default=True, type=click.Path(file_okay=False))
def bench_judge(judge_spec: str, questions: int, seed: int, batch_size: int | None, rounds: int,
                threads: int | None, dtype: str | None, out_dir: str) -> None:
    """Reference CapRL procedure vs. letter-logprob, option-loglik and greedy generation."""
    from prism_eval.engines.registry import load_judge
    from prism_eval.tools.bench_judge import run_judge_bench, to_markdown, write_report

    if threads:
        import torch

        torch.set_num_threads(threads)
    opts: dict[str, Any] = {"batch_size": batch_size} if batch_size else {}
    if dtype:
        opts["dtype"] = dtype
    try:
        judge = load_judge(judge_spec, **opts)
    except (ValueError, OSError, RuntimeError) as err:
        raise fail(err, prefix=f"--judge {judge_spec}: ") from None
    result = run_judge_bench(judge, questions, seed, rounds=rounds, log=lambda s: click.echo(s, err=True))
    jpath, mpath = write_report(result, out_dir)
    click.echo(to_markdown(result))
    click.echo(f"wrote {jpath} and {mpath}")
