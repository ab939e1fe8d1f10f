#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that holds every HTTP request for a fixed time before forwarding it.

Why TCP and not an HTTP reverse proxy: the proxy must add latency and count requests without
spending much CPU of its own on a 2-core machine (an aiohttp proxy re-parses and re-builds every
request and response). This one only finds where each request head ends in the client's byte
stream (plus a ``Content-Length`` body, if any), sleeps ``--delay-ms``, and forwards the bytes
unchanged; responses are copied through untouched. HTTP/1.1 clients do not pipeline, so each
connection carries one request at a time and the delay is paid once per request, as a
round-trip to a remote S3 would be.

Requests are counted by kind (``list``: a GET on a bucket with ``list-type``/``prefix``/
``delimiter``; ``get``; ``head``; ``other``). A control port answers one line, ``stats`` or
``reset``, with the counters as JSON.

    python benchmarks/tcp_latency_proxy.py --target 127.0.0.1:8080 --delay-ms 20
    # prints "<proxy port> <control port>" on stdout once listening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from collections import Counter

__all__ = ["Counters", "control", "free_port", "serve"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Counters:
    """Requests seen since the last reset, by kind, and connections opened."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.connections = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "requests": sum(self.kinds.values()),
            "connections": self.connections,
            **{k: self.kinds[k] for k in ("list", "get", "head", "other")},
        }

    def reset(self) -> None:
        self.kinds.clear()
        self.connections = 0


def _kind(head: bytes) -> str:
    line = head.split(b"\r\n", 1)[0]
    method, _, rest = line.partition(b" ")
    target = rest.rpartition(b" ")[0]
    if method == b"HEAD":
        return "head"
    if method != b"GET":
        return "other"
    path, _, query = target.partition(b"?")
    listing = b"list-type=" in query or b"prefix=" in query or b"delimiter=" in query
    return "list" if listing or path.strip(b"/").count(b"/") == 0 else "get"


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0


class _Downstream(asyncio.Protocol):
    """The client's side of one proxied connection.

    Protocols, not streams: a stream pair costs a coroutine switch, a ``drain`` and a buffer copy
    per read on each side, and on a 2-core machine every microsecond the proxy spends is taken
    from the client being measured. Each request found in the client's bytes is counted and
    handed upstream ``delay`` seconds later by a timer; responses go back as they arrive, with
    the client's flow control passed on to the server's side.
    """

    def __init__(self, target: tuple[str, int], delay: float, counters: Counters) -> None:
        self.target, self.delay, self.counters = target, delay, counters
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.waiting: list[bytes] = []  # due before the server's side connected
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.counters.connections += 1
        self.connecting = asyncio.ensure_future(self._connect())  # held: a task is weakly kept

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Upstream(self), *self.target)
        except OSError:
            self.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        loop = asyncio.get_running_loop()
        while (end := buf.find(b"\r\n\r\n")) >= 0:  # a whole head, and its body if any
            head = buf[: end + 4]
            whole = end + 4 + _content_length(head)
            if len(buf) < whole:
                break
            request, buf = buf[:whole], buf[whole:]
            self.counters.kinds[_kind(head)] += 1
            loop.call_later(self.delay, self._forward, request)
        self.buf = buf

    def _forward(self, request: bytes) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(request)
        elif not self.closed:
            self.waiting.append(request)

    def pause_writing(self) -> None:  # the client reads slower than the server sends
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:  # the client left: end both
        self.close()

    def close(self) -> None:
        self.closed = True
        for side in (self.transport, self.upstream and self.upstream.transport):
            if side is not None:
                side.close()


class _Upstream(asyncio.Protocol):
    """The server's side: bytes are copied to the client untouched; its end ends both."""

    def __init__(self, down: _Downstream) -> None:
        self.down = down
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.down.closed:
            transport.close()
            return
        self.transport = transport
        self.down.upstream = self
        for request in self.down.waiting:
            transport.write(request)
        self.down.waiting.clear()

    def data_received(self, data: bytes) -> None:
        if self.down.transport is not None:
            self.down.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.close()  # a transport flushes what it holds before it closes


async def serve(
    target: tuple[str, int], delay_ms: float, port: int, control_port: int
) -> None:  # pragma: no cover - exercised by the benchmark
    """Proxy 127.0.0.1:``port`` to ``target`` until cancelled; counters on ``control_port``."""
    counters = Counters()
    delay = delay_ms / 1000
    loop = asyncio.get_running_loop()

    async def ctl(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        cmd = (await cr.readline()).strip()
        snap = counters.snapshot()
        if cmd == b"reset":
            counters.reset()
        cw.write(json.dumps(snap).encode() + b"\n")
        await cw.drain()
        cw.close()

    proxy = await loop.create_server(
        lambda: _Downstream(target, delay, counters), "127.0.0.1", port, backlog=1024
    )
    ctl_server = await asyncio.start_server(ctl, "127.0.0.1", control_port)
    print(port, control_port, flush=True)
    async with proxy, ctl_server:
        await asyncio.gather(proxy.serve_forever(), ctl_server.serve_forever())


def control(control_port: int, command: str = "stats") -> dict[str, int]:
    """Ask a running proxy for its counters (``reset`` also zeroes them)."""
    with socket.create_connection(("127.0.0.1", control_port), timeout=10) as s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="HOST:PORT of the server")
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--control-port", type=int, default=0, help="0: a free port")
    a = p.parse_args(argv)
    host, _, port = a.target.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        ports = a.port or free_port(), a.control_port or free_port()
        asyncio.run(serve((host, int(port)), a.delay_ms, *ports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
