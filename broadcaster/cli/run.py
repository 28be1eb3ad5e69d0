"""``run-once``, ``daemon`` and ``status``: driving the engine."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, progress_bar, setup_logging


def run_once(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """One pass, for cron: fire due schedules, send what is due, exit.

    \b
    Example (a crontab line):
      * * * * * cd /srv/broadcaster && .venv/bin/broadcaster run-once
    """
    from broadcaster.delivery.dispatch import Dispatcher
    from broadcaster.schedule.passes import run_pass

    a = get_app(ctx)
    with a.store.dispatch_lock(wait=0):
        update, bar = progress_bar(not json_)
        try:
            fired, result = run_pass(a, Dispatcher(a, progress=update))
        finally:
            if bar is not None:
                bar.stop()
    out = {"fired": fired, **result.as_json()}
    if json_:
        emit_json(out)
    else:
        typer.echo(f"fired {', '.join(fired) or 'nothing'}; {result.summary()}")
    for err in result.errors:
        typer.echo(f"error: {err}", err=True)


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
    import logging

    from broadcaster.schedule.daemon import Daemon, validate

    a = get_app(ctx)
    setup_logging(a, logging.DEBUG if verbose else logging.INFO)
    validate(a)
    d = Daemon(a)
    d.install_signals()
    server = None
    if serve:
        from broadcaster.inbound.server import ServerThread

        server = ServerThread(a, host=host, port=port).start()
    try:
        code = d.run()
    finally:
        if server is not None:
            server.stop()
    raise typer.Exit(code)


def status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Daemon heartbeat, queue depth, last run, recent failures.

    \b
    Example:
      broadcaster status --json
    """
    from broadcaster.schedule.status import collect

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

