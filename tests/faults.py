"""A fault-injecting HTTP proxy on 127.0.0.1, for testing retries against real servers.

Put it in front of the moto server (or any HTTP server) and point the client at ``proxy.endpoint``::

    with FaultProxy(s3.endpoint, error_rate=0.2, cut_rate=0.05, seed=1) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        ...  # run the code under test
        assert proxy.injected > 0

Each request is either forwarded unchanged (method, path, headers including ``Host``, body) or
answered with a fault:

- ``"500"`` / ``"503"``: an S3-style XML error (``InternalError`` / ``SlowDown``);
- ``"400"``: an S3-style ``InvalidRequest`` (not transient: for tests of fallbacks);
- ``"cut"``: the connection is reset without a response;
- ``"slow"``: the request is forwarded after ``delay`` seconds (for client timeouts).

``first_faults`` gives the faults of the first requests, in arrival order; after those, each
request draws from a seeded RNG: ``error_rate`` is the share answered 500/503 (``statuses`` picks
which) and ``cut_rate`` the share cut. Counters (``requests``, ``forwarded``, ``injected``,
``cuts``, ``by_fault``) are thread-safe; ``reset_counters()`` zeroes them.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]

_HOP_BY_HOP = frozenset(
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

_S3_ERRORS = {
    "400": (400, "InvalidRequest", "An injected request the server refuses."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}


class FaultProxy:
    """Forward HTTP requests to ``target``, injecting 5xx answers, cut connections and delays.

    Parameters
    ----------
    target
        Base URL of the real server, e.g. ``http://127.0.0.1:5000``.
    error_rate
        Share of requests (after ``first_faults``) answered with one of ``statuses``.
    cut_rate
        Share of requests (after ``first_faults``) whose connection is reset without an answer.
    statuses
        Error statuses to draw from: ``"500"`` and/or ``"503"``.
    first_faults
        Faults for the first requests in arrival order: ``"400"``, ``"500"``, ``"503"``,
        ``"cut"``, ``"slow"`` or ``"ok"`` (forward). ``reset_counters()`` starts them over.
    delay
        Seconds a ``"slow"`` request waits before being forwarded.
    seed
        Seed of the RNG that picks faults, so a run's fault pattern is reproducible.
    """

    def __init__(
        self,
        target: str,
        *,
        error_rate: float = 0.0,
        cut_rate: float = 0.0,
        statuses: Sequence[str] = ("503", "500"),
        first_faults: Sequence[str] = (),
        delay: float = 0.0,
        seed: int = 0,
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"target must be an http:// URL, not {target!r}")
        self.target_host = parts.hostname
        self.target_port = parts.port or 80
        self.error_rate = error_rate
        self.cut_rate = cut_rate
        self.statuses = tuple(statuses)
        self.first_faults = list(first_faults)
        self.delay = delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.by_fault: Counter[str] = Counter()
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- counters ---------------------------------------------------------------------------

    @property
    def forwarded(self) -> int:
        """Requests passed to the target (including slow ones)."""
        return self.by_fault["ok"] + self.by_fault["slow"]

    @property
    def injected(self) -> int:
        """Requests answered with an error status or cut."""
        return self.requests - self.forwarded

    @property
    def cuts(self) -> int:
        return self.by_fault["cut"]

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_fault.clear()

    def _choose(self) -> str:
        with self._lock:
            index = self.requests
            self.requests += 1
            if index < len(self.first_faults):
                fault = self.first_faults[index]
            else:
                draw = self._rng.random()
                if draw < self.error_rate:
                    fault = self._rng.choice(self.statuses)
                elif draw < self.error_rate + self.cut_rate:
                    fault = "cut"
                else:
                    fault = "ok"
            self.by_fault[fault] += 1
            return fault

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        """Listen on a free port of 127.0.0.1 (see ``endpoint``) in a daemon thread."""
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.owner._choose()
        if fault == "cut":
            # SO_LINGER 0: close() sends RST, like a dropped connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault in _S3_ERRORS:
            status, code, message = _S3_ERRORS[fault]
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload) if self.command != "HEAD" else 0))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault == "slow":
            time.sleep(self.owner.delay)
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        conn = http.client.HTTPConnection(
            self.owner.target_host, self.owner.target_port, timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            # The target is gone: answer like an unhealthy gateway.
            status, reason, pairs, data = 502, "Bad Gateway", [], b""
        else:
            status, reason, pairs = response.status, response.reason, response.getheaders()
        finally:
            conn.close()
        try:
            self.send_response(status, reason)
            for key, value in pairs:
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            length = dict((k.lower(), v) for k, v in pairs).get("content-length", "0")
            self.send_header("Content-Length", length if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client gave up (timeout) or dropped the connection
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class BadServer:
    """An HTTP (and S3-looking) server on 127.0.0.1 whose answers no client should trust.

    - a ListObjectsV2 request (``?list-type=2``) is answered truncated, with the same
      ``NextContinuationToken`` forever (or ``distinct_tokens=True``: a new one every page);
    - ``GET /…/huge`` streams zeros with ``Content-Length: huge_length`` (1 TiB) until the
      client hangs up;
    - ``GET /…/endless`` streams zeros chunked (no length) until the client hangs up;
    - ``GET /…/small`` answers ``SMALL``;
    - ``GET /…/refused`` is a 403: ``SignatureDoesNotMatch`` when the request is signed (as S3
      answers a wrong secret), ``AccessDenied`` when it is not;
    - anything else is a 404 ``NoSuchKey``.

    ``list_requests`` and ``bytes_sent`` say how far a client let the server go; ``signed``
    holds, per request, whether it carried an ``Authorization`` header.
    """

    SMALL = b'{"n5": "2.0.0"}'

    def __init__(self, *, distinct_tokens: bool = False, huge_length: int = 1 << 40) -> None:
        self.distinct_tokens = distinct_tokens
        self.huge_length = huge_length
        self._lock = threading.Lock()
        self.list_requests = 0
        self.bytes_sent = 0
        self.paths: list[str] = []
        self.signed: list[bool] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def start(self) -> BadServer:
        owner = self

        class Handler(_BadHandler):
            server_owner = owner

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> BadServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _BadHandler(BaseHTTPRequestHandler):
    server_owner: BadServer
    protocol_version = "HTTP/1.1"
    _ZEROS = b"\x00" * 65536

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server_owner
        parts = urlsplit(self.path)
        signed = "Authorization" in self.headers
        with owner._lock:
            owner.paths.append(self.path)
            owner.signed.append(signed)
        if parts.path.endswith("/refused"):
            code = "SignatureDoesNotMatch" if signed else "AccessDenied"
            body = f"<Error><Code>{code}</Code><Message>refused</Message></Error>".encode()
            self._answer(403, body, "application/xml")
        elif "list-type=2" in parts.query:
            self._listing()
        elif parts.path.endswith("/huge"):
            self._stream(chunked=False)
        elif parts.path.endswith("/endless"):
            self._stream(chunked=True)
        elif parts.path.endswith("/small"):
            self._answer(200, owner.SMALL, "application/json")
        else:
            body = b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>"
            self._answer(404, body, "application/xml")

    def do_HEAD(self) -> None:  # fsspec's HTTP filesystem may ask for a size first
        parts = urlsplit(self.path)
        self.send_response(200 if parts.path.endswith(("/huge", "/small")) else 404)
        size = self.server_owner.huge_length if parts.path.endswith("/huge") else 15
        self.send_header("Content-Length", str(size))
        self.end_headers()

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _listing(self) -> None:
        owner = self.server_owner
        with owner._lock:
            owner.list_requests += 1
            n = owner.list_requests
        token = f"page-{n}" if owner.distinct_tokens else "same-token"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            "<Name>bucket</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
            f"<Contents><Key>k{n}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
            "<ETag>&quot;x&quot;</ETag><Size>1</Size></Contents>"
            f"<NextContinuationToken>{token}</NextContinuationToken></ListBucketResult>"
        ).encode()
        self._answer(200, body, "application/xml")

    def _stream(self, *, chunked: bool) -> None:
        owner = self.server_owner
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(owner.huge_length))
        self.end_headers()
        chunk = self._ZEROS
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
        try:
            sent = 0
            while chunked or sent < owner.huge_length:
                self.wfile.write(framed)
                sent += len(chunk)
                owner._sent(len(chunk))
        except OSError:  # the client hung up: what a bounded reader does
            pass
        self.close_connection = True
