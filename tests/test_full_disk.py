"""A full disk: a clear error, nothing sent that cannot be recorded, no temp files,
the daemon stays up and delivers once space is back.

The state directory is a real 8 MiB tmpfs, mounted in a private mount namespace
(``unshare -rm``: no root needed where user namespaces are allowed), then filled
to the last byte. Each command is a real process inside that namespace; the
platform simulator runs here, on loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from tests.conftest import REPO
from tests.simulator import PlatformSimulator
from tests.test_crash_concurrency import _root_with

pytestmark = pytest.mark.slow

SCENARIO = textwrap.dedent(r"""
    import json, os, signal, subprocess, sys, threading, time
    from pathlib import Path

    root, state = Path(sys.argv[1]), Path(sys.argv[1]) / "var"
    state.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(state)],
                   check=True)
    main = [sys.executable, sys.argv[2], "--root", str(root)]
    steps = {}

    def run(name, *args):
        p = subprocess.run([*main, *args], capture_output=True, text=True, timeout=60)
        steps[name] = {"code": p.returncode, "out": p.stdout, "err": p.stderr}
        return p

    def fill():
        with open(state / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        os.sync()

    def leftovers():
        return sorted(str(p.relative_to(state)) for p in state.rglob("*")
                      if p.name.endswith(".tmp") or (p.parent.name == "journal" and p.is_file()))

    run("announce", "announce", "停水通知：明日9:00-17:00", "--to", "all", "--json")
    fill()
    for i in range(3):
        run(f"run-once-{i}", "run-once", "--json")
    run("announce-full", "announce", "第二条通知", "--to", "all", "--json")
    steps["leftovers-full"] = leftovers()
    steps["active-full"] = len(list((state / "active").glob("*.json")))
    daemon = subprocess.Popen([*main, "daemon"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    log = []
    reader = threading.Thread(target=lambda: log.extend(daemon.stderr), daemon=True)
    reader.start()
    deadline = time.time() + 60                     # its first pass meets the full disk
    while time.time() < deadline and not any("no space left in" in line for line in log):
        time.sleep(0.2)
    time.sleep(1)
    steps["daemon-alive-full"] = daemon.poll() is None
    os.unlink(state / "filler")                     # space is back
    run("announce-after", "announce", "第三条通知", "--to", "all", "--json")   # wakes the daemon
    deadline = time.time() + 90
    while time.time() < deadline:
        shown = subprocess.run([*main, "queue", "list", "--json"], capture_output=True, text=True)
        if shown.returncode == 0 and json.loads(shown.stdout) == []:
            break
        time.sleep(0.5)
    daemon.send_signal(signal.SIGTERM)
    steps["daemon-code"] = daemon.wait(timeout=30)
    reader.join(timeout=10)
    steps["daemon-log"] = "".join(log)
    steps["leftovers-after"] = leftovers()
    print(json.dumps(steps, ensure_ascii=False))
""")


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(),
                    reason="needs `unshare -rm` and tmpfs mounts (user namespaces) to make a "
                           "small real filesystem")
def test_a_full_disk_is_a_clear_error_never_a_loop_of_resends(root):
    with PlatformSimulator() as sim:
        robots = _root_with(root, sim, 50)
        p = subprocess.run(["unshare", "-rm", sys.executable, "-c", SCENARIO, str(root),
                            str(REPO / "main.py")], capture_output=True, text=True, timeout=240,
                           cwd=REPO)
        assert p.returncode == 0, p.stderr
        steps = json.loads(p.stdout)
        assert steps["announce"]["code"] == 0, steps["announce"]["err"]
        for i in range(3):
            step = steps[f"run-once-{i}"]
            assert step["code"] == 1, step
            assert "no space left in" in step["err"] and "Traceback" not in step["err"]
        full = steps["announce-full"]
        assert full["code"] == 1 and "no space left in" in full["err"]
        assert "Traceback" not in full["err"]
        assert steps["active-full"] == 1, "the refused announcement left nothing behind"
        assert steps["leftovers-full"] == [], "no temp files, no journal"
        assert steps["daemon-alive-full"], "the daemon stays up on a full disk"
        assert "no space left in" in steps["daemon-log"] and "Traceback" not in steps["daemon-log"]
        assert steps["daemon-code"] == 0
        assert steps["announce-after"]["code"] == 0
        assert steps["leftovers-after"] == []
        for robot in robots.values():   # every group got each notice once: nothing was re-sent
            got = Counter(robot.texts)
            assert sorted(got.values()) == [1, 1] and not any("第二条" in t for t in got), got
