"""Slow and dead endpoints, and what a platform may ask, through a real dispatch pass.

Every fault is injected on loopback: robots that never answer beside healthy
ones, 429s with short, long and absurd waits, a window boundary at Discord.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from broadcaster.app import App
from broadcaster.channels.http import HttpChannel
from broadcaster.delivery.dispatch import Dispatcher
from broadcaster.queue import outbox
from broadcaster.queue.outbox import Message
from tests.conftest import write_groups
from tests.faulty_http import DeadServer
from tests.simulator import PlatformSimulator

HEALTHY, DEAD = 200, 70


def _groups(root, channels: list[dict]) -> None:
    lines = ["defaults: {timezone: Asia/Shanghai}", "groups:"]
    lines += [f"  - {{id: g{i:03d}, name: 群{i}, channel: {json.dumps(ch)}}}"
              for i, ch in enumerate(channels)]
    write_groups(root, "\n".join(lines) + "\n")


def _announce(app: App, text: str = "# 停水通知\n\n明天停水。") -> str:
    return outbox.enqueue(app, [Message(g.id, text) for g in app.groups.groups], source="test",
                          urgent=True)


def test_robots_that_never_answer_do_not_starve_healthy_groups(tmp_path, monkeypatch):
    """70 dead robots first in line, 200 healthy after them, 64 workers: the healthy groups
    are all delivered within ~1.5 s, not after the dead robots' deadline (8 s here)."""
    monkeypatch.setattr(HttpChannel, "deadline", 8.0)
    with PlatformSimulator(auto_register=True) as sim, DeadServer() as dead:
        _groups(tmp_path, [{"type": "webhook", "url": f"{dead.url}/hook/dead{i}"}
                           for i in range(DEAD)]
                + [{"type": "webhook", "url": f"{sim.base_url}/hook/ok{i}"}
                   for i in range(HEALTHY)])
        app = App(tmp_path)
        ann_id = _announce(app)
        start = time.monotonic()
        passing = threading.Thread(target=Dispatcher(app).run)
        passing.start()
        while len(sim.received()) < HEALTHY and time.monotonic() - start < 8.0:
            time.sleep(0.02)
        healthy_s = time.monotonic() - start
        dead.__exit__(None, None, None)          # the dead robots hang up: the pass ends
        passing.join(15)
    print(f"\n{HEALTHY} healthy groups behind {DEAD} dead robots: all delivered in "
          f"{healthy_s:.2f} s")
    assert len(sim.received()) == HEALTHY
    assert healthy_s < 4.0, healthy_s
    rows = {d.group: d for d in outbox.get(app, ann_id).deliveries}
    assert sum(d.status == "sent" for d in rows.values()) == HEALTHY
    assert sum(d.status == "pending" for d in rows.values()) == DEAD   # retried later


@pytest.fixture
def one_robot(tmp_path):
    def make(platform: str, **options):
        sim = PlatformSimulator(**options).__enter__()
        robot = sim.add_robot(platform)
        _groups(tmp_path, [robot.config()])
        return sim, robot, App(tmp_path)
    return make


def test_a_short_retry_after_is_waited_out_in_the_same_pass(one_robot):
    """Discord asks for 1.5 s: the pass waits 1.5 s and sends, instead of a 15-30 s backoff."""
    sim, robot, app = one_robot("discord")
    with sim:
        robot.answer_next(429, {"message": "You are being rate limited.", "retry_after": 1.5,
                                "global": False})
        ann_id = _announce(app)
        start = time.monotonic()
        result = Dispatcher(app).run()
        took = time.monotonic() - start
    assert result.sent == 1 and len(robot.texts) == 1
    assert 1.5 <= took < 3.0, took
    d = outbox.get(app, ann_id).deliveries[0]
    assert d.attempts == 2 and d.history[0].http_status == 429 and d.status == "sent"


def test_a_long_notice_to_discord_gets_no_429_at_the_window_boundary(one_robot):
    """9 parts at Discord's 5 per 2 s, with 0-60 ms of latency: the limiter's margin keeps
    the 6th part out of the window the platform still counts."""
    sim, robot, app = one_robot("discord", latency=(0.0, 0.06))
    text = "# Notice\n\n" + "\n\n".join(f"Part {i}: " + "water off tomorrow 9-17. " * 20
                                         for i in range(26))
    with sim:
        ann_id = _announce(app, text)
        result = Dispatcher(app).run()
    d = outbox.get(app, ann_id).deliveries[0]
    assert len(robot.texts) == 9 and result.sent == 1
    assert d.attempts == 1 and all(a.http_status != 429 for a in d.history)


def test_a_longer_retry_after_is_the_wait_not_the_backoff(one_robot):
    sim, robot, app = one_robot("webhook")
    with sim:
        robot.answer_next(503, "busy", {"Retry-After": "8"})
        ann_id = _announce(app)
        result = Dispatcher(app).run()
    assert result.pending == 1
    d = outbox.get(app, ann_id).deliveries[0]
    wait = (d.next_attempt_at - d.updated_at).total_seconds()
    assert 7.0 <= wait <= 10.0, wait    # 8 s + up to 10 % (stored to the second); backoff: 15-30 s


