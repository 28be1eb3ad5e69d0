"""Long-message benchmark: a 64 KB announcement to 2,000 WeCom groups.

WeCom takes 4,096 bytes of Markdown per message, so each group gets N parts.
The baseline is the same fan-out of short messages: N short announcements to
the same 2,000 groups, the same 2,000 × N requests. Both are sent by one
``run-once`` process on the loopback simulator (fresh state each time, so no
rate-limit window carries over); ``announce`` runs before the clock starts.
Target: the long message within 1.5x of the short ones (it is split once per
distinct body and layout, in linear time, not once per group).

    python -m benchmarks.bench_split
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import as_installed
from benchmarks import bench_fanout as fanout

GROUPS = fanout.GROUPS
LATENCY_MS = 5
PARAGRAPH = ("明天（11月23日）9:00-17:00宁海路片区因管网维修停水，请提前储水。**如有困难请联系网格员**，"
             "或拨打社区服务电话 [12345](https://www.example.gov.cn/notice)。")
SHORT = "# 停水通知\n\n明天9:00-17:00宁海路片区停水，请提前储水。"


def long_text(size: int = 65_536) -> str:
    """``size`` bytes: paragraphs, and a quarter of it as one line (a list pasted without breaks)."""
    line = PARAGRAPH * (size // 4 // len(PARAGRAPH.encode()))
    paragraphs = ["# 停水通知", line]
    while len("\n\n".join([*paragraphs, PARAGRAPH]).encode()) <= size:
        paragraphs.append(PARAGRAPH)
    return "\n\n".join(paragraphs)


def parts_of(text: str) -> int:
    from broadcaster.channels.wecom import Config, WeComChannel

    channel = WeComChannel(Config(url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"), "g")
    return len(channel.render(text, title="停水通知"))


def send(root: Path, state: Path, texts: list[str]) -> tuple[float, float, int]:
    """Queue ``texts`` (one announcement each), then time one ``run-once``:
    (wall seconds, CPU seconds of that process, deliveries sent)."""
    for text in texts:
        fanout.cli(root, state, "announce", text, "--to", "all", "--json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = json.loads(fanout.cli(root, state, "run-once", "--json").stdout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out["sent"]


def main() -> None:
    text = long_text()
    n = parts_of(text)
    fanout.LATENCY_MS = LATENCY_MS
    sim, base = fanout.start_simulator()
    fanout.ROBOTS.update(fanout.robot_env(base))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            root = fanout.make_root(base, tmp)
            send(root, tmp / "warm", [SHORT])  # imports, page cache, simulator threads
            runs = {"long": [], "short": []}
            for i in range(3):
                for kind, texts, sent in (("long", [text], GROUPS), ("short", [SHORT] * n, GROUPS * n)):
                    wall, cpu, done = send(root, tmp / f"{kind}-{i}", texts)
                    assert done == sent, (kind, done, sent)
                    runs[kind].append((wall, cpu))
            long_wall = statistics.median(w for w, _ in runs["long"])
            short_wall = statistics.median(w for w, _ in runs["short"])
            long_cpu = statistics.median(c for _, c in runs["long"])
            short_cpu = statistics.median(c for _, c in runs["short"])
            print(f"long message to {GROUPS} WeCom groups ({len(text.encode()):,} bytes, {n} parts each,"
                  f" {GROUPS * n:,} requests, {LATENCY_MS} ms latency), run-once, median of 3:")
            print(f"  {n} short announcements          : {short_wall:6.2f} s wall, {short_cpu:6.2f} s CPU")
            print(f"  one 64 KB announcement           : {long_wall:6.2f} s wall, {long_cpu:6.2f} s CPU"
                  f"   ratio {long_wall / short_wall:.2f}x (target <= 1.5x)")
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    as_installed()
    sys.exit(main())
