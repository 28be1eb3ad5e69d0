"""The ``broadcaster`` command's entry point (the installed script, ``main.py``,
``python -m broadcaster``), and ``run-once``'s body.

Cron starts ``broadcaster [--root DIR] run-once [--json]`` every minute, so that
exact command line runs here without the CLI framework: typer, click and the
pydantic coercion of option values cost about 0.1 s of each start-up. Every other
command line (``--help``, any other option or command, a mistake, an argument that
is not UTF-8, a shell-completion request) goes to the typer app in
``broadcaster.cli``, which runs ``run-once`` with the same ``run_once`` below and
reports errors with the same ``broadcaster.output.report_error``: both ways print
the same bytes and exit with the same codes (tests/test_entry.py compares them).

A pass with nothing due loads little more than the store: the jobs and the time zone
come as the last pass kept them while schedules/ and groups.yaml are unchanged
(``config/job.py``, ``config/timezone.py``), and the dispatcher (with the channels
and their models) starts only when something is queued (``WhenQueued``).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.app import App, one_shot_process
from broadcaster.cleantext import check_utf8
from broadcaster.delivery.result import PassResult
from broadcaster.errors import BroadcasterError, LockHeld
from broadcaster.output import echo, emit_json, is_ascii, progress_bar, report_error
from broadcaster.redact import redact

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

LOCK_AGAIN = 10.0   # seconds run-once waits to send what its jobs queued
EXIT_FAILED = 1     # a job failed or is invalid, a send failed (the rest of the pass still ran)
EXIT_INTERRUPTED = 130
LONG_RUNNING = frozenset({"daemon", "serve"})   # commands that do not end after one task


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    # pydantic looks for plugins in every installed package's metadata when it builds its
    # first model (20-30 ms of each start-up); broadcaster uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if not LONG_RUNNING & set(args):    # (a TEXT that says "serve" only costs the speed-up)
        one_shot_process()
    cron = cron_run_once(args)
    if cron is None:
        from broadcaster.cli import main as cli_main  # start-up time: typer only beyond cron's run-once

        cli_main(args)
        return
    root, as_json = cron
    app = None
    try:
        try:
            app = App(root)
            app.require_root()
            code = run_once(app, as_json)
        finally:
            if app is not None and "store" in app.__dict__:
                app.store.close()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BroadcasterError as exc:
        report_error(exc, app.redact if app is not None else redact, as_json)
    except OSError as exc:   # stdout or stderr closed under us: exit quietly, as click does
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Quiet(sys.stdout)
        sys.stderr = _Quiet(sys.stderr)
        sys.exit(EXIT_FAILED)
    sys.exit(code)


def cron_run_once(args: list[str]) -> tuple[Path | None, bool] | None:
    """``(root, as_json)`` when ``args`` is ``[--root DIR | --root=DIR] run-once [--json]``
    and nothing asks for typer's own handling; else None (typer runs the command line).
    ``root`` is None without ``--root`` (the App reads ``BROADCASTER_ROOT``, as typer does)."""
    if check_utf8(args) is not None or "_BROADCASTER_COMPLETE" in os.environ:
        return None
    if any(stream is not None and is_ascii(stream) for stream in (sys.stdout, sys.stderr)):
        return None     # click re-wraps such a stream before it reports a usage mistake
    rest = list(args)
    root: Path | None = None
    if rest[:1] == ["--root"] and len(rest) > 1:
        root, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--root="):
        root, rest = rest[0].removeprefix("--root="), rest[1:]
    if root is not None:
        if not root or root.startswith("-"):
            return None
        root = Path(root)
    if rest not in (["run-once"], ["run-once", "--json"]):
        return None
    return root, rest[1:] == ["--json"]


def run_once(app: App, as_json: bool) -> int:
    """One pass, for cron: send what is due, fire due schedules, send what they queued;
    print what it did (one JSON document under ``as_json``) and the problems on stderr.
    Returns the exit code: 0, or 1 when a job failed or is invalid or a send failed.
    ``LockHeld`` (exit 75) when another process is sending: nothing done."""
    # start-up time: only run-once needs the engine (not a command falling through to typer)
    from broadcaster.schedule.passes import Run, dispatch_pass, fire_jobs, record_run

    app.on_warning = lambda _text: None      # a group left out is listed below as a problem
    run = Run(app.now())
    update, bar = progress_bar(not as_json)
    try:
        with app.store.dispatch_lock(wait=0):     # what is due now: never behind a slow feed
            dispatch_pass(app, WhenQueued(app, update), run)
        if fire_jobs(app, run):                   # content: outside the dispatch lock
            try:
                with app.store.dispatch_lock(wait=LOCK_AGAIN):
                    dispatch_pass(app, WhenQueued(app, update), run)
            except LockHeld:    # another dispatcher took over meanwhile: it sends them
                pass
    finally:
        if bar is not None:
            bar.stop()
    record_run(app, run)
    result = run.result
    if as_json:
        emit_json({"fired": run.fired, **result.as_json(), "problems": run.problems,
                   "errors": result.errors})
    else:
        echo(f"fired {', '.join(run.fired) or 'nothing'}; {result.summary()}")
    for problem in run.problems:
        echo(f"error: {problem}", err=True)
    for err in result.errors:
        echo(f"error: {err}", err=True)
    return EXIT_FAILED if run.failed else 0


class WhenQueued:
    """A pass's dispatcher, started only when the store holds something to send or settle:
    with nothing queued, the pass's result is empty and the channels are not loaded."""

    def __init__(self, app: App, progress: Callable[[int, int, int], None] | None):
        self.app = app
        self.progress = progress

    def run(self) -> PassResult:
        if self.app.store.nothing_queued():
            return PassResult()
        from broadcaster.delivery.dispatch import Dispatcher  # start-up time: only when something is queued

        return Dispatcher(self.app, progress=self.progress).run()


class _Quiet:
    """A stream whose flush ignores a closed pipe (click's ``PacifyFlushWrapper``)."""

    def __init__(self, stream):
        self._stream = stream

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name):
        return getattr(self._stream, name)
