"""``make dashboard-shot``: regenerate docs/dashboard.png, the README's picture of the dashboard.

Writes a generated district (300 groups, 30 days of history, residents' questions
and work orders) into a temp dir,
renders its dashboard and photographs it in headless Chromium at a desktop
width. Review the picture before committing it.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

from benchmarks.bench_tickets import write_root
from benchmarks.history_data import generate
from benchmarks.resident_data import generate_residents
from tests.browser import DESKTOP, Browser, find_chromium
from tests.conftest import REPO, cli

OUT = REPO / "docs" / "dashboard.png"
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def main() -> None:
    import time_machine

    binary = find_chromium()
    if binary is None:
        sys.exit("chromium is not installed (make dashboard-shot installs it as root on Debian)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        env = write_root(root, 300)
        generate(root / "var", groups=300, per_day=6, days=30, now=NOW)
        generate_residents(root, groups=300, days=30, now=NOW)
        with mock.patch.dict("os.environ", env), time_machine.travel(NOW, tick=False):
            r = cli(root, "dashboard", "--out", str(Path(tmp) / "dash"), "--since", "30d")
        if r.code:
            sys.exit(r.err)
        with Browser(binary) as browser:
            visit = browser.open((Path(tmp) / "dash" / "index.html").as_uri(), metrics=DESKTOP)
    if visit.errors:
        sys.exit(f"the page reported errors: {visit.errors}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_bytes(visit.screenshot)
    print(f"wrote {OUT.relative_to(REPO)} ({len(visit.screenshot) // 1024} kB)")


if __name__ == "__main__":
    main()
