"""``groups list``."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, table

app = typer.Typer(help="The groups of groups.yaml.", no_args_is_help=True)


@app.command("list")
def list_groups(
    ctx: typer.Context,
    to: Annotated[list[str], typer.Option("--to", help="Selector (repeatable, OR).")] = [],  # noqa: B006
    json_: JsonOpt = False,
) -> None:
    """List groups, their channel type and tags.  Example: groups list --to street:ninghai-road"""
    from broadcaster.targeting import select

    a = get_app(ctx)
    groups = select(a.groups, to) if to else a.groups.groups
    rows = [{"id": g.id, "name": g.name, "channel": g.channel_type, "tags": list(g.tags),
             "location": g.location.name if g.location else None,
             "quiet_hours": str(g.quiet_hours) if g.quiet_hours else None} for g in groups]
    if json_:
        emit_json(rows)
        return
    table(f"{len(rows)} groups", ["id", "name", "channel", "tags", "quiet hours"],
          [[r["id"], r["name"], r["channel"], " ".join(r["tags"]), r["quiet_hours"]]
           for r in rows])
