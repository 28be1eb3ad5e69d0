"""``queue list|show|cancel|retry``, ``log`` and ``report``: what staff check."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, console, emit_json, get_app, table
from broadcaster.queue import deliverylog, outbox
from broadcaster.timeparse import parse_duration

app = typer.Typer(help="The announcement queue.", no_args_is_help=True)


@app.command("list")
def list_queue(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include finished announcements.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Announcements not yet finished, with counts.  Example: queue list --all --json"""
    a = get_app(ctx)
    anns = outbox.active(a) + (outbox.archived(a) if all_ else [])
    rows = sorted((x.summary() for x in anns), key=lambda s: s["created_at"], reverse=True)
    if json_:
        emit_json(rows)
        return
    table(f"{len(rows)} announcements",
          ["id", "created", "scheduled for", "status", "title", "targets", "sent", "failed",
           "pending"],
          [[r["id"], r["created_at"], r["scheduled_for"], r["status"], r["title"], r["targets"],
            r["sent"], r["failed"], r["pending"]] for r in rows])


def _print_show(data: dict) -> None:
    c = console()
    c.print(f"[bold]{data['id']}[/bold]  {data['status']}  {data.get('title') or ''}")
    c.print(f"targets {data['targets']}: sent {data['sent']}, failed {data['failed']}, "
            f"pending {data['pending']}, cancelled {data['cancelled']}, "
            f"expired {data['expired']}")
    table(None, ["group", "status", "attempts", "sent at", "last error"],
          [[d["group"], d["status"], d["attempts"], d["sent_at"], d["last_error"]]
           for d in data["deliveries"]])


@app.command("show")
def show(ctx: typer.Context, ann_id: Annotated[str, typer.Argument(metavar="ID")],
         json_: JsonOpt = False) -> None:
    """One announcement and its per-group delivery states.  Example: queue show 20261122-070000-ab12cd"""
    data = deliverylog.show(outbox.get(get_app(ctx), ann_id))
    emit_json(data) if json_ else _print_show(data)


@app.command("cancel")
def cancel(ctx: typer.Context, ann_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel what has not been sent yet.  Example: queue cancel 20261122-070000-ab12cd"""
    n = outbox.cancel(get_app(ctx), ann_id)
    typer.echo(f"cancelled {ann_id}: {n} deliveries will not be sent")


@app.command("retry")
def retry(ctx: typer.Context, ann_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Put failed deliveries back to pending.  Example: queue retry 20261122-070000-ab12cd"""
    n = outbox.retry(get_app(ctx), ann_id)
    typer.echo(f"{ann_id}: {n} failed deliveries are pending again")


def log_command(
    ctx: typer.Context,
    announcement: Annotated[str | None, typer.Option(help="Only this announcement.")] = None,
    group: Annotated[str | None, typer.Option(help="Only this group id.")] = None,
    status: Annotated[str | None, typer.Option(help="pending|sent|failed|cancelled|expired")] = None,
    since: Annotated[str, typer.Option(help="How far back, e.g. 7d, 12h.")] = "7d",
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The delivery log, newest first.  Example: log --status failed --since 1d"""
    a = get_app(ctx)
    start = a.now() - parse_duration(since, option="--since")
    rows = deliverylog.query(a, announcement=announcement, group=group, status=status,
                             since=None if announcement else start, limit=limit)
    if json_:
        emit_json(rows)
        return
    table(f"{len(rows)} deliveries", ["updated", "announcement", "group", "status", "attempts",
                                      "last error"],
          [[r["updated_at"], r["announcement"], r["group"], r["status"], r["attempts"],
            r["last_error"]] for r in rows])


def report_command(ctx: typer.Context, ann_id: Annotated[str, typer.Argument(metavar="ID")],
                   json_: JsonOpt = False) -> None:
    """Totals for one announcement and the groups that did not get it, with reasons.

    Example: report 20261122-070000-ab12cd --json
    """
    data = deliverylog.report(get_app(ctx), ann_id)
    if json_:
        emit_json(data)
        return
    c = console()
    c.print(f"[bold]{data['id']}[/bold] {data['status']}: {data['sent']}/{data['targets']} sent, "
            f"{data['failed']} failed, {data['pending']} pending, {data['cancelled']} cancelled, "
            f"{data['expired']} expired")
    if data["not_delivered"]:
        table("not delivered", ["group", "status", "reason"],
              [[r["group"], r["status"], r["reason"]] for r in data["not_delivered"]])
