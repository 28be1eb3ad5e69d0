"""``serve``: the inbound server residents' messages reach."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from broadcaster.cli.common import get_app, setup_logging

HostOpt = Annotated[str, typer.Option("--host", metavar="HOST",
                                      help="Address to listen on (behind a reverse proxy: 127.0.0.1).")]
PortOpt = Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")]


def serve(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Receive residents' messages and answer them, until SIGTERM.

    \b
    Example:
      broadcaster serve --host 127.0.0.1 --port 8080
    """

    from broadcaster.inbound.server import run  # start-up time: loaded when first used

    a = get_app(ctx)
    setup_logging(a, logging.DEBUG if verbose else logging.INFO)
    run(a, host=host, port=port)
