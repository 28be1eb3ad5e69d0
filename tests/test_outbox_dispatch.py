"""Queue and dispatch through the real store and the file channel (no templates involved)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from broadcaster.app import App
from broadcaster.delivery.dispatch import Dispatcher, backoff
from broadcaster.queue import deliverylog, outbox
from broadcaster.queue.outbox import Message
from tests.conftest import write_groups

GROUPS = """
defaults:
  timezone: Asia/Shanghai
  quiet_hours: "22:00-07:00"
groups:
  - {id: g1, name: 一网格, tags: [kind:grid], channel: {type: file, path: out}}
  - {id: g2, name: 二网格, tags: [kind:grid], channel: {type: file, path: out}}
  - {id: g3, name: 三网格, tags: [kind:grid], channel: {type: file, path: out}, quiet_hours: ""}
"""


@pytest.fixture
def app(tmp_path):
    write_groups(tmp_path, GROUPS)
    return App(tmp_path)


def _messages(*ids, text="# 停水通知\n\n明天9:00-17:00停水。"):
    return [Message(g, text) for g in ids]


@time_machine.travel("2026-11-22 10:00 +0800", tick=False)
def test_enqueue_dispatch_and_archive(app, tmp_path):
    ann_id = outbox.enqueue(app, _messages("g1", "g2", "g3"), source="test")
    ann = outbox.get(app, ann_id)
    assert ann.status == "queued" and ann.counts()["pending"] == 3
    assert len(ann.meta.bodies) == 1  # identical bodies are stored once
    result = Dispatcher(app).run()
    assert (result.sent, result.failed, result.pending) == (3, 0, 0)
    done = outbox.get(app, ann_id)
    assert done.status == "done"
    assert app.store.find(ann_id) == app.store.archive_path(ann_id)
    for g in ("g1", "g2", "g3"):
        assert (tmp_path / "out" / f"{g}.md").read_text().count("明天9:00-17:00停水") == 1
    # a second pass sends nothing again
    assert Dispatcher(app).run().sent == 0
    rows = deliverylog.query(app, announcement=ann_id)
    assert {r["status"] for r in rows} == {"sent"} and all(r["attempts"] == 1 for r in rows)


def test_quiet_hours_hold_non_urgent_but_not_urgent(app, tmp_path):
    with time_machine.travel("2026-11-22 23:00 +0800", tick=False):
        normal = outbox.enqueue(app, _messages("g1", "g3"), source="test")
        urgent = outbox.enqueue(app, _messages("g2", text="紧急：燃气泄漏"), source="test", urgent=True)
        result = Dispatcher(app).run()
        assert result.sent == 2  # g3 has no quiet hours; g2's message is urgent
        assert (result.pending, result.held) == (1, 1)
        assert result.summary() == "sent 2, failed 0, pending 1 (1 held by quiet hours until 07:00)"
        held = {d.group: d for d in outbox.get(app, normal).deliveries}
        assert held["g1"].status == "pending"
        assert held["g1"].next_attempt_at.isoformat().startswith("2026-11-23T07:00")
        assert outbox.get(app, urgent).status == "done"
    with time_machine.travel("2026-11-23 07:00:05 +0800", tick=False):
        assert Dispatcher(app).run().sent == 1
        assert outbox.get(app, normal).status == "done"


def test_scheduled_cancel_retry_and_expiry(app):
    with time_machine.travel("2026-11-22 10:00 +0800", tick=False):
        later = outbox.enqueue(app, _messages("g1"), source="t",
                               scheduled_for=app.now() + timedelta(hours=2))
        assert Dispatcher(app).run().sent == 0
        assert outbox.cancel(app, later) == 1
        assert outbox.get(app, later).status == "cancelled"
        assert app.store.find(later) == app.store.archive_path(later)
        short = outbox.enqueue(app, _messages("g1"), source="t",
                               scheduled_for=app.now() + timedelta(hours=1),
                               expires=timedelta(minutes=30))
    with time_machine.travel("2026-11-22 12:00 +0800", tick=False):
        result = Dispatcher(app).run()
        assert result.expired == 1 and result.sent == 0
        report = deliverylog.report(app, short)
        assert report["expired"] == 1 and report["not_delivered"][0]["reason"]


def test_backoff_is_jittered_exponential_and_honours_retry_after():
    delays = [backoff(n, None, 30) for n in range(1, 8)]
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and 60 <= delays[2] <= 120
    assert all(d <= 30 * 60 for d in delays)
    assert 300 <= backoff(1, 300, 30) <= 330     # what the platform asked, plus up to 10 %
    assert 1.5 <= backoff(1, 1.5, 30) <= 1.65    # not the 15-30 s of the first backoff


def test_run_once_says_what_quiet_hours_hold(app, tmp_path):
    from tests.conftest import cli

    with time_machine.travel("2026-11-22 23:00 +0800", tick=False):
        outbox.enqueue(app, _messages("g1", "g2"), source="test")
        out = cli(tmp_path, "run-once")
    assert out.code == 0
    assert "sent 0, failed 0, pending 2 (2 held by quiet hours until 07:00)" in out.out
    with time_machine.travel("2026-11-22 23:01 +0800", tick=False):
        doc = cli(tmp_path, "run-once", "--json").json()
    assert (doc["pending"], doc["held"]) == (2, 2)
