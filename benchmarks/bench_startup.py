"""Start-up benchmark: what every cron minute and every announcement pays before any work.

Times, as separate processes (best of ``RUNS``, so a busy machine counts less):
``python -c pass`` (the interpreter alone), ``broadcaster run-once`` with nothing
due (the shipped demo's groups, feeds and daily schedules, its state made by a
first run), and ``broadcaster announce --help``. Prints each and its cost over
``python -c pass`` (target: at most 0.15 s each).

Bytecode is written and used (``benchmarks.as_installed``), as in an installed
copy: a warm-up run of each command compiles the modules first.

    python -m benchmarks.bench_startup
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import as_installed
from tests.terminal_recording import demo_root

REPO = Path(__file__).resolve().parent.parent
RUNS = 11
TARGET = 0.15


def best(cmd: list[str], env: dict[str, str], runs: int = RUNS) -> tuple[float, float]:
    """The shortest wall time and the shortest CPU time (user + system) of ``runs`` runs of
    ``cmd``, after one warm-up run. On a loaded machine the CPU time is the steadier one."""
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def measure(root: Path) -> dict[str, tuple[float, float]]:
    env = dict(os.environ)
    cli = [sys.executable, str(REPO / "main.py"), "--root", str(root)]
    subprocess.run([*cli, "run-once"], env=env, capture_output=True, check=True)  # state, catch-up
    return {
        "python -c pass": best([sys.executable, "-c", "pass"], env),
        "run-once (nothing due)": best([*cli, "run-once"], env),
        "announce --help": best([*cli, "announce", "--help"], env),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(demo_root(Path(tmp), ("daily.yaml",)))  # nothing due minute to minute
    base_wall, base_cpu = figures["python -c pass"]
    print(f"start-up (best of {RUNS} runs each, bytecode compiled; wall / CPU):")
    for name, (wall, cpu) in figures.items():
        over = "" if name == "python -c pass" else (
            f"  +{wall - base_wall:.3f} / +{cpu - base_cpu:.3f} s over python -c pass "
            f"({'within' if wall - base_wall <= TARGET else 'over'} the {TARGET} s target)")
        print(f"  {name:24} {wall:.3f} / {cpu:.3f} s{over}")


if __name__ == "__main__":
    as_installed()
    main()
