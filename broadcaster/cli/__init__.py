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
from broadcaster.cli.common import Invocation, JsonOpt, emit_json, get_app, progress_bar
from broadcaster.errors import EXIT_INVALID, EXIT_USAGE, BroadcasterError, ConfigError
from broadcaster.output import fail, report_error
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


# Top-level commands: (command name, module under broadcaster.cli, function), in help order.
COMMANDS = (("check", "", "check"), ("announce", "announce", "announce"),
            ("run-once", "run", "run_once"), ("daemon", "run", "daemon"),
            ("log", "queue", "log_command"), ("report", "queue", "report_command"),
            ("status", "run", "status"), ("stats", "stats", "stats"),
            ("dashboard", "stats", "dashboard"), ("serve", "serve", "serve"))
_mounted: set[str] = set()


def _mount(command: str | None = None) -> None:
    """Register the commands: only ``command``'s module when it is known (start-up time:
    ``run-once`` from cron imports nothing of ``queue``, ``stats``...), else all of them.
    Mounts only add, in help order, so tests can call ``main()`` many times."""
    known = {name for name, *_ in COMMANDS} | {name for name, _ in NOUNS}
    wanted = {command} if command in known else known
    if wanted <= _mounted:
        return
    _mounted.update(wanted)
    app.registered_commands.clear()
    app.registered_groups.clear()
    for name, module, function in COMMANDS:
        if name in _mounted:
            owner = importlib.import_module(f"broadcaster.cli.{module}") if module else sys.modules[__name__]
            app.command(name)(getattr(owner, function))
    for name, module in NOUNS:
        if name in _mounted:
            app.add_typer(importlib.import_module(f"broadcaster.cli.{module}").app, name=name)


def _command_of(args: list[str]) -> str | None:
    """The command word of a command line (after the root options), or None."""
    words = iter(args)
    for arg in words:
        if arg == "--root":
            next(words, None)
        elif not arg.startswith("-"):
            return arg
        elif arg == "--":
            return next(words, None)
    return None


def check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Validate the config and render every template; list every problem.

    \b
    Example:
      broadcaster check --json
    """
    from broadcaster.config.check import check_all  # start-up time: loaded when first used

    a = get_app(ctx)
    a.on_warning = lambda _text: None      # what is broken is listed below as a problem
    warnings: list = []
    update, bar = progress_bar(not json_, "rendering templates")
    try:
        problems = check_all(a, warnings=warnings, progress=update)
    finally:
        if bar is not None:
            bar.stop()
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


def main(argv: list[str] | None = None) -> None:
    """Run the command line; library errors become a message and an exit code here."""
    from typer import Abort, TyperException  # start-up time: loaded when first used

    args = list(sys.argv[1:] if argv is None else argv)
    _mount(_command_of(args))
    as_json = _wants_json(args)
    bad = check_utf8(args)
    if bad is not None:  # undecodable bytes: say which argument, never fail while printing it
        shown = args[bad].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        fail(f"argument {bad + 1} is not valid UTF-8 text: {shown}", EXIT_INVALID, [], as_json)
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
        fail(exc.format_message(), exc.exit_code or EXIT_USAGE, [], as_json)
    except Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except BroadcasterError as exc:
        report_error(exc, invocation.app.redact if invocation.app else redact, as_json)
    sys.exit(code or 0)


__all__ = ["app", "main"]
