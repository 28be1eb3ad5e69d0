"""The typed rows every store keeps: announcements, their deliveries, each attempt.

These are the records at the store boundary. A store implementation turns
them into its own form (a TinyDB file, PostgreSQL rows) with ``to_json()``
and back with ``from_json()``, which checks the shape of what it reads and
raises ``BadRecord`` with the reason when it is wrong (a damaged file, a
hand edit). Times are aware datetimes; JSON holds them as ISO 8601 with offset.

Statuses:

- a delivery: ``pending -> sent | failed | expired | cancelled``;
- an announcement: ``queued -> sending -> done``, or ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broadcaster.timeparse import iso

PENDING, SENT, FAILED, CANCELLED, EXPIRED = "pending", "sent", "failed", "cancelled", "expired"
DELIVERY_STATES = (PENDING, SENT, FAILED, CANCELLED, EXPIRED)
QUEUED, SENDING, DONE = "queued", "sending", "done"
ANNOUNCEMENT_STATES = (QUEUED, SENDING, DONE, CANCELLED)
HISTORY_KEEP = 20             # attempts kept per delivery


class BadRecord(ValueError):
    """A stored record whose shape is wrong; the message says which field and why."""


# -- field readers: each checks one value of a JSON object --------------------------

def _get(d: dict, key: str, kinds: type | tuple, *, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None:
        if optional:
            return None
        raise BadRecord(f"{key}: missing")
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise BadRecord(f"{key}: expected {_names(kinds)}, got {type(value).__name__}")
    return value


def _tuple(kinds: type | tuple) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple) -> str:
    return " or ".join(k.__name__ for k in _tuple(kinds))


def _time(d: dict, key: str, *, optional: bool = False) -> datetime | None:
    text = _get(d, key, str, optional=optional)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRecord(f"{key}: not an ISO 8601 time: {text[:40]!r}") from None
    if value.tzinfo is None:
        raise BadRecord(f"{key}: time without an offset: {text[:40]!r}")
    return value


def _choice(d: dict, key: str, choices: tuple[str, ...]) -> str:
    value = _get(d, key, str)
    if value not in choices:
        raise BadRecord(f"{key}: {value[:20]!r} is not one of {', '.join(choices)}")
    return value


def _code(d: dict) -> str | None:
    value = _get(d, "code", (str, int), optional=True)
    return None if value is None else str(value)


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadRecord(f"{what}: expected an object, got {type(value).__name__}")
    return value


def check_shape(doc: Any, what: str, fields: dict[str, type | tuple | str]) -> dict:
    """``doc`` is an object whose ``fields`` (all optional) have the given types; the
    type ``"time"`` is an ISO 8601 time with an offset, ``"numbers"`` a list of numbers.
    For the shape checks of small state documents (``Store.state(check=…)``)."""
    d = _object(doc, what)
    for key, kinds in fields.items():
        try:
            if kinds == "time":
                _time(d, key, optional=True)
            elif kinds == "numbers":
                value = d.get(key, [])
                if not isinstance(value, list) or not all(
                        isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                    raise BadRecord(f"{key}: expected a list of numbers")
            else:
                _get(d, key, kinds, optional=True)
        except BadRecord as exc:
            raise BadRecord(f"{what}: {exc}") from None
    return d


# -- records ------------------------------------------------------------------------

@dataclass(slots=True)
class Attempt:
    """One try at one delivery, as the log shows it."""

    at: datetime
    outcome: str                      # sent | transient | permanent | a delivery status
    http_status: int | None = None
    code: str | None = None
    latency_ms: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "outcome": self.outcome, "http_status": self.http_status,
                "code": self.code, "latency_ms": self.latency_ms, "error": self.error}

    @classmethod
    def from_json(cls, d: Any) -> Attempt:
        d = _object(d, "history entry")
        return cls(_time(d, "at"), _get(d, "outcome", str), _get(d, "http_status", int, optional=True),
                   _code(d), _get(d, "latency_ms", (int, float), optional=True),
                   _get(d, "error", str, optional=True))


@dataclass(slots=True)
class Delivery:
    """One announcement to one group: its state, its last answer, its attempts."""

    group: str
    body: str                         # key of the group's message in the announcement's bodies
    status: str = PENDING
    attempts: int = 0
    parts_sent: int = 0               # parts of a multi-part message already sent
    next_attempt_at: datetime | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    http_status: int | None = None
    code: str | None = None
    latency_ms: float | None = None
    history: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group, "body": self.body, "status": self.status,
            "attempts": self.attempts, "parts_sent": self.parts_sent,
            "next_attempt_at": iso(self.next_attempt_at), "updated_at": iso(self.updated_at),
            "sent_at": iso(self.sent_at), "last_error": self.last_error,
            "http_status": self.http_status, "code": self.code, "latency_ms": self.latency_ms,
            "history": [a.to_json() for a in self.history],
        }

    @classmethod
    def from_json(cls, d: Any) -> Delivery:
        d = _object(d, "delivery")
        history = d.get("history") or []
        if not isinstance(history, list):
            raise BadRecord("history: expected a list")
        return cls(
            group=_get(d, "group", str), body=_get(d, "body", str),
            status=_choice(d, "status", DELIVERY_STATES),
            attempts=_get(d, "attempts", int, optional=True) or 0,
            parts_sent=_get(d, "parts_sent", int, optional=True) or 0,
            next_attempt_at=_time(d, "next_attempt_at", optional=True),
            updated_at=_time(d, "updated_at", optional=True),
            sent_at=_time(d, "sent_at", optional=True),
            last_error=_get(d, "last_error", str, optional=True),
            http_status=_get(d, "http_status", int, optional=True),
            code=_code(d),
            latency_ms=_get(d, "latency_ms", (int, float), optional=True),
            history=[Attempt.from_json(a) for a in history],
        )

    def copy(self) -> Delivery:
        return Delivery(self.group, self.body, self.status, self.attempts, self.parts_sent,
                        self.next_attempt_at, self.updated_at, self.sent_at, self.last_error,
                        self.http_status, self.code, self.latency_ms, list(self.history))

    def add_attempt(self, attempt: Attempt) -> None:
        self.history = [*self.history, attempt][-HISTORY_KEEP:]


_META_FIELDS = frozenset({
    "id", "created_at", "scheduled_for", "expires_at", "status", "source", "created_by",
    "urgent", "mention_all", "title", "bodies", "updated_at", "finished_at", "cancelled_at",
    "reply"})


@dataclass(slots=True)
class AnnouncementMeta:
    """What an announcement is: when, how urgent, from where, and the message bodies."""

    id: str
    created_at: datetime
    scheduled_for: datetime
    expires_at: datetime
    status: str
    source: str
    title: str
    bodies: dict[str, str]            # digest -> Markdown; identical messages are stored once
    urgent: bool = False
    mention_all: bool = False
    created_by: str | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    reply: bool = False               # an answer to residents (see broadcaster.inbound.replies)
    extra: dict[str, Any] = field(default_factory=dict)   # a feature's own fields, kept as given

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "created_at": iso(self.created_at),
            "scheduled_for": iso(self.scheduled_for), "expires_at": iso(self.expires_at),
            "status": self.status, "source": self.source, "created_by": self.created_by,
            "urgent": self.urgent, "mention_all": self.mention_all, "title": self.title,
            "bodies": self.bodies, "updated_at": iso(self.updated_at),
            **({"finished_at": iso(self.finished_at)} if self.finished_at else {}),
            **({"cancelled_at": iso(self.cancelled_at)} if self.cancelled_at else {}),
            **({"reply": True} if self.reply else {}),
            **self.extra,
        }

    @classmethod
    def from_json(cls, d: Any) -> AnnouncementMeta:
        d = _object(d, "announcement")
        bodies = _get(d, "bodies", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in bodies.items()):
            raise BadRecord("bodies: expected text messages")
        return cls(
            id=_get(d, "id", str), created_at=_time(d, "created_at"),
            scheduled_for=_time(d, "scheduled_for"), expires_at=_time(d, "expires_at"),
            status=_choice(d, "status", ANNOUNCEMENT_STATES),
            source=_get(d, "source", str, optional=True) or "",
            title=_get(d, "title", str, optional=True) or "",
            bodies=bodies,
            urgent=bool(_get(d, "urgent", bool, optional=True)),
            mention_all=bool(_get(d, "mention_all", bool, optional=True)),
            created_by=_get(d, "created_by", str, optional=True),
            updated_at=_time(d, "updated_at", optional=True),
            finished_at=_time(d, "finished_at", optional=True),
            cancelled_at=_time(d, "cancelled_at", optional=True),
            reply=bool(_get(d, "reply", bool, optional=True)),
            extra={k: v for k, v in d.items() if k not in _META_FIELDS},
        )

    def due_at(self, now: datetime) -> datetime:
        """When its deliveries may go: ``scheduled_for``, except that an announcement
        queued to go at once is due now even if it was written while the clock was ahead."""
        if self.scheduled_for <= self.created_at:
            return min(self.scheduled_for, now)
        return self.scheduled_for


@dataclass
class Announcement:
    """An announcement and one delivery per targeted group."""

    meta: AnnouncementMeta
    deliveries: list[Delivery] = field(default_factory=list)
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def status(self) -> str:
        return self.meta.status

    @property
    def finished(self) -> bool:
        return self.meta.status in (DONE, CANCELLED)

    def _where(self, group_id: str) -> int | None:
        if self._index is None or len(self._index) != len(self.deliveries):
            self._index = {d.group: i for i, d in enumerate(self.deliveries)}
        return self._index.get(group_id)

    def delivery(self, group_id: str) -> Delivery | None:
        i = self._where(group_id)
        return None if i is None else self.deliveries[i]

    def replace(self, delivery: Delivery) -> bool:
        """Put ``delivery`` in place of the row of its group; False if the group has none."""
        i = self._where(delivery.group)
        if i is None:
            return False
        self.deliveries[i] = delivery
        return True

    def body(self, delivery: Delivery) -> str:
        return self.meta.bodies[delivery.body]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(DELIVERY_STATES, 0)
        for d in self.deliveries:
            out[d.status] += 1
        return out

    def settle(self, now: datetime) -> None:
        """Recompute the announcement's status from its deliveries."""
        if self.meta.status == CANCELLED:
            return
        c = self.counts()
        if c[PENDING] == 0:
            self.meta.status = DONE
            self.meta.finished_at = self.meta.finished_at or now
        elif c[SENT] or c[FAILED] or any(d.attempts for d in self.deliveries):
            self.meta.status = SENDING
        self.meta.updated_at = now

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        m = self.meta
        return {
            "id": m.id, "created_at": iso(m.created_at), "scheduled_for": iso(m.scheduled_for),
            "expires_at": iso(m.expires_at), "status": m.status, "source": m.source or None,
            "title": m.title or None, "urgent": m.urgent, "targets": len(self.deliveries),
            "sent": c[SENT], "failed": c[FAILED], "pending": c[PENDING],
            "cancelled": c[CANCELLED], "expired": c[EXPIRED],
        }

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta.to_json(), "deliveries": [d.to_json() for d in self.deliveries]}

    @classmethod
    def from_json(cls, d: Any) -> Announcement:
        d = _object(d, "announcement")
        rows = d.get("deliveries")
        if not isinstance(rows, list):
            raise BadRecord("deliveries: expected a list")
        ann = cls(AnnouncementMeta.from_json(d.get("meta")), [Delivery.from_json(r) for r in rows])
        ann.check()
        return ann

    def check(self) -> None:
        """Cross-field checks: every delivery's body exists, no group twice."""
        seen: set[str] = set()
        for d in self.deliveries:
            if d.body not in self.meta.bodies:
                raise BadRecord(f"delivery {d.group}: body {d.body[:20]!r} missing")
            if d.group in seen:
                raise BadRecord(f"delivery {d.group}: group listed twice")
            seen.add(d.group)


def merge(current: Delivery, recorded: Delivery) -> Delivery:
    """The row after a dispatcher's ``recorded`` state meets the stored ``current`` one.

    A delivery cancelled meanwhile stays cancelled unless it was in fact sent; a
    delivery already recorded as sent is never taken back.
    """
    if current.status == SENT:
        return current
    if current.status == CANCELLED and recorded.status != SENT:
        return current
    return recorded


@dataclass(frozen=True)
class Damaged:
    """A state file that could not be read, set aside so that everything else goes on."""

    name: str            # what it held: "announcement 20261122-…", "state schedule"
    path: str            # where it lies now (var/damaged/…)
    reason: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "reason": self.reason, "at": iso(self.at)}
