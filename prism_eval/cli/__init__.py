"""`prism-eval`: thin wiring from the command line to the library. The only place click is imported.

One module per command; each is imported only when its command runs (or when
--help lists it), and imports nothing heavy at module level, so
`prism-eval --help` and `prism-eval benchmarks` load no model or data library.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from prism_eval.cli.common import SafeGroup
from prism_eval.cli.run import execute_run, exit_code, run_options

# command name -> "module:attribute" of its click command
COMMANDS = {
    "run": "prism_eval.cli.run:run_command",
    "report": "prism_eval.cli.report:report_command",
    "benchmarks": "prism_eval.cli.benchmarks:benchmarks_command",
    "caption": "prism_eval.cli.caption:caption_command",
    "bench": "prism_eval.cli.bench:bench",
    "demo": "prism_eval.cli.demo:demo_command",
}


class LazyGroup(SafeGroup):
    """Subcommands resolved from COMMANDS on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, _, attr = COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.version_option(package_name="prism-eval")
@click.pass_context
def main(ctx: click.Context, **kwargs: Any) -> None:
    """Measure image captioners by the utility of their captions (Prism / CapRL).

    `prism-eval --captioner X` is short for `prism-eval run --captioner X`.
    """
    if ctx.invoked_subcommand is None:
        if not kwargs["captioners"]:
            click.echo(ctx.get_help())
            return
        runs = execute_run(**kwargs)
        if exit_code(runs):
            ctx.exit(exit_code(runs))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
