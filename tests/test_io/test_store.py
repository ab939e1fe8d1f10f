"""Stores on local disk, in memory and over HTTP (a real http.server on 127.0.0.1)."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store, parse_url
from cellmap_schemas.io._local import BATCH, LocalStore
from cellmap_schemas.io.store import FsspecStore, NotFollowedError, Store
from faults import FaultProxy


def run(coro_fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return anyio.run(functools.partial(coro_fn, *args, **kwargs), backend="asyncio")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root.n5/{attributes.json, s0/attributes.json, s1/, labels/a/attributes.json}."""
    root = tmp_path / "root.n5"
    (root / "s0").mkdir(parents=True)
    (root / "s1").mkdir()
    (root / "labels" / "a").mkdir(parents=True)
    (root / "attributes.json").write_bytes(b'{"n5": "2.0.0"}')
    (root / "s0" / "attributes.json").write_bytes(b'{"dimensions": [4]}')
    (root / "labels" / "a" / "attributes.json").write_bytes(b"{}")
    (root / "s0" / "0").write_bytes(b"\x00" * 10)
    return root


# -- local disk -----------------------------------------------------------------------------


def test_local_get_and_missing(tree: Path) -> None:
    async def main() -> tuple[object, ...]:
        async with open_store(str(tree)) as store:
            assert isinstance(store, LocalStore)
            return (
                await store.get("attributes.json"),
                await store.get("s0/attributes.json"),
                await store.get("missing.json"),
                await store.get("s1"),  # a directory is not a document
                await store.get("attributes.json/x"),  # below a file
                await store.get("nope/deeper/x.json"),
                store.requests,
            )

    assert run(main) == (b'{"n5": "2.0.0"}', b'{"dimensions": [4]}', None, None, None, None, 6)


def test_local_reads_large_files_whole(tmp_path: Path) -> None:
    payload = os.urandom(3 * 2**20 + 17)
    (tmp_path / "big").write_bytes(payload)

    async def main() -> bytes | None:
        async with open_store(tmp_path) as store:
            return await store.get("big")

    assert run(main) == payload


def test_local_file_url_and_url_of(tree: Path) -> None:
    async def main() -> tuple[str, str, bytes | None]:
        async with open_store(f"file://{tree}/") as store:
            return store.url, store.url_of("s0/attributes.json"), await store.get("attributes.json")

    assert run(main) == (str(tree), f"{tree}/s0/attributes.json", b'{"n5": "2.0.0"}')


def test_local_file_url_with_localhost_and_foreign_host(tree: Path) -> None:
    async def main(url: str) -> bytes | None:
        async with open_store(url) as store:
            assert isinstance(store, LocalStore)
            return await store.get("attributes.json")

    assert run(main, f"file://localhost{tree}") == b'{"n5": "2.0.0"}'
    with pytest.raises(ValueError) as info:
        run(main, f"file://otherhost{tree}")
    assert str(info.value) == (
        f"file://otherhost{tree}: a file URL on another host (otherhost) cannot be read here; "
        "local files are file:///path or file://localhost/path"
    )


def test_local_list_dir(tree: Path) -> None:
    async def main() -> list[tuple[list[str], list[str]]]:
        async with open_store(tree) as store:
            return [
                await store.list_dir(),
                await store.list_dir("s0"),
                await store.list_dir("s1"),
                await store.list_dir("labels/"),
                await store.list_dir("missing"),
                await store.list_dir("attributes.json"),
            ]

    assert run(main) == [
        (["labels", "s0", "s1"], ["attributes.json"]),
        ([], ["0", "attributes.json"]),
        ([], []),
        (["a"], []),
        ([], []),
        ([], []),
    ]


def test_local_get_many_keeps_order_and_batches(tree: Path) -> None:
    n = 2 * BATCH + 3
    for i in range(n):
        (tree / "s1" / f"{i}.json").write_bytes(str(i).encode())
    keys = [f"s1/{i}.json" for i in range(n)] + ["s1/missing", "attributes.json"]

    async def main() -> tuple[list[bytes | StoreError | None], int, list[object]]:
        async with open_store(tree) as store:
            return await store.get_many(keys), store.requests, await store.get_many([])

    results, requests, empty = run(main)
    assert results == [str(i).encode() for i in range(n)] + [None, b'{"n5": "2.0.0"}']
    assert requests == len(keys)
    assert empty == []


