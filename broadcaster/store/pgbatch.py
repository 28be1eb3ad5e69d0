"""Group commit: calls of many threads carried to the database in one statement.

A dispatcher's workers each record a result and book a rate-limit slot per
send; one statement per call costs a round trip and a pool checkout each.
``Batch.call(item)`` instead queues the item and waits: the first caller that
finds nobody flushing becomes the leader, sends everything queued in one
``flush(items)`` call (one statement, committed when it returns) and hands the
lead to a caller that queued meanwhile. So each call still returns only once
its item is committed (a recorded send is durable before its worker sends
again), while under load one round trip carries many calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - an item
A = TypeVar("A")  # its answer

MAX_BATCH = 200       # items in one statement at most


class _Call(Generic[I, A]):
    __slots__ = ("answer", "error", "finished", "item", "lead", "woken")

    def __init__(self, item: I):
        self.item = item
        self.answer: A | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.lead = False                    # handed the lead instead of an answer
        self.woken = threading.Event()


class Batch(Generic[I, A]):
    """``call(item)`` -> its answer from ``flush(items)`` (answers in the items' order),
    sent together with the items of other threads waiting at the same time. An error
    raised by ``flush`` is raised in every caller of that batch."""

    def __init__(self, flush: Callable[[list[I]], Sequence[A]], *, limit: int = MAX_BATCH):
        self._flush = flush
        self._limit = limit
        self._lock = threading.Lock()
        self._queued: list[_Call[I, A]] = []
        self._leading = False

    def call(self, item: I) -> A:
        me: _Call[I, A] = _Call(item)
        with self._lock:
            self._queued.append(me)
            me.lead = not self._leading
            self._leading = True
        if not me.lead:
            me.woken.wait()
        while not me.finished:               # the leader: flush until this call is answered
            with self._lock:
                batch, self._queued = self._queued[:self._limit], self._queued[self._limit:]
            self._send(batch)
        with self._lock:                     # hand the lead over, or let it go
            if me.lead:
                if self._queued:
                    self._queued[0].lead = True
                    self._queued[0].woken.set()
                else:
                    self._leading = False
        if me.error is not None:
            raise me.error
        return me.answer  # type: ignore[return-value]

    def _send(self, batch: list[_Call[I, A]]) -> None:
        try:
            answers = self._flush([c.item for c in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to {len(batch)} calls")
        except BaseException as exc:     # every caller of the batch gets it
            for c in batch:
                c.error, c.finished = exc, True
        else:
            for c, answer in zip(batch, answers, strict=True):
                c.answer, c.finished = answer, True
        for c in batch:
            if not c.lead:
                c.woken.set()
