"""Fan-out benchmarks (issue: the delivery spine), each printing ratios measured in one run.

1. One announcement to 2,000 WeCom groups on the loopback simulator with 50 ms
   latency per request: the whole pipeline (``announce`` + ``run-once``, processes
   included) vs a bare ``requests`` 64-thread loop posting the same payloads,
   runs interleaved (bare, pipeline, bare, …), min and median of each.
   Target <= 1.3x.
2. The same fan-out with 1,000,000 historical delivery rows in the store vs an
   empty store. Target <= 1.3x.
3. ``run-once`` with nothing due vs ``python -c pass``. Target <= 0.5 s wall time.
4. Scaling (``python -m benchmarks.bench_fanout scaling``; ``… fanout`` runs 1 alone):
   ``announce`` + ``run-once`` to 50,000 vs 10,000 groups on the ``file`` channel
   (no network: only our own cost), interleaved, min and median. Linear is 5x;
   target <= 5.5x.

The commands write and use bytecode, as an installed copy does (``benchmarks.as_installed``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from benchmarks import as_installed

REPO = Path(__file__).resolve().parent.parent
GROUPS = 2000
LATENCY_MS = 50
HISTORY_ROWS = 1_000_000
ROWS_PER_FILE = 2000
TEXT = "# 停水通知\n\n明天（11月23日）9:00-17:00 宁海路片区因管网维修停水，请提前储水。\n\n如有困难请联系网格员。"


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0", "--latency-ms", str(LATENCY_MS),
         "--no-rate-limits"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    base = proc.stdout.readline().strip().split()[-1]
    return proc, base


def make_root(base: str, where: Path) -> Path:
    root = where / "root"
    root.mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "feeds").mkdir()
    shutil.copytree(REPO / "schedules", root / "schedules")
    for demo in (root / "schedules").glob("demo*.yaml"):
        demo.unlink()
    for f in (REPO / "feeds").glob("*.yaml"):
        shutil.copy(f, root / "feeds")
    shutil.copytree(REPO / "feeds" / "samples", root / "feeds" / "samples")
    groups = [{"id": f"g{i:04d}", "name": f"第{i}网格群", "tags": ["district:gulou", "kind:grid"],
               "channel": {"type": "wecom", "url": f"${{BENCH_WECOM_{i:04d}}}"},
               "location": {"name": "鼓楼区", "lat": 32.066, "lon": 118.778}}
              for i in range(GROUPS)]
    doc = {"defaults": {"timezone": "Asia/Shanghai", "quiet_hours": None}, "groups": groups}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def robot_env(base: str) -> dict[str, str]:
    """Webhook URLs come from the environment, as in production (one variable per robot)."""
    return {f"BENCH_WECOM_{i:04d}": f"{base}/cgi-bin/webhook/send?key=bench-{i:04d}"
            for i in range(GROUPS)}


ROBOTS: dict[str, str] = {}


def cli(root: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **ROBOTS, "BROADCASTER_STATE_DIR": str(state)}
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(root), *args],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def pipeline(root: Path, state: Path, n: int = GROUPS) -> float:
    """``announce`` to all + ``run-once``, processes included; seconds."""
    t0 = time.perf_counter()
    cli(root, state, "announce", TEXT, "--to", "all", "--json")
    out = json.loads(cli(root, state, "run-once", "--json").stdout)
    elapsed = time.perf_counter() - t0
    assert out["sent"] == n, out
    return elapsed


def bare_loop(base: str, body: str) -> float:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    payload = json.dumps({"msgtype": "markdown", "markdown": {"content": body}},
                         ensure_ascii=False).encode()
    urls = [f"{base}/cgi-bin/webhook/send?key=bench-{i:04d}" for i in range(GROUPS)]

    def post(url):
        r = session.post(url, data=payload, headers={"Content-Type": "application/json"},
                         timeout=(5, 15))
        assert r.json()["errcode"] == 0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(post, urls))
    return time.perf_counter() - t0


def fill_history(state: Path, rows: int) -> None:
    """Write ``rows`` finished delivery rows as archived announcements (TinyDB files)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    month = state / "archive" / f"{now:%Y-%m}"
    month.mkdir(parents=True, exist_ok=True)
    stamp = now.isoformat(timespec="seconds")
    row = {"body": "b", "status": "sent", "attempts": 1, "parts_sent": 1,
           "next_attempt_at": None, "updated_at": stamp, "sent_at": stamp, "last_error": None,
           "http_status": 200, "code": "0", "latency_ms": 50.0,
           "history": [{"at": stamp, "outcome": "sent", "http_status": 200, "code": "0",
                        "latency_ms": 50.0, "error": None}]}
    for n in range(rows // ROWS_PER_FILE):
        ann_id = f"{now:%Y%m%d}-{n:06d}-{n:06x}"[:22]
        ann_id = f"{now:%Y%m%d}-{n:06d}-{n % 0xFFFFFF:06x}"
        meta = {"id": ann_id, "created_at": stamp, "scheduled_for": stamp, "expires_at": stamp,
                "status": "done", "source": "history", "urgent": False, "mention_all": False,
                "title": "历史通知", "bodies": {"b": TEXT}, "updated_at": stamp}
        doc = {"_default": {"1": meta},
               "deliveries": {str(i + 1): {**row, "group": f"g{i:04d}"}
                              for i in range(ROWS_PER_FILE)}}
        (month / f"{ann_id}.json").write_text(json.dumps(doc, ensure_ascii=False))


def wall(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - t0


def main(only_fanout: bool = False) -> None:
    """Every part; ``only_fanout``: the interleaved 2,000-group comparison alone."""
    sim, base = start_simulator()
    ROBOTS.update(robot_env(base))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            root = make_root(base, tmp)
            empty_state, history_state = tmp / "empty", tmp / "history"
            pipeline(root, empty_state)  # warm-up: imports, page cache, simulator threads
            bares, pipes = [], []
            for _ in range(5):               # interleaved: both see the same machine load
                bares.append(bare_loop(base, TEXT))
                pipes.append(pipeline(root, empty_state))
            bare, empty = statistics.median(bares), statistics.median(pipes)
            print(f"fan-out to {GROUPS} groups, {LATENCY_MS} ms latency (5 interleaved runs):")
            print(f"  bare requests loop, 64 threads : min {min(bares):5.2f} s  "
                  f"median {bare:5.2f} s")
            print(f"  announce + run-once (processes): min {min(pipes):5.2f} s  "
                  f"median {empty:5.2f} s")
            print(f"  ratio: min {min(pipes) / min(bares):.2f}x, median {empty / bare:.2f}x "
                  f"(target <= 1.3x)")
            if only_fanout:
                return
            t0 = time.perf_counter()
            fill_history(history_state, HISTORY_ROWS)
            print(f"  wrote {HISTORY_ROWS:,} historical delivery rows in "
                  f"{time.perf_counter() - t0:.1f} s")
            hist = statistics.median(pipeline(root, history_state) for _ in range(3))
            print(f"  same with 1M rows of history   : {hist:6.2f} s   ratio {hist / empty:.2f}x"
                  f" vs empty store (target <= 1.3x)")
            env = {**os.environ, **ROBOTS, "BROADCASTER_STATE_DIR": str(empty_state)}
            cmd = [sys.executable, str(REPO / "main.py"), "--root", str(root), "run-once", "--json"]
            wall(cmd, env)
            idle = statistics.median(wall(cmd, env) for _ in range(5))
            bare_py = statistics.median(wall([sys.executable, "-c", "pass"]) for _ in range(5))
            print(f"run-once with nothing due: {idle:.3f} s vs python -c pass {bare_py:.3f} s "
                  f"(+{idle - bare_py:.3f} s; target <= 0.5 s)")
    finally:
        sim.terminate()
        sim.wait()
    if not only_fanout:
        scaling()


SCALES = (10_000, 50_000)


def file_root(where: Path, n: int) -> Path:
    """A root of ``n`` groups on the ``file`` channel (messages land in ``outbox/``)."""
    root = where / f"root-{n}"
    root.mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "feeds").mkdir()
    (root / "schedules").mkdir()
    groups = [{"id": f"g{i:05d}", "name": f"第{i}网格群", "tags": ["kind:grid"],
               "channel": {"type": "file", "path": "outbox"}} for i in range(n)]
    doc = {"defaults": {"timezone": "Asia/Shanghai", "quiet_hours": None}, "groups": groups}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def file_pipeline(root: Path, state: Path, n: int) -> float:
    shutil.rmtree(root / "outbox", ignore_errors=True)
    return pipeline(root, state, n)


def scaling(rounds: int = 3) -> None:
    """``announce`` + ``run-once`` at 10,000 and 50,000 groups, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots = {n: file_root(tmp, n) for n in SCALES}
        times: dict[int, list[float]] = {n: [] for n in SCALES}
        for n in SCALES:   # warm-up: the parse cache, the page cache
            file_pipeline(roots[n], tmp / f"state-{n}", n)
        for _ in range(rounds):
            for n in SCALES:
                times[n].append(file_pipeline(roots[n], tmp / f"state-{n}", n))
        small, big = SCALES
        print(f"scaling, file channel, announce + run-once ({rounds} interleaved runs):")
        for n in SCALES:
            print(f"  {n:6,} groups: min {min(times[n]):6.2f} s  "
                  f"median {statistics.median(times[n]):6.2f} s")
        print(f"  ratio {big:,} / {small:,}: min {min(times[big]) / min(times[small]):.2f}x, "
              f"median {statistics.median(times[big]) / statistics.median(times[small]):.2f}x "
              f"(linear 5x; target <= 5.5x)")


if __name__ == "__main__":
    as_installed()
    if sys.argv[1:] == ["scaling"]:
        scaling()
    else:
        main(only_fanout=sys.argv[1:] == ["fanout"])
