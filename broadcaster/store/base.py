"""The store interface: every piece of mutable state goes through these classes.

``Store`` is what the rest of broadcaster talks to; ``broadcaster.store.files``
implements it with TinyDB files under the state directory, and another
implementation (a database) can replace it without touching a caller. Callers
never see a path, a file or a table: only the typed records of
``broadcaster.store.records`` and plain JSON-able dicts for small documents.

The parts, and the promise each makes:

- **The queue** (``add_announcement``, ``announcement``, ``active``,
  ``archived``, ``change``): an announcement is durable when
  ``add_announcement`` returns; ``change`` is an atomic read-modify-write.
- **Dispatch** (``dispatch()`` -> ``DispatchSession``): a dispatcher *claims*
  due deliveries (``claim``), sends them and *records* each result (``record``)
  durably before it sends anything else, so a killed dispatcher repeats at most
  its sends in flight. In SQL a claim is ``SELECT … FOR UPDATE SKIP LOCKED``
  plus a lease, so several dispatchers share a fan-out; the file store has one
  dispatcher at a time (``dispatch_lock``) and journals its records.
- **Documents** (``state``, ``read_state``): small named JSON documents
  (schedule claims, rate limits, heartbeats, once-only records), each read and
  written whole under the store's lock.
- **Collections** (``collection``): records of one kind keyed by a string,
  optionally partitioned by day, for the data of newer features.
- **Tickets** (``tickets``): work orders and their history, with optimistic
  versions (``broadcaster.tickets.store`` states the promises).
- **The resident-message journal** (``journal``): what the inbound server
  received, made durable before the platform is answered, and what was done
  with it (knowledge-base misses included).
- **Damage** (``damaged``): a record that fails validation on read is set
  aside, named here, and everything else goes on.

Every write that cannot be made because the disk is full raises ``StoreFull``,
whose message names the directory; nothing half-written stays behind.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from broadcaster.errors import BroadcasterError
from broadcaster.store.records import Announcement, AnnouncementMeta, Damaged, Delivery

if TYPE_CHECKING:
    from broadcaster.delivery.ratelimit import RateLimiter
    from broadcaster.store.history import History
    from broadcaster.tickets.store import TicketStore


NAME_RE = re.compile(r"^[a-z0-9_-]+$")    # a document's or a collection's name


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a valid name of a ``kind`` (state, collection): lower-case
    letters, digits, ``_`` and ``-``, as every store accepts; ``ValueError`` otherwise."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"bad {kind} name {name!r}")
    return name


class StoreError(BroadcasterError):
    """State that cannot be read or written (the message says which and why)."""


class StoreFull(StoreError):
    """No space left where the state lives: nothing was written, nothing half-done."""


class Record(Protocol):
    """What a collection keeps: a type that turns into JSON and back (checking its shape)."""

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: Any) -> Self: ...   # raises records.BadRecord on a wrong shape


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Claim:
    """One delivery a dispatcher may send now, with the announcement it belongs to."""

    meta: AnnouncementMeta
    delivery: Delivery


class DispatchSession(ABC):
    """One dispatcher's pass over the queue: claim, send, record, close.

    Use it as a context manager (``close()`` on exit). ``record`` may be called
    from many threads at once.
    """

    @abstractmethod
    def claim(self, now: datetime, *, limit: int | None = None, only: set[str] | None = None,
              accept: Callable[[AnnouncementMeta], bool] | None = None) -> list[Claim]:
        """Pending deliveries to handle now, claimed for this session; [] when none are left.

        Claimed: pending deliveries of announcements that are neither cancelled
        nor scheduled after ``now`` (``AnnouncementMeta.due_at``), which are due
        (``next_attempt_at`` at or before ``now``), or whose announcement has
        expired, or which were written after ``now`` (the clock stepped back:
        the dispatcher re-times them). ``only``: of these announcements only;
        ``accept(meta)`` false: that announcement is left alone (for another
        dispatcher). Called again, it returns more (up to ``limit``) until none
        are left; a claim not recorded by ``close()`` is released. Before
        returning claims it makes sure their results can be recorded
        (``StoreFull`` otherwise, before anything is sent).
        """

    @abstractmethod
    def record(self, ann_id: str, delivery: Delivery) -> None:
        """Store ``delivery``'s new state; it survives a kill -9 once this returns.

        Called after every part sent and with every outcome. A delivery that was
        cancelled meanwhile stays cancelled unless ``delivery`` says it was sent
        (``records.merge``). Raises ``StoreFull`` when it cannot record: the
        dispatcher must then stop sending.
        """

    @abstractmethod
    def cancelled(self) -> set[str]:
        """Ids of claimed announcements cancelled since they were claimed (cheap; polled)."""

    @abstractmethod
    def pending(self) -> list[Claim]:
        """The pending deliveries of the announcements this session saw, as they stand now
        (announcements added meanwhile may be left out). Read-only."""

    @abstractmethod
    def close(self) -> None:
        """Make the records part of the announcements (statuses settled, finished ones
        archived) and release what is left of the claims. Safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Collection(ABC, Generic[R]):
    """Records of one type keyed by a string (a message id, a ticket number).

    A collection opened ``by_day`` keeps each record in the partition of a day
    that the caller names (the local date a message arrived); writes and
    point reads then take ``day=``, scans take a range of days, and retention
    drops whole days (``drop_before``). Keys are unique within a partition.
    Every write is durable when it returns.
    """

    name: str
    by_day: bool

    def _check_day(self, day: date | None) -> date | None:
        """``day``, after a ValueError unless it is given exactly when the collection is by day."""
        if self.by_day and day is None:
            raise ValueError(f"collection {self.name} is kept by day: give day=")
        if not self.by_day and day is not None:
            raise ValueError(f"collection {self.name} is not kept by day")
        return day

    @abstractmethod
    def add(self, key: str, record: R, *, day: date | None = None) -> bool:
        """Insert ``record`` unless ``key`` is already there; True when inserted."""

    @abstractmethod
    def put(self, key: str, record: R, *, day: date | None = None) -> None:
        """Insert or replace."""

    @abstractmethod
    def get(self, key: str, *, day: date | None = None) -> R | None: ...

    @abstractmethod
    def update(self, key: str, change: Callable[[R | None], R | None], *,
               day: date | None = None) -> R | None:
        """Atomically replace the record with ``change(current)`` (None deletes it); returns it."""

    @abstractmethod
    def delete(self, key: str, *, day: date | None = None) -> bool: ...

    @abstractmethod
    def items(self, *, since: date | None = None, until: date | None = None
              ) -> Iterator[tuple[str, R]]:
        """``(key, record)`` pairs, oldest day first, in insertion order within a day.

        ``since``/``until`` (inclusive) bound the days of a ``by_day`` collection.
        """

    @abstractmethod
    def days(self) -> list[date]:
        """The days that hold records, oldest first ([] for a collection not ``by_day``)."""

    @abstractmethod
    def drop_before(self, day: date) -> int:
        """Delete every partition older than ``day``; returns how many records went."""


