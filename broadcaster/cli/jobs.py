"""``jobs list`` and ``jobs run JOB_ID``."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, noun, plural, progress_bar, table
from broadcaster.timeparse import iso

app = noun("The scheduled jobs of schedules/.")


@app.command("list")
def list_jobs(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Jobs with their next fire time.

    \b
    Example:
      broadcaster jobs list --json
    """
    from broadcaster.schedule import scheduler  # start-up time: loaded when first used

    a = get_app(ctx)
    problems: list[str] = []
    jobs = scheduler.load_jobs(a, problems)     # an invalid job is named, the others listed
    for problem in problems:
        a.warn(problem)
    nxt = scheduler.next_fire_times(a, a.now(), jobs=jobs)
    rows = [{"id": j.id, "cron": j.cron, "timezone": j.timezone, "content": j.content,
             "template": j.template, "to": list(j.to), "exclude": list(j.exclude),
             "catch_up": j.catch_up, "enabled": j.enabled, "next_fire": iso(nxt[j.id])}
            for j in jobs]
    if json_:
        emit_json(rows)
        return
    table(plural(len(rows), "job"), ["id", "cron", "timezone", "content", "to", "next fire"],
          [[r["id"], r["cron"], r["timezone"], r["template"] or r["content"], " ".join(r["to"]),
            r["next_fire"] or "disabled"] for r in rows])


@app.command("run")
def run_job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's id (see: jobs list).")],
    json_: JsonOpt = False,
) -> None:
    """Fire one job now, outside its schedule.

    \b
    Example:
      broadcaster jobs run morning-weather
    """
    from broadcaster.schedule import scheduler  # start-up time: loaded when first used

    a = get_app(ctx)
    update, bar = progress_bar(not json_, "reading feeds")
    try:
        run = scheduler.try_job(a, job_id, progress=update)
    finally:
        if bar is not None:
            bar.stop()
    problems = [a.redact(p) for p in run.problems]
    if json_:
        emit_json({"job": job_id, "announcements": run.announcements, "reasons": run.reasons,
                   "problems": problems})
        return
    ids = run.announcements
    why = f": {'; '.join(run.reasons)}" if run.reasons and not ids else ""
    typer.echo(f"{job_id}: queued {plural(len(ids), 'announcement')} {' '.join(ids)}".rstrip() + why)
    if ids:
        for reason in run.reasons:     # groups left out: already greeted, nothing new for them
            typer.echo(f"  note: {reason}")
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)
