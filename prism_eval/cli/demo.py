"""`prism-eval demo`: the embedded benchmark, five captioners and the built-in judge, offline, with a leaderboard."""
from __future__ import annotations

import time
from pathlib import Path

import click

from prism_eval.cli.common import console, fail, shown
from prism_eval.cli.run import print_leaderboard, run_captioners
from prism_eval.core.protocols import SCORING_MODES
from prism_eval.runner.options import BUILTIN_JUDGE

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--judge", "-j", default=BUILTIN_JUDGE, show_default=True)
@click.option("--scoring", type=click.Choice(SCORING_MODES), default="option-loglik", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--store", type=click.Path(dir_okay=False), default=None)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N questions (a quick check).")
@click.option("--length-curve", default=None, metavar="K,K,...",
              help="Also score every caption cut to its first K judge tokens (e.g. 8,16,32,48).")
def demo_command(out: str, judge: str, scoring: str, seed: int, store: str | None, limit: int | None,
                 length_curve: str | None) -> None:
    """Run the embedded demo benchmark offline with the built-in judge and write its leaderboard."""
    from prism_eval.demo.run import demo_options, prepare_demo, validity_summary, write_validity
    from prism_eval.io.writable import OutputError, check_writable_dir

    started = time.perf_counter()
    root = Path(out)
    try:
        check_writable_dir(root, "--out")  # before the demo data and the tiny model are written
    except OutputError as exc:
        raise fail(exc) from None
    inputs = prepare_demo(root, seed=seed)
    try:
        options = demo_options(root, judge=judge, scoring=scoring, seed=seed, store=store, limit=limit,
                               length_curve=length_curve)
    except ValueError as exc:
        raise fail(exc) from None
    console.print(f"demo benchmark: {shown(inputs.benchmark)}; judge {shown(judge)}; scoring {scoring}")
    runs = run_captioners(inputs.captioners, [str(inputs.benchmark)], options, root / "runs")
    print_leaderboard(runs, "prism-eval demo: caption utility on the embedded benchmark")
    summary = validity_summary([(r.spec, r.out_dir, r.record) for r in runs])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _print_validity(summary)
    write_validity(summary, root)
    from prism_eval.report import write_report

    run_dirs = [r.out_dir for r in runs]
    html = write_report(run_dirs, root / "leaderboard.html")
    md = write_report(run_dirs, root / "leaderboard.md")
    console.print(f"leaderboard: {shown(html)} and {shown(md)}")
    console.print(f"demo finished in {summary['seconds']:.0f} s")
    if not summary["all_hold"]:
        console.print("[yellow]some validity checks did not hold at this size (see the table above)[/yellow]")


def _print_validity(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="validity checks (points; 95% CIs by image bootstrap)")
    for col in ("expected", "margin", "paired diff CI", "CI higher", "CI lower", "CIs disjoint"):
        table.add_column(col)
    for c in summary["checks"]:
        table.add_row(f"{c['higher']} > {c['lower']}", f"{c['margin']:+.1f}",
                      f"[{c['paired_diff_ci'][0]:+.1f}, {c['paired_diff_ci'][1]:+.1f}]",
                      f"[{c['ci_higher'][0]:.1f}, {c['ci_higher'][1]:.1f}]",
                      f"[{c['ci_lower'][0]:.1f}, {c['ci_lower'][1]:.1f}]", "yes" if c["cis_disjoint"] else "no")
    console.print(table)
