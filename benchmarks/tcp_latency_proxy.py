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


async def _requests_upstream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, counters: Counters
) -> None:
    """Client -> server: one request at a time, each forwarded ``delay`` seconds late."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            data = await reader.read(65536)
            if not data:  # the client closed: it has read every response it wanted
                return
            buf += data
            end = buf.find(b"\r\n\r\n")
        head, buf = buf[: end + 4], buf[end + 4 :]
        need = _content_length(head)
        while len(buf) < need:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
        body, buf = buf[:need], buf[need:]
        counters.kinds[_kind(head)] += 1
        await asyncio.sleep(delay)
        writer.write(head + body)
        await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(262144):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def serve(
    target: tuple[str, int], delay_ms: float, port: int, control_port: int
) -> None:  # pragma: no cover - exercised by the benchmark
    """Proxy 127.0.0.1:``port`` to ``target`` until cancelled; counters on ``control_port``."""
    counters = Counters()
    delay = delay_ms / 1000

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        counters.connections += 1
        try:
            ur, uw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        up = asyncio.ensure_future(_requests_upstream(cr, uw, delay, counters))
        down = asyncio.ensure_future(_copy(ur, cw))
        try:  # either side closing ends the connection
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            for w in (cw, uw):
                with contextlib.suppress(Exception):
                    w.close()

    async def ctl(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        cmd = (await cr.readline()).strip()
        snap = counters.snapshot()
        if cmd == b"reset":
            counters.reset()
        cw.write(json.dumps(snap).encode() + b"\n")
        await cw.drain()
        cw.close()

    proxy = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
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
