"""Work orders on PostgreSQL: the ticket benchmark's year of tickets, imported, then read.

The embedded store is filled as ``benchmarks.bench_tickets`` does (2,000 groups,
10,000 open tickets and 100,000 closed ones over the year before), then copied
into a real PostgreSQL with its durable defaults (fsync on; started in a temp
dir from the test binaries, tests/pgserver.py) by ``db upgrade`` and ``db import``
as real processes, timed; ``db import`` runs a second time (nothing to copy).
Then each command runs as a real process (median of three after a warm-up, as
in the other history benchmarks) on the embedded store and on PostgreSQL, in the
same run; printed: both medians, the ratio, PostgreSQL's CPU time and peak memory.
Target: each within 0.5 s on PostgreSQL (``stats --since 180d`` within 1 s, as
for the history). Last, in this process: every ticket of the last six months
read as tickets by the PostgreSQL store (each row built once, as it is checked)
and by the interface's generic path (the rows, then each built again), alternately.

    python -m benchmarks.bench_pg_tickets [--open N] [--closed N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks import as_installed
from benchmarks.bench_history import measure_cpu
from benchmarks.bench_tickets import GROUPS, NOW, _in_child, write_root, write_tickets

REPO = Path(__file__).resolve().parent.parent


def _db(root: Path, env: dict, *args: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), "db", *args,
                        "--json"], env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"db {' '.join(args)} failed: {p.stderr[-2000:]}")
    return time.perf_counter() - t0, json.loads(p.stdout)


def main(argv: list[str] | None = None) -> None:
    from tests.pgserver import NoServer, start_server

    ap = argparse.ArgumentParser()
    ap.add_argument("--open", type=int, default=10_000)
    ap.add_argument("--closed", type=int, default=100_000)
    opts = ap.parse_args(argv)
    try:
        server = start_server(durable=True)
    except NoServer as exc:
        print(f"PostgreSQL ticket benchmark skipped: {exc}")
        return
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-tickets-") as tmp:
            root = Path(tmp) / "root"
            env_vars = write_root(root, GROUPS)
            counts = _in_child(write_tickets, root / "var", open_n=opts.open,
                               closed_n=opts.closed, groups=GROUPS)
            files = {**os.environ, **env_vars, "BROADCASTER_DATABASE_URL": ""}
            pg = {**files, "BROADCASTER_DATABASE_URL": server.create_db("tickets")}
            print(f"tickets on PostgreSQL: {counts['open']:,} open ({counts['overdue']:,} overdue),"
                  f" {counts['closed']:,} closed")
            took, _ = _db(root, pg, "upgrade")
            print(f"  db upgrade                          {took:6.2f} s")
            took, done = _db(root, pg, "import")
            print(f"  db import                           {took:6.2f} s  ({done['tickets']:,} tickets)")
            took, done = _db(root, pg, "import")
            print(f"  db import again                     {took:6.2f} s  ({done['tickets']:,} copied, "
                  f"{done['tickets_skipped']:,} already there)")
            one = _first_open(root, pg)
            for args, target in ((["tickets", "list", "--overdue", "--json"], 0.5),
                                 (["tickets", "list", "--staff", "s001", "--json"], 0.5),
                                 (["tickets", "list", "--status", "closed", "--since", "30d",
                                   "--json"], 0.5),
                                 (["tickets", "show", one, "--json"], 0.5),
                                 (["stats", "--since", "180d", "--json"], 1.0)):
                on_files = measure_cpu(root, files, args, NOW)[0]
                wall, rss, cpu = measure_cpu(root, pg, args, NOW)
                print(f"  {' '.join(args[:-1]):<42} files {on_files:5.2f} s  PostgreSQL {wall:5.2f} s"
                      f" ({wall / on_files:4.2f}x; CPU {cpu:.2f} s, max RSS {rss:.0f} MB;"
                      f" target <= {target} s)")
            _built_once(root, pg["BROADCASTER_DATABASE_URL"])
            print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        server.remove()


def _built_once(root: Path, url: str) -> None:
    from broadcaster.store import open_store
    from broadcaster.tickets.store import TicketStore, months_between

    store = open_store(root / "var", url=url)
    tickets = store.tickets()
    months = months_between(NOW - timedelta(days=180), NOW)
    took: dict[str, list[float]] = {"once": [], "twice": []}
    for _ in range(3):
        for name, read in (("once", tickets.every_ticket),
                           ("twice", lambda m: TicketStore.every_ticket(tickets, m))):
            t0 = time.perf_counter()
            n = sum(1 for _ in read(months))
            took[name].append(time.perf_counter() - t0)
    store.close()
    once, twice = statistics.median(took["once"]), statistics.median(took["twice"])
    print(f"  every ticket of 180 days ({n:,}), in process: built once {once:5.2f} s,"
          f" rows then built again {twice:5.2f} s ({twice / once:4.2f}x;"
          f" {(twice - once) / n * 1e6:.0f} us a ticket)")


def _first_open(root: Path, env: dict) -> str:
    p = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), "tickets",
                        "list", "--staff", "s001", "--json"], env=env, capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)[0]["id"]


if __name__ == "__main__":
    as_installed()
    main()
