"""History reads on PostgreSQL: the history benchmark's commands over the same 7.2M rows.

The embedded history of ``benchmarks.bench_history`` (cached, generated on
first use) is copied into a real PostgreSQL with its durable defaults (fsync
on; started in a temp dir from the test binaries, tests/pgserver.py) the way an
office moving to PostgreSQL would: ``db upgrade`` then ``db import``. The
loaded database is kept as a ``pg_dump`` custom-format file next to the
embedded cache (its name carries the schema version), so later runs restore it
with ``pg_restore`` instead of importing again; both times are printed.

Each command then runs as a real process (median of three after a warm-up,
as in the embedded benchmark) on PostgreSQL and on the embedded store, in the
same run; printed per command: both medians, the ratio, the CPU time and the
peak memory on PostgreSQL. Target: each within 0.5 s on PostgreSQL (``stats
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
from pathlib import Path

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
}


def dump_path(groups: int, per_day: int, days: int) -> Path:
    """The cached database: named by the data's size and the schema version."""
    return cache_dir() / f"history-pg-schema{pgschema.LATEST}-{groups}x{per_day}x{days}.dump"


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
    if dump.exists() and not reload:
        client(server, "pg_restore", "--no-owner", "-j", "2", "-d", url, str(dump))
        how = f"restored {dump.name} ({dump.stat().st_size / 2**30:.1f} GB) with pg_restore"
    else:
        pg_env = {**env, "BROADCASTER_DATABASE_URL": url}
        run(root, pg_env, ["db", "upgrade", "--json"])
        imported = _import(root, pg_env)
        how = (f"imported {imported['announcements']:,} announcements with `db import` "
               f"in {time.perf_counter() - t0:.0f} s")
        t1 = time.perf_counter()
        tmp = dump.with_name(dump.name + ".tmp")
        client(server, "pg_dump", "-Fc", "-Z", "1", "-f", str(tmp), url)
        tmp.rename(dump)
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
        for what, sql in QUERIES.items():
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}",
                                {"newest": newest}).fetchall()
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
            print(f"  {'command':<38} {'embedded':>8} {'PG':>7} {'ratio':>6} {'PG CPU':>7}"
                  f" {'PG RSS':>7}  target")
            for args, target in COMMANDS:
                if opts.only and args[0] != opts.only:
                    continue
                real = [written["newest"] if a == "ID" else a for a in args]
                e_wall, _, _ = measure_cpu(root, env, real)
                p_wall, rss, p_cpu = measure_cpu(pg_root, pg_env, real)
                shown = f"{p_wall:6.2f}s" if p_wall != float("inf") else f">{TIMEOUT:.0f}s"
                print(f"  {' '.join(args):<38} {e_wall:7.2f}s {shown:>7} {p_wall / e_wall:5.2f}x"
                      f" {p_cpu:6.2f}s {rss:4.0f} MB  {f'<= {target} s' if target else '-'}")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
