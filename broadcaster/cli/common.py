"""What every command shares: the App from ``--root``, shared options, JSON and table output.

Options that several commands take are defined once here (``--json``, ``--to``,
``--exclude``, ``--since``, ``--limit``), as sqlite-utils does, so their names,
metavars and help read the same everywhere.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer

from broadcaster.app import App
from broadcaster.output import emit_json as emit_json  # re-exported: typer-free, for run-once
from broadcaster.output import progress_bar as progress_bar

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ToOpt = Annotated[list[str], typer.Option(
    "--to", metavar="SEL",
    help="Target selector, repeatable (OR): all, id:GROUP, a tag, or tags joined by ',' (AND).")]
ExcludeOpt = Annotated[list[str], typer.Option(
    "--exclude", metavar="SEL", help="Selector of groups to leave out (repeatable).")]
SinceOpt = Annotated[str, typer.Option("--since", metavar="DUR", help="How far back, e.g. 7d or 12h.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", metavar="N", help="At most N rows.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The announcement id (see: queue list).")]

# Help reads like git's: an argument shows its metavar only, not a type label
# (typer's plain help would print ``TEXT <str>``). The one override of typer's behaviour.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]

# Columns of free text (titles, errors, names): the only ones cut short when the terminal
# is narrow. Every other column (ids people copy, times, counts, states) is shown whole.
FLEX_COLUMNS = frozenset({"title", "name", "tags", "to", "last error", "reason", "groups",
                          "schedules / used by", "text", "answer", "note", "category"})


def noun(help_text: str) -> typer.Typer:
    """A command group (``queue``, ``jobs``...) with the project's help style."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None,
                       add_completion=False)


class Invocation:
    """What one command line carries: the App its ``--root`` selected."""

    app: App | None = None
    root: str | None = None


def get_app(ctx: typer.Context) -> App:
    """The App for this invocation, once its root is known to be a project root."""
    inv = ctx.find_root().ensure_object(Invocation)
    if inv.app is None:
        inv.app = App(inv.root)
        inv.app.require_root()
        inv.app.on_warning = lambda text: typer.echo(f"warning: {text}", err=True)
    return inv.app


def emit_json_stream(items: Iterable[Any]) -> None:
    """A JSON list written item by item as ``items`` yields them (the same text as
    ``emit_json`` of the list): long listings start at once and need no memory."""

    it = iter(items)
    first = next(it, _END)  # errors before the first item still become one error document
    if first is _END:
        sys.stdout.write("[]\n")
        return
    out = sys.stdout
    out.write("[\n" + textwrap.indent(json.dumps(first, ensure_ascii=False, indent=2, default=str), "  "))
    for item in it:
        out.write(",\n" + textwrap.indent(json.dumps(item, ensure_ascii=False, indent=2, default=str), "  "))
    out.write("\n]\n")


_END = object()


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 announcement``, ``2 announcements``; ``many`` for irregular plurals."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def console():
    from rich.console import Console  # start-up time: loaded when first used

    return Console()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table: boxed on a terminal, plain aligned text when piped.

    Ids, times, counts and states are never wrapped or cut; only free-text columns
    (``FLEX_COLUMNS``) give way when the terminal is narrow, cut to one line with "…".
    """
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if not sys.stdout.isatty():
        _plain_table(title, columns, cells)
        return
    from rich.cells import cell_len  # start-up time: loaded when first used
    from rich.table import Table  # start-up time: loaded when first used

    out = console()
    widths = [max([cell_len(c), *(cell_len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    flex = [i for i, c in enumerate(columns) if c in FLEX_COLUMNS]
    room = out.width - sum(w for i, w in enumerate(widths) if i not in flex) - 2 * (len(columns) - 1)
    share = max(room // len(flex), 0) if flex else 0
    t = Table(title=title, title_justify="left", box=None, show_lines=False, pad_edge=False,
              header_style="bold underline")
    for i, col in enumerate(columns):
        if i in flex:  # one line each, cut with "…"; --json has the whole text
            t.add_column(col, no_wrap=True, overflow="ellipsis",
                         width=max(min(widths[i], share), cell_len(col)))
        else:
            t.add_column(col, no_wrap=True, min_width=widths[i], overflow="ignore")
    for row in cells:
        t.add_row(*row)
    out.print(t)


def short_time(text: str | None) -> str:
    """``11-22 09:00`` from an ISO time: what a narrow table shows (the year and the
    offset are the configured zone's and this year's; ``--json`` keeps the full time)."""
    return "" if not text else text[5:16].replace("T", " ")


def _plain_table(title: str | None, columns: list[str], cells: list[list[str]]) -> None:
    # start-up time: loaded when first used
    from rich.cells import cell_len  # display width: Chinese characters take two columns

    widths = [max([cell_len(c), *(cell_len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out = sys.stdout
    if title:
        out.write(title + "\n")
    for row in [columns, *cells]:
        padded = [v + " " * (w - cell_len(v)) for v, w in zip(row, widths, strict=True)]
        out.write("  ".join(padded).rstrip() + "\n")


class RedactingFormatter(logging.Formatter):
    """Log lines with secrets redacted and times in the configured zone, offset shown."""

    def __init__(self, app: App, fmt: str):
        super().__init__(fmt)
        self.app = app

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.app.tz).isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        return self.app.redact(super().format(record))


def setup_logging(app: App, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)     # also for libraries that set their own loggers' level (bm25s: DEBUG)
    handler.setFormatter(RedactingFormatter(app, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "apscheduler", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
