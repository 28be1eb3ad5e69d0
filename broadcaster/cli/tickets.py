"""``tickets list|show|open|assign|accept|resolve|close|reopen|reject|export``: work orders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, console, emit_json, get_app, noun, plural, short_time, table
from broadcaster.errors import InputError

app = noun("Work orders (工单): complaints that reach the grid worker and come back answered.")

TicketArg = Annotated[str, typer.Argument(metavar="ID", help="The ticket number, e.g. GL-1123-0042.")]
ByOpt = Annotated[str | None, typer.Option(
    "--by", metavar="STAFF", help="Who makes the change (a staff id); default: the login user.")]
NoteOpt = Annotated[str | None, typer.Option(
    "--note", metavar="TEXT", help="Why, in a few words (kept in the history).")]
IfVersionOpt = Annotated[int | None, typer.Option(
    "--if-version", metavar="N",
    help="Refuse if the ticket changed since you read version N (see: tickets show).")]


def _print_ticket(t: dict) -> None:
    c = console()
    flags = " urgent" if t["urgent"] else ""
    flags += " OVERDUE" if t["overdue"] else ""
    c.print(f"[bold]{t['id']}[/bold]  {t['status']}{flags}  {t['category_name']} "
            f"({t['category']})  version {t['version']}", highlight=False)
    c.print(f"group {t['group']}, reporter {t['reporter']}, handler {t['staff'] or '-'}",
            highlight=False)
    c.print(f"opened {t['created_at']}, deadline {t['deadline']}", highlight=False)
    c.print(f"text: {t['text']}", highlight=False, markup=False)
    if t["result"]:
        c.print(f"result: {t['result']}", highlight=False, markup=False)
    table("history", ["at", "by", "status", "note"],
          [[h["at"], h["by"], h["status"], h["note"]] for h in t["history"]])


def _done(ctx: typer.Context, ticket, json_: bool, verb: str) -> None:
    a = get_app(ctx)
    data = ticket.as_json(a.now())
    if json_:
        emit_json(data)
        return
    typer.echo(f"{ticket.id}: {verb} (status {ticket.status}, version {ticket.version})")


def _change(ctx: typer.Context, ticket_id: str, target: str, *, by: str | None, json_: bool,
            note: str | None = None, staff: str | None = None, result: str | None = None,
            if_version: int | None = None, verb: str) -> None:
    desk = get_app(ctx).tickets
    ticket = desk.change(ticket_id, target, by=desk.actor(by), note=note or "", staff=staff,
                         result=result, expected_version=if_version)
    _done(ctx, ticket, json_, verb)


@app.command("list")
def list_tickets(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        metavar="S", help="open|assigned|accepted|resolved|reopened|closed|rejected "
             "(default: every status but closed and rejected).")] = None,
    staff: Annotated[str | None, typer.Option(metavar="ID", help="Only this handler's.")] = None,
    grid: Annotated[str | None, typer.Option(
        metavar="G", help="Only these groups: a group id or a selector (community:huilinlvzhou).")] = None,
    category: Annotated[str | None, typer.Option(metavar="C", help="Only this category id.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only tickets past their deadline.")] = False,
    since: Annotated[str | None, typer.Option(
        metavar="DUR", help="Only tickets opened this recently, e.g. 7d (closed/rejected: default 30d).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Tickets, soonest deadline first.

    \b
    Example:
      broadcaster tickets list --overdue --staff wang-li
    """
    from broadcaster.tickets.listing import select  # start-up time: loaded when first used
    from broadcaster.timeparse import parse_duration  # start-up time: loaded when first used

    a = get_app(ctx)
    span = parse_duration(since, option="--since") if since else None
    found = select(a, status=status, staff=staff, grid=grid, category=category, overdue=overdue,
                   since=span)
    now = a.now()
    if json_:
        emit_json([t.as_json(now) for t in found])
        return
    table(plural(len(found), "ticket"), ["id", "status", "category", "group", "staff", "deadline",
                                          "overdue"],
          [[t.id, t.status + (" (urgent)" if t.urgent else ""), t.category_name, t.group,
            t.staff or "-", short_time(t.deadline.isoformat()), "yes" if t.overdue(now) else ""]
           for t in found])


@app.command("show")
def show(ctx: typer.Context, ticket_id: TicketArg, json_: JsonOpt = False) -> None:
    """One ticket with its history.

    \b
    Example:
      broadcaster tickets show GL-1123-0042 --json
    """
    a = get_app(ctx)
    data = a.tickets.store.get(ticket_id).as_json(a.now())
    emit_json(data) if json_ else _print_ticket(data)


