"""``templates list`` and ``templates preview``: what editors use before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, noun, table

app = noun("See the message templates and exactly what a group will receive.")

SHOWN_GROUPS = 3


@app.command("list")
def list_command(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Each template file, its kind, and the groups and schedules that use it.

    \b
    Example:
      broadcaster templates list
    """
    from broadcaster.templating.usage import list_templates  # start-up time: loaded when first used

    infos, problems = list_templates(get_app(ctx).templates)
    if json_:
        emit_json([{"template": i.path.name, "kind": i.kind, "groups": list(i.groups),
                    "schedules": list(i.schedules), "used_by": list(i.used_by)} for i in infos])
        for p in problems:
            typer.echo(f"warning: {p}", err=True)
        return
    rows = []
    for info in infos:
        shown = ", ".join(info.groups[:SHOWN_GROUPS])
        if len(info.groups) > SHOWN_GROUPS:
            shown += f" … ({len(info.groups)} groups)"
        rows.append([info.path.name, info.kind, shown or "-",
                     ", ".join(info.schedules + info.used_by) or "-"])
    table(None, ["template", "kind", "groups", "schedules / used by"], rows)
    for p in problems:
        typer.echo(f"warning: {p}", err=True)


@app.command("preview")
def preview_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Template name, e.g. weather or welcome.")],
    group: Annotated[str | None, typer.Option(
        "--group", metavar="GROUP",
        help="Render as this group gets it (its overrides, location, channel).")] = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", metavar="TYPE",
        help="Channel type to show (default: the group's; without --group: all).")] = None,
    case: Annotated[str | None, typer.Option(
        "--case", metavar="CASE",
        help="A named sample case of the kind, e.g. sunny for weather (see templates/README.md).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", metavar="FILE",
        help="JSON or YAML file laid over the sample data, name by name.")] = None,
    festival: Annotated[str | None, typer.Option(
        "--festival", metavar="KEY", help="For holiday templates: the festival, e.g. chunjie.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Render a template as a group gets it, and each channel's payloads.

    \b
    Examples:
      broadcaster templates preview welcome --group gulou-hlz-g01 --channel wecom
      broadcaster templates preview weather --case sunny --channel wecom
    """
    a = get_app(ctx)
    from broadcaster.templating.preview import preview  # start-up time: loaded when first used

    if data is not None and not data.is_file():
        from broadcaster.errors import InputError  # start-up time: loaded when first used

        raise InputError(f"--data {data}: no such file")
    result = preview(a.templates, name, group_id=group, channel=channel, data_file=data,
                     festival=festival, case=case)
    if json_:
        emit_json(json.loads(a.redact(json.dumps(preview_json(result), ensure_ascii=False, default=str))))
    else:
        typer.echo(a.redact(format_preview(result)))


def preview_json(result) -> dict:
    g = result.group
    return {
        "template": result.name, "kind": result.kind,
        "group": None if result.sample_group else g.id, "data": result.data_source,
        "case": result.case,
        "now": result.now.isoformat(timespec="seconds"),
        "channels": [{"channel": cp.channel, "resolution": list(cp.resolution.describe()),
                      "markdown": cp.markdown, "limit": cp.limit, "unit": cp.unit,
                      "parts": [{"size": p.size, "payload": p.payload} for p in cp.parts]}
                     for cp in result.channels],
    }


def format_preview(result) -> str:
    g = result.group
    who = "a sample group" if result.sample_group else f"group {g.id}"
    lines = [
        f"template: {result.name}  (kind: {result.kind})",
        f"as: {who} — {g.name} ({g.channel_type})",
        f"data: {result.data_source}; now: {result.now.isoformat(timespec='minutes')}",
    ]
    for cp in result.channels:
        lines += ["", f"=== {cp.channel} ===", "resolution:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(cp.resolution.describe(), 1)]
        size = len(cp.markdown.encode("utf-8"))
        lines += [f"--- rendered Markdown ({size} bytes) ---", cp.markdown]
        verdict = "fits in one message" if cp.fits else f"split into {len(cp.parts)} messages"
        limit = f"limit {cp.limit} {cp.unit} per message"
        lines.append(f"--- {cp.channel} payload: {verdict} ({limit}) ---")
        for i, part in enumerate(cp.parts, 1):
            lines.append(f"[part {i}/{len(cp.parts)}: {part.size} / {part.limit} {cp.unit}]")
            lines.append(_payload(part.payload))
    return "\n".join(lines)


def _payload(payload) -> str:
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, ensure_ascii=False, indent=2, default=str)
