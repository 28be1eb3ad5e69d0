"""``queue list|show|cancel|retry``, ``log`` and ``report``: what staff check."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import (
    IdArg,
    JsonOpt,
    LimitOpt,
    SinceOpt,
    console,
    emit_json,
    emit_json_stream,
    get_app,
    noun,
    plural,
    short_time,
    table,
)
from broadcaster.queue import deliverylog, outbox
from broadcaster.timeparse import parse_duration

app = noun("The announcement queue: what is waiting, what was sent, cancel and retry.")


@app.command("list")
def list_queue(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include finished announcements.")] = False,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="At most N rows.")] = 100,
    json_: JsonOpt = False,
) -> None:
    """Announcements not yet finished, newest first, with counts.

    \b
    Example:
      broadcaster queue list --all --limit 20
    """
    rows = outbox.newest(get_app(ctx), finished=all_, limit=limit)
    if json_:
        emit_json(rows)
        return
    table(plural(len(rows), "announcement"),
          ["id", "scheduled", "status", "title", "sent", "failed", "pending"],
          [[r["id"], short_time(r["scheduled_for"]), shown_status(r), r["title"],
            f"{r['sent']}/{r['targets']}", r["failed"], r["pending"]] for r in rows])


def shown_status(summary: dict) -> str:
    """The announcement status people read: an announcement none of whose groups got it
    before it expired reads "expired", not "done"."""
    status, expired = summary["status"], summary.get("expired", 0)
    if status == "done" and expired and not summary["sent"]:
        return "expired"
    if status == "done" and expired:
        return f"done, {expired} expired"
    return status


def _print_show(data: dict) -> None:
    c = console()
    c.print(f"{data['id']}  {shown_status(data)}  {data.get('title') or ''}", markup=False,
            highlight=False)
    c.print(f"targets {data['targets']}: sent {data['sent']}, failed {data['failed']}, "
            f"pending {data['pending']}, cancelled {data['cancelled']}, "
            f"expired {data['expired']}")
    table(None, ["group", "status", "tries", "sent at", "last error"],
          [[d["group"], d["status"], d["attempts"], short_time(d["sent_at"]), d["last_error"]]
           for d in data["deliveries"]])


@app.command("show")
def show(ctx: typer.Context, ann_id: IdArg, json_: JsonOpt = False) -> None:
    """One announcement and its per-group delivery states.

    \b
    Example:
      broadcaster queue show 20261122-070000-ab12cd
    """
    data = deliverylog.show(outbox.get(get_app(ctx), ann_id))
    emit_json(data) if json_ else _print_show(data)


@app.command("cancel")
def cancel(ctx: typer.Context, ann_id: IdArg, json_: JsonOpt = False) -> None:
    """Cancel what has not been sent yet.

    \b
    Example:
      broadcaster queue cancel 20261122-070000-ab12cd
    """
    n = outbox.cancel(get_app(ctx), ann_id)
    if json_:
        emit_json({"id": ann_id, "cancelled": n})
    else:
        typer.echo(f"cancelled {ann_id}: {plural(n, 'delivery', 'deliveries')} will not be sent")


@app.command("retry")
def retry(ctx: typer.Context, ann_id: IdArg, json_: JsonOpt = False) -> None:
    """Put failed deliveries back to pending.

    \b
    Example:
      broadcaster queue retry 20261122-070000-ab12cd
    """
    n = outbox.retry(get_app(ctx), ann_id)
    if json_:
        emit_json({"id": ann_id, "pending": n})
    else:
        typer.echo(f"{ann_id}: {plural(n, 'failed delivery', 'failed deliveries')} pending again")


def log_command(
    ctx: typer.Context,
    announcement: Annotated[str | None, typer.Option("--announcement", metavar="ID",
                                                     help="Only this announcement.")] = None,
    group: Annotated[str | None, typer.Option("--group", metavar="GROUP",
                                              help="Only this group id.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="STATUS", help="Only pending, sent, failed, cancelled or expired.")] = None,
    since: SinceOpt = "7d",
    limit: LimitOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The delivery log, newest first.

    \b
    Example:
      broadcaster log --status failed --since 1d
    """
    a = get_app(ctx)
    start = a.now() - parse_duration(since, option="--since")
    rows = deliverylog.query(a, announcement=announcement, group=group, status=status,
                             since=None if announcement else start, limit=limit)
    if json_:
        emit_json_stream(rows)
        return
    rows = list(rows)
    table(plural(len(rows), "delivery", "deliveries"),
          ["updated", "announcement", "group", "status", "tries", "last error"],
          [[short_time(r["updated_at"]), r["announcement"], r["group"], r["status"], r["attempts"],
            r["last_error"]] for r in rows])


def report_command(ctx: typer.Context, ann_id: IdArg, json_: JsonOpt = False) -> None:
    """Who got one announcement, and why the others did not.

    \b
    Example:
      broadcaster report 20261122-070000-ab12cd --json
    """
    data = deliverylog.report(get_app(ctx), ann_id)
    if json_:
        emit_json(data)
        return
    c = console()
    # two short lines: the id whole on its own, the counts after it (fits 80 columns)
    c.print(f"{data['id']} {shown_status(data)}", markup=False, highlight=False)
    c.print(f"  {data['sent']}/{data['targets']} sent, {data['failed']} failed, "
            f"{data['pending']} pending, {data['cancelled']} cancelled, {data['expired']} expired",
            markup=False, highlight=False)
    if data["not_delivered"]:
        table("not delivered", ["group", "status", "reason"],
              [[r["group"], r["status"], r["reason"]] for r in data["not_delivered"]])
