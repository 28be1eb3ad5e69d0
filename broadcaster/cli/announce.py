"""``announce``: staff queue a message to many groups."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from broadcaster.cli.common import ExcludeOpt, JsonOpt, ToOpt, console, emit_json, get_app, table
from broadcaster.timeparse import iso, parse_at, parse_duration


def announce(
    ctx: typer.Context,
    to: ToOpt,
    text: Annotated[str | None, typer.Argument(metavar="TEXT",
                                               help="Markdown text of the announcement.")] = None,
    file: Annotated[str | None, typer.Option("--file", metavar="FILE",
                                             help="Read the text from FILE, or - for stdin.")] = None,
    template: Annotated[str | None, typer.Option("--template", metavar="NAME",
                                                 help="Render this template instead of TEXT.")] = None,
    var: Annotated[list[str], typer.Option("--var", metavar="K=V",
                                           help="A variable for --template (repeatable).")] = [],  # noqa: B006
    exclude: ExcludeOpt = [],  # noqa: B006
    at: Annotated[str | None, typer.Option("--at", metavar="WHEN", help="When to send: "
                                           "'YYYY-MM-DD HH:MM', 'HH:MM' or +30m/+2h/+1d.")] = None,
    urgent: Annotated[bool, typer.Option("--urgent", help="Ignore quiet hours.")] = False,
    mention_all: Annotated[bool, typer.Option("--mention-all", help="@all where the "
                                              "platform allows it.")] = False,
    expires: Annotated[str, typer.Option("--expires", metavar="DUR",
                                         help="Give up after this long.")] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Queue nothing; show what each "
                                          "group would get.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Queue an announcement to the groups --to selects.

    \b
    Examples:
      broadcaster announce "明天9:00-17:00宁海路停水" --to street:ninghai-road --urgent
      broadcaster announce --file notice.md --to all --at "2026-11-23 09:00" --dry-run
    """
    from broadcaster.queue import announce as lib  # start-up time: loaded when first used
    from broadcaster.queue import outbox  # start-up time: loaded when first used

    a = get_app(ctx)
    body = lib.read_text(text, file, sys.stdin)
    variables = lib.parse_vars(var)
    expiry = parse_duration(expires, option="--expires")
    now = a.now()
    when = parse_at(at, now, a.tz) if at else None
    draft = lib.compose(a, text=body, template=template, variables=variables, to=to,
                        exclude=exclude, urgent=urgent)
    if dry_run:
        previews = lib.previews(a, draft, mention_all=mention_all)
        if json_:
            emit_json({"targets": len(previews), "scheduled_for": iso(when or now),
                       "previews": previews})
            return
        for p in previews:
            console().rule(f"{p['group']} ({p['channel']})")
            for i, (part, size) in enumerate(zip(p["parts"], p["sizes"], strict=True), 1):
                console().print(f"[dim]part {i}/{len(p['parts'])}: {size}/{p['limit']} "
                                f"{p['unit']}[/dim]")
                console().print(part, markup=False, highlight=False)
        return
    ann = outbox.queue_announcement(a, draft.messages, source="cli", urgent=urgent,
                                    mention_all=mention_all, scheduled_for=when, expires=expiry)
    # never None: compose refuses a selection that leaves no group
    out = {"id": ann.meta.id, "targets": len(draft.messages), "scheduled_for": iso(ann.meta.scheduled_for),
           "expires_at": iso(ann.meta.expires_at), "status": ann.status}
    if json_:
        emit_json(out)
        return
    table(None, ["id", "targets", "scheduled for", "status"],
          [[out["id"], out["targets"], out["scheduled_for"], out["status"]]])
