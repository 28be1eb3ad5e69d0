"""``members join GROUP NAME…``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, noun

app = noun("Group members and welcome messages.")


@app.command("join")
def join(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(metavar="GROUP", help="The group's id.")],
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="The new members' names.")],
    now_: Annotated[bool, typer.Option(
        "--now", help="Queue the welcome at once instead of waiting for more joins.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Record new members; one welcome greets joins within 5 minutes together.

    \b
    Example:
      broadcaster members join gulou-hlz-g01 张阿姨 李师傅
    """
    from broadcaster.sources import members  # start-up time: loaded when first used

    a = get_app(ctx)
    info = members.record_joins(a, group, names, a.now())
    if now_:
        info["queued"] = members.flush_welcomes(a, a.now(), window=timedelta(0), only=group) > 0
    if json_:
        emit_json(info)
    elif info.get("queued"):
        typer.echo(f"{group}: welcome queued for {'、'.join(info['pending'])}")
    else:
        typer.echo(f"{group}: {len(info['pending'])} waiting for a welcome, "
                   f"queued at {info['welcome_at']} by the next run")