@pytest.mark.parametrize(("platform", "status", "body", "headers", "asked"), [
    ("slack", 429, "rate_limited", {"Retry-After": "99999999"}, "1157 days"),
    ("discord", 429, {"message": "You are being rate limited.", "retry_after": 1e12}, {},
     "11574074 days"),
])
def test_an_absurd_retry_after_fails_the_delivery_with_the_reason(one_robot, platform, status,
                                                                  body, headers, asked):
    sim, robot, app = one_robot(platform)
    with sim:
        robot.answer_next(status, body, headers)
        ann_id = _announce(app)
        result = Dispatcher(app).run()
    assert (result.sent, result.failed) == (0, 1)
    d = outbox.get(app, ann_id).deliveries[0]
    assert d.status == "failed"
    assert f"asked to wait {asked}, more than the 1 h cap" in d.last_error
    state = app.store.read_state("ratelimit")
    assert all(entry["blocked_until"] < time.time() + 3600 for entry in state["keys"].values())


def test_a_short_retry_after_without_a_rate_limit_is_waited_too(one_robot):
    """A generic webhook declares no rate limit: its 503 + Retry-After: 1 is still waited."""
    sim, robot, app = one_robot("webhook")
    with sim:
        robot.answer_next(503, "busy", {"Retry-After": "1"})
        ann_id = _announce(app)
        start = time.monotonic()
        result = Dispatcher(app).run()
        took = time.monotonic() - start
    assert result.sent == 1 and 1.0 <= took < 2.5, took
    d = outbox.get(app, ann_id).deliveries[0]
    assert d.attempts == 2 and d.history[0].http_status == 503 and d.status == "sent"


def test_a_notice_cancelled_mid_pass_holds_back_none_of_the_groups_other_notices(one_robot):
    """Three notices to one slow robot; the second is cancelled while the first is on its
    way: the third still goes out in this pass, after the first (one at a time, in order)."""
    import time_machine

    sim, robot, app = one_robot("wecom", latency=1.0)
    texts = ("第一条停水通知", "第二条停水通知", "第三条停水通知")
    with sim:
        ids = []
        for i, text in enumerate(texts):
            with time_machine.travel(time.time() - 3 + i, tick=False):   # ids in this order
                ids.append(_announce(app, text))
        results = []
        passing = threading.Thread(target=lambda: results.append(Dispatcher(app).run()))
        passing.start()
        while robot.attempts < 1 and passing.is_alive():    # the first is on its way
            time.sleep(0.01)
        assert outbox.cancel(App(app.root), ids[1]) == 1
        passing.join(15)
    assert [next(t for t in texts if t in got) for got in robot.texts] == [texts[0], texts[2]]
    assert results[0].sent == 2 and results[0].pending == 0
    assert [outbox.get(app, i).status for i in ids] == ["done", "cancelled", "done"]


def test_a_pass_merges_its_bookings_with_what_another_sender_stored_meanwhile(one_robot):
    """`serve` books a robot while a pass is sending: the pass's end keeps both bookings."""
    sim, robot, app = one_robot("wecom", latency=0.5)
    with sim:
        _announce(app)
        passing = threading.Thread(target=Dispatcher(app).run)
        passing.start()
        deadline = time.monotonic() + 10
        while not sim.received() and time.monotonic() < deadline:
            time.sleep(0.01)
        with app.store.state("ratelimit") as st:     # as `serve` merges its own
            st.setdefault("keys", {})["dingtalk:other"] = {
                "window": 60.0, "sends": [time.time()], "blocked_until": 0.0}
        passing.join(10)
    keys = app.store.read_state("ratelimit")["keys"]
    assert len(robot.texts) == 1
    assert sorted(k.split(":")[0] for k in keys) == ["dingtalk", "wecom"]
    assert [len(e["sends"]) for _, e in sorted(keys.items())] == [1, 1]


def test_a_send_held_up_past_its_slot_is_booked_when_it_left(one_robot, monkeypatch):
    """The first send's thread is held up 0.3 s after its slot (a busy machine): the limiter
    books it when it left, so the platform's window and ours start together."""
    sim, robot, app = one_robot("discord")
    take = Dispatcher._take_slot
    held = []

    def held_up(self, ann_id):
        if not held:
            held.append(time.time())
            time.sleep(0.3)
        return take(self, ann_id)

    monkeypatch.setattr(Dispatcher, "_take_slot", held_up)
    with sim:
        _announce(app)
        dispatcher = Dispatcher(app)
        assert dispatcher.run().sent == 1 and len(robot.texts) == 1
    [booked] = [s for entry in dispatcher.limiter.dump()["keys"].values() for s in entry["sends"]]
    assert booked >= held[0] + 0.29, (booked, held[0])
