"""The command line: thin commands over the library, grouped by noun.

This module assembles the commands and is the one place where errors become
messages and exit codes: 0 done, 1 invalid input or config, 2 usage error,
75 the dispatch lock is held (``run-once``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from broadcaster.app import App
from broadcaster.cli.common import Invocation, get_app
from broadcaster.errors import BroadcasterError, ConfigError, LockHeld
from broadcaster.redact import redact

app = typer.Typer(
    name="broadcaster",
    help="Broadcast announcements and scheduled content to many chat groups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(
        "--root", envvar="BROADCASTER_ROOT",
        help="Directory holding groups.yaml, templates/, feeds/, schedules/ (default: .).")] = None,
) -> None:
    ctx.ensure_object(Invocation).app = App(root)


def _mount() -> None:
    from broadcaster.cli import announce, groups, queue, run

    app.command("check")(check)
    app.command("announce")(announce.announce)
    app.command("run-once")(run.run_once)
    app.command("daemon")(run.daemon)
    app.command("log")(queue.log_command)
    app.command("report")(queue.report_command)
    app.command("status")(run.status)
    app.add_typer(groups.app, name="groups")
    app.add_typer(queue.app, name="queue")
    for noun, module in (("jobs", "jobs"), ("templates", "templates"), ("members", "members")):
        sub = importlib.import_module(f"broadcaster.cli.{module}")
        app.add_typer(sub.app, name=noun)


def check(ctx: typer.Context) -> None:
    """Validate groups.yaml, feeds/, schedules/ and every template; list every problem.

    Example: broadcaster check
    """
    from broadcaster.config.check import check_all

    a = get_app(ctx)
    problems = check_all(a)
    if problems:
        raise ConfigError(problems)
    typer.echo(f"ok: {len(a.groups.groups)} groups, config and templates valid")


def main(argv: list[str] | None = None) -> None:
    """Run the command line; library errors become a message and an exit code here."""
    _mount()
    invocation = Invocation()
    try:
        app(args=argv, prog_name="broadcaster", obj=invocation)
    except LockHeld as exc:
        typer.echo(f"broadcaster: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BroadcasterError as exc:
        text = invocation.app.redact(exc) if invocation.app else redact(exc)
        if isinstance(exc, ConfigError) and len(exc.problems) > 1:
            typer.echo(f"{len(exc.problems)} problems:\n{text}", err=True)
        else:
            typer.echo(f"error: {text}", err=True)
        sys.exit(exc.exit_code)


__all__ = ["app", "main"]
