"""The store on PostgreSQL (issue: several dispatchers on one queue), figures from one run.

A real PostgreSQL with its durable defaults (fsync on, synchronous commit:
every recorded send is on disk when ``record`` returns), started in a temp dir
from the same binaries as the tests (tests/pgserver.py); the loopback platform
simulator answers every WeCom webhook after 50 ms.

1. 10,000 groups in one announcement, sent by one ``run-once`` vs two started
   together (each its own process, sharing the queue through claims):
   throughput of each and the ratio. Target >= 1.7x. Run twice: against the
   platform simulator, and against the lean responder (benchmarks/responder.py),
   whose CPU a request is a sixth of the simulator's: on 2 cores the platform's
   CPU comes out of what the dispatchers share, which a real platform does not.
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

from benchmarks import as_installed
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


def cpu_of_process(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds of a running process (all its threads), with its reaped children's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])          # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])     # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_of_server(server) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster, its live processes and the
    backends that have exited (reaped by the postmaster)."""
    main = int((server.data / "postmaster.pid").read_text().split()[0])
    total = cpu_of_process(main, reaped=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text.rpartition(")")[2].split()[1]) == main:
                total += cpu_of_process(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue          # gone meanwhile
    return total


def dispatchers(root: Path, env: dict, n: int, groups: int, others
                ) -> tuple[float, float, tuple[float, float]]:
    """Seconds until ``n`` run-once processes started together have sent ``groups``, the
    CPU seconds they used together, and those the simulator and the database used
    meanwhile (``others()``: both so far)."""
    cpu, other = cpu_of_children(), others()
    t0 = time.perf_counter()
    procs = [command(root, env, "run-once", "--json") for _ in range(n)]
    each = [finish(p)["sent"] for p in procs]
    elapsed = time.perf_counter() - t0
    time.sleep(0.5)           # the backends of the finished processes are reaped
    assert sum(each) == groups, f"{sum(each)} sent of {groups}"
    if n > 1:
        print(f"  sent by each of the {n}: {', '.join(map(str, each))}")
    return elapsed, cpu_of_children() - cpu, tuple(b - a for a, b in zip(other, others(),
                                                                          strict=True))


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
    lean, lean_base = start_responder()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            if "shared" in parts:
                for label, name, proc, url in (("sim", "the platform simulator", sim, base),
                                               ("lean", "the lean responder", lean, lean_base)):
                    shared(server, url, tmp, label, name,
                           lambda proc=proc: (cpu_of_process(proc.pid), cpu_of_server(server)))
            if "large" in parts:
                large(server, base, tmp)
    finally:
        for proc in (sim, lean):
            proc.terminate()
            proc.wait()
        server.remove()


def start_responder() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.responder", "--latency-ms", "50"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def shared(server, base: str, tmp: Path, label: str, platform: str, others) -> None:
    tmp = tmp / f"shared-{label}"
    tmp.mkdir()
    root = make_root(base, tmp, SHARED)
    times, cpu, other = {}, {}, {}
    for n in (1, 2):
        env = fresh_database(server, f"shared{n}_{label}", tmp / f"state-shared{n}")
        timed(root, env, "announce", TEXT, "--to", "all", "--json")
        times[n], cpu[n], other[n] = dispatchers(root, env, n, SHARED, others)
    print(f"PostgreSQL: {SHARED:,} groups, {platform} answering after 50 ms, run-once processes "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    for n in (1, 2):
        print(f"  {n} dispatcher{'s' if n > 1 else ' '}: {times[n]:6.2f} s "
              f"= {SHARED / times[n]:6.0f} sends/s, {cpu[n]:5.1f} s CPU "
              f"({1000 * cpu[n] / SHARED:.2f} ms a send; meanwhile the platform "
              f"{1000 * other[n][0] / SHARED:.2f}, PostgreSQL {1000 * other[n][1] / SHARED:.2f})")
    print(f"  2 vs 1: {times[1] / times[2]:.2f}x the throughput (target >= 1.7x)")
    whole = (cpu[2] + sum(other[2])) / SHARED
    print(f"  whole machine: {1000 * whole:.2f} ms CPU a send, so {os.cpu_count()} idle cores "
          f"carry at most {os.cpu_count() / whole:.0f} sends/s")


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
    as_installed()
    main()
