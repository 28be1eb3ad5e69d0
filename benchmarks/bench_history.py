"""History benchmark: the read commands on 180 days of a district's delivery log.

7,200,000 archived delivery rows (2,000 groups × 20 deliveries a day × 180 days,
see ``benchmarks.history_data``) are generated once and cached outside the
repository (``BROADCASTER_BENCH_CACHE``, default ``~/.cache/broadcaster-bench``);
a change of the store's format changes the cache's name. Each command runs as
a real process, three times after a warm-up, against that history and against
an empty store with the same groups; printed: the median wall time of each, the
ratio, the median CPU time (user + system) and the peak memory (max RSS) with
history.

Targets: ``status``, ``queue list --all``, ``log --since 1d --limit 50``,
``log --status failed --since 7d`` and ``report ID`` within 0.5 s and 200 MB;
``stats --since 180d`` within 1 s; reading the archive costs at most 1.5× the
empty store.

    python -m benchmarks.bench_history [--groups N] [--days N] [--only COMMAND]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks import as_installed
from benchmarks.history_data import TZ, generate, make_root

REPO = Path(__file__).resolve().parent.parent
FORMAT = "archive-v1"          # bump when the store's files change shape
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=TZ)
RUNS = 3
TIMEOUT = 120.0


def cache_dir() -> Path:
    base = os.environ.get("BROADCASTER_BENCH_CACHE") or Path.home() / ".cache" / "broadcaster-bench"
    return Path(base)


def history(groups: int, per_day: int, days: int) -> tuple[Path, dict]:
    """The cached root with its history (generated on first use) and what was written."""
    where = cache_dir() / f"history-{FORMAT}-{groups}x{per_day}x{days}"
    done = where / "written.json"
    if not done.exists():
        shutil.rmtree(where, ignore_errors=True)
        tmp = where.with_name(where.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        make_root(tmp / "root", groups, REPO / "templates")
        w = generate(tmp / "root" / "var", groups=groups, per_day=per_day, days=days, now=NOW)
        (tmp / "written.json").write_text(json.dumps(
            {"rows": w.rows, "announcements": w.announcements, "counts": w.counts,
             "newest": w.ids[-1], "seconds": round(time.perf_counter() - t0, 1)}))
        tmp.rename(where)
        print(f"  generated {w.rows:,} rows in {json.loads(done.read_text())['seconds']} s "
              f"(cached in {where})")
    return where / "root", json.loads(done.read_text())


def run(root: Path, env: dict, args: list[str], now: datetime = NOW
        ) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS in MB, stdout and CPU seconds (user + system) of one command
    as a real process, its clock started at ``now``."""
    cmd = [sys.executable, "-m", "benchmarks.clock", now.isoformat(), "--root", str(root), *args]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE)
        deadline = t0 + TIMEOUT
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                return float("inf"), float("nan"), "", float("nan")
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, text, usage.ru_utime + usage.ru_stime


def measure(root: Path, env: dict, args: list[str], now: datetime = NOW) -> tuple[float, float]:
    """Median wall seconds of RUNS runs after a warm-up (page cache, parse cache), peak RSS."""
    wall, rss, _ = measure_cpu(root, env, args, now)
    return wall, rss


def measure_cpu(root: Path, env: dict, args: list[str], now: datetime = NOW
                ) -> tuple[float, float, float]:
    """``measure`` and the median CPU seconds (what the command costs on a loaded machine)."""
    wall = run(root, env, args, now)[0]
    if wall == float("inf"):
        return wall, float("nan"), float("nan")
    walls, peaks, cpus = [], [], []
    for _ in range(RUNS):
        w, rss, _, cpu = run(root, env, args, now)
        walls.append(w)
        peaks.append(rss)
        cpus.append(cpu)
    return statistics.median(walls), max(peaks), statistics.median(cpus)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--per-day", type=int, default=20)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--only", metavar="WORD", help="only the commands that start with WORD "
                    "(e.g. stats, log)")
    opts = ap.parse_args(argv)
    print(f"history: {opts.groups:,} groups × {opts.per_day} a day × {opts.days} days")
    root, written = history(opts.groups, opts.per_day, opts.days)
    env_vars = make_root(Path(tempfile.mkdtemp()) / "probe", opts.groups)  # the robots' URLs
    env = {**os.environ, **env_vars}
    commands = [
        (["status", "--json"], 0.5),
        (["queue", "list", "--all", "--json"], 0.5),
        (["log", "--since", "1d", "--limit", "50", "--json"], 0.5),
        (["log", "--status", "failed", "--since", "7d", "--json"], 0.5),
        (["report", written["newest"], "--json"], 0.5),
        (["stats", "--since", "180d", "--json"], 1.0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "root"
        make_root(empty, opts.groups, REPO / "templates")
        newest = written["newest"]
        one = json.loads(run(empty, env, ["announce", "x", "--to", "id:g0000", "--json"])[2])["id"]
        print(f"  {'command':<38} {'empty':>7} {'history':>8} {'ratio':>6} {'CPU':>6} {'max RSS':>8}"
              "  target")
        for args, target in commands:
            if opts.only and args[0] != opts.only:
                continue
            e_args = [one if a == newest else a for a in args]
            e_wall, _ = measure(empty, env, e_args)
            h_wall, rss, h_cpu = measure_cpu(root, env, args)
            label = " ".join(a if a != newest else "ID" for a in args)
            shown = f"{h_wall:7.2f}s" if h_wall != float("inf") else f">{TIMEOUT:.0f}s"
            print(f"  {label:<38} {e_wall:6.2f}s {shown:>8} {h_wall / e_wall:5.2f}x {h_cpu:5.2f}s"
                  f" {rss:6.0f} MB"
                  f"  <= {target} s, 200 MB{', 1.5x' if target == 0.5 else ''}")


if __name__ == "__main__":
    as_installed()
    main()
