"""Dispatch: send every due delivery, concurrently, within each robot's limits.

One pass (``run-once``, or one tick of the daemon) runs under the dispatch lock:

1. read the queue (``active/``); settle what expired; hold back non-urgent
   messages for groups in their quiet hours;
2. fan out: one task per group (its due deliveries in order, so the parts of
   one message never interleave with another's), on a thread pool sharing one
   pooled HTTP session; each part waits for its robot's rate-limit slot;
3. record results in batches (every ``COMMIT_EVERY`` seconds): a delivery is
   ``sent`` once recorded, and a recorded send is never repeated. Only sends
   in flight when the process dies may repeat.

Transient failures (timeouts, resets, 5xx, rate limits) are retried with
jittered exponential backoff, honouring the wait the platform asked for, until
the announcement expires; permanent ones fail at once with the platform's reason.

Replies to residents (announcements with ``reply`` in their meta, queued by
``serve``) are sent only under the replies lock, so each is sent once: ``serve``
sends them itself (a dispatcher with ``only`` = its replies' ids, holding that
lock), and a ``run-once`` or daemon takes over those older than
``REPLY_HANDOFF`` (``serve`` stopped or fell behind). A reply that carries a
route in ``reply_routes`` (group -> route) goes through the platform's reply path while it is valid
(see ``broadcaster.inbound.replies``).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from broadcaster.channels.base import SendResult
from broadcaster.delivery.markdown import title_of
from broadcaster.delivery.ratelimit import STATE_NAME, RateLimiter, merge_state
from broadcaster.queue import outbox
from broadcaster.queue.outbox import CANCELLED, EXPIRED, FAILED, PENDING, SENT, Announcement
from broadcaster.timeparse import from_iso, iso

log = logging.getLogger(__name__)

COMMIT_EVERY = 0.5            # seconds between batched writes of results
HISTORY_KEEP = 20             # attempts kept per delivery row
MAX_INLINE_WAIT = 5.0         # wait this long for a rate-limit slot, else defer
BACKOFF_CAP = 30 * 60.0       # seconds
REPLY_HANDOFF = 30.0          # seconds: younger replies are left to `serve`
REPLIES_LOCK = "replies.lock"


def backoff_base() -> float:
    """First retry delay in seconds (BROADCASTER_RETRY_BASE, default 30)."""
    try:
        return max(0.0, float(os.environ.get("BROADCASTER_RETRY_BASE", "30")))
    except ValueError:
        return 30.0


def backoff(attempts: int, retry_after: float | None, base: float) -> float:
    """Jittered exponential delay before attempt ``attempts + 1``; never below retry_after."""
    exp = min(BACKOFF_CAP, base * 2 ** max(0, attempts - 1))
    delay = exp / 2 + random.uniform(0, exp / 2)  # noqa: S311 - jitter, not crypto
    return max(delay, retry_after or 0.0)


@dataclass
class PassResult:
    sent: int = 0
    failed: int = 0
    expired: int = 0
    pending: int = 0
    next_due: datetime | None = None
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "pending": self.pending,
                "expired": self.expired}


@dataclass
class Update:
    """The outcome of one delivery in this pass, to be written to its row."""

    ann_id: str
    group: str
    status: str
    parts_sent: int | None = None
    attempted: bool = False
    next_attempt_at: datetime | None = None
    result: SendResult | None = None
    error: str | None = None


class Dispatcher:
    def __init__(
        self,
        app,
        *,
        workers: int = 64,
        stop: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
        only: set[str] | None = None,
        routes=None,
    ):
        self.app = app
        self.only = only            # replies' ids: this dispatcher is `serve`'s (replies lock held)
        self.routes = routes        # reply-route channels (broadcaster.inbound.replies.ReplyRoutes)
        self._replies_lock = None   # taken by a general pass that sends older replies
        self.workers = workers
        self.stop = stop or threading.Event()
        self.progress = progress
        self.limiter = RateLimiter()
        self._channels: dict[str, object] = {}
        self._cancelled: set[str] = set()
        self._files: dict = {}              # announcement files as this pass last wrote them
        self._latest: dict[str, Announcement] = {}
        self._session = None

    # -- the pass --------------------------------------------------------------
    def run(self) -> PassResult:
        """One pass over the queue. The caller holds the dispatch lock."""
        try:
            return self._run()
        finally:
            if self._replies_lock is not None:
                self._replies_lock.release()
                self._replies_lock = None

    def _run(self) -> PassResult:
        app = self.app
        now = app.now()
        result = PassResult()
        anns = outbox.active(app, self.only)
        if not anns:
            return result
        self._latest = {ann.id: ann for ann in anns}
        self.limiter.load(app.store.read_state(STATE_NAME))
        updates: queue.SimpleQueue[Update] = queue.SimpleQueue()
        work: dict[str, list[tuple[Announcement, dict]]] = {}
        for ann in anns:
            self._plan(ann, now, work, updates, result)
        total = sum(len(v) for v in work.values())
        if total:
            self._fan_out(work, updates, total, result)
        self._commit(updates, result)
        with app.store.state(STATE_NAME) as st:  # merged: `serve` may send beside us
            merged = merge_state(st, self.limiter.dump(), time.time())
            st.clear()
            st.update(merged)
        self._close()
        result.pending, result.next_due = self._remaining()
        self._files.clear()
        return result

    def _plan(self, ann, now, work, updates, result) -> None:
        """Sort ``ann``'s pending deliveries into: expired, held back, due now."""
        scheduled = from_iso(ann.meta["scheduled_for"])
        expires = from_iso(ann.meta["expires_at"])
        if ann.status == CANCELLED or scheduled > now:
            return
        if ann.meta.get("reply") and not self._may_send_reply(ann, now):
            return
        groups = self.app.groups
        for d in ann.deliveries:
            if d["status"] != PENDING:
                continue
            if now >= expires:
                updates.put(Update(ann.id, d["group"], EXPIRED, error="expired before delivery"))
                result.expired += 1
                continue
            due = from_iso(d["next_attempt_at"]) or scheduled
            if due > now:
                continue
            group = groups.destination(d["group"])  # a group, or a staff member's channel
            if group is None:
                updates.put(Update(ann.id, d["group"], FAILED,
                                   error="group no longer in groups.yaml"))
                result.failed += 1
                continue
            if not ann.meta.get("urgent") and group.quiet_hours:
                local = now.astimezone(group.tz)
                if group.quiet_hours.contains(local):
                    until = group.quiet_hours.window_end(local)
                    updates.put(Update(ann.id, d["group"], PENDING, next_attempt_at=until,
                                       error=f"quiet hours until {until:%H:%M}"))
                    continue
            work.setdefault(d["group"], []).append((ann, d))

    def _may_send_reply(self, ann, now) -> bool:
        """Replies are sent under the replies lock only, young ones by `serve` alone."""
        if self.only is not None:
            return True
        if (now - from_iso(ann.meta["created_at"])).total_seconds() < REPLY_HANDOFF:
            return False
        if self._replies_lock is None:
            from filelock import FileLock, Timeout

            lock = FileLock(self.app.store.locks_dir / REPLIES_LOCK, mode=0o600)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                return False
            self._replies_lock = lock
        return True

    def _fan_out(self, work, updates, total, result) -> None:
        done = 0
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(work)),
                                  thread_name_prefix="send")
        try:
            futures = [pool.submit(self._deliver_group, items, updates)
                       for items in work.values()]
            not_done = set(futures)
            while not_done:
                _, not_done = wait(not_done, timeout=COMMIT_EVERY)
                done += self._commit(updates, result)
                if self.progress:
                    self.progress(done, total)
            for f in futures:
                exc = f.exception()
                if exc is not None:  # a bug, not a platform answer: keep the pass going
                    log.error("send task crashed: %s", self.app.redact(exc))
                    result.errors.append(self.app.redact(exc))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- one group's deliveries (worker thread) ---------------------------------
    def _deliver_group(self, items, updates) -> None:
        for ann, d in items:
            if self.stop.is_set() or ann.id in self._cancelled:
                return
            try:
                updates.put(self._deliver(ann, d))
            except Exception as exc:  # render bug or similar: fail this delivery, not the pass
                log.exception("delivery %s/%s crashed", ann.id, d["group"])
                updates.put(Update(ann.id, d["group"], FAILED, attempted=True,
                                   error=f"internal error: {self.app.redact(exc)}"))

    def _deliver(self, ann: Announcement, d: dict) -> Update:
        group = self.app.groups.destination(d["group"])
        channel = self._channel_for(ann, group)
        body = ann.body(d)  # the title comes from this group's own message, as in previews
        parts = channel.render(body, title=title_of(body),
                               mention_all=bool(ann.meta.get("mention_all")))
        limits = channel.rate_limits()
        sent = int(d.get("parts_sent") or 0)
        res: SendResult | None = None
        while sent < len(parts):
            if self.stop.is_set():
                return Update(ann.id, d["group"], PENDING, parts_sent=sent,
                              attempted=res is not None, result=res)
            ok, slot = self.limiter.reserve(limits, MAX_INLINE_WAIT)
            if not ok:
                at = datetime.fromtimestamp(slot, self.app.tz)
                return Update(ann.id, d["group"], PENDING, parts_sent=sent, next_attempt_at=at,
                              attempted=res is not None, result=res,
                              error=f"rate limit: next slot {at:%H:%M:%S}")
            delay = slot - time.time()
            if delay > 0:
                self.stop.wait(delay)
            res = channel.send(parts[sent])
            if not res.ok:
                if res.outcome == "transient" and res.retry_after:
                    self.limiter.block([k for k, _ in limits], time.time() + res.retry_after)
                break
            sent += 1
        if res is None:  # nothing left to send (all parts recorded earlier)
            return Update(ann.id, d["group"], SENT, parts_sent=sent)
        if res.ok:
            return Update(ann.id, d["group"], SENT, parts_sent=sent, attempted=True, result=res)
        if res.outcome == "permanent":
            return Update(ann.id, d["group"], FAILED, parts_sent=sent, attempted=True, result=res)
        wait = backoff(int(d.get("attempts") or 0) + 1, res.retry_after, backoff_base())
        return Update(ann.id, d["group"], PENDING, parts_sent=sent, attempted=True, result=res,
                      next_attempt_at=self.app.now() + timedelta(seconds=wait))

    def _channel_for(self, ann: Announcement, group):
        """The platform's reply path of a reply while it is valid, else the group's channel."""
        route = (ann.meta.get("reply_routes") or {}).get(group.id)
        if route:
            if self.routes is None:
                from broadcaster.inbound.replies import ReplyRoutes

                self.routes = ReplyRoutes(self.app)
            if self._session is None:
                from broadcaster.channels.http import new_session

                self._session = new_session(pool_maxsize=self.workers)
            channel = self.routes.channel(route, group, self._session)
            if channel is not None:
                return channel
        return self._channel(group)

    def _channel(self, group):
        ch = self._channels.get(group.id)
        if ch is None:
            from broadcaster import channels
            from broadcaster.channels.http import new_session

            if self._session is None:
                self._session = new_session(pool_maxsize=self.workers)
            cls = channels.get(group.channel_type)
            ch = cls(group.channel, group.id, session=self._session, tz=group.tz)
            self._channels[group.id] = ch
        return ch

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._channels.clear()

    # -- recording ---------------------------------------------------------------
    def _commit(self, updates: queue.SimpleQueue, result: PassResult) -> int:
        """Write every queued update, one file write per announcement. Returns the count."""
        batch: dict[str, list[Update]] = {}
        while True:
            try:
                u = updates.get_nowait()
            except queue.Empty:
                break
            batch.setdefault(u.ann_id, []).append(u)
        n = 0
        for ann_id, items in batch.items():
            now = self.app.now()

            def change(ann: Announcement, db, items=items, now=now) -> None:
                if ann.status == outbox.CANCELLED:
                    self._cancelled.add(ann.id)
                changed = []
                for u in items:
                    d = ann.delivery(u.group)
                    if d is None or d["status"] == SENT:
                        continue
                    self._apply(d, u, now, result)
                    changed.append(d)
                outbox.settle(ann, now)
                outbox.write_back(db, ann, changed)

            try:
                self._latest[ann_id] = outbox.modify(self.app, ann_id, change, cache=self._files)
            except Exception as exc:
                # never lose a result silently: say so; the row stays pending and is retried
                log.error("could not record results for %s: %s", ann_id, self.app.redact(exc))
                result.errors.append(f"{ann_id}: {self.app.redact(exc)}")
            n += len(items)
        return n

    def _apply(self, d: dict, u: Update, now: datetime, result: PassResult) -> None:
        if d["status"] == CANCELLED and u.status != SENT:
            return  # cancelled meanwhile and not sent: stays cancelled
        res = u.result
        d["status"] = u.status
        d["updated_at"] = iso(now)
        if u.parts_sent is not None:
            d["parts_sent"] = u.parts_sent
        d["next_attempt_at"] = iso(u.next_attempt_at) if u.status == PENDING else None
        if u.attempted:
            d["attempts"] = int(d.get("attempts") or 0) + 1
        if res is not None:
            d["http_status"] = res.http_status
            d["code"] = res.code
            d["latency_ms"] = round(res.latency_ms, 1)
        error = None if u.status == SENT else (
            self.app.redact(res.reason) if res is not None and not res.ok and res.reason else u.error
        )
        if u.status == SENT:
            d["sent_at"] = iso(now)
            d["last_error"] = None
            result.sent += 1
        elif error:
            d["last_error"] = error
        if u.status == FAILED and u.attempted:
            result.failed += 1
        if u.attempted:
            entry = {"at": iso(now), "outcome": res.outcome if res else u.status,
                     "http_status": res.http_status if res else None,
                     "code": res.code if res else None,
                     "latency_ms": round(res.latency_ms, 1) if res else None,
                     "error": error}
            d["history"] = ([*d.get("history", []), entry])[-HISTORY_KEEP:]

    def open_ids(self) -> set[str]:
        """The announcements of this pass that are not finished yet."""
        return {a.id for a in self._latest.values() if a.status not in (outbox.DONE, CANCELLED)}

    def _remaining(self) -> tuple[int, datetime | None]:
        """Pending deliveries left in the queue this pass saw, and when the next one is due.

        Announcements queued while the pass ran are not counted; the daemon
        notices them by the queue directory changing (see broadcaster.schedule.daemon).
        """
        pending = 0
        next_due = None
        for ann in self._latest.values():
            if ann.status == CANCELLED:
                continue
            scheduled = from_iso(ann.meta["scheduled_for"])
            if ann.meta.get("reply") and self.only is None:   # `serve`'s until the handoff
                handoff = from_iso(ann.meta["created_at"]) + timedelta(seconds=REPLY_HANDOFF)
                scheduled = max(scheduled, handoff)
            for d in ann.deliveries:
                if d["status"] == PENDING:
                    pending += 1
                    due = max(scheduled, from_iso(d["next_attempt_at"]) or scheduled)
                    next_due = due if next_due is None else min(next_due, due)
        return pending, next_due
