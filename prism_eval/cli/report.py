"""`prism-eval report`: leaderboards of run folders as one HTML page, Markdown or JSON."""
from __future__ import annotations

from pathlib import Path

import click

from prism_eval.cli.common import fail

__all__ = ["report_command"]


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reports/leaderboard.html"), show_default=True,
              help="Output file; its suffix (.html, .md, .json) picks the format.")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default=None,
              help="Output format, overriding the suffix of --out.")
@click.option("--no-reference", is_flag=True, help="Leave out the published CapRL Table 3 rows.")
@click.option("--group", is_flag=True,
              help="Runs scored under different settings: one leaderboard each instead of an error. (Runs that "
                   "differ only in the judge get one leaderboard per judge and a judge-agreement section anyway.)")
@click.option("--title", default=None, help="Page and table title.")
@click.option("--label", "labels", multiple=True, metavar="RUN=NAME",
              help="Show a run under NAME (RUN: its folder, its captioner spec or its shown name). Repeatable.")
@click.option("--max-samples", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Most samples embedded in the HTML sample browser (whole questions, a fixed subset).")
@click.option("--length-budget", type=click.IntRange(min=1), default=None, metavar="K",
              help="Budget (judge tokens) of the length-controlled \"score @ K tokens\" column, for runs scored with "
                   "--length-curve. Default: the largest K every such run has.")
def report_command(run_dirs: tuple[Path, ...], out: Path, fmt: str | None, no_reference: bool, group: bool,
                   title: str | None, labels: tuple[str, ...], max_samples: int, length_budget: int | None) -> None:
    """Leaderboard of RUN_DIR... (run folders, or folders of run folders) as HTML, Markdown or JSON."""
    from prism_eval.io.writable import OutputError, check_writable_file
    from prism_eval.report.api import write_report
    from prism_eval.report.runs import ReportError, parse_labels

    try:
        check_writable_file(out, "-o")  # before reading any run: a bad -o is found in a second
        path = write_report(list(run_dirs), out, fmt, reference=not no_reference, group=group, title=title,
                            max_samples=max_samples, labels=parse_labels(labels), length_budget=length_budget)
    except (ReportError, OutputError, OSError) as exc:
        raise fail(exc) from None
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