def test_local_symlinks(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "attributes.json").write_bytes(b'{"outside": true}')
    (tree / "linked").symlink_to(outside)  # a directory elsewhere: listed, followed on request
    (tree / "loop").symlink_to(tree)  # the root itself: left out
    (tree / "labels" / "a" / "up").symlink_to(tree / "labels")  # an ancestor: left out
    (tree / "slash").symlink_to("/")  # an ancestor of the root: left out
    (tree / "broken").symlink_to(tmp_path / "nowhere")  # dangling: left out
    (tree / "alias.json").symlink_to(tree / "attributes.json")  # a file: listed as a file
    (tree / "self").symlink_to("self")  # a loop of its own: left out
    (tree / "s0" / "inside").symlink_to(tree / "labels")  # inside the root: followed

    async def main(follow: bool) -> list[object]:
        async with open_store(tree, follow_symlinks=follow) as store:
            out: list[object] = [
                await store.list_dir(),
                await store.list_dir("labels/a"),
                await store.get("alias.json"),
                await store.list_dir("s0/inside"),
            ]
            for call in (store.list_dir("linked"), store.get("linked/attributes.json")):
                try:
                    out.append(await call)
                except StoreError as exc:
                    out.append(exc)
            return out

    common = [
        (["labels", "linked", "s0", "s1"], ["alias.json", "attributes.json"]),
        ([], ["attributes.json"]),
        b'{"n5": "2.0.0"}',
        (["a"], []),
    ]
    followed = run(lambda: main(True))
    assert followed == [*common, ([], ["attributes.json"]), b'{"outside": true}']
    refused = run(lambda: main(False))
    assert refused[:4] == common
    reason = (
        f"{tree}/linked: symlink to {outside} outside the scanned root: "
        "not followed (use --follow-symlinks)"
    )
    for exc in refused[4:]:
        assert isinstance(exc, NotFollowedError)
        assert str(exc) == reason


def test_local_mutual_symlinks_cannot_make_a_walk_loop(tmp_path: Path) -> None:
    """Two siblings linking to each other: a full walk must end, visiting each real dir once."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "to_b").symlink_to(tmp_path / "b")
    (tmp_path / "b" / "to_a").symlink_to(tmp_path / "a")
    (tmp_path / "b" / "f").write_bytes(b"x")

    async def walk() -> list[str]:
        seen: list[str] = []
        async with open_store(tmp_path) as store:
            stack = [""]
            while stack:
                key = stack.pop()
                seen.append(key)
                assert len(seen) < 50, seen
                dirs, _ = await store.list_dir(key)
                stack.extend(f"{key}/{d}".lstrip("/") for d in dirs)
            # entering through the link, the way back to where we came from is left out
            assert await store.list_dir("a/to_b") == ([], ["f"])
            assert await store.list_dir("a/to_b/to_a") == ([], [])
        return sorted(seen)

    assert run(walk) == ["", "a", "a/to_b", "b", "b/to_a"]


def test_local_special_files_do_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "attributes.json")
    (tmp_path / ".zgroup").write_bytes(b"{}")

    async def main() -> tuple[object, ...]:
        async with open_store(tmp_path, timeout=10) as store:
            with pytest.raises(StoreError) as info:
                await store.get("attributes.json")
            assert str(info.value) == f"{tmp_path}/attributes.json: not a regular file (a FIFO)"
            many = await store.get_many(["attributes.json", ".zgroup"])
            return await store.list_dir(), many

    start = time.monotonic()
    listing, many = run(main)
    assert time.monotonic() - start < 5
    assert listing == ([], [".zgroup", "attributes.json"])  # listed, so that it is not missed
    assert isinstance(many[0], StoreError)
    assert many[1] == b"{}"


def test_local_symlink_loop_read_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "attributes.json").symlink_to(tmp_path / "attributes.json")

    async def main() -> None:
        async with open_store(tmp_path) as store:
            await store.get("attributes.json")

    with pytest.raises(StoreError, match="symbolic links"):
        run(main)


def test_local_with_storage_options_uses_fsspec(tree: Path) -> None:
    async def main() -> tuple[object, ...]:
        async with open_store(tree, storage_options={"auto_mkdir": False}) as store:
            assert isinstance(store, FsspecStore)
            return (
                await store.get("attributes.json"),
                await store.get("missing"),
                await store.list_dir(),
            )

    assert run(main) == (
        b'{"n5": "2.0.0"}',
        None,
        (["labels", "s0", "s1"], ["attributes.json"]),
    )


# -- memory and other fsspec protocols ------------------------------------------------------


def test_memory_store() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe({"/mem-test/x.zarr/.zgroup": b"{}", "/mem-test/x.zarr/a/.zarray": b'{"shape": []}'})
    try:

        async def main() -> tuple[object, ...]:
            async with open_store(parse_url("memory://mem-test/x.zarr")) as store:
                return (
                    await store.get(".zgroup"),
                    await store.get("a/.zarray"),
                    await store.get("nothing"),
                    await store.list_dir(),
                    await store.list_dir("a"),
                    await store.list_dir("nothing"),
                    await store.get_many([".zgroup", "nothing"]),
                    store.url_of("a/.zarray"),
                )

        assert run(main) == (
            b"{}",
            b'{"shape": []}',
            None,
            (["a"], [".zgroup"]),
            ([], [".zarray"]),
            ([], []),
            [b"{}", None],
            "memory://mem-test/x.zarr/a/.zarray",
        )
    finally:
        fs.rm("/mem-test", recursive=True)


def test_unknown_protocol_is_a_store_error() -> None:
    async def main() -> None:
        async with open_store("nosuchproto://x/y"):
            pass

    with pytest.raises(StoreError, match=r"nosuchproto://x/y: cannot open storage"):
        run(main)


def test_base_store_interface_is_abstract() -> None:
    store = Store(parse_url("memory://x"))
    assert store.url == "memory://x"
    assert repr(store) == "Store('memory://x')"
    with pytest.raises(NotImplementedError):
        run(store.get, "k")
    with pytest.raises(NotImplementedError):
        run(store.list_dir)


# -- HTTP -----------------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    """Serves a directory; anything under /forbidden answers 403."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        if self.path.startswith("/forbidden"):
            self.send_error(403)
            return None
        return super().send_head()


