"""History reads on PostgreSQL: the history benchmark's commands over the same 7.2M rows.

The embedded history of ``benchmarks.bench_history`` (cached, generated on
first use) is copied into a real PostgreSQL with its durable defaults (fsync
on; started in a temp dir from the test binaries, tests/pgserver.py) the way an
office moving to PostgreSQL would: ``db upgrade`` then ``db import``. The
loaded database is kept as a ``pg_dump`` custom-format file next to the
embedded cache (its name carries the schema version), so later runs restore it
with ``pg_restore`` instead of importing again; a dump of an older schema is
restored and brought up to date with ``db upgrade`` (the migrations timed on a
city-sized database). The times of each step are printed.

Each command then runs as a real process (median of three after a warm-up,
as in the embedded benchmark) on the embedded store's history, on an empty
PostgreSQL database (one announcement: what a command costs before any
history) and on PostgreSQL's history, in the same run; printed per command:
the three medians, PostgreSQL's ratio to the embedded store and to its empty
database, its CPU time and its peak memory. Target: each within 0.5 s on PostgreSQL (``stats
--since 180d`` within 1 s, as on the embedded store). One more, without a
target: a group's log of a week, which PostgreSQL answers from its index on
(announcement, group) where the embedded store reads every row of the week.

    python -m benchmarks.bench_pg_history [--only COMMAND] [--reload] [--explain]

``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the queries those
commands make (``QUERIES``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks import as_installed
from benchmarks.bench_history import NOW, REPO, TIMEOUT, cache_dir, history, measure_cpu, run
from benchmarks.history_data import make_root
from broadcaster.store import pgschema

sys.path.insert(0, str(REPO))       # tests/pgserver.py: the same server the tests start
from tests.pgserver import NoServer, PgServer, start_server

COMMANDS = [
    (["status", "--json"], 0.5),
    (["queue", "list", "--all", "--json"], 0.5),
    (["log", "--since", "1d", "--limit", "50", "--json"], 0.5),
    (["log", "--status", "failed", "--since", "7d", "--json"], 0.5),
    (["report", "ID", "--json"], 0.5),
    (["stats", "--since", "180d", "--json"], 1.0),
    (["log", "--group", "g0001", "--since", "7d", "--json"], None),   # a group's rows: no target
]

# what those commands ask PostgreSQL, with the values of the benchmark's day (2026-11-22)
QUERIES = {
    "queue (status, every command)": "SELECT meta FROM announcements WHERE NOT finished ORDER BY id",
    "archive listing of a month (log, stats)":
        "SELECT day, id FROM announcements WHERE finished AND day >= '2026-11-01' AND day < '2026-12-01'",
    "archive listing, all (queue list --all)": "SELECT day, id FROM announcements WHERE finished",
    "a day's tally (stats, log, status)":
        "SELECT data FROM history_index WHERE kind = 'days' AND day = '2026-11-21'",
    "days indexed (log, queue list --all)":
        "SELECT day FROM history_index WHERE kind = 'log' AND day >= '-infinity'::date"
        " AND day <= 'infinity'::date ORDER BY day",
    "an announcement (report)": "SELECT meta FROM announcements WHERE id = %(newest)s",
    "its deliveries (report, log)":
        "SELECT row FROM deliveries WHERE announcement = %(newest)s ORDER BY position",
    "a group's rows of a day's announcements (log --group)":
        "SELECT announcement, row FROM deliveries WHERE announcement = ANY(%(day)s)"
        " AND grp = 'g0001' AND (NULL::text IS NULL OR status = NULL) ORDER BY announcement, position",
}


def dump_path(groups: int, per_day: int, days: int) -> Path:
    """The cached database: named by the data's size and the schema version."""
    return cache_dir() / f"history-pg-schema{pgschema.LATEST}-{groups}x{per_day}x{days}.dump"


def older_dump(dump: Path) -> Path | None:
    """The cached database of the newest older schema, if any (upgraded, not imported again)."""
    size = dump.name.split("-")[-1]
    found = []
    for path in dump.parent.glob(f"history-pg-schema*-{size}"):
        version = path.name.removeprefix("history-pg-schema").split("-")[0]
        if version.isdigit() and int(version) < pgschema.LATEST:
            found.append((int(version), path))
    return max(found)[1] if found else None


