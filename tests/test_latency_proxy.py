"""The S3 benchmarks' latency proxy (benchmarks/tcp_latency_proxy.py), as the benchmark runs it:
a subprocess in front of a real HTTP server on loopback. Its figures are only as good as this:
every request held, counted by kind, and every byte of every answer passed through."""

from __future__ import annotations

import http.client
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
PROXY = REPO / "benchmarks" / "tcp_latency_proxy.py"
BIG = bytes(range(256)) * (5 * 4096)  # 5 MiB: far past a transport's write buffer
DELAY = 0.05


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tcp_latency_proxy", PROXY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tlp = _load()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients use it

    def do_GET(self) -> None:
        body = BIG if self.path.endswith("/big") else self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxied() -> Iterator[tuple[int, int]]:
    """(proxy port, control port) in front of a real HTTP server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{server.server_address[1]}"
    proc = subprocess.Popen(
        [sys.executable, str(PROXY), "--target", target, "--delay-ms", str(DELAY * 1000)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port, control = (int(x) for x in proc.stdout.readline().split())
        yield port, control
    finally:
        proc.terminate()
        proc.wait(10)
        server.shutdown()
        server.server_close()


def _timed(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b""
) -> tuple[float, bytes]:
    start = time.monotonic()
    conn.request(method, path, body=body or None)
    response = conn.getresponse()
    data = b""
    while chunk := response.read(4096):  # a slow reader: the proxy must pause the server side
        data += chunk
    return time.monotonic() - start, data


def test_each_request_is_held_counted_and_answered_whole(proxied: tuple[int, int]) -> None:
    port, control = proxied
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answers = [
        _timed(conn, "GET", "/bucket/big"),
        _timed(conn, "GET", "/bucket?list-type=2&delimiter=/"),
        _timed(conn, "GET", "/bucket/big"),
        _timed(conn, "HEAD", "/bucket/key"),
        _timed(conn, "PUT", "/bucket/key", b"0123456789"),
    ]
    conn.close()
    assert [data for _, data in answers] == [
        BIG,
        b"/bucket?list-type=2&delimiter=/",
        BIG,
        b"",
        b"9876543210",
    ]
    assert all(elapsed >= DELAY for elapsed, _ in answers)  # each one held, on one connection
    counts = tlp.control(control, "reset")
    assert counts == {
        "requests": 5,
        "connections": 1,
        "list": 1,
        "get": 2,
        "head": 1,
        "other": 1,
    }
    assert tlp.control(control)["requests"] == 0


def test_a_server_that_closes_ends_the_client_connection(proxied: tuple[int, int]) -> None:
    port, _ = proxied
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /bucket/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # ends only if the proxy closes (else: timeout)
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n/bucket/small")
