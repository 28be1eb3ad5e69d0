"""The store contract (broadcaster.store.base), run against both implementations.

``any_store`` is the embedded TinyDB store, then the PostgreSQL one on a real
server (tests/pgserver.py). What a test here asserts holds for both; what is
particular to one implementation (file layout, journals, SQL claims) is
tested beside it (test_store.py, test_store_postgres.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from broadcaster.store import BadRecord
from broadcaster.store.records import Announcement, AnnouncementMeta, Delivery
from tests.test_store import Note

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 7, 0, tzinfo=TZ)
LATER = T0 + timedelta(minutes=1)


def announcement(ann_id="20261122-070000-abcdef", groups=("a", "b"), *, at=T0, scheduled=None):
    meta = AnnouncementMeta(id=ann_id, created_at=at, scheduled_for=scheduled or at,
                            expires_at=at + timedelta(hours=24), status="queued", source="test",
                            title="通知", bodies={"b1": "停水通知"}, updated_at=at)
    return Announcement(meta, [Delivery(group=g, body="b1", next_attempt_at=scheduled or at)
                               for g in groups])


def sent(d: Delivery, at=LATER) -> Delivery:
    d.status, d.updated_at, d.sent_at, d.attempts = "sent", at, at, d.attempts + 1
    return d


def finish(ann):
    for d in ann.deliveries:
        d.status = "sent"
    ann.settle(ann.meta.created_at)
    return ann.deliveries


def test_the_queue_keeps_announcements_and_archives_finished_ones(any_store):
    store = any_store
    ann_id = store.add_announcement(announcement())
    got = store.announcement(ann_id)
    assert got.to_json() == announcement().to_json()
    assert [a.id for a in store.active()] == [ann_id] and store.archived() == []
    assert store.change(ann_id, finish).status == "done"
    assert store.active() == [] and [a.id for a in store.archived()] == [ann_id]
    assert [a.id for a in store.archived(since=T0 - timedelta(days=40))] == [ann_id]

    def reopen(ann):
        ann.deliveries[0].status = "pending"
        ann.meta.status = "sending"
        return ann.deliveries

    store.change(ann_id, reopen)
    assert [a.id for a in store.active()] == [ann_id]
    assert store.announcement("../../etc/passwd") is None
    with pytest.raises(KeyError):
        store.change("20261122-070000-000000", finish)


def test_a_taken_id_gets_a_fresh_one_and_the_queue_mark_moves(any_store):
    store = any_store
    mark = store.queue_mark()
    first = store.add_announcement(announcement())
    assert store.queue_mark() != mark
    second = store.add_announcement(announcement(groups=("c",)))
    assert first != second and second.startswith("20261122-070000-")
    assert [d.group for d in store.announcement(first).deliveries] == ["a", "b"]


def test_nothing_is_queued_until_an_announcement_is_and_again_once_it_is_finished(any_store):
    store = any_store
    assert store.nothing_queued()
    ann_id = store.add_announcement(announcement(scheduled=T0 + timedelta(hours=2)))
    assert not store.nothing_queued()                # not due yet: queued all the same
    store.change(ann_id, finish)
    assert store.nothing_queued()


def test_a_recorded_result_is_seen_at_once_and_settled_at_close(any_store):
    store = any_store
    ann_id = store.add_announcement(announcement(groups=("a", "b", "c")))
    with store.dispatch() as session:
        claims = session.claim(LATER)
        assert sorted(c.delivery.group for c in claims) == ["a", "b", "c"]
        session.record(ann_id, sent(claims[0].delivery))
        seen = store.announcement(ann_id)
        assert seen.delivery(claims[0].delivery.group).status == "sent"
        assert seen.status == "sending"
        assert session.claim(LATER) == []       # each due row once per session
        assert len(session.pending()) == 3 - 1
        for c in claims[1:]:
            session.record(ann_id, sent(c.delivery))
    final = store.announcement(ann_id)
    assert final.status == "done" and [a.id for a in store.archived()] == [ann_id]
    with store.dispatch() as again:
        assert again.claim(LATER) == []


def test_not_due_cancelled_and_refused_announcements_are_not_claimed(any_store):
    store = any_store
    later_one = store.add_announcement(announcement("20261122-070000-aaaaaa",
                                                    scheduled=T0 + timedelta(hours=2)))
    gone = store.add_announcement(announcement("20261122-070000-bbbbbb"))
    other = store.add_announcement(announcement("20261122-070000-cccccc"))

    def cancel(ann):
        for d in ann.deliveries:
            d.status = "cancelled"
        ann.meta.status = "cancelled"
        return ann.deliveries

    store.change(gone, cancel)
    with store.dispatch() as session:
        claims = session.claim(LATER, accept=lambda meta: meta.id != other)
        assert claims == []
        assert {c.meta.id for c in session.pending()} >= {later_one}
    with store.dispatch() as session:
        assert {c.meta.id for c in session.claim(LATER)} == {other}
    with store.dispatch() as session:
        assert {c.meta.id for c in session.claim(T0 + timedelta(hours=3), only={later_one})} \
            == {later_one}


def test_a_cancel_during_the_pass_wins_over_unsent_results(any_store):
    store = any_store
    ann_id = store.add_announcement(announcement(groups=("a", "b", "c")))
    session = store.dispatch()
    a, b, c = (claim.delivery for claim in session.claim(LATER))
    session.record(ann_id, sent(a))

    def cancel(ann):
        for d in ann.deliveries:
            if d.status == "pending":
                d.status = "cancelled"
        ann.meta.status = "cancelled"
        return ann.deliveries

    store.change(ann_id, cancel)           # staff cancel from another terminal
    assert session.cancelled() == {ann_id}
    session.record(ann_id, sent(b))        # was in flight: it did go out
    c.attempts, c.updated_at = 1, LATER     # a failed try after the cancel stays cancelled
    session.record(ann_id, c)
    session.close()
    final = store.announcement(ann_id)
    assert [d.status for d in final.deliveries] == ["sent", "sent", "cancelled"]
    assert final.status == "cancelled" and [a.id for a in store.archived()] == [ann_id]


def test_state_documents_change_whole_or_not_at_all(any_store):
    store = any_store
    with store.state("demo") as st:
        st["a"] = 1
    assert store.read_state("demo") == {"a": 1}
    with pytest.raises(RuntimeError), store.state("demo") as st:
        st["a"] = 2
        raise RuntimeError("boom")
    assert store.read_state("demo") == {"a": 1}
    with store.state("demo") as st:
        del st["a"]
        st["b"] = {"nested": ["x", "好"]}
    assert store.read_state("demo") == {"b": {"nested": ["x", "好"]}}
    assert store.read_state("never-written") == {}
    with store.transaction(), store.transaction(), store.state("demo") as st:   # re-entrant
        st["c"] = 3
    assert store.read_state("demo")["c"] == 3


@pytest.mark.parametrize("name", ["../escape", "Upper", "a b", "x.json", "", "名"])
def test_a_bad_document_or_collection_name_is_refused_by_every_store(any_store, name):
    with pytest.raises(ValueError, match="bad state name"), any_store.state(name):
        pass
    with pytest.raises(ValueError, match="bad state name"):
        any_store.read_state(name)
    with pytest.raises(ValueError, match="bad collection name"):
        any_store.collection(name, Note)
    assert any_store.damaged() == []


def test_a_document_its_owner_rejects_is_set_aside_and_rebuilt(any_store):
    store = any_store
    with store.state("sched") as st:
        st["job"] = "not a record"

    def check(doc):
        if not isinstance(doc.get("job"), dict):
            raise BadRecord("job: expected an object")

    assert store.read_state("sched", check=check, rebuild=lambda: {"job": {}}) == {"job": {}}
    assert [d.name for d in store.damaged()] == ["state sched"]
    assert "job: expected an object" in store.damaged()[0].reason


def test_counters_never_repeat(any_store):
    assert [any_store.next_number("tickets") for _ in range(3)] == [1, 2, 3]
    assert any_store.next_number("other") == 1


def test_a_collection_by_day_keeps_keys_once_per_day_and_drops_old_days(any_store):
    notes = any_store.collection("misses", Note, by_day=True)
    d1, d2 = date(2026, 11, 21), date(2026, 11, 22)
    assert notes.add("m1", Note("巨住证怎么办"), day=d1)
    assert not notes.add("m1", Note("again"), day=d1)      # a platform retry: handled once
    assert notes.add("m1", Note("next day"), day=d2)
    assert notes.add("m0", Note("second of the day"), day=d2)
    notes.update("m1", lambda n: Note(n.text, n.count + 1), day=d1)
    assert notes.get("m1", day=d1).count == 2
    assert [(k, n.text) for k, n in notes.items(since=d2)] == [("m1", "next day"),
                                                               ("m0", "second of the day")]
    assert notes.days() == [d1, d2]
    assert notes.drop_before(d2) == 1 and notes.days() == [d2]
    assert notes.delete("m0", day=d2) and not notes.delete("m0", day=d2)
    with pytest.raises(ValueError, match="kept by day"):
        notes.get("m1")
    flat = any_store.collection("tickets", Note)
    flat.put("t1", Note("one"))
    flat.put("t1", Note("one, changed"))
    assert [(k, n.text) for k, n in flat.items()] == [("t1", "one, changed")]
    assert flat.update("t1", lambda n: None) is None and flat.get("t1") is None


def test_an_archived_announcement_is_read_whole_or_by_group_and_state(any_store):
    store = any_store
    ann_id = store.add_announcement(announcement(groups=("a", "b", "c")))

    def settle(ann):
        sent(ann.deliveries[0])
        ann.deliveries[1].status, ann.deliveries[1].last_error = "failed", "93000: invalid webhook url"
        ann.deliveries[2].status = "cancelled"
        ann.settle(LATER)
        return ann.deliveries

    store.change(ann_id, settle)
    meta, rows = store.history.load(ann_id)
    assert meta["id"] == ann_id and [d["group"] for d in rows] == ["a", "b", "c"]
    assert [d["status"] for d in store.history.load(ann_id, group="b")[1]] == ["failed"]
    assert [d["group"] for d in store.history.load(ann_id, status="cancelled")[1]] == ["c"]
    assert store.history.load(ann_id, group="a", status="failed")[1] == []
    assert store.history.load(ann_id, group="nobody") == (meta, [])
    assert store.history.load("20261122-070000-ffffff", group="a") is None
    unknown = "20261122-070000-ffffff"
    assert store.history.load_group([ann_id, unknown], "b") == {
        ann_id: (meta, [d for d in rows if d["group"] == "b"])}
    assert store.history.load_group([unknown, ann_id], "b", "sent") == {ann_id: (meta, [])}
    assert store.history.load_group([], "b") == {}


def test_the_history_index_follows_the_archive_and_retention_drops_old_months(any_store):
    store = any_store
    old = store.add_announcement(announcement("20260901-070000-aaaaaa",
                                              at=T0 - timedelta(days=82)))
    new = store.add_announcement(announcement("20261122-070000-bbbbbb"))
    store.change(old, finish)
    store.change(new, finish)
    days = [day for day, _ in store.history.check(date(2026, 9, 1), date(2026, 11, 30))]
    assert days == [date(2026, 9, 1), date(2026, 11, 22)]
    assert [s["id"] for s in store.history.summaries()] == [new, old]
    assert store.history.load(new)[0]["id"] == new
    assert store.drop_before(date(2026, 10, 15)) == 1
    assert [a.id for a in store.archived()] == [new]
    assert [day for day, _ in store.history.check(date(2026, 9, 1), date(2026, 11, 30))] \
        == [date(2026, 11, 22)]


# -- tickets (broadcaster.tickets.store) ------------------------------------------------

def ticket(tid: str, *, at=T0, status="open", staff=None, category="sanitation", group="g1",
           hours=48, source=None):
    from broadcaster.tickets.model import Change, Ticket

    return Ticket(id=tid, day=at.date(), status=status, category=category, category_name="卫生",
                  urgent=False, group=group, reporter="赵大爷", reporter_id="u-zhao",
                  text="楼道垃圾没人清", staff=staff, created_at=at, clock_from=at,
                  deadline=at + timedelta(hours=hours), source=source,
                  history=[Change(at, "resident", status, "opened")])


def opened(tickets, prefix="GL", *, at=T0, source=None, **kw):
    return tickets.create(at.date(), prefix, lambda tid: ticket(tid, at=at, source=source, **kw),
                          source)


def test_tickets_are_numbered_per_prefix_and_day_and_opened_once_per_message(any_store):
    from broadcaster.errors import InputError

    tickets = any_store.tickets()
    assert not tickets.kept() and tickets.open_rows() == []
    a, new = opened(tickets, source="generic:chat:m1")
    b, _ = opened(tickets)
    c, _ = opened(tickets, "QH")
    d, _ = opened(tickets, at=T0 + timedelta(days=1))
    assert new and (a.id, b.id, c.id, d.id) == ("GL-1122-0001", "GL-1122-0002", "QH-1122-0001",
                                                "GL-1123-0001")
    again, new = opened(tickets, source="generic:chat:m1")     # the platform retried
    assert not new and again.id == a.id
    assert opened(tickets, at=T0 + timedelta(days=365))[0].id == "GL-1122-0003"  # never restarts
    assert tickets.kept()
    got = tickets.get("gl-1122-0001")
    assert got.to_record() == a.to_record()
    assert tickets.find("GL-1122-0099") is None and tickets.find("../../etc/passwd") is None
    with pytest.raises(InputError, match="no ticket 'GL-1122-0009'"):
        tickets.get("GL-1122-0009")
    with pytest.raises(InputError, match="is not a ticket number"):
        tickets.get("nonsense")
    assert tickets.forget_sources_before(T0.date() + timedelta(days=1)) == 1
    assert opened(tickets, source="generic:chat:m1")[1]          # forgotten: a new ticket


def test_a_change_against_an_old_version_is_refused_and_history_is_kept(any_store):
    from broadcaster.tickets.store import StaleTicket

    tickets = any_store.tickets()
    t, _ = opened(tickets)
    mark = tickets.open_mark()

    def accept(x):
        x.staff = "wang-li"
        x.add(LATER, "wang-li", "accepted", "on my way")

    done = tickets.change(t.id, accept, expected_version=1)
    assert done.version == 2 and tickets.open_mark() != mark
    with pytest.raises(StaleTicket, match=r"ticket GL-1122-0001 changed since you read it "
                                          r"\(version 1, now 2: accepted by wang-li at 2026-11-22 07:01\)"):
        tickets.change(t.id, lambda x: x.add(LATER, "li-qiang", "assigned"), expected_version=1)
    mark = tickets.open_mark()
    tickets.change(t.id, lambda x: x.notices.append({"key": "k"}), bump=False)   # bookkeeping
    got = tickets.get(t.id)
    assert got.version == 2 and got.notices == [{"key": "k"}] and tickets.open_mark() != mark
    assert [(c.by, c.status, c.note) for c in got.history] == [
        ("resident", "open", "opened"), ("wang-li", "accepted", "on my way")]
    assert got.history[1].at == LATER and got.history[1].at.utcoffset() == timedelta(hours=8)
    assert got.to_record() == {**done.to_record(), "notices": [{"key": "k"}]}


def test_closed_tickets_leave_the_open_ones_and_come_back_when_reopened(any_store):
    from broadcaster.errors import InputError

    tickets = any_store.tickets()
    first, _ = opened(tickets, staff="wang-li")
    late, _ = opened(tickets, hours=1)
    other, _ = opened(tickets, "QH", at=T0 - timedelta(days=40))
    assert sorted(r["id"] for r in tickets.open_rows()) == sorted([other.id, late.id, first.id])
    assert {t.id for t in tickets.open_tickets() if t.overdue(T0 + timedelta(hours=2))} == \
        {late.id, other.id}
    due = T0 + timedelta(hours=2)        # hints a store may apply; the caller filters again
    assert [r["id"] for r in tickets.open_rows(overdue_at=due)
            if datetime.fromisoformat(r["deadline"]) <= due] in ([other.id, late.id], [late.id, other.id])
    assert [r["id"] for r in tickets.open_rows(staff="wang-li") if r["staff"] == "wang-li"] == [first.id]
    assert [r["id"] for r in tickets.open_rows(staff="wang-li", category="repair")
            if r["category"] == "repair"] == []
    for tid in (first.id, other.id):
        tickets.change(tid, lambda x: x.add(LATER, "wang-li", "closed"))
    tickets.tidy(tickets.open_rows(), set())
    assert {r["id"] for r in tickets.open_rows()} == {late.id}
    assert [t.id for t in tickets.archived_tickets(["2026-11"])] == [first.id]
    assert [t.id for t in tickets.archived_tickets(["2026-10"])] == [other.id]
    assert sorted(t.id for t in tickets.archived_tickets()) == sorted([first.id, other.id])
    assert list(tickets.archived_tickets([])) == []
    assert tickets.get(first.id).status == "closed"      # still found, and changed
    reopened = tickets.change(first.id, lambda x: x.add(LATER, "zhang-hua", "reopened", "again"))
    tickets.tidy(tickets.open_rows(), set())
    assert reopened.version == 3
    assert {r["id"] for r in tickets.open_rows()} == {late.id, first.id}
    assert [t.id for t in tickets.archived_tickets(["2026-11"])] == []
    assert tickets.get(first.id).history[-1].note == "again"
    with pytest.raises(InputError, match="no ticket"):
        tickets.change("GL-1122-0042", lambda x: None)


def test_a_closed_ticket_with_messages_still_to_queue_stays_open_until_they_are(any_store):
    tickets = any_store.tickets()
    t, _ = opened(tickets)

    def close_with_notice(x):
        x.add(LATER, "wang-li", "closed")
        x.notices.append({"key": "closed|1"})

    tickets.change(t.id, close_with_notice)
    tickets.tidy(tickets.open_rows(), {t.id})          # the pass keeps it for its message
    assert [r["id"] for r in tickets.open_rows()] == [t.id]
    tickets.change(t.id, lambda x: x.notices.clear(), bump=False)
    tickets.tidy(tickets.open_rows(), set())
    assert tickets.open_rows() == [] and [x.id for x in tickets.archived_tickets()] == [t.id]


def test_the_ticket_figures_count_the_window_by_grid_without_building_tickets(any_store):
    """``figures``: opened in the window, resolved in it (when last resolved, reopened since
    or not), overdue at its end, medians of whole seconds (an even count: the mean of the
    middle two); the open tickets of any month, the archived ones of the window's months."""
    from broadcaster.tickets.store import Counts, Figures

    tickets = any_store.tickets()
    h = timedelta(hours=1)

    def move(t, at, status, by="wang-li"):
        return tickets.change(t.id, lambda x: x.add(at, by, status))

    a, _ = opened(tickets, group="g1")                              # resolved in 6 h, closed
    move(a, T0 + 6 * h, "resolved")
    move(a, T0 + 7 * h, "closed")
    opened(tickets, group="g1")                                     # open, due in 48 h: overdue
    c, _ = opened(tickets, at=T0 - 48 * h, group="g2")              # resolved in 49 h, reopened
    move(c, T0 + h, "resolved")
    move(c, T0 + 2 * h, "reopened", "zhang-hua")
    d, _ = opened(tickets, at=datetime(2026, 10, 20, 9, 0, tzinfo=TZ), group="g9")   # a group
    move(d, datetime(2026, 10, 25, 9, 0, tzinfo=TZ), "resolved")    # no longer configured,
    move(d, datetime(2026, 10, 26, 9, 0, tzinfo=TZ), "reopened")    # resolved before the
    move(d, datetime(2026, 11, 2, 9, 0, tzinfo=TZ), "resolved")     # window and again in it
    e, _ = opened(tickets, at=datetime(2026, 9, 10, 9, 0, tzinfo=TZ), group="g1")   # September
    move(e, datetime(2026, 9, 10, 12, 0, tzinfo=TZ), "resolved")
    move(e, datetime(2026, 9, 11, 12, 0, tzinfo=TZ), "closed")
    f, _ = opened(tickets, at=T0 + h, group="g1")                   # resolved in 3 h 0 min 1 s
    move(f, T0 + 4 * h + timedelta(seconds=1), "resolved")
    g, _ = opened(tickets, group="g2")
    move(g, T0 + h, "rejected", "zhang-hua")
    tickets.tidy(tickets.open_rows(), set())

    start, end = datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 11, 25, 12, 0, tzinfo=TZ)
    got = tickets.figures(start, end, {"g1": "grid-a", "g2": "grid-a", "g3": "grid-b"}, "(?)")
    assert got == Figures(
        total=Counts(opened=5, resolved=4, overdue=2, handling_s=(21600 + 176400) / 2),
        by_grid={"grid-a": Counts(5, 3, 2, 21600), "(?)": Counts(0, 1, 0, 13 * 86400)},
        by_status={"closed": 1, "open": 1, "reopened": 1, "rejected": 1, "resolved": 1})
    half = tickets.figures(start, datetime(2026, 11, 22, 13, 30, tzinfo=TZ), {"g1": "grid-a"}, "(?)")
    assert half.by_grid["grid-a"] == Counts(3, 2, 0, (10801 + 21600) / 2)   # g1: a, b, f
    assert half.total.opened == 5 and half.total.overdue == 1               # c, due at T0
    assert tickets.figures(datetime(2027, 1, 1, tzinfo=TZ), datetime(2027, 1, 2, tzinfo=TZ),
                           {}, "(?)") == Figures(Counts(0, 0, 2), {"(?)": Counts(0, 0, 2)}, {})


def test_the_ticket_figures_count_times_to_the_second_as_tickets_keep_them(any_store):
    """A ticket keeps its times to the second: opened at 09:00:00.6 is opened at 09:00:00
    (not in a window from 09:00:00.5), resolved 1 h 0.2 s later is handled in 3,600 s."""
    from broadcaster.tickets.store import Counts

    tickets = any_store.tickets()
    t, _ = opened(tickets, at=T0 + timedelta(microseconds=600_000), group="g1")
    end, grids = T0 + timedelta(days=1), {"g1": "grid-a"}
    assert tickets.figures(T0 + timedelta(microseconds=500_000), end, grids, "(?)").total.opened == 0
    tickets.change(t.id, lambda x: x.add(T0 + timedelta(hours=1, microseconds=800_000), "wang-li",
                                         "resolved"))
    assert tickets.figures(T0, end, grids, "(?)").total == Counts(1, 1, 0, 3600)
