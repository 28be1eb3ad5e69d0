"""``stats`` and ``dashboard``: the office's figures, as tables, JSON or a page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, SinceOpt, console, emit_json, get_app, table
from broadcaster.timeparse import parse_duration

ByOpt = Annotated[str | None, typer.Option(
    "--by", metavar="DIMENSION", help="Also break deliveries down by street, community, grid or platform.")]


def _figures(ctx: typer.Context, since: str, by: str | None = None) -> dict:
    from broadcaster.stats.figures import build  # start-up time: loaded when first used

    return build(get_app(ctx), parse_duration(since, option="--since"), by)


def stats(ctx: typer.Context, since: SinceOpt = "30d", by: ByOpt = None, json_: JsonOpt = False) -> None:
    """Announcements, deliveries, answers and tickets.

    Counted in whole days (default time zone), up to now.

    \b
    Example:
      broadcaster stats --since 30d --by street
    """
    data = _figures(ctx, since, by)
    if json_:
        emit_json(data)
        return
    _print(data)


def _n(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _print(data: dict) -> None:
    console().print(f"since {data['since'][:16].replace('T', ' ')} "
                    f"until {data['until'][:16].replace('T', ' ')}", markup=False, highlight=False)
    d, lat, req, inb, tk = (data["deliveries"], data["latency"], data["request_ms"], data["inbound"],
                            data["tickets"])
    table("figures", ["figure", "value"], [
        ["announcements", _n(data["announcements"])],
        ["deliveries sent", _n(d["sent"])], ["deliveries failed", _n(d["failed"])],
        ["deliveries expired", _n(d["expired"])], ["deliveries pending", _n(d["pending"])],
        ["groups reached", _n(data["groups_reached"])],
        ["latency median / p95 (s)", f"{_n(lat['median_s'])} / {_n(lat['p95_s'])}"],
        ["platform answer median / p95 (ms)", f"{_n(req['median'])} / {_n(req['p95'])}"],
        ["resident messages", _n(inb["messages"])], ["questions answered", _n(inb["answered"])],
        ["questions missed", _n(inb["missed"])],
        ["tickets opened", _n(tk["opened"])], ["tickets resolved", _n(tk["resolved"])],
        ["tickets overdue", _n(tk["overdue"])],
        ["median handling (h)", _n(tk["median_handling_hours"])],
    ])
    if data["failures"]:
        table("failures", ["platform", "reason", "count"],
              [[f["platform"], f["reason"], _n(f["count"])] for f in data["failures"]])
    if data["top_failed_groups"]:
        table("groups that failed most", ["group", "name", "failed", "reason"],
              [[g["group"], g["name"], _n(g["failed"]), g["reason"]] for g in data["top_failed_groups"]])
    if inb["top_misses"]:
        table("top misses", ["text", "count"], [[m["text"], _n(m["count"])] for m in inb["top_misses"]])
    if tk["by_grid"]:
        table("tickets by grid", ["grid", "opened", "resolved", "overdue", "median handling (h)"],
              [[r["grid"], _n(r["opened"]), _n(r["resolved"]), _n(r["overdue"]),
                _n(r["median_handling_hours"])] for r in tk["by_grid"]])
    if "by" in data:
        dim = data["by"]["dimension"]
        table(f"by {dim}", [dim, "groups", "reached", "sent", "failed", "expired", "pending"],
              [[r["key"], _n(r["groups"]), _n(r["reached"]), _n(r["sent"]), _n(r["failed"]),
                _n(r["expired"]), _n(r["pending"])] for r in data["by"]["rows"]])


def dashboard(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Directory to write index.html into.")],
    since: SinceOpt = "30d",
    json_: JsonOpt = False,
) -> None:
    """Write the figures as one self-contained HTML page.

    The page works offline (no script, nothing fetched) and on a phone.

    \b
    Example:
      broadcaster dashboard --out /srv/www/dashboard --since 30d
    """
    from broadcaster.stats.dashboard import write  # start-up time: loaded when first used

    data = _figures(ctx, since)
    path = write(out, data)
    if json_:
        emit_json({"path": str(path), "since": data["since"], "until": data["until"]})
    else:
        typer.echo(f"wrote {path}")
