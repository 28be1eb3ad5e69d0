"""A total deadline per request, not per read.

urllib3's timeouts bound each connect and each read: a server that answers
one byte every few seconds never trips them and can hold a request for as
long as it likes. Here a request runs inside a ``scope(deadline)``: every
connection it uses is watched, and when the deadline passes the reaper (one
daemon thread per process) shuts its socket down, so the blocked read returns
at once and the request fails. A socket shut down this way reads as closed,
so the pool never hands it out again.

The scope also carries the address check of the request (``check_address``):
the connection asks it for every address the host resolves to, before it
connects (see ``broadcaster.net.client``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# The timeouts of every request (``broadcaster.net.client`` applies them; channels declare
# theirs without importing the HTTP stack).
CONNECT_TIMEOUT = 3.0          # seconds: a host that does not accept within this is down
READ_TIMEOUT = 15.0            # seconds between two reads
DEADLINE = 20.0                # seconds for the whole request, answer included

Timeout = tuple[float, float]

_local = threading.local()


class Scope:
    """One request's deadline (``time.monotonic()`` seconds), the connections it used."""

    def __init__(self, deadline: float, check_address: Callable[[str], str | None] | None):
        self.deadline = deadline
        self.check_address = check_address
        self.refused: str | None = None       # why an address was refused, if one was
        self.expired = False
        self._conns: list[Any] = []

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, conn: Any) -> None:
        """Shut ``conn``'s socket down if the deadline passes while the scope is open."""
        with _reaper.lock:
            if self.expired:
                _shutdown(conn)
            else:
                self._conns.append(conn)

    def expire(self) -> None:
        """Called by the reaper (holding its lock) when the deadline has passed."""
        self.expired = True
        for conn in self._conns:
            _shutdown(conn)
        self._conns.clear()


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Reaper:
    """One thread that expires scopes at their deadlines (restarted in a forked child)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh state (at start, and in a forked child: the thread does not survive a fork)."""
        self.lock = threading.Condition()
        self._scopes: set[Scope] = set()
        self._started = False
        self._wake_at = [float("inf")]   # when the thread wakes next (it is told of earlier ones)

    def add(self, scope: Scope) -> None:
        with self.lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, args=(self.lock, self._scopes, self._wake_at),
                                 name="http-deadlines", daemon=True).start()
            self._scopes.add(scope)
            if scope.deadline < self._wake_at[0]:
                self.lock.notify()

    def remove(self, scope: Scope) -> None:
        with self.lock:
            self._scopes.discard(scope)

    @staticmethod
    def _run(lock: threading.Condition, scopes: set[Scope], wake_at: list[float]) -> None:
        with lock:
            while True:
                now = time.monotonic()
                for scope in [s for s in scopes if s.deadline <= now]:
                    scopes.discard(scope)
                    scope.expire()
                wake_at[0] = min((s.deadline for s in scopes), default=float("inf"))
                lock.wait(None if wake_at[0] == float("inf") else wake_at[0] - now)


_reaper = _Reaper()
os.register_at_fork(after_in_child=_reaper.reset)


@contextlib.contextmanager
def scope(seconds: float, check_address: Callable[[str], str | None] | None = None
          ) -> Iterator[Scope]:
    """Run the requests inside within ``seconds`` in total (this thread's requests only)."""
    current = Scope(time.monotonic() + seconds, check_address)
    _reaper.add(current)
    previous = getattr(_local, "scope", None)
    _local.scope = current
    try:
        yield current
    finally:
        _local.scope = previous
        _reaper.remove(current)


def active() -> Scope | None:
    """The scope of the request this thread is making, if any."""
    return getattr(_local, "scope", None)
