"""`prism-eval benchmarks`: the catalogue of shipped (and PRISM_EVAL_BENCHMARKS) benchmark specs and suites."""
from __future__ import annotations

import json
import sys

import click

from prism_eval.cli.common import fail

__all__ = ["benchmarks_command"]

_COLUMNS = ("id", "kind", "dataset", "split", "questions", "metric", "protocol")


@click.command("benchmarks")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON (a list of objects).")
def benchmarks_command(as_json: bool) -> None:
    """List every benchmark spec and suite: id, kind, dataset, split, question count, metric, protocol."""
    from prism_eval.benchmarks.catalog.index import catalogue
    from prism_eval.benchmarks.types import BenchmarkError
    from prism_eval.plugins import PluginError, load_plugins

    try:
        load_plugins()
        rows = catalogue()
    except (BenchmarkError, PluginError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cells = [[_cell(r, c) for c in _COLUMNS] for r in rows]
    if not sys.stdout.isatty():  # piped: one tab-separated line per benchmark, never wrapped
        click.echo("\t".join(_COLUMNS))
        for row in cells:
            click.echo("\t".join(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Benchmarks (lmms:<task> also loads any lmms-eval task)")
    for col in _COLUMNS:
        table.add_column(col, no_wrap=col == "id", overflow="fold")
    for row in cells:
        table.add_row(*row)
    Console().print(table)


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if column == "dataset" and row.get("kind") == "suite":
        return ", ".join(row.get("members") or [])
    if column == "dataset" and row.get("config"):
        return f"{value} ({row['config']})"
    return "?" if value is None and column == "questions" else "" if value is None else str(value)
