"""Residents' side of a generated district: questions asked and work orders, for the dashboard.

``generate_residents(root, groups=…, days=…, now=…)`` adds to a root made by
``bench_tickets.write_root`` (groups, staff covering communities, tickets.yaml):

- the resident-message journal (``var/inbound/YYYY-MM-DD.jsonl``, in the records
  ``broadcaster.inbound.journal`` documents): each day's questions, each with the
  outcome the worker writes (answered by a knowledge-base entry, or missed, with
  the ``miss`` record ``faq misses`` reads);
- work orders in the ticket store's files, opened over the same days: the older
  ones handled and closed, the recent ones still with their handlers, and those
  past their three-workday deadline overdue.

The data is written as the store writes it, straight into files, like
``history_data.generate``: figures read from it go through the real readers.
"""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, time, timedelta
from pathlib import Path

from benchmarks.bench_tickets import _ticket
from benchmarks.history_data import TZ, group_id

# (what residents ask, the knowledge-base entry that answers it, or None: a miss)
QUESTIONS = [
    ("居住证怎么办理", "juzhuzheng"), ("社保缴费证明在哪里打印", "shebao-proof"),
    ("市民卡丢了怎么补办", "shiminka-buban"), ("老年卡需要带什么材料", "laonianka"),
    ("厨余垃圾几点投放", "laji-fenlei"), ("办事大厅在哪里", "banshi-dating"),
    ("电动车充电桩什么时候装好", None), ("小区停车位怎么申请", None),
    ("社区食堂几点开门", None),
]
ANSWERABLE = [q for q in QUESTIONS if q[1]]
ANSWERED_SHARE = 0.8


def _write_journal(state: Path, days: dict[str, list[dict]]) -> None:
    directory = state / "inbound"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for day, records in days.items():
        path = directory / f"{day}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _questions(state: Path, rnd: random.Random, groups: int, days: int, now: datetime,
               per_day: int) -> int:
    journal: dict[str, list[dict]] = {}
    count = 0
    for back in range(days):
        day = (now - timedelta(days=back)).date()
        for k in range(per_day):
            at = datetime.combine(day, time(8), TZ) + timedelta(minutes=rnd.randrange(12 * 60))
            if at > now:
                continue
            g = rnd.randrange(groups)
            text, entry = rnd.choice(ANSWERABLE if rnd.random() < ANSWERED_SHARE else QUESTIONS)
            key = f"generic:m{day:%m%d}{k:04d}"
            stamp = at.isoformat(timespec="seconds")
            later = (at + timedelta(seconds=2)).isoformat(timespec="seconds")
            records = journal.setdefault(day.isoformat(), [])
            records.append({"type": "message", "key": key, "platform": "generic",
                            "chat": f"generic:{group_id(g)}", "group": group_id(g),
                            "message_id": key.split(":")[1], "sender_id": f"u{rnd.randrange(10**6)}",
                            "sender_name": "居民", "text": text, "addressed": True, "is_bot": False,
                            "received_at": stamp, "reply_route": None})
            records.append({"type": "outcome", "key": key, "group": group_id(g), "at": later,
                            "entry": entry, "score": 0.9 if entry else None, "missed": not entry,
                            "ticket": None, "reply": f"r{day:%m%d}{k:04d}" if entry else None})
            if not entry:
                records.append({"type": "miss", "key": key, "group": group_id(g), "text": text,
                                "at": later})
            count += 1
    _write_journal(state, journal)
    return count


def generate_residents(root: Path, *, groups: int, days: int, now: datetime,
                       questions_per_day: int = 60, tickets_per_day: int = 6,
                       seed: int = 5) -> dict[str, int]:
    """Write the journal and the tickets; return what was written, to check figures against."""
    from broadcaster.store import open_store
    from broadcaster.store.filetickets import FileTicketStore

    rnd = random.Random(seed)
    state = root / "var"
    asked = _questions(state, rnd, groups, days, now, questions_per_day)
    tickets = FileTicketStore(open_store(state))
    tickets.ensure()
    seq: dict[str, int] = {}
    opened: dict[Path, dict] = {}
    archived: dict[Path, dict] = {}
    for back in range(days):
        for _ in range(tickets_per_day):
            created = (datetime.combine((now - timedelta(days=back)).date(), time(8), TZ)
                       + timedelta(minutes=rnd.randrange(10 * 60)))
            if created > now:
                continue
            age = (now - created).days
            status = (rnd.choice(("closed", "closed", "resolved", "assigned")) if age > 7
                      else rnd.choice(("assigned", "accepted", "resolved")))
            t = _ticket(rnd, seq, created, status, groups, created + timedelta(days=3))
            if status == "closed":
                archived.setdefault(tickets.archive_path(t.day), {})[t.id] = t.to_record()
            else:
                opened.setdefault(tickets.open_path(t.day, t.id), {})[t.id] = t.to_record()
    for path, rows in [*opened.items(), *archived.items()]:
        tickets._write(path, rows)
    return {"questions": asked, "tickets": sum(len(r) for r in [*opened.values(), *archived.values()])}
