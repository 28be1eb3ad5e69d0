"""The store on PostgreSQL (issue: several dispatchers on one queue), figures from one run.

A real PostgreSQL with its durable defaults (fsync on, synchronous commit:
every recorded send is on disk when ``record`` returns), started in a temp dir
from the same binaries as the tests (tests/pgserver.py); the loopback platform
simulator answers every WeCom webhook after 50 ms.

1. 10,000 groups in one announcement, sent by one ``run-once`` vs two started
   together (each its own process, sharing the queue through claims):
   throughput of each and the ratio. Target >= 1.7x.
2. 25,000 groups in one announcement: ``announce`` and ``run-once`` times on
   PostgreSQL and on the embedded store, and the ratios.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.bench_fanout import REPO, TEXT, start_simulator

SHARED = 10_000
LARGE = 25_000


def make_root(base: str, where: Path, groups: int) -> Path:
    root = where / f"root-{groups}"
    (root / "schedules").mkdir(parents=True)
    (root / "feeds").mkdir()
    import shutil

    shutil.copytree(REPO / "templates", root / "templates")
    doc = {"defaults": {"timezone": "Asia/Shanghai", "quiet_hours": None},
           "groups": [{"id": f"g{i:05d}", "name": f"第{i}网格群", "tags": ["kind:grid"],
                       "channel": {"type": "wecom",
                                   "url": f"{base}/cgi-bin/webhook/send?key=pg-{i:05d}"}}
                      for i in range(groups)]}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def command(root: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out)


def timed(root: Path, env: dict, *args: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = finish(command(root, env, *args))
    return time.perf_counter() - t0, out


def cpu_of_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def dispatchers(root: Path, env: dict, n: int, groups: int) -> tuple[float, float]:
    """Seconds until ``n`` run-once processes started together have sent ``groups``, and the
    CPU seconds they used together."""
    cpu = cpu_of_children()
    t0 = time.perf_counter()
    procs = [command(root, env, "run-once", "--json") for _ in range(n)]
    each = [finish(p)["sent"] for p in procs]
    elapsed = time.perf_counter() - t0
    assert sum(each) == groups, f"{sum(each)} sent of {groups}"
    if n > 1:
        print(f"  sent by each of the {n}: {', '.join(map(str, each))}")
    return elapsed, cpu_of_children() - cpu


def fresh_database(server, name: str, state: Path) -> dict:
    from broadcaster.store.pgstore import PgStore

    url = server.create_db(name)
    PgStore(url, state).upgrade()
    return {**os.environ, "BROADCASTER_DATABASE_URL": url, "BROADCASTER_STATE_DIR": str(state)}


def main(argv: list[str] | None = None) -> None:
    from tests.pgserver import NoServer, start_server

    parts = set(argv if argv is not None else sys.argv[1:]) or {"shared", "large"}

    try:
        server = start_server(durable=True)
    except NoServer as exc:
        print(f"PostgreSQL benchmarks skipped: {exc}")
        return
    sim, base = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            if "shared" in parts:
                shared(server, base, tmp)
            if "large" in parts:
                large(server, base, tmp)
    finally:
        sim.terminate()
        sim.wait()
        server.remove()


def shared(server, base: str, tmp: Path) -> None:
    root = make_root(base, tmp, SHARED)
    times, cpu = {}, {}
    for n in (1, 2):
        env = fresh_database(server, f"shared{n}", tmp / f"state-shared{n}")
        timed(root, env, "announce", TEXT, "--to", "all", "--json")
        times[n], cpu[n] = dispatchers(root, env, n, SHARED)
    print(f"PostgreSQL: {SHARED:,} groups, 50 ms latency, run-once processes "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    for n in (1, 2):
        print(f"  {n} dispatcher{'s' if n > 1 else ' '}: {times[n]:6.2f} s "
              f"= {SHARED / times[n]:6.0f} sends/s, {cpu[n]:5.1f} s CPU "
              f"({1000 * cpu[n] / SHARED:.1f} ms a send)")
    print(f"  2 vs 1: {times[1] / times[2]:.2f}x the throughput (target >= 1.7x)")


def large(server, base: str, tmp: Path) -> None:
    root = make_root(base, tmp, LARGE)
    rows = {}
    for kind in ("embedded", "postgres"):
        state = tmp / f"state-large-{kind}"
        env = ({**os.environ, "BROADCASTER_DATABASE_URL": "",
                "BROADCASTER_STATE_DIR": str(state)} if kind == "embedded"
               else fresh_database(server, "large", state))
        announce, _ = timed(root, env, "announce", TEXT, "--to", "all", "--json")
        dispatch, out = timed(root, env, "run-once", "--json")
        assert out["sent"] == LARGE, out
        rows[kind] = (announce, dispatch)
    print(f"one announcement to {LARGE:,} groups, 50 ms latency:")
    for kind, (announce, dispatch) in rows.items():
        print(f"  {kind:9}: announce {announce:6.2f} s, run-once {dispatch:6.2f} s")
    (ea, ed), (pa, pd) = rows["embedded"], rows["postgres"]
    print(f"  PostgreSQL / embedded: announce {pa / ea:.2f}x, run-once {pd / ed:.2f}x")


if __name__ == "__main__":
    main()
