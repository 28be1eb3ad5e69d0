"""What every command shares: the App from ``--root``, JSON and table output, logging."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer

from broadcaster.app import App

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


class Invocation:
    """What one command line carries: the App its ``--root`` selected."""

    app: App | None = None


def get_app(ctx: typer.Context) -> App:
    """The App for this invocation (built once by the root callback)."""
    inv = ctx.find_root().ensure_object(Invocation)
    if inv.app is None:
        inv.app = App()
    return inv.app


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def console():
    from rich.console import Console

    return Console()


def err_console():
    from rich.console import Console

    return Console(stderr=True)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)


class RedactingFormatter(logging.Formatter):
    def __init__(self, app: App, fmt: str):
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self.app = app

    def format(self, record: logging.LogRecord) -> str:
        return self.app.redact(super().format(record))


def setup_logging(app: App, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(app, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "apscheduler", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def progress_bar(enabled: bool):
    """A rich progress callback for a fan-out in a terminal; None under cron or --json."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err_console(),
                   transient=True)
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task("sending", total=total)
        bar.update(state["task"], completed=done, total=total)

    return update, bar
