"""Finding tickets: ``tickets list`` filters and ``tickets export``'s rows.

Without ``--status`` the list is the tickets still being worked on (every
status but closed and rejected), read from the open files only. Closed and
rejected tickets are read from the archive, for the months ``since`` reaches
(default ``FINAL_SINCE``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timedelta

from broadcaster.errors import InputError, did_you_mean
from broadcaster.tickets.model import ACTIVE, FINAL, STATUSES, Ticket, mask_name
from broadcaster.tickets.store import months_between
from broadcaster.timeparse import from_iso, iso

FINAL_SINCE = timedelta(days=30)
BOM = "\ufeff"   # so that Excel opens the CSV as UTF-8
CSV_COLUMNS = ("id", "created_at", "category", "category_name", "urgent", "group", "group_name",
               "staff", "staff_name", "status", "deadline", "overdue", "resolved_at",
               "closed_at", "late", "reporter", "text", "result")


def select(app, *, status: str | None = None, staff: str | None = None,
           grid: str | None = None, category: str | None = None, overdue: bool = False,
           since: timedelta | None = None) -> list[Ticket]:
    """The tickets that pass every filter given, soonest deadline first."""
    desk = app.tickets
    now = app.now()
    if status is not None and status not in STATUSES:
        raise InputError(f"no status {status!r}{did_you_mean(status, STATUSES, '')} "
                         f"(one of: {', '.join(STATUSES)})")
    if staff is not None:
        desk.staff.get(staff)
    if category is not None and desk.config is not None and category not in desk.config.by_id:
        raise InputError(f"no category {category!r} in tickets.yaml"
                         f"{did_you_mean(category, desk.config.by_id)}")
    groups = _grid(app, grid) if grid is not None else None
    start = now - since if since is not None else None
    if status in FINAL:
        begin = start or now - FINAL_SINCE
        pool: Iterable[Ticket] = desk.store.every_ticket(
            months_between(begin, now), status=status, since=(begin - timedelta(days=1)).date())
        start = begin
    else:
        pool = desk.store.open_tickets(
            status=status, staff=staff, category=category, overdue_at=now if overdue else None,
            where=lambda r: _may_pass(r, status, staff, category, overdue, now))
    out = []
    for t in pool:
        if (status is None and t.status in FINAL) or (status is not None and t.status != status):
            continue
        if (staff is not None and t.staff != staff) or (groups is not None and t.group not in groups):
            continue
        if (category is not None and t.category != category) or (overdue and not t.overdue(now)):
            continue
        if start is not None and t.created_at < start:
            continue
        out.append(t)
    return sorted(out, key=lambda t: (t.deadline, t.id))


def _may_pass(row: dict, status: str | None, staff: str | None, category: str | None,
              overdue: bool, now: datetime) -> bool:
    """The cheap filters on a stored row, before the ticket is built from it."""
    if (status is None and row["status"] in FINAL) or (status is not None and row["status"] != status):
        return False
    if (staff is not None and row.get("staff") != staff) or (category is not None
                                                             and row["category"] != category):
        return False
    return not overdue or (row["status"] in ACTIVE and now >= from_iso(row["deadline"]))


def _grid(app, grid: str) -> set[str]:
    """A group id, or a selector (``community:huilinlvzhou``): the groups it names."""
    from broadcaster.targeting import match  # start-up time: loaded when first used

    if grid in app.groups.by_id:
        return {grid}
    return {g.id for g in match(app.groups, grid)}


def csv_text(app, tickets: Iterable[Ticket]) -> str:
    """The monthly report: one row per ticket, UTF-8 with a BOM. Reporters' names are masked."""
    now = app.now()
    staff = app.groups.staff.by_id
    names = {g.id: g.name for g in app.groups.groups}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for t in tickets:
        resolved = t.changed_at("resolved")
        member = staff.get(t.staff or "")
        writer.writerow([
            t.id, iso(t.created_at), t.category, t.category_name, _yes(t.urgent), t.group,
            names.get(t.group, ""), t.staff or "", member.name if member else "", t.status,
            iso(t.deadline), _yes(t.overdue(now)), iso(resolved), iso(t.changed_at("closed")),
            _yes(resolved is not None and resolved > t.deadline), mask_name(t.reporter),
            _cell(t.text), _cell(t.result or ""),
        ])
    return BOM + buf.getvalue()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cell(text: str) -> str:
    """Text a spreadsheet shows as text: a leading = + - @ would be read as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
