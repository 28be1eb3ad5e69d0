"""The sender-side rate limiter: sliding windows, several keys, platform back-off, persistence."""

from __future__ import annotations

import pytest

from broadcaster.channels.base import RateLimit
from broadcaster.delivery.ratelimit import RateLimiter


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_window_of_twenty_per_minute():
    clock = Clock()
    rl = RateLimiter(clock)
    lim = [("wecom:a", RateLimit(20, 60))]
    slots = [rl.reserve(lim, max_wait=0)[0] for _ in range(21)]
    assert slots.count(True) == 20 and slots[-1] is False
    ok, t = rl.reserve(lim, max_wait=0)
    assert not ok and t == 1061.0          # the window, plus a 1 s margin
    clock.t = 1060.5
    assert not rl.reserve(lim, max_wait=0)[0]
    clock.t = 1061.0
    assert rl.reserve(lim, max_wait=0)[0]


def test_inline_wait_books_a_future_slot():
    clock = Clock()
    rl = RateLimiter(clock)
    lim = [("feishu:a", RateLimit(5, 1))]
    times = [rl.reserve(lim, max_wait=5)[1] for _ in range(12)]
    # each window is kept 50 ms longer than the platform's (arrival vs departure, latency)
    assert times[:5] == [1000.0] * 5 and times[5:10] == [pytest.approx(1001.05)] * 5
    assert times[10] == pytest.approx(1002.1)


def test_two_keys_both_respected():
    clock = Clock()
    rl = RateLimiter(clock)
    per_chat = ("tg:chat", RateLimit(20, 60))
    per_bot = ("tg:bot", RateLimit(30, 1))
    other_chat = ("tg:chat2", RateLimit(20, 60))
    for _ in range(20):
        assert rl.reserve([per_chat, per_bot], max_wait=0)[0]
    assert not rl.reserve([per_chat, per_bot], max_wait=0)[0]
    for _ in range(10):
        assert rl.reserve([other_chat, per_bot], max_wait=0)[0]
    assert not rl.reserve([other_chat, per_bot], max_wait=0)[0]  # bot-wide 30/s reached


def test_block_and_persist_round_trip():
    clock = Clock()
    rl = RateLimiter(clock)
    lim = [("dt:a", RateLimit(20, 60))]
    for _ in range(3):
        rl.reserve(lim, max_wait=0)
    rl.block(["dt:a"], 1600.0)
    again = RateLimiter(clock)
    again.load(rl.dump())
    ok, t = again.reserve(lim, max_wait=0)
    assert not ok and t == 1600.0
    clock.t = 1600.0
    assert again.reserve(lim, max_wait=0)[0]


def test_a_send_that_left_late_counts_from_when_it_left():
    """A thread held up past its slot (a busy machine): the window runs from the departure,
    so the send that replaces it in the window cannot reach the platform while it still counts."""
    clock = Clock()
    rl = RateLimiter(clock)
    lim = [("discord:a", RateLimit(5, 2))]
    slots = [rl.reserve(lim, max_wait=5)[1] for _ in range(5)]
    assert slots == [1000.0] * 5
    rl.left_at(lim, slots[0], 1000.3)       # the first left 0.3 s late
    rl.left_at(lim, slots[1], 999.9)        # early (a clock step): nothing to move
    assert rl.reserve(lim, max_wait=5)[1] == pytest.approx(1002.1)     # after the 2nd's window
    assert rl.reserve(lim, max_wait=5)[1] == pytest.approx(1002.1)
    assert rl.reserve(lim, max_wait=5)[1] == pytest.approx(1002.1)
    assert rl.reserve(lim, max_wait=5)[1] == pytest.approx(1002.1)
    assert rl.reserve(lim, max_wait=5)[1] == pytest.approx(1002.4)     # the late one's window
    assert rl.dump()["keys"]["discord:a"]["sends"][:5] == [1000.0] * 4 + [1000.3]