class JournalShelf(ABC):
    """Where the resident-message journal lives: records (JSON objects) kept per local day,
    in the order written. ``broadcaster.inbound.journal.Journal`` batches appends into
    ``write`` calls (group commit) and keeps the promise "durable before the answer"."""

    @abstractmethod
    def write(self, day: date, records: list[dict[str, Any]], unique: list[bool]) -> list[bool]:
        """Append ``records`` to ``day`` durably (all of them, or OSError/StoreError and none
        counted); returns, per record, whether it was written. A record whose ``unique``
        flag is set is left out (False) when one with its ``key`` and the same flag is
        kept already (a store shared by several servers); the others are always written."""

    @abstractmethod
    def read(self, first: date | None = None) -> Iterator[dict[str, Any]]:
        """Every record from day ``first`` on (all without it), oldest day first."""

    @abstractmethod
    def kept(self) -> bool:
        """Whether any record was ever written here (cheap)."""

    @abstractmethod
    def purge(self, before: date) -> int:
        """Delete the days before ``before``; returns how many days went."""

    def close(self) -> None:  # noqa: B027 - most shelves hold nothing open
        """Let go of open files; safe to repeat."""


class Store(ABC):
    """All mutable state of one installation. See the module docstring for the promises."""

    #: where the state lives, as operators should read it (a directory, a redacted URL)
    location: str

    # -- setup and locks -------------------------------------------------------------
    @abstractmethod
    def ensure(self) -> None:
        """Create what the store needs (directories 0700, schema); cheap when done."""

    @abstractmethod
    def dispatch_lock(self, *, wait: float | None = 0) -> AbstractContextManager[None]:
        """Held by a process that sends, where the store needs one sender at a time.

        ``wait=0`` fails at once with ``errors.LockHeld``; ``None`` waits forever. A
        store whose claims are shared safely between dispatchers makes this a no-op.
        """

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open
        """Let go of what the store holds open (a database's connections); safe to repeat."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group several store calls of this thread into one serialised step (re-entrant)."""

    # -- the queue ---------------------------------------------------------------------
    @abstractmethod
    def add_announcement(self, ann: Announcement) -> str:
        """Store a new announcement durably; returns its id (a fresh one if ``ann``'s was taken)."""

    @abstractmethod
    def announcement(self, ann_id: str) -> Announcement | None:
        """The announcement with that id, queued or finished, or None."""

    @abstractmethod
    def active(self) -> list[Announcement]:
        """Announcements not finished yet, oldest first."""

    @abstractmethod
    def archived(self, since: datetime | None = None) -> list[Announcement]:
        """Finished announcements created since ``since`` (all without it), oldest first."""

    @abstractmethod
    def change(self, ann_id: str, fn: Callable[[Announcement], list[Delivery]]) -> Announcement:
        """Atomically apply ``fn`` to the announcement; ``fn`` changes ``ann.meta`` and the
        deliveries it returns. A finished announcement leaves the queue, a reopened one
        comes back. Raises KeyError for an unknown id."""

    @property
    @abstractmethod
    def history(self) -> History:
        """The history index: per-day summaries and log rows of finished announcements."""

    @abstractmethod
    def drop_before(self, day: date) -> int:
        """Retention: delete finished announcements created before ``day`` (whole months,
        so possibly fewer) with their history; returns how many went."""

    def nothing_queued(self) -> bool:
        """True only when certainly nothing is queued nor left by a dispatcher to settle: a
        pass then need not start one (nor load the channels). Stores that cannot tell
        cheaply answer False (the default)."""
        return False

    @abstractmethod
    def queue_mark(self) -> object:
        """A value that changes whenever an announcement is added (the daemon's wake-up)."""

    @abstractmethod
    def dispatch(self) -> DispatchSession:
        """A new dispatch session (the caller holds ``dispatch_lock`` where it matters)."""

    # -- small documents ---------------------------------------------------------------
    @abstractmethod
    def state(self, name: str, *, check: Callable[[dict], None] | None = None,
              rebuild: Callable[[], dict] | None = None
              ) -> AbstractContextManager[dict[str, Any]]:
        """The document ``name`` as a dict, locked; written once on a clean exit if changed.

        A document that cannot be read, or that ``check(doc)`` rejects (raising
        ``records.BadRecord``), is set aside (``damaged()``), logged as a warning
        and replaced by ``rebuild()`` (default: empty).
        """

    @abstractmethod
    def read_state(self, name: str, *, check: Callable[[dict], None] | None = None,
                   rebuild: Callable[[], dict] | None = None) -> dict[str, Any]:
        """A snapshot of the document, without keeping the lock (damage handled as ``state``)."""

    @abstractmethod
    def next_number(self, name: str) -> int:
        """The next number (1, 2, …) of the counter ``name``; never the same twice."""

    def claim_slot(self, job: str, slot: datetime) -> bool:
        """Claim the scheduled time ``slot`` of ``job``: True for the one caller that fires
        it, False if it was claimed already. Called inside ``state("schedule")``, whose
        lock the file store's claims rely on (its document records what fired); a store
        shared by machines keeps its own record of every slot fired (a unique key)."""
        return True

    def rate_limiter(self) -> RateLimiter | None:
        """A rate limiter whose bookings every sender on this store sees at once (a store
        shared by machines), or None: each dispatcher keeps its own bookings and merges
        them into the document ``ratelimit`` (``delivery.ratelimit.merge_state``)."""
        return None

    # -- collections ---------------------------------------------------------------------
    @abstractmethod
    def collection(self, name: str, record: type[R], *, by_day: bool = False) -> Collection[R]:
        """The collection ``name`` of ``record``s (created on first write)."""

    # -- tickets and resident messages ----------------------------------------------------
    @abstractmethod
    def tickets(self) -> TicketStore:
        """The work orders and their history (see ``broadcaster.tickets.store``)."""

    @abstractmethod
    def journal(self) -> JournalShelf:
        """Where the resident-message journal is kept (see ``JournalShelf``)."""

    # -- damage --------------------------------------------------------------------------
    @abstractmethod
    def damaged(self) -> list[Damaged]:
        """Records set aside because they could not be read, oldest first."""
