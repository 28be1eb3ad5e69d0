"""What the command line prints, without the CLI framework: lines, JSON documents, the
progress bar, and the one place where an error becomes a message and an exit code.

Both ways a command runs use these: the typer app (``broadcaster.cli``) and cron's
``run-once`` started without typer (``broadcaster.entry``), so both print the same
bytes and exit with the same codes. ``echo`` writes what click's ``echo`` writes:
ANSI escape codes are removed unless the stream is a terminal, a stream set to
ASCII gets UTF-8 (click re-wraps such a stream), every line is flushed.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from broadcaster.errors import LockHeld

if TYPE_CHECKING:
    from collections.abc import Callable

    from broadcaster.errors import BroadcasterError, Problem

_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")   # what click strips from a stream that is no terminal


def echo(text: str = "", *, err: bool = False) -> None:
    """``text`` and a newline on stdout (stderr with ``err``), as click's ``echo`` prints it."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    out = text + "\n"
    if not isatty(stream):
        out = _ANSI.sub("", out)
    binary = getattr(stream, "buffer", None)
    if binary is not None and is_ascii(stream):
        stream.flush()
        binary.write(out.encode("utf-8"))
        binary.flush()
        return
    stream.write(out)
    stream.flush()


def isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except Exception:   # a closed or odd stream is no terminal
        return False


def is_ascii(stream: Any) -> bool:
    """The stream encodes to ASCII (``PYTHONIOENCODING=ascii``): click writes UTF-8 to it."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
    except LookupError:
        return False


def emit_json(obj: Any) -> None:
    """One JSON document on stdout (UTF-8 text, indented)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_bar(enabled: bool, description: str = "sending"):
    """A rich progress callback ``update(done, total, failed=0)`` on a terminal, and the bar.

    Returns ``(None, None)`` under cron, when piped or with ``--json``: nothing extra is printed.
    """
    if not enabled or not sys.stderr.isatty():
        return None, None
    # start-up time: rich only when a terminal shows the bar
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("{task.fields[failed]}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    state: dict[str, Any] = {}

    def update(done: int, total: int, failed: int = 0) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task(description, total=total, rate="", failed="")
        task = bar.tasks[0]
        speed = task.speed
        bar.update(state["task"], completed=done, total=total,
                   rate=f"{speed:.0f}/s" if speed else "",
                   failed=f"{failed} failed" if failed else "")

    return update, bar


def fail(message: str, code: int, problems: list[Problem], as_json: bool) -> NoReturn:
    """Report one failure and exit with ``code``: the message on stderr, and under
    ``--json`` also one document ``{"error": {"message", "problems"}}`` on stdout."""
    if as_json:
        emit_json({"error": {"message": message, "problems": [p.as_json() for p in problems]}})
    if len(problems) > 1:
        echo(f"error: {len(problems)} problems:\n{message}", err=True)
    else:
        echo(f"error: {message}", err=True)
    sys.exit(code)


def report_error(exc: BroadcasterError, redactor: Callable[[object], str], as_json: bool) -> NoReturn:
    """A library error as a message and its exit code (``exc.exit_code``), secrets redacted
    by ``redactor``. ``LockHeld`` without ``--json`` is one line naming the program."""
    if isinstance(exc, LockHeld) and not as_json:
        echo(f"broadcaster: {redactor(exc)}", err=True)
        sys.exit(exc.exit_code)
    problems = [replace(p, message=redactor(p.message)) for p in getattr(exc, "problems", [])]
    fail(redactor(exc), exc.exit_code, problems, as_json)
