"""The command line: thin commands over the library, grouped by noun.

This module assembles the commands and is the one place where errors become
messages and exit codes: 0 done, 1 invalid input or config, 2 usage error,
75 the dispatch lock is held (``run-once``). Under ``--json`` a failure is one
JSON document on stdout, ``{"error": {"message", "problems"}}``, with the same
exit code.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cleantext import check_utf8
from broadcaster.cli.common import Invocation, JsonOpt, emit_json, get_app
from broadcaster.errors import EXIT_INVALID, EXIT_USAGE, BroadcasterError, ConfigError, LockHeld
from broadcaster.redact import redact

app = typer.Typer(
    name="broadcaster",
    help="Broadcast announcements and scheduled content to many chat groups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

# Sub-command groups by noun: (command name, module under broadcaster.cli).
NOUNS = (("groups", "groups"), ("queue", "queue"), ("jobs", "jobs"), ("templates", "templates"),
         ("members", "members"), ("tickets", "tickets"),
         ("faq", "faq"), ("db", "db"))


@app.callback()
def _root(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(
        "--root", envvar="BROADCASTER_ROOT", metavar="DIR",
        help="Directory holding groups.yaml, templates/, feeds/, schedules/ (default: .).")] = None,
) -> None:
    ctx.ensure_object(Invocation).root = root


def _mount() -> None:
    if app.registered_commands:   # once per process: tests call main() many times
        return
    from broadcaster.cli import announce, queue, run, serve

    app.command("check")(check)
    app.command("announce")(announce.announce)
    app.command("run-once")(run.run_once)
    app.command("daemon")(run.daemon)
    app.command("log")(queue.log_command)
    app.command("report")(queue.report_command)
    app.command("status")(run.status)
    from broadcaster.cli import stats

    app.command("stats")(stats.stats)
    app.command("dashboard")(stats.dashboard)
    app.command("serve")(serve.serve)
    for name, module in NOUNS:
        app.add_typer(importlib.import_module(f"broadcaster.cli.{module}").app, name=name)


def check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Validate the config and render every template; list every problem.

    \b
    Example:
      broadcaster check --json
    """
    from broadcaster.config.check import check_all

    a = get_app(ctx)
    a.on_warning = lambda _text: None      # what is broken is listed below as a problem
    warnings: list = []
    problems = check_all(a, warnings=warnings)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if problems:
        raise ConfigError(problems)
    if json_:
        emit_json({"ok": True, "groups": len(a.groups.groups), "problems": [],
                   "warnings": [w.as_json() for w in warnings]})
    else:
        typer.echo(f"ok: {len(a.groups.groups)} groups, config and templates valid")


def _wants_json(args: list[str]) -> bool:
    head = args[: args.index("--")] if "--" in args else args
    return "--json" in head


def _fail(message: str, code: int, problems: list, as_json: bool) -> None:
    """Report one failure: on stderr, and as one JSON document on stdout under ``--json``."""
    if as_json:
        emit_json({"error": {"message": message, "problems": [p.as_json() for p in problems]}})
    if len(problems) > 1:
        typer.echo(f"error: {len(problems)} problems:\n{message}", err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; library errors become a message and an exit code here."""
    from typer import Abort, TyperException

    _mount()
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    bad = check_utf8(args)
    if bad is not None:  # undecodable bytes: say which argument, never fail while printing it
        shown = args[bad].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        _fail(f"argument {bad + 1} is not valid UTF-8 text: {shown}", EXIT_INVALID, [], as_json)
    invocation = Invocation()
    try:
        try:
            code = app(args=args, prog_name="broadcaster", obj=invocation, standalone_mode=False)
        finally:
            if invocation.app is not None and "store" in invocation.app.__dict__:
                invocation.app.store.close()
    except TyperException as exc:  # usage mistakes: missing option, bad value
        if not as_json:
            exc.show()
            sys.exit(exc.exit_code)
        _fail(exc.format_message(), exc.exit_code or EXIT_USAGE, [], as_json)
    except Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except BroadcasterError as exc:
        redactor = invocation.app.redact if invocation.app else redact
        problems = getattr(exc, "problems", [])
        if isinstance(exc, LockHeld) and not as_json:
            typer.echo(f"broadcaster: {redactor(exc)}", err=True)
            sys.exit(exc.exit_code)
        _fail(redactor(exc), exc.exit_code, [_redacted(p, redactor) for p in problems], as_json)
    sys.exit(code or 0)


def _redacted(problem, redactor):
    from dataclasses import replace

    return replace(problem, message=redactor(problem.message))


__all__ = ["app", "main"]
