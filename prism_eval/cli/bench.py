"""`prism-eval bench`: reproducible speed benchmarks (figures belong in reports/bench, never in tests)."""
from __future__ import annotations

from typing import Any

import click

from prism_eval.cli.common import UserError, fail
from prism_eval.tools.gpu_bench.runner import GpuBenchOptions

__all__ = ["bench", "bench_gpu"]


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


def _ints(value: str, flag: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint=flag) from None
    if not out:
        raise click.BadParameter("expected at least one integer", param_hint=flag)
    return out


def _csv(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


_D = GpuBenchOptions()  # the command's defaults are the options record's
_DTYPES = click.Choice(["auto", "bfloat16", "float16", "float32"])


@bench.command("gpu")
@click.option("--device", default=_D.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--scale", default=_D.scale, show_default=True, type=click.Choice(["full", "tiny"]),
              help="full: the published 3B configs; tiny: the same architectures shrunk, for CPU tests.")
@click.option("--dtype", default=_D.dtype, show_default=True, type=_DTYPES, help="auto: bf16 on a GPU, fp32 on a CPU.")
@click.option("--sections", default=",".join(_D.sections), show_default=True,
              help="Comma-separated sections to run.")
@click.option("--budget-s", default=_D.budget_s, show_default=True, type=float,
              help="Seconds for the whole run; the captioner stops adding runs to leave time for training.")
@click.option("--train-reserve-s", default=_D.train_reserve_s, show_default=True, type=float,
              help="Seconds kept for the training section.")
@click.option("--questions", default=_D.questions, show_default=True, type=int, help="Judge workload (8 per caption).")
@click.option("--judge-batch", default=_D.judge_batch, show_default=True, type=int, help="Judge rows per forward pass.")
@click.option("--judge-token-budget", default=_D.judge_token_budget, show_default=True, type=int,
              help="Padded new tokens per scoring pass.")
@click.option("--rounds", default=_D.rounds, show_default=True, type=int,
              help="Interleave the judge modes over N rounds.")
@click.option("--agreement-questions", default=_D.agreement_questions, show_default=True, type=int,
              help="Questions for the letter-logprob vs generation check.")
@click.option("--image-sizes", default=_csv(_D.image_sizes), show_default=True,
              help="Square image sizes for the captioner.")
@click.option("--caption-batch", "caption_batches", default=_csv(_D.caption_batches), show_default=True,
              help="Captioner batch sizes (each size runs each).")
@click.option("--new-tokens", default=_D.new_tokens, show_default=True, type=int, help="Caption token limit.")
@click.option("--sampled/--no-sampled", default=_D.sampled, show_default=True,
              help="Also caption the first size and batch with seeded sampling at T=1 (CapRL's rollouts).")
@click.option("--group", default=_D.group, show_default=True, type=int, help="GRPO group size (captions per image).")
@click.option("--train-steps", default=_D.train_steps, show_default=True, type=int)
@click.option("--train-new-tokens", default=_D.train_new_tokens, show_default=True, type=int)
@click.option("--train-image-size", default=_D.train_image_size, show_default=True, type=int)
@click.option("--train-scoring", default=_D.train_scoring, show_default=True,
              type=click.Choice(["letter-logprob", "option-loglik"]), help="How the in-process judge scores rewards.")
@click.option("--train-questions", default=_D.train_questions, show_default=True, type=int,
              help="Questions per caption in the reward (CapRL: 8).")
@click.option("--learning-rate", default=_D.learning_rate, show_default=True, type=float)
@click.option("--train-dtype", default=_D.train_dtype, show_default=True, type=_DTYPES,
              help="The policy's weights during training (auto: as caprl-train loads it).")
@click.option("--seed", default=_D.seed, show_default=True, type=int)
@click.option("--work-dir", default=None, type=click.Path(file_okay=False),
              help="Scratch folder (default: a temp dir).")
@click.option("--out", "out_dir", default=_D.out_dir, show_default=True, type=click.Path(file_okay=False))
def bench_gpu(sections: str, image_sizes: str, caption_batches: str, **kwargs: Any) -> None:
    """Random-weight Qwen2.5-3B judge and Qwen2.5-VL-3B captioner from the published configs: judge modes,
    captioning throughput and GRPO steps, measured on one device (no download)."""
    from prism_eval.tools.gpu_bench.models import ModelBuildError
    from prism_eval.tools.gpu_bench.report import to_markdown, write_report
    from prism_eval.tools.gpu_bench.runner import run_gpu_bench

    opts = GpuBenchOptions(sections=tuple(s.strip() for s in sections.split(",") if s.strip()),
                           image_sizes=_ints(image_sizes, "--image-sizes"),
                           caption_batches=_ints(caption_batches, "--caption-batch"), **kwargs)
    paths: list = []

    def update(result: dict) -> None:
        paths[:] = write_report(result, opts.out_dir)

    try:
        opts.validate()
        result = run_gpu_bench(opts, log=lambda s: click.echo(s, err=True), on_update=update)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except ModelBuildError as err:
        raise fail(err) from None
    click.echo(to_markdown(result))
    click.echo(f"wrote {paths[0]} and {paths[1]}")
    failed = [name for name, sec in result["sections"].items() if "error" in sec]
    if failed:
        raise UserError(f"section(s) failed: {', '.join(failed)} (see the report)")
