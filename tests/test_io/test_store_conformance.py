"""One behaviour for every store backend, as zarr-python's ``StoreTests``.

:class:`StoreTests` holds the cases; each subclass lays the same tree out in one backend on a
real server (local disk, fsspec memory, ``http.server`` on 127.0.0.1, moto in server mode) and
yields its URL. A backend that cannot meet a case overrides it with a test asserting what it
does instead, its documented limitation, rather than skipping it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from cellmap_schemas.io.store import Store
from conftest import S3Server

T = TypeVar("T")

ODD = "odd dir/50% ü #1 [x].json"
"""A key with a space, non-ASCII, "%", "#" and brackets: a name, wherever it is stored."""

LIMIT = 64
"""The ``max_document_size`` the tests open stores with."""

LAYOUT: dict[str, bytes] = {
    "attributes.json": b'{"n5": "2.0.0"}',
    "s0/attributes.json": b'{"dimensions": [4]}',
    "s0/0/0": b"\x00\x01",
    "labels/a/attributes.json": b"{}",
    "labels/a/b/attributes.json": b'{"b": 1}',
    "at-limit.json": b"x" * LIMIT,
    "big.json": b"x" * (LIMIT + 1),
    ODD: b'{"odd": true}',
}


def use(url: str, fn: Callable[[Store], Awaitable[T]], **kw: Any) -> T:
    """Open ``url`` (with the test limit), run ``fn`` on the store, close it."""

    async def main() -> T:
        options: dict[str, Any] = {"max_document_size": LIMIT, "retries": 0, **kw}
        async with open_store(url, **options) as store:
            return await fn(store)

    return anyio.run(main, backend="asyncio")


def too_large(store: Store, key: str) -> str:
    return f"{store.url_of(key)}: document larger than the {LIMIT} bytes limit (max_document_size)"


class StoreTests:
    """The cases; a subclass provides the ``root`` fixture: the URL of :data:`LAYOUT`."""

    @pytest.fixture
    def root(self) -> Iterator[str]:
        raise NotImplementedError

    def test_get_present(self, root: str) -> None:
        async def fn(store: Store) -> list[bytes | None]:
            return [await store.get("attributes.json"), await store.get("s0/0/0")]

        assert use(root, fn) == [LAYOUT["attributes.json"], LAYOUT["s0/0/0"]]

    def test_get_missing_is_none(self, root: str) -> None:
        async def fn(store: Store) -> list[bytes | None]:
            return [await store.get("missing.json"), await store.get("nowhere/at/all.json")]

        assert use(root, fn) == [None, None]

    def test_get_directory_key_is_none(self, root: str) -> None:
        async def fn(store: Store) -> list[bytes | None]:
            return [await store.get("s0"), await store.get("labels/a")]

        assert use(root, fn) == [None, None]

    def test_get_many_keeps_order_and_errors_in_place(self, root: str) -> None:
        async def fn(store: Store) -> tuple[list[bytes | StoreError | None], str]:
            keys = ["s0/attributes.json", "missing.json", "big.json", "attributes.json"]
            return await store.get_many(keys), too_large(store, "big.json")

        (first, missing, big, last), message = use(root, fn)
        assert (first, missing, last) == (
            LAYOUT["s0/attributes.json"],
            None,
            LAYOUT["attributes.json"],
        )
        assert isinstance(big, StoreError) and str(big) == message

    def test_list_dir_of_a_group(self, root: str) -> None:
        async def fn(store: Store) -> list[tuple[list[str], list[str]]]:
            return [await store.list_dir(), await store.list_dir("s0")]

        top, s0 = use(root, fn)
        assert top == (
            ["labels", "odd dir", "s0"],
            ["at-limit.json", "attributes.json", "big.json"],
        )
        assert s0 == (["0"], ["attributes.json"])

    def test_list_dir_missing_is_empty(self, root: str) -> None:
        assert use(root, lambda store: store.list_dir("nothing/here")) == ([], [])

    def test_list_dir_nested(self, root: str) -> None:
        async def fn(store: Store) -> list[tuple[list[str], list[str]]]:
            return [await store.list_dir("labels/a"), await store.list_dir("labels/a/b/")]

        assert use(root, fn) == [(["b"], ["attributes.json"]), ([], ["attributes.json"])]

    def test_list_many_keeps_order(self, root: str) -> None:
        async def fn(store: Store) -> list[tuple[list[str], list[str]] | StoreError]:
            return await store.list_many(["labels", "nothing", "s0/0", "labels/a/b"])

        assert use(root, fn) == [
            (["a"], []),
            ([], []),
            ([], ["0"]),
            ([], ["attributes.json"]),
        ]

    def test_url_of_names_the_key_below_the_root(self, root: str) -> None:
        async def fn(store: Store) -> list[str]:
            return [store.url, store.url_of("s0/attributes.json"), store.url_of("")]

        url, key_url, root_url = use(root, fn)
        assert key_url == url + "/s0/attributes.json"
        assert root_url.rstrip("/") == url.rstrip("/")

    def test_requests_counts_one_per_read_and_listing(self, root: str) -> None:
        async def fn(store: Store) -> list[int]:
            counts = [store.requests]
            await store.get("attributes.json")
            counts.append(store.requests)
            await store.get("missing.json")
            counts.append(store.requests)
            await store.get_many(["attributes.json", "s0/attributes.json", "missing.json"])
            counts.append(store.requests)
            await store.list_dir("s0")
            counts.append(store.requests)
            return counts

        assert use(root, fn) == [0, 1, 2, 5, 6]

    def test_max_document_size_is_enforced(self, root: str) -> None:
        async def fn(store: Store) -> tuple[bytes | None, str, str]:
            at_limit = await store.get("at-limit.json")
            with pytest.raises(StoreError) as info:
                await store.get("big.json")
            return at_limit, str(info.value), too_large(store, "big.json")

        at_limit, raised, expected = use(root, fn)
        assert at_limit == LAYOUT["at-limit.json"]
        assert raised == expected

    def test_key_with_odd_characters(self, root: str) -> None:
        async def fn(store: Store) -> tuple[list[bytes | None], tuple[list[str], list[str]], str]:
            # read twice, and after another key: S3 serves later reads by its direct path
            first = await store.get(ODD)
            await store.get("attributes.json")
            reads = [first, await store.get(ODD), await store.get(ODD.replace("#", "%23"))]
            return reads, await store.list_dir("odd dir"), store.url_of(ODD)

        reads, listing, url = use(root, fn)
        assert reads == [LAYOUT[ODD], LAYOUT[ODD], None]  # "%23" is a name, not an escape
        assert listing == ([], [ODD.split("/")[1]])
        assert url.endswith("/" + ODD)


def _write_tree(root: Path) -> None:
    for key, data in LAYOUT.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class TestLocalStore(StoreTests):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Iterator[str]:
        _write_tree(tmp_path / "root")
        yield str(tmp_path / "root")


class TestMemoryStore(StoreTests):
    @pytest.fixture
    def root(self) -> Iterator[str]:
        import fsspec

        fs = fsspec.filesystem("memory")
        base = f"/conformance-{uuid.uuid4().hex}"
        for key, data in LAYOUT.items():
            fs.pipe(f"{base}/{key}", data)
        try:
            yield f"memory://{base}"
        finally:
            fs.rm(base, recursive=True)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class TestHttpStore(StoreTests):
    """http.server serving the tree: directories list as its index pages, which fsspec reads."""

    @pytest.fixture
    def root(self, tmp_path: Path) -> Iterator[str]:
        _write_tree(tmp_path / "root")
        handler = functools.partial(_Quiet, directory=str(tmp_path))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/root"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def test_get_directory_key_is_none(self, root: str) -> None:
        """Limitation: HTTP has no directories; a server answers a directory's URL as it likes
        (http.server: redirect to its index page) and the store returns that document."""

        async def fn(store: Store) -> list[bytes | None]:
            return [await store.get("s0"), await store.get("labels/a")]

        pages = use(root, fn, max_document_size=1 << 20)
        assert all(page is not None and page.startswith(b"<!DOCTYPE HTML>") for page in pages)


class TestS3Store(StoreTests):
    @pytest.fixture
    def root(self, s3: S3Server) -> Iterator[str]:
        client = s3.client()
        client.create_bucket(Bucket="conformance")
        for key, data in LAYOUT.items():
            client.put_object(Bucket="conformance", Key=f"data/x.n5/{key}", Body=data)
        yield "s3://conformance/data/x.n5"

    def test_odd_key_by_the_direct_path(self, root: str) -> None:
        """The cases above run on both of S3's paths: the client's first GET, then direct GETs."""

        async def fn(store: Store) -> tuple[bool, bytes | None, bytes | None]:
            await store.get("attributes.json")
            data = await store.get(ODD)
            return getattr(store, "direct", None) is not None, data, await store.get("nope")

        assert use(root, fn) == (True, LAYOUT[ODD], None)
