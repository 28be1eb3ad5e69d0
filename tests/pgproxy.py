"""A unix-socket proxy in front of the test server that can lose the answer to a COMMIT.

``CommitCutter(server)`` listens on a socket of its own (``url(db)``) and forwards
each connection to the server both ways, reading the server's side message by
message (PostgreSQL's protocol: a type byte, a 4-byte length, the body).
``cut_next_commit()`` arms it: the next ``CommandComplete`` "COMMIT" the server
sends is not passed on, and that connection is closed on both sides (with
``after``: the next one once the client sent a statement holding those bytes). The server
has committed; the client sees its connection end while it waits for the
answer — a commit whose answer was lost, as when a network path dies at that
moment.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

COMMIT = b"C" + (4 + len(b"COMMIT\0")).to_bytes(4, "big") + b"COMMIT\0"


class CommitCutter:
    def __init__(self, server) -> None:
        self.target = str(server.socket_dir / ".s.PGSQL.5432")
        self.dir = Path(tempfile.mkdtemp(prefix="pgcut-"))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.dir / ".s.PGSQL.5432"))
        self.listener.listen(16)
        self.armed = threading.Event()
        self.after: bytes | None = None         # arm once the client sent this
        self.cut = threading.Event()            # set once an answer was dropped
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db: str) -> str:
        return f"postgresql://postgres@/{db}?host={quote(str(self.dir), safe='')}"

    def cut_next_commit(self, after: bytes | None = None) -> None:
        self.cut.clear()
        self.after = after
        if after is None:
            self.armed.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()
        for s in list(self._socks):
            with contextlib.suppress(OSError):
                s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- forwarding ----------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self._socks += [client, upstream]
            threading.Thread(target=self._queries, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    def _queries(self, client: socket.socket, server: socket.socket) -> None:
        """The client's bytes to the server, as they come (arming the cut on ``after``)."""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.after is not None and self.after in data:
                    self.after = None
                    self.armed.set()
                server.sendall(data)
        _close(client, server)

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        """The server's messages, whole, to the client; the armed COMMIT answer to no one."""
        buf = b""
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                buf += data
                while len(buf) >= 5 and len(buf) >= 1 + int.from_bytes(buf[1:5], "big"):
                    size = 1 + int.from_bytes(buf[1:5], "big")
                    message, buf = buf[:size], buf[size:]
                    if message == COMMIT and self.armed.is_set():
                        self.armed.clear()
                        _close(server, client)
                        self.cut.set()
                        return
                    client.sendall(message)
        _close(server, client)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()
