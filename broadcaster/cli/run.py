"""``run-once``, ``daemon`` and ``status``: driving the engine."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, setup_logging
from broadcaster.entry import run_once as run_pass


def run_once(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """One pass, for cron: send what is due, fire due schedules, send what they queued.

    Exit 1 when a job failed or is invalid (the rest of the pass still ran; `status`
    names it), 75 when another process is sending (nothing done).

    \b
    Example (a crontab line):
      * * * * * cd /srv/broadcaster && .venv/bin/broadcaster run-once
    """
    code = run_pass(get_app(ctx), json_)
    if code:
        raise typer.Exit(code)


def daemon(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Also run the inbound server (as `serve` does).")] = False,
    host: Annotated[str, typer.Option("--host", metavar="HOST",
                                      help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT",
                                      help="With --serve: port to listen on.")] = 8080,
) -> None:
    """Run schedules and dispatch until SIGTERM or SIGINT.

    \b
    Example:
      broadcaster daemon --serve --port 8080
    """

    from broadcaster.schedule.daemon import Daemon, validate  # start-up time: loaded when first used

    a = get_app(ctx)
    a.on_warning = lambda _text: None   # a group left out is logged below as a problem
    setup_logging(a, logging.DEBUG if verbose else logging.INFO)
    problems = validate(a)
    for problem in problems:
        logging.getLogger("broadcaster.schedule.daemon").error("%s", problem)
    d = Daemon(a, problems=problems)
    d.install_signals()
    server = None
    if serve:
        from broadcaster.inbound.server import ServerThread  # start-up time: loaded when first used

        server = ServerThread(a, host=host, port=port).start()
    try:
        code = d.run()
    finally:
        if server is not None:
            server.stop()
    hanging = d.abandoned()
    if hanging:     # a send or a feed that ignores its deadline must not keep us running
        logging.getLogger("broadcaster.schedule.daemon").warning(
            "exiting without waiting for %d hanging thread(s) (%s): a send still in flight "
            "was not recorded and goes out again at the next start", len(hanging),
            ", ".join(hanging[:5]))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Daemon heartbeat, queue depth, last run, recent failures.

    \b
    Example:
      broadcaster status --json
    """
    from broadcaster.schedule.status import collect  # start-up time: loaded when first used

    data = collect(get_app(ctx))
    if json_:
        emit_json(data)
        return
    d = data["daemon"]
    typer.echo(f"daemon: {d['state']}" + (f" (pid {d['pid']}, heartbeat {d['heartbeat']})"
                                          if d.get("pid") else ""))
    q = data["queue"]
    typer.echo(f"queue: {q['announcements']} announcements, {q['pending']} deliveries pending")
    last = data.get("last_run")
    typer.echo(f"last run: {last['at']} sent {last['sent']} failed {last['failed']}"
               if last else "last run: never")
    for f in data["recent_failures"]:
        typer.echo(f"  failed {f['updated_at']} {f['announcement']} {f['group']}: {f['last_error']}")
    for f in data.get("recent_expired", []):
        typer.echo(f"  expired {f['updated_at']} {f['announcement']} {f['group']}: never delivered")
    for j in data["failed_jobs"]:
        typer.echo(f"job failed: {j['job']} at {j['failed_at']}: {j['error']}")
    for p in data["problems"]:
        typer.echo(f"problem: {p}")
    for d in data["damaged"]:
        typer.echo(f"damaged: {d['name']} set aside as {d['path']} ({d['reason']})")

