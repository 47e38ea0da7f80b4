"""`prism-eval`: thin wiring from the command line to the pipeline, reports and tools."""
from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from prism_eval.core.protocols import ESTIMATORS, PROTOCOLS, SCORING_MODES

console = Console(stderr=True)
out_console = Console()
DEFAULT_JUDGE = "builtin:smollm2-135m"
EXIT_INCOMPLETE = 3
_CONTROL = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other C0/C1 control (tab and newline stay)
    r"|[\u202a-\u202e\u2066-\u2069]")  # bidirectional overrides that reorder what is shown


def clean(text: object) -> str:
    """Model or file text made safe for a terminal: control sequences removed, API keys redacted."""
    from prism_eval.core.resilience import redact_secrets

    return _CONTROL.sub("", redact_secrets(str(text)))


def shown(text: object) -> str:
    """`clean` text for rich output, where '[link=...]' or '[blink]' in a name would be markup."""
    return escape(clean(text))


class RichProgress:
    """Adapter from the pipeline's progress calls to rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, name: str, total: int):
        return self.progress.add_task(shown(name), total=max(total, 0))

    def advance(self, task, n: int = 1) -> None:
        self.progress.advance(task, n)


def run_options(f):
    """The options of `prism-eval run`, shared by the bare `prism-eval --captioner X` form."""
    decorators = [
        click.option("--captioner", "-c", "captioners", multiple=True,
                     help="Model spec (hf:, vllm:, openai:MODEL@URL, file:CAPTIONS.jsonl, none, or org/name). Repeatable."),
        click.option("--blind/--no-blind", default=False,
                     help="Also run the blind baseline (captioner `none`) beside the given captioners."),
        click.option("--benchmark", "-b", "benchmarks", multiple=True,
                     help="Benchmark or suite name, lmms:<task>, or a local JSONL file. Repeatable. Default: the caprl suite."),
        click.option("--judge", "-j", default=DEFAULT_JUDGE, show_default=True, help="Judge model spec."),
        click.option("--protocol", "-p", type=click.Choice(sorted(PROTOCOLS)), default=None,
                     help="Default: the suite's own (caprl-eval for the caprl suite, prism for prism), else caprl."),
        click.option("--compat", type=click.Choice(["caprl"]), default=None,
                     help="Score with CapRL's published metric quirks (to reproduce its numbers)."),
        click.option("--scoring", type=click.Choice(SCORING_MODES), default=None,
                     help="How the judge's answer is obtained (default: the protocol's)."),
        click.option("--estimator", type=click.Choice(ESTIMATORS), default=None,
                     help="argmax (decision accuracy), expected (probability of the right answer), "
                          "sampled (the papers' sampled procedure). Default: the protocol's."),
        click.option("--option-norm", type=click.Choice(["mean", "sum", "pmi"]), default="mean", show_default=True,
                     help="option-loglik only: how option log-likelihoods are compared (pmi subtracts the "
                          "caption-free log-likelihood; mean divides by tokens)."),
        click.option("--num-captions", "-n", type=click.IntRange(1), default=None, help="Captions per image."),
        click.option("--limit", type=click.IntRange(1), default=None, help="Questions per benchmark (first N)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--permutations", type=click.IntRange(1), default=1, show_default=True,
                     help="Option orders asked per question."),
        click.option("--metric", default=None, help="Metric for open questions of a local JSONL benchmark."),
        click.option("--caprl-label-quirk", "label_quirk", is_flag=True,
                     help="Label the 'cannot answer' option F as CapRL's released code did."),
        click.option("--caption-max-tokens", type=click.IntRange(1), default=None),
        click.option("--caption-temperature", type=float, default=None),
        click.option("--caption-batch", type=click.IntRange(1), default=8, show_default=True,
                     help="Images per captioner call (and per store commit); lower it on out-of-memory."),
        click.option("--judge-batch", type=click.IntRange(1), default=256, show_default=True,
                     help="Judge requests per call (and per store commit); lower it on out-of-memory."),
        click.option("--data-parallel", type=click.IntRange(1), default=1, show_default=True,
                     help="Engine replicas, one process per GPU group (vLLM/transformers)."),
        click.option("--trust-remote-code", is_flag=True, help="Allow model repositories to run their own code."),
        click.option("--store", type=click.Path(dir_okay=False), default=None,
                     help="Cache database (default: $PRISM_EVAL_CACHE/store.sqlite)."),
        click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/latest", show_default=True),
    ]
    return functools.reduce(lambda acc, d: d(acc), reversed(decorators), f)


def execute_run(captioners, blind, benchmarks, judge, protocol, compat, scoring, estimator, option_norm,
                num_captions, limit, seed, permutations, metric, label_quirk, caption_max_tokens,
                caption_temperature, trust_remote_code, data_parallel, store, out, title: str | None = None,
                caption_batch: int = 8, judge_batch: int = 256):
    """Load benchmarks, run every captioner, print the leaderboard; returns the RunResults."""
    from prism_eval.benchmarks import BenchmarkError, default_protocol, expand_names, load_benchmark
    from prism_eval.core.resilience import FatalError
    from prism_eval.pipeline import Evaluator, RunOptions, slug

    if not captioners:
        raise click.UsageError("give at least one --captioner")
    captioners = list(captioners) + (["none"] if blind and "none" not in captioners else [])
    requested = list(benchmarks) or ["caprl"]
    protocol = protocol or default_protocol(requested)
    names = expand_names(requested)
    try:
        loaded = [load_benchmark(name, limit=limit, metric=metric, compat=compat) for name in names]
    except (BenchmarkError, ValueError) as exc:
        raise click.ClickException(clean(exc)) from None
    options = RunOptions(judge=judge, protocol=protocol, compat=compat, scoring=scoring, estimator=estimator,
                         option_norm=option_norm, num_captions=num_captions, limit=limit, seed=seed, permutations=permutations,
                         label_quirk=label_quirk, caption_max_tokens=caption_max_tokens,
                         caption_temperature=caption_temperature, trust_remote_code=trust_remote_code,
                         data_parallel=data_parallel, store=store,
                         caption_batch=caption_batch, judge_batch=judge_batch)
    out = Path(out)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        try:
            evaluator = Evaluator(options, RichProgress(bar))
        except (ValueError, FatalError) as exc:
            raise click.ClickException(clean(exc)) from None
        for spec in captioners:
            target = out if len(captioners) == 1 else out / slug(spec)
            try:
                results.append(evaluator.run_captioner(spec, loaded, target))
            except FatalError as exc:  # a model that cannot load, a broken store: what is cached stays
                raise click.ClickException(clean(str(exc).splitlines()[0])) from None
            except (ValueError, OSError, ImportError) as exc:
                raise click.ClickException(f"{clean(spec)}: {clean(exc)}".splitlines()[0]) from None
    print_leaderboard(results, title)
    for r in results:
        console.print(f"wrote {shown(r.out_dir)}/results.json and samples.jsonl "
                      f"({r.caption_calls} captioner calls, {r.judge_calls} judge calls)")
    return results


def print_leaderboard(results, title: str | None = None) -> None:
    if not results:
        return
    benches = list(results[0].results["benchmarks"])
    first = results[0].results
    table = Table(title=title or f"judge {shown(first['judge'])} · protocol {first['protocol']} · "
                                 f"scoring {first['scoring']} · estimator {first['estimator']}")
    table.add_column("captioner")
    for b in benches:
        table.add_column(shown(b), justify="right")
    table.add_column("average", justify="right")
    for r in sorted(results, key=lambda r: -(r.results["average"] or -1)):
        row = [shown(r.captioner)]
        for b in benches:
            s = r.results["benchmarks"][b]
            cell = "—" if s["score"] is None else f"{s['score']:.1f}"
            if s.get("ci95"):
                cell += f" [{s['ci95'][0]:.1f}, {s['ci95'][1]:.1f}]"
            if s["failed"]:
                cell += f" ({s['failed']} failed)"
            row.append(cell)
        avg = r.results["average"]
        row.append("—" if avg is None else f"{avg:.1f}")
        table.add_row(*row)
    out_console.print(table)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.version_option(package_name="prism-eval")
@click.pass_context
def main(ctx, **kwargs):
    """Measure image captioners by the utility of their captions (Prism / CapRL).

    `prism-eval --captioner X` is short for `prism-eval run --captioner X`.
    """
    if ctx.invoked_subcommand is None:
        if not kwargs["captioners"]:
            click.echo(ctx.get_help())
            return
        results = execute_run(**kwargs)
        if not all(r.complete for r in results):
            ctx.exit(EXIT_INCOMPLETE)


@main.command("run")
@run_options
@click.pass_context
def run_command(ctx, **kwargs):
    """Caption every benchmark image, let the judge answer from the captions, score and save."""
    results = execute_run(**kwargs)
    if not all(r.complete for r in results):
        console.print("[yellow]the run is incomplete: some items failed (see results.json 'failed')[/yellow]")
        ctx.exit(EXIT_INCOMPLETE)


@main.command("demo")
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--judge", "-j", default=DEFAULT_JUDGE, show_default=True)
@click.option("--scoring", type=click.Choice(SCORING_MODES), default="option-loglik", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--store", type=click.Path(dir_okay=False), default=None)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N questions (a quick check).")
def demo_command(out, judge, scoring, seed, store, limit):
    """Run the embedded demo benchmark offline with the built-in judge and write its leaderboard."""
    from prism_eval.demo_run import run_demo

    summary = run_demo(Path(out), judge=judge, scoring=scoring, seed=seed, store=store, console=console,
                       execute=execute_run, limit=limit)
    if not summary["all_hold"]:
        console.print("[yellow]some validity checks did not hold at this size (see the table above)[/yellow]")


def _register_optional() -> None:
    """Commands whose modules are optional parts of the package."""
    for module, attr in (("prism_eval.report", "report_command"), ("prism_eval.specs", "benchmarks_command"),
                         ("prism_eval.bench", "bench"), ("prism_eval.corpus", "caption_command")):
        try:
            mod = __import__(module, fromlist=[attr])
        except ModuleNotFoundError as exc:  # an optional part that is not installed; real import bugs still raise
            if exc.name != module:
                raise
            continue
        command = getattr(mod, attr, None)
        if command is not None:
            main.add_command(command)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