@app.command("open")
def open_ticket(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What the resident reported.")],
    group: Annotated[str, typer.Option("--group", metavar="ID", help="The resident's group.")],
    category: Annotated[str | None, typer.Option(
        metavar="C", help="Category id (default: the one whose keywords TEXT contains).")] = None,
    urgent: Annotated[bool | None, typer.Option(
        "--urgent/--not-urgent", help="Default: urgent if TEXT has an urgent keyword.")] = None,
    reporter: Annotated[str | None, typer.Option(
        metavar="NAME", help="The resident's name (default: who opens it).")] = None,
    by: ByOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Open a ticket from the terminal (a phone call, a visit).

    \b
    Example:
      broadcaster tickets open --group gulou-hlz-g01 "3栋楼道垃圾三天没清" --reporter 赵大爷
    """
    desk = get_app(ctx).tickets
    who = desk.actor(by)
    ticket, _ = desk.open(desk.group(group), text, by=who, reporter=reporter or who,
                          category=category, urgent=urgent)
    _done(ctx, ticket, json_, f"opened, {'assigned to ' + ticket.staff if ticket.staff else 'no handler'}")


@app.command("assign")
def assign(ctx: typer.Context, ticket_id: TicketArg,
           staff: Annotated[str, typer.Argument(metavar="STAFF", help="The handler's staff id.")],
           by: ByOpt = None, note: NoteOpt = None, if_version: IfVersionOpt = None,
           json_: JsonOpt = False) -> None:
    """Give a ticket to a handler (派单); they get it on their channel.

    \b
    Example:
      broadcaster tickets assign GL-1123-0042 wang-li --by zhang-hua
    """
    _change(ctx, ticket_id, "assigned", by=by, json_=json_, note=note, staff=staff,
            if_version=if_version, verb=f"assigned to {staff}")


def _simple(target: str, verb: str, doc: str):
    """A command that only moves a ticket to ``target`` (with an optional note)."""

    def command(ctx: typer.Context, ticket_id: TicketArg, by: ByOpt = None, note: NoteOpt = None,
                if_version: IfVersionOpt = None, json_: JsonOpt = False) -> None:
        _change(ctx, ticket_id, target, by=by, json_=json_, note=note, if_version=if_version,
                verb=verb)

    command.__doc__ = doc
    return command


def _with_reason(target: str, verb: str, doc: str, why: str):
    """A command that moves a ticket to ``target`` and must say why (``--reason``)."""

    def command(ctx: typer.Context, ticket_id: TicketArg, reason: str,
                by: ByOpt = None, if_version: IfVersionOpt = None, json_: JsonOpt = False) -> None:
        _change(ctx, ticket_id, target, by=by, json_=json_, note=reason, if_version=if_version,
                verb=verb)

    command.__doc__ = doc
    command.__annotations__["reason"] = Annotated[str, typer.Option(metavar="TEXT", help=why)]
    return command


app.command("accept")(_simple(
    "accepted", "accepted",
    "The handler takes the ticket on (签收).\n\n\b\nExample:\n  broadcaster tickets accept GL-1123-0042 --by wang-li"))
app.command("close")(_simple(
    "closed", "closed",
    "Close a resolved ticket after the follow-up (结案).\n\n\b\nExample:\n  broadcaster tickets close GL-1123-0042"))
app.command("reopen")(_with_reason(
    "reopened", "reopened",
    "Reopen a resolved or closed ticket; its deadline starts again.\n\n\b\nExample:\n"
    '  broadcaster tickets reopen GL-1123-0042 --reason "居民反映垃圾仍未清运"',
    "Why (e.g. the resident is not satisfied)."))
app.command("reject")(_with_reason(
    "rejected", "rejected",
    "Reject a ticket (not a work order, a duplicate...); final.\n\n\b\nExample:\n"
    '  broadcaster tickets reject GL-1123-0042 --reason "重复工单，见 GL-1123-0041"',
    "Why it is not a work order."))


@app.command("resolve")
def resolve(ctx: typer.Context, ticket_id: TicketArg,
            result: Annotated[str, typer.Option(
                metavar="TEXT", help="What was done; posted to the resident's group.")],
            by: ByOpt = None, if_version: IfVersionOpt = None, json_: JsonOpt = False) -> None:
    """Done (办结): the result goes back to the resident's group.

    \b
    Example:
      broadcaster tickets resolve GL-1123-0042 --result "楼道垃圾已清运" --by wang-li
    """
    _change(ctx, ticket_id, "resolved", by=by, json_=json_, result=result,
            if_version=if_version, verb="resolved, result queued for the group")


@app.command("export")
def export(
    ctx: typer.Context,
    csv_: Annotated[bool, typer.Option("--csv", help="CSV, UTF-8 with BOM (Excel opens it).")] = False,
    out: Annotated[Path | None, typer.Option(metavar="FILE", help="Write here (default: stdout).")] = None,
    month: Annotated[str | None, typer.Option(
        metavar="YYYY-MM", help="Only tickets opened that month (default: all).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Every ticket, for the monthly report (CSV opens in Excel).

    \b
    Example:
      broadcaster tickets export --csv --month 2026-11 --out 2026-11.csv
    """

    from broadcaster.tickets.listing import csv_text  # start-up time: loaded when first used

    if not csv_ and not json_:
        raise typer.BadParameter("give --csv (or --json)", param_hint="--csv")
    if month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise InputError(f"--month: expected YYYY-MM, got {month!r}")
    a = get_app(ctx)
    rows = sorted(a.tickets.store.every_ticket([month] if month else None), key=lambda t: (t.created_at, t.id))
    if month:
        rows = [t for t in rows if t.day.strftime("%Y-%m") == month]
    if not csv_:
        emit_json([t.as_json(a.now()) for t in rows])
        return
    text = csv_text(a, rows)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    if json_:
        emit_json({"out": str(out), "tickets": len(rows)})
    else:
        typer.echo(f"wrote {len(rows)} tickets to {out}", err=True)
