"""`prism-eval run` (and the bare `prism-eval --captioner X`): caption, judge, score, save, print."""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from prism_eval.cli.common import EXIT_INCOMPLETE, UserError, console, fail, out_console, progress_bars, shown
from prism_eval.core.protocols import ESTIMATORS, OPTION_NORMS, PROTOCOLS, SCORING_MODES
from prism_eval.runner.options import BUILTIN_JUDGE, COMPAT_MODES, RunOptions

_OPTION_FIELDS = [f.name for f in fields(RunOptions)]


def run_options(f: Callable) -> Callable:
    """The options of `prism-eval run`, shared by the bare `prism-eval --captioner X` form."""
    decorators = [
        click.option("--captioner", "-c", "captioners", multiple=True,
                     help="Model spec (hf:, vllm:, openai:MODEL@URL, file:CAPTIONS.jsonl, none, or org/name). "
                          "Repeatable."),
        click.option("--name", "names", multiple=True, metavar="[SPEC=]NAME",
                     help="Display name stored in results.json (one captioner: NAME; several: SPEC=NAME). "
                          "Repeatable."),
        click.option("--blind/--no-blind", default=False,
                     help="Also run the blind baseline (captioner `none`) beside the given captioners."),
        click.option("--benchmark", "-b", "benchmarks", multiple=True,
                     help="Benchmark or suite name, lmms:<task>, or a local JSONL file. Repeatable. "
                          "Default: the caprl suite."),
        click.option("--judge", "-j", default=None,
                     help="Judge model spec. Default: the judge the suite's or protocol's paper used (caprl suite: "
                          f"internlm/CapRL-Eval-3B); {BUILTIN_JUDGE} runs offline."),
        click.option("--protocol", "-p", default=None, metavar="NAME",
                     help=f"{' | '.join(PROTOCOLS)} (or one a plugin adds). Default: the suite's own "
                          "(caprl-eval for the caprl suite, prism for prism), else caprl."),
        click.option("--compat", type=click.Choice(COMPAT_MODES), default=None,
                     help="Reproduce a paper's own code: caprl (CapRL's data, prompts, sampling and scoring "
                          "quirks) or prism (Prism's generic instruction when a query-specific one fails)."),
        click.option("--scoring", type=click.Choice(SCORING_MODES), default=None,
                     help="How the judge's answer is obtained (default: the protocol's)."),
        click.option("--estimator", type=click.Choice(ESTIMATORS), default=None,
                     help="argmax (decision accuracy), expected (probability of the right answer), "
                          "sampled (the papers' sampled procedure). Default: the protocol's."),
        click.option("--option-norm", type=click.Choice(OPTION_NORMS), default="mean", show_default=True,
                     help="option-loglik only: how option log-likelihoods are compared (pmi subtracts the "
                          "caption-free log-likelihood; mean divides by tokens)."),
        click.option("--num-captions", "-n", type=click.IntRange(1), default=None, help="Captions per image."),
        click.option("--limit", type=click.IntRange(1), default=None, help="Questions per benchmark (first N)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--permutations", type=click.IntRange(1), default=1, show_default=True,
                     help="Option orders asked per question."),
        click.option("--length-curve", default=None, metavar="K,K,...",
                     help="Also score every caption cut to its first K judge tokens (at a word boundary), "
                          "for each K: results.json's by_length. Only the judge runs again."),
        click.option("--metric", default=None, help="Metric for open questions of a local JSONL benchmark."),
        click.option("--caprl-label-quirk", "label_quirk", is_flag=True,
                     help="Label the 'cannot answer' option F as CapRL's released code did."),
        click.option("--caption-max-tokens", type=click.IntRange(1), default=None),
        click.option("--caption-temperature", type=click.FloatRange(0, 10), default=None),
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


@dataclass
class CaptionerRun:
    """One captioner's finished run, with the model calls it took (0 and 0 for a rerun from the store)."""

    spec: str
    out_dir: Path
    record: Any  # prism_eval.runner.results.RunRecord
    caption_calls: int
    judge_calls: int


def display_name_map(names: Sequence[str], captioners: Sequence[str], blind: bool = False) -> dict[str, str]:
    """--name values as {captioner spec: name}: `SPEC=NAME` (SPEC may be `none` with --blind), or a bare NAME
    when one captioner is given."""
    specs = [*captioners, *(["none"] if blind and "none" not in captioners else [])]
    out: dict[str, str] = {}
    for value in names:
        spec = next((c for c in specs if value.startswith(c + "=")), None)
        if spec is None and len(captioners) == 1 and "=" not in value:
            spec = captioners[0]
            value = f"{spec}={value}"
        if spec is None:
            raise UserError(f"--name {value!r}: give SPEC=NAME with SPEC one of the --captioner values"
                            + ("" if len(captioners) > 1 else " (or a bare NAME)"))
        out[spec] = value[len(spec) + 1:].strip()
        if not out[spec]:
            raise UserError(f"--name {value!r}: the name is empty")
    return out


def run_captioners(captioners: Sequence[str], benchmarks: Sequence[str], options: RunOptions, out: Path, *,
                   metric: str | None = None, blind: bool = False,
                   names: dict[str, str] | None = None, judge_defaulted: bool = False) -> list[CaptionerRun]:
    """Load the benchmarks once, then evaluate each captioner through one shared store and judge."""
    from prism_eval.api import load_benchmarks, suite_average
    from prism_eval.benchmarks import BenchmarkError
    from prism_eval.engines.base import EngineError
    from prism_eval.runner.lock import LockError, acquire, release
    from prism_eval.runner.preflight import check_captions, check_inputs

    specs = list(dict.fromkeys([*captioners, *(["none"] if blind else [])]))
    try:  # every input is checked before any model is loaded (runner/preflight.py)
        checked = check_inputs(specs, options.judge, out, judge_defaulted)
        loaded = load_benchmarks(list(benchmarks), options, metric)
        notes = check_captions(checked, loaded, options.captions_per_image())
        lock = acquire(out)
    except (BenchmarkError, ValueError, EngineError, LockError) as exc:
        raise fail(exc) from None
    for note in notes:
        console.print(f"[yellow]warning:[/yellow] {shown(note)}")
    try:
        return _run_all(specs, loaded, options, out, names or {}, suite_average(list(benchmarks)))
    finally:
        release(lock)


def _run_all(specs: list[str], loaded: list, options: RunOptions, out: Path, names: dict[str, str],
             average_over: list[str] | None) -> list[CaptionerRun]:
    from prism_eval.api import evaluate
    from prism_eval.core.resilience import FatalError
    from prism_eval.runner.evaluator import Evaluator
    from prism_eval.runner.naming import output_folders

    folders = output_folders(specs)
    outcomes: list[CaptionerRun] = []
    with progress_bars() as bar:
        from prism_eval.cli.common import RichProgress

        try:
            session = Evaluator(options, RichProgress(bar),
                                log=lambda line: bar.console.print(f"note: {line}", markup=False))
        except (ValueError, FatalError) as exc:
            raise fail(exc) from None
        for spec in specs:
            target = out if len(specs) == 1 else out / folders[spec]
            calls = (session.caption_calls, session.judge.model_calls)
            try:
                record = evaluate(spec, loaded, session=session, out=target, name=names.get(spec),
                                  average_over=average_over)
            except FatalError as exc:  # a model that cannot load, a broken store: what is cached stays
                raise fail(exc) from None
            except (ValueError, OSError, ImportError) as exc:
                raise fail(exc, prefix=f"{spec}: ") from None
            outcomes.append(CaptionerRun(spec, target, record, session.caption_calls - calls[0],
                                         session.judge.model_calls - calls[1]))
    from prism_eval.runner.vision import add_vision_required  # with the blind baseline among the runs

    try:
        add_vision_required([(o.out_dir, o.record) for o in outcomes])
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    return outcomes


def print_leaderboard(runs: Sequence[CaptionerRun], title: str | None = None) -> None:
    from rich.table import Table

    from prism_eval.runner.naming import display_names

    if not runs:
        return
    first = runs[0].record
    benches = list(first.benchmarks)
    s = first.settings
    table = Table(title=title or f"judge {shown(s.judge)} · protocol {s.protocol} · "
                                 f"scoring {s.scoring} · estimator {s.estimator}")
    names = display_names([r.spec for r in runs])  # as the report names them: what tells the specs apart
    table.add_column("captioner")
    for b in benches:
        table.add_column(shown(b), justify="right")
    table.add_column("average", justify="right")
    for r in sorted(runs, key=lambda r: -(r.record.average if r.record.average is not None else -1)):
        row = [shown(r.record.name or names[r.spec])]
        for b in benches:
            res = r.record.benchmarks[b]
            cell = "—" if res.score is None else f"{res.score:.1f}"
            if res.ci95:
                cell += f" [{res.ci95[0]:.1f}, {res.ci95[1]:.1f}]"
            if res.failed:
                cell += f" ({res.failed} failed)"
            row.append(cell)
        avg = r.record.average
        row.append("—" if avg is None else f"{avg:.1f}")
        table.add_row(*row)
    out_console.print(table)


def execute_run(*, captioners: Sequence[str], blind: bool, benchmarks: Sequence[str], metric: str | None,
                out: str, names: Sequence[str] = (), **values: Any) -> list[CaptionerRun]:
    """The run commands' body: options from the flags, the runs, the leaderboard and where it was written."""
    from prism_eval.benchmarks import default_judge, default_protocol
    from prism_eval.plugins import load_plugins

    if not captioners:
        raise click.UsageError("give at least one --captioner")
    requested = list(benchmarks) or ["caprl"]
    values["protocol"] = values.get("protocol") or default_protocol(requested)
    judge_defaulted = not values.get("judge")
    values["judge"] = values.get("judge") or default_judge(requested)
    try:
        load_plugins()
        options = RunOptions(**{k: v for k, v in values.items() if k in _OPTION_FIELDS})
    except (ValueError, ImportError) as exc:
        raise fail(exc) from None
    runs = run_captioners(captioners, requested, options, Path(out), metric=metric, blind=blind,
                          names=display_name_map(names, captioners, blind), judge_defaulted=judge_defaulted)
    print_leaderboard(runs)
    for r in runs:
        for name, res in r.record.benchmarks.items():
            if res.truncated:
                console.print(f"[yellow]warning:[/yellow] {shown(r.spec)}: {res.truncated} caption(s) of "
                              f"{shown(name)} were longer than the judge's context and were cut from the end "
                              "(results.json: truncated)")
    for r in runs:
        console.print(f"wrote {shown(r.out_dir)}/results.json and samples.jsonl "
                      f"({r.caption_calls} captioner calls, {r.judge_calls} judge calls)")
    return runs


def exit_code(runs: Sequence[CaptionerRun]) -> int:
    return 0 if all(r.record.complete for r in runs) else EXIT_INCOMPLETE


@click.command("run")
@run_options
@click.pass_context
def run_command(ctx: click.Context, **kwargs: Any) -> None:
    """Caption every benchmark image, let the judge answer from the captions, score and save."""
    runs = execute_run(**kwargs)
    if exit_code(runs):
        console.print("[yellow]the run is incomplete: some items failed (see results.json 'failed')[/yellow]")
        ctx.exit(exit_code(runs))


__all__ = ["run_command", "run_options", "execute_run", "run_captioners", "print_leaderboard", "exit_code",
           "CaptionerRun", "UserError"]