@pytest.fixture
def http_root(tree: Path) -> Iterator[str]:
    """``tree``'s parent served by http.server on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_Handler, directory=str(tree.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_get_missing_list(http_root: str) -> None:
    async def main() -> tuple[object, ...]:
        async with open_store(f"{http_root}/root.n5/") as store:
            return (
                store.url,
                await store.get("attributes.json"),
                await store.get("s0/attributes.json"),
                await store.get("missing.json"),
                await store.list_dir(),
                await store.list_dir("s0"),
                await store.list_dir("missing"),
                await store.get_many(["attributes.json", "missing.json"]),
                store.requests,
            )

    assert run(main) == (
        f"{http_root}/root.n5",
        b'{"n5": "2.0.0"}',
        b'{"dimensions": [4]}',
        None,
        (["labels", "s0", "s1"], ["attributes.json"]),
        ([], ["0", "attributes.json"]),
        ([], []),
        [b'{"n5": "2.0.0"}', None],
        8,
    )


def test_http_forbidden_is_access_denied(http_root: str) -> None:
    async def main() -> None:
        async with open_store(f"{http_root}/forbidden") as store:
            await store.get("attributes.json")

    with pytest.raises(StoreError) as info:
        run(main)
    assert str(info.value) == f"{http_root}/forbidden/attributes.json: access denied (403)"


def test_http_transient_errors_are_retried(http_root: str) -> None:
    with FaultProxy(http_root, first_faults=["503", "500"]) as proxy:

        async def main() -> tuple[bytes | None, int]:
            async with open_store(f"{proxy.endpoint}/root.n5", retries=3) as store:
                return await store.get("attributes.json"), store.requests

        assert run(main) == (b'{"n5": "2.0.0"}', 3)
        assert (proxy.requests, proxy.injected) == (3, 2)


def test_http_cut_connections_are_retried(http_root: str) -> None:
    """aiohttp itself resends an idempotent request once on a dropped connection, so three cuts
    cost the store two attempts (``requests`` counts the store's attempts)."""
    with FaultProxy(http_root, first_faults=["cut", "cut", "cut"]) as proxy:

        async def main() -> tuple[bytes | None, int]:
            async with open_store(f"{proxy.endpoint}/root.n5", retries=3) as store:
                return await store.get("attributes.json"), store.requests

        assert run(main) == (b'{"n5": "2.0.0"}', 2)
        assert (proxy.requests, proxy.cuts) == (4, 3)


def test_http_unreachable_gives_up_within_bounded_time(http_root: str) -> None:
    with FaultProxy(http_root) as proxy:
        endpoint = proxy.endpoint
    # the proxy is stopped: its port is closed now

    async def main() -> None:
        async with open_store(f"{endpoint}/root.n5", retries=2, timeout=5) as store:
            await store.get("attributes.json")

    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        run(main)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith(f"{endpoint}/root.n5/attributes.json: cannot connect to 127.0.0.1")
    assert message.endswith("(gave up after 3 attempts)")
    assert "\n" not in message


# -- several listings at once, name-resolution failures -------------------------------------


def test_local_list_many(tree: Path) -> None:
    (tree / "self").symlink_to("self")  # listing through it: ELOOP, reported in place

    async def main() -> tuple[list[object], int]:
        async with open_store(tree) as store:
            results = await store.list_many(["", "s0", "missing", "self/x", "labels"])
            return results, store.requests

    results, requests = run(main)
    assert results[:3] == [
        (["labels", "s0", "s1"], ["attributes.json"]),
        ([], ["0", "attributes.json"]),
        ([], []),
    ]
    assert isinstance(results[3], StoreError)
    assert str(results[3]) == f"{tree}/self/x: too many levels of symbolic links"
    assert results[4] == (["a"], [])
    assert requests == 5


def test_list_many_default_for_fsspec_stores() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe({"/lm-test/a/x": b"1", "/lm-test/b/c/y": b"2"})
    try:

        async def main() -> list[object]:
            async with open_store("memory://lm-test") as store:
                return [await store.list_many(["", "a", "b", "zz"]), await store.list_many([])]

        assert run(main) == [
            [(["a", "b"], []), ([], ["x"]), (["c"], []), ([], [])],
            [],
        ]
    finally:
        fs.rm("/lm-test", recursive=True)


def test_dns_failure_is_permanent_unless_temporary() -> None:
    import socket

    from cellmap_schemas.io.store import dns_failure

    class Wrapped(OSError):
        host = "bucket.example.invalid"

    permanent = Wrapped("lookup failed")
    permanent.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert dns_failure(permanent) == "cannot resolve host bucket.example.invalid"
    temporary = Wrapped("lookup failed")
    temporary.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    assert dns_failure(temporary) is None
    assert dns_failure(ConnectionRefusedError()) is None


class _Flaky(Store):
    """A store whose keys say what happens: "ok", "err" (StoreError), "bug" (RuntimeError)."""

    async def get(self, key: str) -> bytes | None:
        await anyio.sleep(0)
        if key.startswith("err"):
            raise StoreError(f"{self.url_of(key)}: broken")
        if key.startswith("bug"):
            raise RuntimeError("a bug, not a storage failure")
        return key.encode()


def test_get_many_keeps_errors_in_place_and_raises_bugs_unwrapped() -> None:
    store = _Flaky(parse_url("memory://flaky"), concurrency=3)
    results = run(store.get_many, ["ok1", "err1", "ok2", "ok3", "err2"])
    assert [r if isinstance(r, bytes) else str(r) for r in results] == [
        b"ok1",
        "memory://flaky/err1: broken",
        b"ok2",
        b"ok3",
        "memory://flaky/err2: broken",
    ]
    (single,) = run(store.get_many, ["err"])
    assert isinstance(single, StoreError)
    for keys in (["bug"], ["ok", "bug", "ok2", "ok3"]):
        with pytest.raises(RuntimeError, match="a bug"):
            run(store.get_many, keys)


@pytest.mark.parametrize(
    "kw", [{"retries": -1}, {"concurrency": 0}, {"timeout": 0}, {"timeout": -2.5}]
)
def test_open_store_rejects_bad_limits(tmp_path: Path, kw: dict[str, float]) -> None:
    async def main() -> None:
        async with open_store(tmp_path, **kw):  # type: ignore[arg-type]
            pass

    with pytest.raises(ValueError, match="need retries >= 0"):
        run(main)


def test_open_store_accepts_no_timeout_and_no_retries(tree: Path) -> None:
    async def main() -> tuple[bytes | None, int]:
        async with open_store(tree, timeout=None, retries=0, concurrency=1) as store:
            return await store.get("attributes.json"), store.requests

    assert run(main) == (b'{"n5": "2.0.0"}', 1)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    import random

    from cellmap_schemas.io._retry import BASE_DELAY, MAX_DELAY, backoff_delay

    rng = random.Random(3)
    for attempt in range(12):
        cap = min(MAX_DELAY, BASE_DELAY * 2**attempt)
        delays = [backoff_delay(attempt, rng) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) == 50  # jittered, not one fixed value


def test_an_attempt_past_its_timeout_is_retried_and_an_outer_cancel_is_not() -> None:
    """The per-attempt timeout is asyncio's; an anyio cancel scope around the retries still
    cancels them (not mistaken for a timed-out attempt)."""
    from cellmap_schemas.io._retry import retrying

    attempts: list[float] = []

    async def slow_then_fast() -> str:
        attempts.append(anyio.current_time())
        if len(attempts) == 1:
            await anyio.sleep(10)
        return "ok"

    async def forever() -> str:
        attempts.append(anyio.current_time())
        await anyio.sleep(10)
        return "never"

    async def main() -> tuple[str, int, bool, int]:
        first = await retrying(slow_then_fast, url="u", retries=2, timeout=0.2)
        tries = len(attempts)
        attempts.clear()
        with anyio.move_on_after(0.3) as scope:
            await retrying(forever, url="u", retries=5, timeout=5)
        return first, tries, scope.cancelled_caught, len(attempts)

    assert run(main) == ("ok", 2, True, 1)
