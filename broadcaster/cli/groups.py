"""``groups list``."""

from __future__ import annotations

import typer

from broadcaster.cli.common import JsonOpt, ToOpt, emit_json, get_app, noun, plural, table

app = noun("The groups of groups.yaml.")


@app.command("list")
def list_groups(
    ctx: typer.Context,
    to: ToOpt = [],  # noqa: B006
    json_: JsonOpt = False,
) -> None:
    """Groups, their channel type and tags.

    \b
    Example:
      broadcaster groups list --to street:ninghai-road
    """
    from broadcaster.targeting import select  # start-up time: loaded when first used

    a = get_app(ctx)
    groups = select(a.groups, to) if to else a.groups.groups
    rows = [{"id": g.id, "name": g.name, "channel": g.channel_type, "tags": list(g.tags),
             "location": g.location.name if g.location else None,
             "quiet_hours": str(g.quiet_hours) if g.quiet_hours else None} for g in groups]
    if json_:
        emit_json(rows)
        return
    table(plural(len(rows), "group"), ["id", "name", "channel", "tags", "quiet hours"],
          [[r["id"], r["name"], r["channel"], " ".join(r["tags"]), r["quiet_hours"]]
           for r in rows])
