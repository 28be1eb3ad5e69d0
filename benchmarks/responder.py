"""A lean stand-in for a WeCom robot, for throughput benchmarks on a small machine.

The platform simulator (tests/simulator.py) checks every body as the platform
does, which costs about 0.3 ms of CPU a request: on a 2-core machine that CPU
comes out of the cores the dispatchers under test share, though a real
platform spends it on its own machines. This responder only frames HTTP/1.1
requests (keep-alive, Content-Length bodies) on one asyncio loop and answers
each with WeCom's success body after a fixed latency, counting what it
answered. Run standalone::

    python -m benchmarks.responder --latency-ms 50     # prints its base URL

``GET /count`` answers the number of POSTs answered so far.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

BODY = b'{"errcode":0,"errmsg":"ok"}'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)


class Responder(asyncio.Protocol):
    """One connection: each complete request is answered ``latency`` seconds after it came."""

    answered = 0

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end_of_head := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end_of_head]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = end_of_head + 4 + length
            if len(self.buffer) < end:
                return                       # the body is still coming
            self.buffer = self.buffer[end:]
            if head.startswith(b"GET /count"):
                text = str(Responder.answered).encode()
                self._write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text) + text)
            else:
                asyncio.get_running_loop().call_later(self.latency, self._answer)

    def _answer(self) -> None:
        Responder.answered += 1
        self._write(OK)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Responder(latency), "127.0.0.1", port, backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
