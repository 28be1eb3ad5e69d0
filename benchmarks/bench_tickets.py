"""Work-order benchmark: a district's year of tickets, 10,000 open and 100,000 closed.

The root has 2,000 groups (``history_data.make_root``: communities of 40 groups)
and 50 staff members, each covering one community, with a supervisor. Tickets are
written straight into the ticket store's files (``tickets/open/`` by day opened,
``tickets/archive/YYYY-MM/``), as ``TicketStore`` writes them: the open ones
with deadlines from a week ago (a tenth of them, overdue) to ten days ahead, each
opened 4 hours to 5 days before its deadline; the closed ones over the year before. The reminders and alerts
due before the last pass (two hours before the benchmark's clock) are already
claimed, as a daemon would have left them. Measured, against targets:

- ``tickets list --overdue --json`` as a real process (median of 3, after a
  warm-up), target ≤ 0.5 s;
- the reminder pass (``tickets.reminders.run``, what the daemon and ``run-once``
  call): a full pass over the 10,000 open tickets, ``FULL_EVERY`` (10 minutes,
  the longest a daemon waits between full passes) after the last one, queuing the
  reminders and overdue alerts due since, in a fresh ``App`` (config loaded, as
  ``run-once`` does), target ≤ 1 s; also, for information, catching up two hours,
  a pass with nothing due, and the morning digests (one per staff member);
- opening a ticket from an inbound message: the inbound worker's intake step
  (``Worker._ticket``: store the ticket, queue the group's acknowledgement and
  the handler's notice) in a running server's ``App``, p50/p99 of 50 messages,
  target ≤ 50 ms.

    python -m benchmarks.bench_tickets [--open N] [--closed N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from benchmarks import as_installed
from benchmarks.bench_history import measure_cpu
from benchmarks.history_data import COMMUNITY_SIZE, TZ, make_root
from broadcaster.tickets.reminders import FULL_EVERY

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=TZ)        # a Tuesday afternoon, no digest due
DIGEST_NOW = datetime(2026, 11, 24, 8, 40, tzinfo=TZ)
LAST_PASS = NOW - timedelta(hours=2)
GROUPS = 2000
RUNS = 3
OPENED = 50
OVERDUE_SHARE = 0.1

CATEGORIES = [("sanitation", "卫生", "垃圾"), ("repair", "设施报修", "路灯"), ("noise", "噪音", "噪音"),
              ("greening", "绿化", "树枝"), ("safety", "安全隐患", "消防通道")]
TEXTS = ["3栋楼道{kw}三天没人管了", "小区门口{kw}问题反映好几次了", "{kw}的事情麻烦尽快处理一下",
         "我们楼{kw}影响休息，请网格员看看"]


# -- the root ------------------------------------------------------------------------------

def staff_count(groups: int) -> int:
    return max(1, groups // COMMUNITY_SIZE)


def write_root(root: Path, groups: int) -> dict[str, str]:
    """2,000 groups, one staff member per community (file channels), tickets.yaml."""
    env = make_root(root, groups, REPO / "templates")
    doc = yaml.safe_load((root / "groups.yaml").read_text(encoding="utf-8"))
    staff = []
    for c in range(staff_count(groups)):
        member = {"id": f"s{c:03d}", "name": f"网格员{c:03d}", "covers": [f"community:c{c:03d}"],
                  "channel": {"type": "file", "path": "var/staff"}}
        if c:
            member["supervisor"] = "s000"
        staff.append(member)
    doc["staff"] = staff
    doc["defaults"]["tickets"] = {"fallback": "s000", "digest_at": "08:30"}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    lines = ["prefix: GL", "categories:"]
    for cid, name, kw in CATEGORIES:
        lines += [f"  - id: {cid}", f"    name: {name}", f"    keywords: [{kw}]",
                  "    deadline: 3 workdays"]
    (root / "tickets.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env


# -- the tickets ---------------------------------------------------------------------------

def _ticket(rnd: random.Random, seq: dict, created: datetime, status: str, groups: int,
            deadline: datetime):
    from broadcaster.tickets import ids
    from broadcaster.tickets.model import Ticket

    day = created.date()
    key = f"GL-{day:%m%d}"
    seq[key] = seq.get(key, 0) + 1
    g = rnd.randrange(groups)
    cid, name, kw = rnd.choice(CATEGORIES)
    t = Ticket(id=ids.format_id("GL", day, seq[key]), day=day, status="open", category=cid,
               category_name=name, urgent=False, group=f"g{g:04d}", reporter="赵大爷",
               reporter_id=f"u{rnd.randrange(10**6)}", text=rnd.choice(TEXTS).format(kw=kw),
               staff=f"s{g // COMMUNITY_SIZE:03d}", created_at=created, clock_from=created,
               deadline=deadline, source=f"generic:g{g:04d}:m{rnd.randrange(10**9)}")
    t.add(created, "resident", "open", t.source)
    t.add(created, "system", "assigned", f"{t.staff} (covers community:c{g // COMMUNITY_SIZE:03d})")
    if status in ("accepted", "resolved", "closed"):
        t.add(created + timedelta(hours=1), t.staff, "accepted")
    if status in ("resolved", "closed"):
        t.result = "已处理完毕，感谢反映"
        t.add(min(deadline, created + timedelta(days=2)), t.staff, "resolved", t.result)
    if status == "closed":
        t.add(min(deadline, created + timedelta(days=3)), "system", "closed")
    t.status = status
    t.version = len(t.history) - 1
    return t


def write_tickets(state: Path, *, open_n: int, closed_n: int, groups: int) -> dict[str, int]:
    """Write the tickets and the claims a daemon would have left; returns counts."""
    from broadcaster.store import open_store
    from broadcaster.store.filetickets import FileTicketStore
    from broadcaster.tickets.deadlines import reminder_at
    from broadcaster.timeparse import iso

    rnd = random.Random(11)
    store = open_store(state)
    tickets = FileTicketStore(store)
    tickets.ensure()
    seq: dict[str, int] = {}
    opened: dict[Path, dict] = {}
    claims: dict[str, str] = {}
    overdue = 0
    for _ in range(open_n):
        if rnd.random() < OVERDUE_SHARE:
            deadline = NOW - timedelta(seconds=rnd.uniform(60, 7 * 86400))
        else:
            deadline = NOW + timedelta(seconds=rnd.uniform(60, 10 * 86400))
        created = min(NOW - timedelta(minutes=10),
                      deadline - timedelta(seconds=rnd.uniform(4 * 3600, 5 * 86400)))
        t = _ticket(rnd, seq, created, rnd.choice(("assigned", "assigned", "accepted")), groups,
                    deadline)
        opened.setdefault(tickets.open_path(t.day, t.id), {})[t.id] = t.to_record()
        remind = reminder_at(t.clock_from, t.deadline)
        if deadline <= NOW:
            overdue += 1
        if deadline <= LAST_PASS:
            claims[f"{t.id}|overdue|{iso(t.deadline)}"] = iso(LAST_PASS)
        if remind <= LAST_PASS:
            claims[f"{t.id}|reminder|{iso(t.deadline)}"] = iso(LAST_PASS)
    archived: dict[date, dict] = {}
    for _ in range(closed_n):
        created = NOW - timedelta(days=15) - timedelta(seconds=rnd.uniform(0, 350 * 86400))
        t = _ticket(rnd, seq, created, "closed", groups, created + timedelta(days=3))
        archived.setdefault(t.day, {})[t.id] = t.to_record()
    for path, rows in opened.items():
        tickets._write(path, rows)
    for day, rows in archived.items():
        tickets._write(tickets.archive_path(day), rows)
    with store.state("ticket-seq") as st:
        st.update(seq)
    with store.state("ticket-notices") as st:
        st.update(claims)
    return {"open": open_n, "closed": closed_n, "overdue": overdue, "claimed": len(claims),
            "open_files": len(opened), "archive_files": len(archived)}


# -- measuring -----------------------------------------------------------------------------

class Snapshot:
    """The parts of the state a pass changes (state files, the queue), restored between runs."""

    PARTS = ("state", "active")

    def __init__(self, state: Path):
        self.state = state
        self.saved = Path(tempfile.mkdtemp(prefix="tickets-snap-"))
        for part in self.PARTS:
            if (state / part).exists():
                shutil.copytree(state / part, self.saved / part)

    def restore(self) -> None:
        for part in self.PARTS:
            shutil.rmtree(self.state / part, ignore_errors=True)
            if (self.saved / part).exists():
                shutil.copytree(self.saved / part, self.state / part)


def at_clock(now: datetime):
    """Make ``App.now`` read ``now`` (the clock ticks on); returns the undo."""
    from broadcaster.app import App

    real = App.now
    offset = now - datetime.now(TZ)
    App.now = lambda self: real(self) + offset  # type: ignore[method-assign]

    def undo() -> None:
        App.now = real  # type: ignore[method-assign]

    return undo


def a_pass(root: Path, snap: Snapshot, now: datetime, *, loaded: bool
           ) -> tuple[float, float, int, list[str]]:
    """Wall and CPU seconds of one full ticket pass, the messages it queued, its errors.
    ``loaded``: the App's config is loaded before the clock starts (as in the daemon, which
    keeps it); else the pass pays for loading it (as ``run-once`` does)."""
    from broadcaster.app import App
    from broadcaster.tickets import reminders

    snap.restore()
    undo = at_clock(now)
    try:
        app = App(root)
        if loaded:
            _ = app.groups, app.tickets.config, app.templates
        t0, c0 = time.perf_counter(), time.process_time()
        errors = reminders.run(app, app.now())
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        queued = len(app.store.active_ids())
    finally:
        undo()
    return took, cpu, queued, errors


def passes(root: Path, snap: Snapshot, now: datetime, *, loaded: bool = True) -> str:
    """Median wall and CPU seconds of RUNS passes at ``now``, and what each queued."""
    a_pass(root, snap, now, loaded=loaded)   # warm-up (page cache, config parse cache)
    runs = [a_pass(root, snap, now, loaded=loaded) for _ in range(RUNS)]
    for *_, errors in runs:
        if errors:
            raise SystemExit(f"ticket pass failed: {errors}")
    return (f"{runs[0][2]:3d} queued {statistics.median(r[0] for r in runs):6.2f} s "
            f"(CPU {statistics.median(r[1] for r in runs):.2f} s)")


def opening(root: Path, snap: Snapshot) -> tuple[list[float], list[float]]:
    """Server time of the intake step for OPENED complaints, each in a different group."""
    from broadcaster.app import App
    from broadcaster.inbound.journal import Journal
    from broadcaster.inbound.message import InboundMessage
    from broadcaster.inbound.replies import ReplySender
    from broadcaster.inbound.worker import Worker

    snap.restore()
    undo = at_clock(NOW)
    try:
        app = App(root)
        stop = threading.Event()
        worker = Worker(app, Journal(app.state_dir, app.tz), ReplySender(app, stop), stop)
        rnd = random.Random(5)
        took, cpu = [], []
        for i in range(OPENED + 5):
            g = rnd.randrange(GROUPS)
            msg = InboundMessage(platform="generic", chat=f"generic:g{g:04d}", group_id=f"g{g:04d}",
                                 message_id=f"bench-{i}", sender_id="u1", sender_name="钱阿姨",
                                 text=f"{i}号楼门口路灯坏了好几天", addressed=False, is_bot=False,
                                 received_at=app.now(), reply_route=None)
            t0, c0 = time.perf_counter(), time.process_time()
            ticket = worker._ticket(msg)
            took.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if ticket is None:
                raise SystemExit("the complaint opened no ticket")
        opened = len(app.store.active_ids())
    finally:
        undo()
    if opened != 2 * (OPENED + 5):
        raise SystemExit(f"expected an acknowledgement and a notice per ticket, queued {opened}")
    return took[5:], cpu[5:]   # the first few warm the template and selector caches


def _in_child(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a child process: the memory the data took is not in this
    one, whose size a forked command's peak RSS would otherwise include."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args, kwargs)


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--open", type=int, default=10_000)
    ap.add_argument("--closed", type=int, default=100_000)
    opts = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tickets-") as tmp:
        root = Path(tmp) / "root"
        env_vars = write_root(root, GROUPS)
        os.environ.update(env_vars)   # the groups' robot URLs, for the in-process App
        t0 = time.perf_counter()
        counts = _in_child(write_tickets, root / "var", open_n=opts.open, closed_n=opts.closed,
                           groups=GROUPS)
        print(f"tickets: {counts['open']:,} open ({counts['overdue']:,} overdue) and "
              f"{counts['closed']:,} closed, {counts['open_files']} open "
              f"files, {counts['archive_files']} archive files, written in "
              f"{time.perf_counter() - t0:.1f} s")
        snap = Snapshot(root / "var")
        wall, rss, cpu = measure_cpu(root, {**os.environ}, ["tickets", "list", "--overdue", "--json"],
                                     NOW)
        print(f"  tickets list --overdue --json          {wall:6.2f} s  (CPU {cpu:.2f} s, max RSS "
              f"{rss:.0f} MB; target <= 0.5 s)")
        steady = LAST_PASS + FULL_EVERY
        print(f"  reminder pass, {FULL_EVERY.seconds // 60} min after the last  "
              f"{passes(root, snap, steady)}  target <= 1 s")
        print(f"  the same in run-once (config)  {passes(root, snap, steady, loaded=False)}")
        print(f"  catching up 2 hours            {passes(root, snap, NOW)}")
        print(f"  nothing new due                {passes(root, snap, LAST_PASS + timedelta(seconds=30))}")
        print(f"  morning digests ({staff_count(GROUPS)} staff)    {passes(root, snap, DIGEST_NOW)}")
        took, cpu = opening(root, snap)
        print(f"  opening a ticket from a message   p50 {_q(took, 0.5) * 1000:5.1f} ms, "
              f"p99 {_q(took, 0.99) * 1000:5.1f} ms (CPU p50 {_q(cpu, 0.5) * 1000:.1f} ms, "
              f"p99 {_q(cpu, 0.99) * 1000:.1f} ms)  target <= 50 ms")
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        shutil.rmtree(snap.saved, ignore_errors=True)


if __name__ == "__main__":
    as_installed()
    main()