def client(server: PgServer, exe: str, *args: str) -> None:
    """A PostgreSQL client program of the server's installation (pg_dump, pg_restore, psql)."""
    done = subprocess.run([str(server.bin / exe), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{exe} failed ({done.returncode}): {done.stderr[-2000:]}")


def load(server: PgServer, url: str, root: Path, env: dict, dump: Path, reload: bool) -> str:
    """Fill the database at ``url``: from the cached dump, else by ``db import`` of ``root``
    (and then dumped for next time). Returns what was done, with its time."""
    t0 = time.perf_counter()
    pg_env = {**env, "BROADCASTER_DATABASE_URL": url}
    older = None if reload else older_dump(dump)
    if dump.exists() and not reload:
        client(server, "pg_restore", "--no-owner", "-j", "2", "-d", url, str(dump))
        how = f"restored {dump.name} ({dump.stat().st_size / 2**30:.1f} GB) with pg_restore"
    elif older is not None:      # the schema moved on: upgraded as an office's database would be
        client(server, "pg_restore", "--no-owner", "-j", "2", "-d", url, str(older))
        how = f"restored {older.name} in {time.perf_counter() - t0:.0f} s"
        t1 = time.perf_counter()
        applied = json.loads(run(root, pg_env, ["db", "upgrade", "--json"])[2])["applied"]
        how += f"; `db upgrade` {applied} in {time.perf_counter() - t1:.1f} s"
    else:
        run(root, pg_env, ["db", "upgrade", "--json"])
        imported = _import(root, pg_env)
        how = (f"imported {imported['announcements']:,} announcements with `db import` "
               f"in {time.perf_counter() - t0:.0f} s")
    if not dump.exists() or reload:
        t1 = time.perf_counter()
        tmp = dump.with_name(dump.name + ".tmp")
        client(server, "pg_dump", "-Fc", "-Z", "1", "-f", str(tmp), url)
        tmp.rename(dump)
        if older is not None:
            older.unlink()
        how += f"; dumped in {time.perf_counter() - t1:.0f} s"
    client(server, "psql", "-q", "-c", "VACUUM ANALYZE", url)   # a restore brings no statistics
    return f"{how}; {time.perf_counter() - t0:.0f} s with VACUUM ANALYZE"


def _import(root: Path, env: dict) -> dict:
    """``db import --json`` as a process (no timeout: 7.2M rows take minutes)."""
    cmd = [sys.executable, "-m", "benchmarks.clock", NOW.isoformat(), "--root", str(root),
           "db", "import", "--json"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"db import failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def explain(url: str, newest: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        day = [r[0] for r in conn.execute("SELECT id FROM announcements WHERE finished AND day ="
                                          " %s", (date(int(newest[:4]), int(newest[4:6]),
                                                       int(newest[6:8])),)).fetchall()]
        for what, sql in QUERIES.items():
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}",
                                {"newest": newest, "day": day}).fetchall()
            print(f"  -- {what}")
            for (line,) in plan:
                print(f"     {line}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--per-day", type=int, default=20)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--only", metavar="WORD", help="only the commands that start with WORD")
    ap.add_argument("--reload", action="store_true", help="import again, replacing the dump")
    ap.add_argument("--explain", action="store_true", help="print the queries' plans")
    opts = ap.parse_args(argv)
    print(f"history on PostgreSQL: {opts.groups:,} groups × {opts.per_day} a day × "
          f"{opts.days} days")
    root, written = history(opts.groups, opts.per_day, opts.days)
    try:
        server = start_server(durable=True)
    except NoServer as exc:
        print(f"  skipped: {exc}")
        return
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pg_root = Path(tmp) / "root"
            env = {**os.environ, **make_root(pg_root, opts.groups, REPO / "templates")}
            url = server.create_db("history")
            print(f"  {load(server, url, root, env, dump_path(opts.groups, opts.per_day, opts.days), opts.reload)}")
            if opts.explain:
                explain(url, written["newest"])
            pg_env = {**env, "BROADCASTER_DATABASE_URL": url}
            empty_root = Path(tmp) / "empty"
            make_root(empty_root, opts.groups, REPO / "templates")
            empty_env = {**env, "BROADCASTER_DATABASE_URL": server.create_db("empty")}
            run(empty_root, empty_env, ["db", "upgrade"])
            one = json.loads(run(empty_root, empty_env,
                                 ["announce", "x", "--to", "id:g0000", "--json"])[2])["id"]
            print(f"  {'command':<38} {'embedded':>8} {'PG empty':>8} {'PG':>6} {'PG/emb':>6}"
                  f" {'PG/empty':>8} {'PG CPU':>6} {'PG RSS':>6}  target")
            for args, target in COMMANDS:
                if opts.only and args[0] != opts.only:
                    continue
                real = [written["newest"] if a == "ID" else a for a in args]
                e_wall, _, _ = measure_cpu(root, env, real)
                z_wall, _, _ = measure_cpu(empty_root, empty_env,
                                           [one if a == "ID" else a for a in args])
                p_wall, rss, p_cpu = measure_cpu(pg_root, pg_env, real)
                shown = f"{p_wall:5.2f}s" if p_wall != float("inf") else f">{TIMEOUT:.0f}s"
                print(f"  {' '.join(args):<38} {e_wall:7.2f}s {z_wall:7.2f}s {shown:>6}"
                      f" {p_wall / e_wall:5.2f}x {p_wall / z_wall:7.2f}x {p_cpu:5.2f}s"
                      f" {rss:3.0f} MB  {f'<= {target} s' if target else '-'}")
    finally:
        server.remove()


if __name__ == "__main__":
    as_installed()
    main()
