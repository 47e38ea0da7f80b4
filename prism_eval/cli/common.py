"""What every command shares: the consoles, safe printing of untrusted text, progress bars, and errors.

Every error a user can cause ends as one line, `Error: <input>: <problem>`, with
exit status 1 (click's usage errors keep status 2); a traceback reaches the
terminal only for a bug, and only when PRISM_EVAL_DEBUG=1 asks for it.
"""
from __future__ import annotations

import os
import re
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
out_console = Console()
EXIT_INCOMPLETE = 3
DEBUG_ENV = "PRISM_EVAL_DEBUG"
_CONTROL = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other C0/C1 control (tab and newline stay)
    r"|[\u202a-\u202e\u2066-\u2069]")  # bidirectional overrides that reorder what is shown


def clean(text: object) -> str:
    """Model or file text made safe for a terminal: control sequences removed, secrets redacted."""
    from prism_eval.core.resilience import redact_secrets
    from prism_eval.engines.registry import redact_url_credentials

    return _CONTROL.sub("", redact_url_credentials(redact_secrets(str(text))))


def shown(text: object) -> str:
    """`clean` text for rich output, where '[link=...]' or '[blink]' in a name would be markup."""
    return escape(clean(text))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return clean(text.splitlines()[0] if text else type(exc).__name__)


class UserError(click.ClickException):
    """A user-facing error: printed as one `Error: ...` line, exit status 1."""

    def __init__(self, message: object) -> None:
        super().__init__(clean(str(message)).strip().splitlines()[0] if str(message).strip() else "unknown error")


def fail(exc: BaseException, prefix: str = "") -> "UserError":
    """A UserError from an exception: its first line, secrets redacted, with an optional input name in front."""
    return UserError(f"{prefix}{first_line(exc)}")


class RichProgress:
    """Adapter from the runner's progress calls to rich progress bars."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def start(self, name: str, total: int) -> Any:
        return self.progress.add_task(shown(name), total=max(total, 0))

    def advance(self, task: Any, n: int = 1) -> None:
        self.progress.advance(task, n)


def progress_bars() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


class SafeGroup(click.Group):
    """A click group that turns any escaped exception into one `Error:` line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
                raise
            raise UserError(f"{first_line(exc)} ({type(exc).__name__}; set {DEBUG_ENV}=1 for the traceback)") from None
