"""``db upgrade`` and ``db import``: the PostgreSQL store (``BROADCASTER_DATABASE_URL``)."""

from __future__ import annotations

import typer

from broadcaster.cli.common import JsonOpt, emit_json, get_app, noun
from broadcaster.errors import InputError

app = noun("The PostgreSQL store: schema upgrades and importing the embedded store.")


def _database(ctx: typer.Context):
    from broadcaster.store.pgstore import PgStore  # start-up time: loaded when first used

    a = get_app(ctx)
    if not isinstance(a.store, PgStore):
        raise InputError("BROADCASTER_DATABASE_URL is not set: the state is in the embedded "
                         f"store ({a.state_dir}); set it to a postgresql:// URL first")
    return a, a.store


@app.command("upgrade")
def upgrade(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Create or upgrade the database schema (safe to run again; run after every upgrade).

    \b
    Example:
      BROADCASTER_DATABASE_URL=postgresql://broadcaster@db.internal/broadcaster \\
        broadcaster db upgrade
    """
    from broadcaster.store import pgschema  # start-up time: loaded when first used

    _, store = _database(ctx)
    applied = store.upgrade()
    if json_:
        emit_json({"database": store.location, "applied": applied, "version": pgschema.LATEST})
    elif applied:
        typer.echo(f"{store.location}: applied schema version(s) "
                   f"{', '.join(map(str, applied))}; now at {pgschema.LATEST}")
    else:
        typer.echo(f"{store.location}: schema up to date (version {pgschema.LATEST})")


@app.command("import")
def import_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Copy the embedded store (<root>/var or BROADCASTER_STATE_DIR) into the database.

    Copies announcements, history, state, tickets with their history and the
    resident-message journal. What is already in the database is skipped, so
    running it twice is safe.

    \b
    Example:
      broadcaster db import --json
    """
    from broadcaster.store.files import FileStore  # start-up time: loaded when first used
    from broadcaster.store.pgimport import import_store  # start-up time: loaded when first used

    a, store = _database(ctx)
    src = FileStore(a.state_dir)
    if not (src.active_dir.is_dir() or src.tickets().kept() or src.journal().kept()):
        raise InputError(f"no embedded store in {a.state_dir} (nothing to import)")
    store.ensure()
    done = import_store(src, store)
    if json_:
        emit_json({"from": str(a.state_dir), "to": store.location, **done.as_json()})
        return
    typer.echo(f"imported {done.announcements} announcement(s) from {a.state_dir} "
               f"({done.skipped} already there), {done.documents} document(s), "
               f"{done.counters} counter(s), {done.records} collection record(s), "
               f"{done.tickets} ticket(s) ({done.tickets_skipped} already there), "
               f"{done.journal} resident-message record(s)")
    for line in done.damaged:
        typer.echo(f"warning: damaged, not imported: {line}", err=True)
