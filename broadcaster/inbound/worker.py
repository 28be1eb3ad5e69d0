"""The work after the answer: each stored message is matched and answered, in order.

For a message (``InboundMessage``), in one background thread:

1. a bot's message (ours included) is ignored;
2. with ``<root>/tickets.yaml``, ``broadcaster.tickets.intake.open_from_message(app, msg)``
   may open a work order (it queues the acknowledgement and the handler's notice
   itself); a complaint wins over a question, so then no answer is given;
3. otherwise the knowledge base decides (``broadcaster.faq.knowledge``): the
   answers of the messages worked together are queued as replies
   (``replies.queue_replies``) and handed to the reply sender; an addressed
   question nothing answers is recorded as a miss;
4. an ``outcome`` record closes the message in the journal.

A join (``InboundJoin``) feeds the welcome batching of ``sources.members``.
Messages stored but not closed when the server stopped are worked at start.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.inbound.journal import Journal
from broadcaster.inbound.message import InboundJoin, InboundMessage
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App

log = logging.getLogger(__name__)

REPLAY_WINDOW = timedelta(hours=1)   # a stored message older than this at start-up is not answered
BATCH = 200                          # messages worked (and their answers queued) together


class Worker:
    def __init__(self, app: App, journal: Journal, replies, stop: threading.Event):
        self.app = app
        self.journal = journal
        self.replies = replies
        self.stop = stop
        self.knowledge = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.processed = 0

    def start(self, backlog: list[dict], answered: dict[str, str] | None = None) -> None:
        """Load the knowledge base (cached: well under a second), then work in a thread.

        ``backlog``: stored messages without an outcome; those in ``answered`` (message
        key -> reply announcement) had their answer queued already and are only closed.
        """
        self._load_knowledge()
        done = answered or {}
        for rec in [r for r in backlog if r.get("key") in done]:
            self.journal.append({"type": "outcome", "key": rec["key"], "group": rec.get("group"),
                                 "at": iso(self.app.now()), "reply": done[rec["key"]],
                                 "entry": None, "missed": False, "ticket": None}, durable=False)
        backlog = [r for r in backlog if r.get("key") not in done]
        self._thread = threading.Thread(target=self._run, args=(backlog,), name="inbound-worker",
                                        daemon=True)
        self._thread.start()

    def submit(self, event: InboundMessage | InboundJoin) -> None:
        self._queue.put(event)

    def join(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------
    def _run(self, backlog: list[dict]) -> None:
        oldest = self.app.now() - REPLAY_WINDOW
        events = []
        for rec in backlog:
            received = rec.get("received_at")
            if received and datetime.fromisoformat(received) < oldest:
                self.journal.append({"type": "outcome", "key": rec.get("key"), "group": rec.get("group"),
                                     "at": iso(self.app.now()), "skipped": "too old"}, durable=False)
                continue
            try:
                events.append(_event_from(rec))
            except (KeyError, TypeError, ValueError):
                log.error("inbound: cannot read stored record %s", rec.get("key"))
        for i in range(0, len(events), BATCH):
            self.process_all(events[i:i + BATCH])
        while not self.stop.is_set():
            batch = [self._queue.get()]
            while len(batch) < BATCH:   # what arrived meanwhile is worked (and answered) together
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            self.process_all([e for e in batch if e is not None])
            if done:
                return

    def _load_knowledge(self) -> None:
        if not (self.app.root / "faq").is_dir():
            return
        from broadcaster.errors import BroadcasterError  # start-up time: loaded when first used
        from broadcaster.faq.knowledge import Knowledge  # start-up time: loaded when first used

        try:
            self.knowledge = Knowledge(self.app)
        except BroadcasterError as exc:
            log.error("faq/ not loaded, no answers until it is fixed:\n%s", self.app.redact(exc))
            return
        since = self.app.now() - self.knowledge.cooldown
        from broadcaster.inbound import journal  # start-up time: loaded when first used

        for rec in journal.read(self.app.store, since, self.app.tz):
            if rec.get("type") == "outcome" and rec.get("entry") and rec.get("group") and rec.get("at"):
                self.knowledge.remember(rec["group"], rec["entry"], datetime.fromisoformat(rec["at"]))

    # -- events ----------------------------------------------------------------------
    def process_all(self, events: list[InboundMessage | InboundJoin]) -> None:
        """Work ``events`` in order; their answers are queued together, then their outcomes written."""
        from broadcaster.inbound.replies import queue_replies  # start-up time: loaded when first used

        answers, outcomes = [], []
        for event in events:
            try:
                if isinstance(event, InboundJoin):
                    self._join(event)
                else:
                    outcome, answer = self._message(event)
                    outcomes.append(outcome)
                    if answer is not None:
                        answers.append(answer)
            except Exception:   # one bad message must not stop the others
                log.exception("inbound: could not work %s", getattr(event, "key", "?"))
            self.processed += 1
        by_key = {o["key"]: o for o in outcomes}
        if answers:
            try:
                for ann_id, batch in queue_replies(self.app, answers):
                    self.replies.add(ann_id)
                    for a in batch:
                        by_key[a.key]["reply"] = ann_id
            except Exception:
                log.exception("inbound: could not queue %d answers", len(answers))
                return   # no outcome written: worked again at the next start
        for outcome in outcomes:
            self.journal.append(outcome, durable=False)

    def process(self, event: InboundMessage | InboundJoin) -> None:
        self.process_all([event])

    def _join(self, join: InboundJoin) -> None:
        from broadcaster.errors import BroadcasterError  # start-up time: loaded when first used
        from broadcaster.sources.members import record_joins  # start-up time: loaded when first used

        try:
            record_joins(self.app, join.group_id, list(join.names))
        except BroadcasterError as exc:
            log.warning("inbound join %s: %s", join.chat, self.app.redact(exc))
        self.journal.append({"type": "outcome", "key": join.key, "group": join.group_id,
                             "at": iso(self.app.now()), "joined": len(join.names)}, durable=False)

    def _message(self, msg: InboundMessage):
        """(outcome record, Answer or None) for one message."""
        from broadcaster.inbound.replies import Answer  # start-up time: loaded when first used

        answer = None
        now = self.app.now()
        outcome = {"type": "outcome", "key": msg.key, "group": msg.group_id, "at": iso(now),
                   "entry": None, "score": None, "missed": False, "ticket": None, "reply": None}
        if msg.is_bot:
            outcome["ignored"] = "bot"
        elif (ticket := self._ticket(msg)) is not None:
            outcome["ticket"] = str(getattr(ticket, "id", ticket))
        elif self.knowledge is not None:
            decision = self.knowledge.decide(text=msg.text, group_id=msg.group_id,
                                             addressed=msg.addressed, is_bot=msg.is_bot, now=now)
            outcome["score"] = round(decision.match.score, 3)
            if decision.answer is not None:
                route = msg.reply_route.as_json() if msg.reply_route else None
                answer = Answer(msg.group_id, decision.answer, route, msg.key)
                outcome["entry"] = decision.match.entry.id
            elif decision.missed:
                outcome["missed"] = True
                self.journal.append({"type": "miss", "key": msg.key, "group": msg.group_id,
                                     "text": msg.text[:500], "at": iso(now)}, durable=False)
        return outcome, answer

    def _ticket(self, msg: InboundMessage):
        """A work order opened from ``msg`` (None: no tickets.yaml, no match, or not built yet)."""
        if not (self.app.root / "tickets.yaml").is_file():
            return None
        try:
            from broadcaster.tickets.intake import open_from_message  # start-up time: loaded when first used
        except ImportError:
            return None
        before = set(self.app.store.active_ids())
        try:
            ticket = open_from_message(self.app, msg)
        except Exception:
            log.exception("inbound: opening a ticket for %s failed", msg.key)
            return None
        if ticket is not None:   # its acknowledgement and notices: sent now, not at the next pass
            for ann_id in set(self.app.store.active_ids()) - before:
                self.replies.add_other(ann_id)
        return ticket


def _event_from(rec: dict) -> InboundMessage | InboundJoin:
    if rec.get("type") == "join":
        return InboundJoin(rec["platform"], rec["chat"], rec["event_id"], tuple(rec["names"]),
                           rec.get("group"))
    return InboundMessage.from_json(rec)

