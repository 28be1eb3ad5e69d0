"""Dispatch: send every due delivery, concurrently, within each robot's limits.

One pass (``run-once``, or one tick of the daemon) opens a dispatch session on
the store (``Store.dispatch``) and:

1. claims the due deliveries; settles what expired; holds back non-urgent
   messages for groups in their quiet hours; re-times deliveries written while
   the clock was ahead;
2. fans out: one task per group (its due deliveries in order, so the parts of
   one message never interleave with another's), on a thread pool sharing one
   pooled HTTP client; each part waits for its robot's rate-limit slot, then for
   one of ``workers`` sending slots; ``workers`` threads take the groups one
   after another. A send still in flight after ``SLOW_SEND`` gives its slot up
   and one more thread starts (its own thread waits on, up to the request's
   deadline), so robots that never answer cannot starve healthy ones: up to
   ``workers * (SLOW_FACTOR - 1)`` of them are absorbed at full speed;
3. records every part sent and every outcome in the session before the worker
   sends anything else: a send recorded as done is never repeated, a
   multi-part message resumes at its first unsent part, and a killed process
   repeats at most its sends in flight (at most one per worker).

A session that cannot record (a full disk) stops the whole pass at once: no
send goes out that could not be recorded, and the pass raises ``StoreFull``.

Transient failures (timeouts, resets, 5xx, rate limits) are retried with
jittered exponential backoff until the announcement expires; when the platform
says how long to wait (a 429's retry-after, capped at an hour by the channel)
that wait is used instead: a short one (up to ``MAX_INLINE_WAIT``) is waited
out in the same pass. Permanent failures fail at once with the platform's reason.

Replies to residents (announcements with ``reply`` in their meta, queued by
``serve``) are sent only under the replies lock, so each is sent once: ``serve``
sends them itself (a dispatcher with ``only`` = its replies' ids, holding that
lock), and a ``run-once`` or daemon takes over those older than
``REPLY_HANDOFF`` (``serve`` stopped or fell behind). A reply that carries a
route in ``reply_routes`` (group -> route) goes through the platform's reply
path while it is valid (see ``broadcaster.inbound.replies``).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.channels.base import SendResult
from broadcaster.delivery.markdown import title_of
from broadcaster.delivery.ratelimit import STATE_NAME, RateLimiter, check_state, merge_state
from broadcaster.delivery.result import PassResult
from broadcaster.delivery.splitting import SplitCache
from broadcaster.store import DispatchSession, StoreFull
from broadcaster.store.records import (
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    SENT,
    AnnouncementMeta,
    Attempt,
    Delivery,
)

if TYPE_CHECKING:
    from broadcaster.app import App
    from broadcaster.channels.base import Channel
    from broadcaster.config.groups import Group
    from broadcaster.inbound.replies import ReplyRoutes

log = logging.getLogger(__name__)

POLL_EVERY = 0.25             # seconds between looks at progress, cancellations, slow sends
SHARE_LIMITS_EVERY = 2.0      # seconds between merges of the rate-limit state while a pass claims more
MAX_INLINE_WAIT = 5.0         # wait this long for a rate-limit slot or a retry-after, else defer
INLINE_RETRIES = 3            # retries within one pass after a short retry-after
SLOW_SEND = 1.0               # seconds: a send in flight longer than this frees its slot
SLOW_FACTOR = 4               # threads per sending slot (the rest wait on slow robots)
BACKOFF_CAP = 30 * 60.0       # seconds
REPLY_HANDOFF = 30.0          # seconds: younger replies are left to `serve`
REPLIES_LOCK = "replies.lock"
BROKEN_GROUP_RETRY = timedelta(minutes=1)   # a group whose config is invalid: look again


def backoff_base() -> float:
    """First retry delay in seconds (BROADCASTER_RETRY_BASE, default 30)."""
    try:
        return max(0.0, float(os.environ.get("BROADCASTER_RETRY_BASE", "30")))
    except ValueError:
        return 30.0


def backoff(attempts: int, retry_after: float | None, base: float) -> float:
    """Delay before attempt ``attempts + 1``: what the platform asked (``retry_after``,
    plus up to 10 % so that robots sharing a limit do not return together), else
    jittered exponential backoff."""
    if retry_after:
        return retry_after * (1 + random.uniform(0, 0.1))  # noqa: S311 - jitter, not crypto
    exp = min(BACKOFF_CAP, base * 2 ** max(0, attempts - 1))
    return exp / 2 + random.uniform(0, exp / 2)  # noqa: S311 - jitter, not crypto


QUIET_HOURS = "quiet hours until"     # the reason a held-back delivery carries


@dataclass
class Job:
    """One claimed delivery to one group."""

    meta: AnnouncementMeta
    delivery: Delivery
    group: Group


class Dispatcher:
    def __init__(
        self,
        app: App,
        *,
        workers: int = 64,
        stop: threading.Event | None = None,
        progress: Callable[[int, int, int], None] | None = None,
        only: set[str] | None = None,
        routes: ReplyRoutes | None = None,
        stop_grace: float | None = None,
    ):
        self.app = app
        self.stop_grace = stop_grace    # after ``stop``: wait this long for sends in flight
        self.only = only            # replies' ids: this dispatcher is `serve`'s (replies lock held)
        self.routes = routes        # reply-route channels (broadcaster.inbound.replies.ReplyRoutes)
        self._replies_lock = None   # taken by a general pass that sends older replies
        self.workers = workers
        self.stop = stop or threading.Event()
        self.progress = progress
        self.limiter = RateLimiter()
        self._channels: dict[str, Channel] = {}
        self._splits = SplitCache()             # each distinct message split once per pass
        self._cancelled: set[str] = set()
        self._session: DispatchSession | None = None
        self._http = None
        self._halt = threading.Event()          # the store cannot record: stop every worker
        self._abandoned = threading.Event()     # stopped waiting for sends in flight
        self._full: StoreFull | None = None
        self._count = threading.Lock()
        self._slots = threading.Semaphore(workers)   # sends at full speed at once
        self._in_flight: dict[int, list] = {}        # id -> [started (monotonic), slot freed]
        self._mine = threading.local()               # .entry: the slot this worker holds
        self._queue: deque[tuple[str, list[Job]]] = deque()   # groups no thread has taken yet
        self._queued: dict[str, list[Job]] = {}      # their jobs, by group
        self._sending: set[str] = set()              # groups a thread is sending to
        self._later: dict[str, list[Job]] = {}       # claimed for those meanwhile
        self._total = 0                              # deliveries of this fan-out, for progress
        self._result = PassResult()
        self._done = 0                          # deliveries handled, for the progress bar

    # -- the pass --------------------------------------------------------------
    def run(self) -> PassResult:
        """One pass over the queue. The caller holds the dispatch lock where the store needs it."""
        try:
            return self._run()
        finally:
            if self._replies_lock is not None:
                self._replies_lock.release()
                self._replies_lock = None

    def _run(self) -> PassResult:
        app = self.app
        now = app.now()
        result = self._result = PassResult()
        self._splits = SplitCache()
        session = self._session = app.store.dispatch()
        try:
            # batch after batch until none is left (a store shared by several dispatchers
            # hands out bounded batches; the file store hands out everything at once)
            shared = app.store.rate_limiter()     # bookings in the store itself: nothing to merge
            if shared is not None:
                self.limiter = shared
            shared_at: float | None = None    # else: the stored bookings loaded, at this time

            def refill() -> dict[str, list[Job]] | None:
                nonlocal shared_at
                more = self._next_work(session, now)
                if more is not None and shared_at is not None \
                        and time.monotonic() >= shared_at + SHARE_LIMITS_EVERY:
                    self._share_limits()    # the pass goes on: others see what it booked
                    shared_at = time.monotonic()
                return more     # None: what is left is sent, then shared once, at the end

            while (work := self._next_work(session, now)) is not None:
                if shared is None and shared_at is None:
                    self.limiter.load(app.store.read_state(STATE_NAME, check=check_state))
                    shared_at = time.monotonic()
                if work and not self._halt.is_set():
                    self._fan_out(work, refill)
            if shared_at is not None:
                self._share_limits(last=True)
            result.pending, result.next_due = self._remaining(session)
        except StoreFull as exc:
            self._full = self._full or exc
        finally:
            self._close_http()
            try:
                session.close()
            except StoreFull as exc:
                self._full = self._full or exc
        if self._full is not None:
            raise self._full
        return result

    def _next_work(self, session: DispatchSession, now: datetime) -> dict[str, list[Job]] | None:
        """The next batch claimed, sorted by group (``_plan``); None once nothing is left
        to claim or the pass stops."""
        if self._halt.is_set() or self.stop.is_set():
            return None
        claims = session.claim(now, only=self.only, accept=lambda meta: self._may_send(meta, now))
        if not claims:
            return None
        work: dict[str, list[Job]] = {}
        for claim in claims:
            if self._halt.is_set():
                break
            self._plan(claim.meta, claim.delivery, now, work)
        return work

    def _share_limits(self, *, last: bool = False) -> None:
        """Merge this pass's bookings into the stored rate-limit state, which other senders
        (`serve`, dispatchers on other machines) merge theirs into too; then book on what
        they booked (``last``: the pass books nothing more)."""
        with self.app.store.state(STATE_NAME, check=check_state) as st:
            merged = merge_state(st, self.limiter.dump(), time.time())
            st.clear()
            st.update(merged)
        if not last:
            self.limiter.load(merged)

    def _may_send(self, meta: AnnouncementMeta, now: datetime) -> bool:
        """Replies are sent under the replies lock only, young ones by `serve` alone."""
        if not meta.reply or self.only is not None:
            return True
        if (now - meta.created_at).total_seconds() < REPLY_HANDOFF:
            return False
        if self._replies_lock is None:
            from filelock import FileLock, Timeout  # start-up time: loaded when first used

            lock = FileLock(self.app.store.locks_dir / REPLIES_LOCK, mode=0o600)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                return False
            self._replies_lock = lock
        return True

    def _remaining(self, session: DispatchSession) -> tuple[int, datetime | None]:
        """Pending deliveries left in the queue this pass saw, and when the next one is due.

        Announcements queued while the pass ran are not counted; the daemon
        notices them by the queue changing (see broadcaster.schedule.daemon).
        """
        pending, next_due = 0, None
        for claim in session.pending():
            meta, d = claim.meta, claim.delivery
            if meta.status == CANCELLED:
                continue
            scheduled = meta.scheduled_for
            if meta.reply and self.only is None:   # `serve`'s until the handoff
                scheduled = max(scheduled, meta.created_at + timedelta(seconds=REPLY_HANDOFF))
            pending += 1
            due = max(scheduled, d.next_attempt_at or scheduled)
            next_due = due if next_due is None else min(next_due, due)
            if d.next_attempt_at is not None and (d.last_error or "").startswith(QUIET_HOURS):
                r = self._result
                r.held += 1
                r.held_until = d.next_attempt_at if r.held_until is None else min(r.held_until,
                                                                                  d.next_attempt_at)
        return pending, next_due

    def open_ids(self) -> set[str]:
        """The announcements of this pass that are not finished yet."""
        if self._session is None:
            return set()
        return {c.meta.id for c in self._session.pending() if c.meta.status != CANCELLED}

    def _plan(self, meta: AnnouncementMeta, d: Delivery, now: datetime,
              work: dict[str, list[Job]]) -> None:
        """Sort one claimed delivery: expired, re-timed, held back, failed, or due now."""
        if now >= meta.expires_at:
            self._finish(meta, d, EXPIRED, now, error="expired before delivery")
            return
        if d.updated_at is not None and d.updated_at > now and d.next_attempt_at is not None:
            # written while the clock was ahead: wait what was asked, counted from now
            due = now + max(d.next_attempt_at - d.updated_at, timedelta(0))
            if due > now:
                self._finish(meta, d, PENDING, now, next_attempt_at=due, error=d.last_error)
                return
        group = self.app.groups.destination(d.group)   # a group, or a staff member's channel
        if group is None:
            broken = self.app.groups.broken.get(d.group)
            if broken:   # waits for the fix (or expiry): one group's typo stops only that group
                self._finish(meta, d, PENDING, now, next_attempt_at=now + BROKEN_GROUP_RETRY,
                             error=f"the group's config is invalid: {self.app.redact(broken[0])}")
            else:
                self._finish(meta, d, FAILED, now, error="group no longer in groups.yaml")
            return
        if not meta.urgent and group.quiet_hours:
            local = now.astimezone(group.tz)
            if group.quiet_hours.contains(local):
                until = group.quiet_hours.window_end(local)
                self._finish(meta, d, PENDING, now, next_attempt_at=until,
                             error=f"{QUIET_HOURS} {until:%H:%M}")
                return
        work.setdefault(d.group, []).append(Job(meta, d, group))

    def _fan_out(self, work: dict[str, list[Job]],
                 refill: Callable[[], dict[str, list[Job]] | None] | None = None) -> None:
        """Send ``work`` (group -> its jobs) on the thread pool; while it runs low, add what
        ``refill()`` claims next (until it says None), so that sending never pauses
        between batches."""
        self._total = 0
        self._http_session()        # one pooled client, made before the workers share it
        self._queue, self._queued, self._sending, self._later = deque(), {}, set(), {}
        self._add_work(work)
        cap = self.workers * SLOW_FACTOR
        pool = ThreadPoolExecutor(max_workers=cap, thread_name_prefix="send")
        abandon = False
        futures: list = []
        not_done: set = set()

        def start(n: int) -> None:
            for _ in range(max(0, min(n, cap - len(not_done), len(self._queue)))):
                futures.append(pool.submit(self._run_groups))
                not_done.add(futures[-1])

        try:
            give_up: float | None = None
            while True:
                start(self.workers - len(not_done))    # groups queued, their threads gone
                if refill is not None and len(self._queue) < 2 * self.workers \
                        and not self._halt.is_set() and not self.stop.is_set():
                    more = refill()
                    if more is None:
                        refill = None
                    else:
                        self._add_work(more)
                        start(self.workers - len(not_done))
                if not not_done:
                    if refill is None or self._halt.is_set() or self.stop.is_set():
                        break
                    continue                           # claimed nothing to send: claim on
                _, not_done = wait(not_done, timeout=POLL_EVERY)
                start(self._free_slow_slots())    # one more thread for each slow send
                self._cancelled |= self._session.cancelled()
                if self.progress:    # handled, of total, failed so far
                    self.progress(self._done, self._total, self._result.failed)
                if self.stop.is_set() and self.stop_grace is not None and not_done:
                    give_up = give_up or time.monotonic() + self.stop_grace
                    if time.monotonic() >= give_up:
                        log.warning("stopping with %d send(s) still in flight: not recorded, "
                                    "they go out again next time", len(not_done))
                        self._abandoned.set()
                        abandon = True
                        break
            for f in futures:
                exc = f.exception() if f.done() else None
                if exc is not None:  # a bug, not a platform answer: keep the pass going
                    log.error("send task crashed: %s", self.app.redact(exc))
                    self._result.errors.append(self.app.redact(exc))
        finally:
            pool.shutdown(wait=not abandon, cancel_futures=True)

    def _add_work(self, work: dict[str, list[Job]]) -> None:
        """Queue each group's jobs; a group already queued or being sent to gets them after
        what it has (one message at a time to a group, in the order claimed)."""
        with self._count:
            for group, jobs in work.items():
                self._total += len(jobs)
                if group in self._queued:
                    self._queued[group].extend(jobs)
                elif group in self._sending:
                    self._later.setdefault(group, []).extend(jobs)
                else:
                    self._queued[group] = jobs
                    self._queue.append((group, jobs))

    # -- sending slots -----------------------------------------------------------
    # A slot is held from the send until its result is recorded (released before the
    # worker's next rate-limit wait, or when its delivery is finished): at most ``workers``
    # sends are unrecorded at once, unless slow ones gave their slots up.
    def _take_slot(self, ann_id: str) -> bool:
        """Wait for a sending slot; False (and no slot) when the pass stops meanwhile."""
        while not self._slots.acquire(timeout=POLL_EVERY):
            if self._halted(ann_id):
                return False
        if self._halted(ann_id):
            self._slots.release()
            return False
        entry = [time.monotonic(), False]
        with self._count:
            self._in_flight[id(entry)] = entry
        self._mine.entry = entry
        return True

    def _release_slot(self) -> None:
        entry = getattr(self._mine, "entry", None)
        if entry is None:
            return
        self._mine.entry = None
        with self._count:
            del self._in_flight[id(entry)]
            freed = entry[1]
        if not freed:
            self._slots.release()

    def _free_slow_slots(self) -> int:
        """Sends in flight longer than ``SLOW_SEND`` give their slots to waiting groups;
        returns how many did."""
        cutoff = time.monotonic() - SLOW_SEND
        freed = 0
        with self._count:
            for entry in self._in_flight.values():
                if not entry[1] and entry[0] < cutoff:
                    entry[1] = True
                    self._slots.release()
                    freed += 1
        return freed

    def _run_groups(self) -> None:
        """A sending thread: one group's deliveries after another, until none are left."""
        while True:
            with self._count:
                if not self._queue:
                    return
                group, jobs = self._queue.popleft()
                del self._queued[group]
                self._sending.add(group)
            while jobs:
                try:
                    self._deliver_group(jobs)
                except Exception as exc:  # a bug, not a platform answer: keep the pass going
                    log.error("send task crashed: %s", self.app.redact(exc))
                    self._result.errors.append(self.app.redact(exc))
                with self._count:        # claimed for this group while it was sent to
                    jobs = self._later.pop(group, None)
                    if not jobs:
                        self._sending.discard(group)

    # -- one group's deliveries (worker thread) ---------------------------------
    def _deliver_group(self, jobs: list[Job]) -> None:
        for job in jobs:
            if self.stop.is_set() or self._halt.is_set():
                return
            if job.meta.id in self._cancelled:    # its row stays as the cancel left it
                continue                          # the group's other notices go on
            try:
                self._deliver(job)
            except StoreFull as exc:
                self._stop_for(exc)
                return
            except Exception as exc:  # render bug or similar: fail this delivery, not the pass
                if self._abandoned.is_set():    # the pass ended without us: nothing to record
                    return
                log.exception("delivery %s/%s crashed", job.meta.id, job.delivery.group)
                self._try_finish(job.meta, job.delivery, FAILED, self.app.now(), attempted=True,
                                 error=f"internal error: {self.app.redact(exc)}")
            with self._count:
                self._done += 1

    def _halted(self, ann_id: str) -> bool:
        return self.stop.is_set() or self._halt.is_set() or ann_id in self._cancelled

    def _stop_for(self, exc: StoreFull) -> None:
        with self._count:
            if self._full is None:
                self._full = exc
                log.error("%s", exc)
        self._halt.set()

    def _deliver(self, job: Job) -> None:
        try:
            self._deliver_parts(job)
        finally:
            self._release_slot()

    def _deliver_parts(self, job: Job) -> None:
        meta, d = job.meta, job.delivery
        channel = self._channel_for(meta, job.group)
        body = meta.bodies[d.body]  # the title comes from this group's own message, as in previews
        parts = channel.render(body, title=title_of(body), mention_all=meta.mention_all,
                               splits=self._splits)
        limits = channel.rate_limits()
        sent = d.parts_sent
        res: SendResult | None = None
        retries = 0
        while sent < len(parts):
            self._release_slot()            # the last part's result is on disk
            if self._halted(meta.id):
                if sent != d.parts_sent or res is not None:
                    self._finish(meta, d, PENDING, self.app.now(), parts_sent=sent,
                                 attempted=res is not None, result=res,
                                 next_attempt_at=d.next_attempt_at)
                return
            ok, slot = self.limiter.reserve(limits, MAX_INLINE_WAIT)
            if not ok:
                at = datetime.fromtimestamp(slot, self.app.tz)
                self._finish(meta, d, PENDING, self.app.now(), parts_sent=sent,
                             next_attempt_at=at, attempted=res is not None, result=res,
                             error=f"rate limit: next slot {at:%H:%M:%S}")
                return
            delay = slot - time.time()
            if delay > 0:
                self.stop.wait(delay)
            if not self._take_slot(meta.id):
                continue                    # stopped: the loop's first check records
            self.limiter.left_at(limits, slot, time.time())
            res = channel.send(parts[sent])
            if not res.ok:
                if res.outcome == "transient" and res.retry_after:
                    self.limiter.block([k for k, _ in limits], time.time() + res.retry_after)
                    if res.retry_after <= MAX_INLINE_WAIT and retries < INLINE_RETRIES:
                        retries += 1          # wait what was asked, in this pass
                        self._note_attempt(meta, d, res)
                        if not limits:        # else the limiter's block makes the wait
                            self.stop.wait(res.retry_after)
                        res = None            # recorded: not again if the pass stops now
                        continue
                break
            sent += 1
            if sent < len(parts):   # on disk before the next part goes
                d.parts_sent, d.updated_at = sent, self.app.now()
                self._session.record(meta.id, d)
        now = self.app.now()
        if res is None:  # nothing left to send (all parts recorded earlier)
            self._finish(meta, d, SENT, now, parts_sent=sent)
        elif res.ok:
            self._finish(meta, d, SENT, now, parts_sent=sent, attempted=True, result=res)
        elif res.outcome == "permanent":
            self._finish(meta, d, FAILED, now, parts_sent=sent, attempted=True, result=res)
        else:
            wait_s = backoff(d.attempts + 1, res.retry_after, backoff_base())
            self._finish(meta, d, PENDING, now, parts_sent=sent, attempted=True, result=res,
                         next_attempt_at=now + timedelta(seconds=wait_s))

    def _channel_for(self, meta: AnnouncementMeta, group: Group) -> Channel:
        """The platform's reply path of a reply while it is valid, else the group's channel."""
        route = (meta.extra.get("reply_routes") or {}).get(group.id)
        if route:
            if self.routes is None:
                from broadcaster.inbound.replies import ReplyRoutes  # start-up time: loaded when first used

                self.routes = ReplyRoutes(self.app)
            channel = self.routes.channel(route, group, self._http_session())
            if channel is not None:
                return channel
        return self._channel(group)

    def _channel(self, group: Group) -> Channel:
        ch = self._channels.get(group.id)
        if ch is None:
            from broadcaster import channels  # start-up time: loaded when first used

            cls = channels.get(group.channel_type)
            ch = cls(group.channel, group.id, session=self._http_session(), tz=group.tz)
            self._channels[group.id] = ch
        return ch

    def _http_session(self):
        if self._http is None:
            from broadcaster.net.client import webhook_client  # start-up time: loaded when first used

            self._http = webhook_client(pool_maxsize=self.workers)
        return self._http

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._channels.clear()

    # -- recording ---------------------------------------------------------------
    def _note_attempt(self, meta: AnnouncementMeta, d: Delivery, res: SendResult) -> None:
        """A failed attempt retried within the pass: in the log, the delivery still pending."""
        d.attempts += 1
        d.updated_at = self.app.now()
        d.add_attempt(Attempt(at=d.updated_at, outcome=res.outcome, http_status=res.http_status,
                              code=None if res.code is None else str(res.code),
                              latency_ms=round(res.latency_ms, 1),
                              error=self.app.redact(res.reason or "")))
        self._session.record(meta.id, d)

    def _try_finish(self, *args, **kwargs) -> None:
        try:
            self._finish(*args, **kwargs)
        except StoreFull as exc:
            self._stop_for(exc)

    def _finish(
        self,
        meta: AnnouncementMeta,
        d: Delivery,
        status: str,
        now: datetime,
        *,
        parts_sent: int | None = None,
        attempted: bool = False,
        next_attempt_at: datetime | None = None,
        result: SendResult | None = None,
        error: str | None = None,
    ) -> None:
        """Give ``d`` its new state and record it (durable before this returns)."""
        d.status = status
        d.updated_at = now
        if parts_sent is not None:
            d.parts_sent = parts_sent
        d.next_attempt_at = next_attempt_at if status == PENDING else None
        if attempted:
            d.attempts += 1
        if result is not None:
            d.http_status = result.http_status
            d.code = None if result.code is None else str(result.code)
            d.latency_ms = round(result.latency_ms, 1)
        if status != SENT and result is not None and not result.ok and result.reason:
            error = self.app.redact(result.reason)
        if status == SENT:
            d.sent_at, d.last_error = now, None
        elif error:
            d.last_error = error
        if attempted:
            d.add_attempt(Attempt(
                at=now, outcome=result.outcome if result else status,
                http_status=result.http_status if result else None,
                code=d.code if result else None,
                latency_ms=round(result.latency_ms, 1) if result else None,
                error=None if status == SENT else error))
        self._session.record(meta.id, d)
        with self._count:
            r = self._result
            if status == SENT:
                r.sent += 1
            elif status == FAILED:
                r.failed += 1
            elif status == EXPIRED:
                r.expired += 1
