#!/usr/bin/env python3
"""A reverse proxy on 127.0.0.1 that adds a fixed delay to every request and counts them.

It stands between a client and a loopback S3 server (moto) so that benchmarks see the per-request
latency of a real object store: each request waits ``delay_ms`` before it is forwarded. Requests
are forwarded unchanged (method, path, query, headers, body), so signed S3 requests still verify.

Counters: ``GET /__latency_proxy__/stats`` answers ``{"requests": N, "by_method": {...},
"max_in_flight": M}`` and ``POST /__latency_proxy__/reset`` zeroes them (S3 bucket names cannot
contain ``_``, so these paths never shadow a bucket).

Run standalone::

    python benchmarks/latency_proxy.py --target http://127.0.0.1:5000 --delay-ms 20 --port 8020

or in-process with :func:`start_in_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

__all__ = ["Proxy", "free_port", "make_app", "proxy_stats", "reset_stats", "start_in_thread"]

CONTROL = "/__latency_proxy__"
# Hop-by-hop headers, and Content-Length, which aiohttp sets from the body it sends.
_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_app(target: str, delay_ms: float) -> web.Application:
    """The aiohttp application forwarding to ``target`` after ``delay_ms``."""
    target = target.rstrip("/")
    delay = delay_ms / 1000.0
    counts: Counter[str] = Counter()
    inflight = {"now": 0, "max": 0}
    app = web.Application(client_max_size=1 << 30)

    async def on_startup(app: web.Application) -> None:
        app["session"] = ClientSession(
            connector=TCPConnector(limit=0, force_close=False),
            timeout=ClientTimeout(total=300),
            auto_decompress=False,
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def stats(request: web.Request) -> web.Response:
        body = {
            "requests": sum(counts.values()),
            "by_method": dict(counts),
            "max_in_flight": inflight["max"],
        }
        return web.json_response(body)

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        inflight["max"] = inflight["now"]
        return web.json_response({"requests": 0})

    async def forward(request: web.Request) -> web.StreamResponse:
        counts[request.method] += 1
        inflight["now"] += 1
        inflight["max"] = max(inflight["max"], inflight["now"])
        try:
            return await _forward(request)
        finally:
            inflight["now"] -= 1

    async def _forward(request: web.Request) -> web.StreamResponse:
        if delay > 0:
            await asyncio.sleep(delay)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        session: ClientSession = request.app["session"]
        async with session.request(
            request.method,
            target + request.rel_url.raw_path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP}
            if request.method == "HEAD":  # no body: keep the size the upstream announced
                head = web.StreamResponse(status=upstream.status, headers=out)
                length = upstream.headers.get("Content-Length")
                if length is not None:
                    head.content_length = int(length)
                await head.prepare(request)
                await head.write_eof()
                return head
            return web.Response(status=upstream.status, headers=out, body=payload)

    app.router.add_get(f"{CONTROL}/stats", stats)
    app.router.add_post(f"{CONTROL}/reset", reset)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


@dataclass
class Proxy:
    """A proxy running in a background thread; ``url`` is its address."""

    url: str
    _loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        fut.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def start_in_thread(target: str, delay_ms: float, port: int | None = None) -> Proxy:
    """Start the proxy on 127.0.0.1 in a daemon thread (its own event loop)."""
    port = port or free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(target, delay_ms), access_log=None)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("latency proxy did not start")
    return Proxy(f"http://127.0.0.1:{port}", loop, runner, thread)


def proxy_stats(url: str) -> dict[str, object]:
    """The proxy's request counters."""
    with urllib.request.urlopen(f"{url}{CONTROL}/stats", timeout=10) as r:
        return json.loads(r.read())


def reset_stats(url: str) -> None:
    """Zero the proxy's request counters."""
    req = urllib.request.Request(f"{url}{CONTROL}/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


@contextlib.contextmanager
def running(target: str, delay_ms: float) -> Iterator[Proxy]:
    """``start_in_thread`` as a context manager."""
    proxy = start_in_thread(target, delay_ms)
    try:
        yield proxy
    finally:
        proxy.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="upstream base URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    a = p.parse_args()
    port = a.port or free_port()
    print(f"http://127.0.0.1:{port}", flush=True)
    web.run_app(
        make_app(a.target, a.delay_ms),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        backlog=1024,
    )


if __name__ == "__main__":
    main()
