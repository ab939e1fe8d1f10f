"""What a store does when the server misbehaves (a real :class:`BadServer` on 127.0.0.1): listings
that never end, documents that never end, refused signatures, and URLs that carry passwords."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from cellmap_schemas.io._s3 import MAX_LIST_PAGES, S3Store
from cellmap_schemas.io.store import DEFAULT_MAX_DOCUMENT_SIZE, FsspecStore
from conftest import S3Server, _free_port
from faults import BadServer

MiB = 2**20
SLACK = 16 * MiB
"""Bytes a server may have pushed into socket buffers before it notices the client left."""


def run(coro_fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return anyio.run(functools.partial(coro_fn, *args, **kwargs), backend="asyncio")


@pytest.fixture
def bad() -> Iterator[BadServer]:
    with BadServer() as server:
        yield server


def _aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, *, credentials: bool) -> None:
    """The standard AWS variables pointing at ``endpoint``, with or without credentials."""
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")


def _wait_for_sender(server: BadServer) -> int:
    """``bytes_sent`` once the server's writer has stopped (it stops when the client hangs up)."""
    last, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if server.bytes_sent == last:
            break
        last = server.bytes_sent
    return server.bytes_sent


# -- listings the server never ends -------------------------------------------------------


def test_repeated_continuation_token_ends_the_listing(
    bad: BadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_env(monkeypatch, bad.endpoint, credentials=False)

    async def main() -> None:
        async with open_store("s3://bucket/x.n5", timeout=5) as store:
            await store.list_dir("s0")

    with pytest.raises(StoreError) as info:
        run(main)
    assert str(info.value) == (
        "s3://bucket/x.n5/s0: listing stopped after 2 pages: the server sent the same "
        "continuation token twice"
    )
    assert bad.list_requests == 2


def test_endless_distinct_tokens_stop_at_the_page_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_LIST_PAGES >= 10_000  # a real listing of millions of keys still completes
    with BadServer(distinct_tokens=True) as bad:
        _aws_env(monkeypatch, bad.endpoint, credentials=False)

        async def main() -> int:
            async with open_store("s3://bucket", timeout=5) as store:
                assert isinstance(store, S3Store)
                store.max_list_pages = 7
                try:
                    await store.list_dir()
                finally:
                    requests = store.requests
            return requests

        with pytest.raises(StoreError, match=r"^s3://bucket: listing stopped after 7 pages"):
            run(main)
        assert bad.list_requests == 7


# -- documents the server never ends --------------------------------------------------------


@pytest.mark.parametrize("name", ["huge", "endless"])
def test_s3_document_size_limit_on_both_paths(
    bad: BadServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``huge`` announces 1 TiB, ``endless`` is chunked without a length; first through the
    botocore client, then (after ``small`` taught the store its layout) the direct path."""
    _aws_env(monkeypatch, bad.endpoint, credentials=False)
    limit = 2 * MiB

    async def main() -> tuple[str, bytes | None, bool, str]:
        async with open_store("s3://bucket/d", max_document_size=limit, timeout=10) as store:
            assert isinstance(store, S3Store)
            with pytest.raises(StoreError) as first:
                await store.get(name)
            small = await store.get("small")
            direct = store.direct is not None
            with pytest.raises(StoreError) as second:
                await store.get(name)
            return str(first.value), small, direct, str(second.value)

    first, small, direct, second = run(main)
    message = f"s3://bucket/d/{name}: document larger than the 2 MiB limit (max_document_size)"
    assert (first, small, direct, second) == (message, BadServer.SMALL, True, message)
    assert bad.paths.count(f"/bucket/d/{name}") == 2  # refused at once, never retried
    assert _wait_for_sender(bad) < 2 * (limit + SLACK)


@pytest.mark.parametrize("name", ["huge", "endless"])
def test_http_document_size_limit_with_the_default(bad: BadServer, name: str) -> None:
    async def main() -> None:
        async with open_store(f"{bad.endpoint}/d", timeout=20) as store:
            assert isinstance(store, FsspecStore)
            assert store.max_document_size == DEFAULT_MAX_DOCUMENT_SIZE == 16 * MiB
            await store.get(name)

    with pytest.raises(StoreError) as info:
        run(main)
    assert str(info.value) == (
        f"{bad.endpoint}/d/{name}: document larger than the 16 MiB limit (max_document_size)"
    )
    assert _wait_for_sender(bad) < DEFAULT_MAX_DOCUMENT_SIZE + SLACK


def test_http_endless_body_under_a_memory_cap(bad: BadServer, tmp_path: Path) -> None:
    """In a process allowed 200 MiB more address space than it has, an endless body still fails
    as a StoreError, not a MemoryError: the store never holds much more than the limit."""
    import subprocess
    import sys

    script = tmp_path / "capped.py"
    script.write_text(
        "import resource, sys, anyio\n"
        "from cellmap_schemas.io import open_store\n"
        "from cellmap_schemas.errors import StoreError\n"
        "async def main():\n"
        "    async with open_store(sys.argv[1], max_document_size=64 * 2**20) as store:\n"
        "        await store.get('small')\n"  # the stack is loaded before the cap
        "        pages = int(open('/proc/self/statm').read().split()[0])\n"
        "        cap = pages * resource.getpagesize() + 200 * 2**20\n"
        "        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))\n"
        "        try:\n"
        "            await store.get('endless')\n"
        "        except StoreError as exc:\n"
        "            print('StoreError:', exc)\n"
        "anyio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), f"{bad.endpoint}/d"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"StoreError: {bad.endpoint}/d/endless: document larger than the 64 MiB limit "
        "(max_document_size)"
    )


def test_local_document_size_limit(tmp_path: Path) -> None:
    (tmp_path / "exact").write_bytes(b"x" * 1000)
    (tmp_path / "over").write_bytes(b"x" * 1001)
    with open(tmp_path / "sparse", "wb") as f:  # 1 TiB that takes no disk space
        f.truncate(2**40)

    async def main() -> tuple[object, ...]:
        async with open_store(tmp_path, max_document_size=1000) as store:
            with pytest.raises(StoreError) as single:
                await store.get("sparse")
            many = await store.get_many(["exact", "over", "sparse"])
            return await store.get("exact"), str(single.value), many

    exact, single, many = run(main)
    assert exact == b"x" * 1000
    assert (
        single
        == f"{tmp_path}/sparse: document larger than the 1000 bytes limit (max_document_size)"
    )
    assert many[0] == b"x" * 1000
    assert [str(e) for e in many[1:]] == [
        f"{tmp_path}/{n}: document larger than the 1000 bytes limit (max_document_size)"
        for n in ("over", "sparse")
    ]


def test_local_file_whose_size_lies_is_bounded() -> None:
    """Files in /proc report size 0; the read stops one byte past the limit all the same."""
    path = Path("/proc/self/maps")
    if not path.exists():
        pytest.skip("no /proc")

    async def main() -> bytes | None:
        async with open_store("/proc/self", max_document_size=16) as store:
            return await store.get("maps")

    with pytest.raises(StoreError, match=r"^/proc/self/maps: document larger than the 16 bytes"):
        run(main)


def test_fsspec_document_size_limit(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe({"/limit-test/ok": b"12345", "/limit-test/big": b"123456"})
    try:

        async def main() -> list[bytes | StoreError | None]:
            async with open_store("memory://limit-test", max_document_size=5) as store:
                return await store.get_many(["ok", "big", "missing"])

        ok, big, missing = run(main)
        assert (ok, missing) == (b"12345", None)
        assert str(big) == (
            "memory://limit-test/big: document larger than the 5 bytes limit (max_document_size)"
        )
    finally:
        fs.rm("/limit-test", recursive=True)


@pytest.mark.parametrize("size", [0, -1])
def test_open_store_rejects_a_bad_size_limit(tmp_path: Path, size: int) -> None:
    async def main() -> None:
        async with open_store(tmp_path, max_document_size=size):
            pass

    with pytest.raises(ValueError, match="max_document_size >= 1"):
        run(main)


# -- refused credentials ---------------------------------------------------------------------


def test_wrong_secret_is_credentials_rejected_on_both_paths(
    bad: BadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused signature is reported as such, and never retried without one."""
    _aws_env(monkeypatch, bad.endpoint, credentials=True)

    async def main() -> tuple[str, bytes | None, bool, str]:
        async with open_store("s3://bucket/d") as store:
            assert isinstance(store, S3Store) and not store.anonymous
            with pytest.raises(StoreError) as first:  # through the client
                await store.get("refused")
            small = await store.get("small")
            direct = store.direct is not None
            with pytest.raises(StoreError) as second:  # the direct path
                await store.get("refused")
            return str(first.value), small, direct, str(second.value)

    message = "s3://bucket/d/refused: credentials rejected (SignatureDoesNotMatch)"
    assert run(main) == (message, BadServer.SMALL, True, message)
    assert bad.signed == [True, True, True]


def test_anonymous_refusal_is_access_denied(
    bad: BadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_env(monkeypatch, bad.endpoint, credentials=False)

    async def main() -> None:
        async with open_store("s3://bucket/d") as store:
            await store.get("refused")

    with pytest.raises(StoreError) as info:
        run(main)
    assert str(info.value) == (
        "s3://bucket/d/refused: access denied (403) with anonymous access: no AWS credentials found"
    )
    assert bad.signed == [False]


# -- passwords in URLs -----------------------------------------------------------------------


def test_http_password_never_in_messages(bad: BadServer) -> None:
    host = bad.endpoint.removeprefix("http://")
    closed = f"127.0.0.1:{_free_port()}"

    async def main(url: str, key: str, **kw: object) -> tuple[str, str]:
        async with open_store(url, **kw) as store:  # type: ignore[arg-type]
            with pytest.raises(StoreError) as info:
                await store.get(key)
            return str(info.value), store.url_of(key)

    too_big = run(main, f"http://user:PASS@{host}/d", "endless", max_document_size=1000)
    assert too_big == (
        f"http://user:***@{host}/d/endless: document larger than the 1000 bytes limit "
        "(max_document_size)",
        f"http://user:***@{host}/d/endless",
    )
    unreachable, _ = run(main, f"http://user:PASS@{closed}/d", "x.json", retries=0, timeout=5)
    assert unreachable.startswith(f"http://user:***@{closed}/d/x.json: cannot connect to")
    assert "PASS" not in unreachable


@pytest.mark.parametrize("reachable", [True, False])
def test_endpoint_password_never_in_messages(
    monkeypatch: pytest.MonkeyPatch, reachable: bool
) -> None:
    closed = f"127.0.0.1:{_free_port()}"
    _aws_env(monkeypatch, f"http://{closed}", credentials=False)
    endpoint = f"http://u:PASS@{closed}" if reachable else "http://u:PASS@"
    options = {"endpoint_url": endpoint, "anon": True}

    async def main() -> None:
        async with open_store("s3://bucket/x", storage_options=options, retries=1) as store:
            await store.get("attributes.json")

    with pytest.raises(StoreError) as info:
        run(main)
    if reachable:  # a valid endpoint with nothing listening
        expected = f"s3://bucket/x/attributes.json: cannot connect to {closed} (gave up after 2"
    else:  # botocore refuses the endpoint, quoting it
        expected = "s3://bucket/x: bad storage options: Invalid endpoint: http://u:***@"
    assert str(info.value).startswith(expected)
    assert "PASS" not in str(info.value)


# -- credentials that expire -----------------------------------------------------------------


def test_expiring_credentials_are_refreshed_on_the_direct_path(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A ``credential_process`` profile whose credentials expire within a minute: botocore
    refreshes them before each signature, the direct path's included."""
    import sys

    s3.client().create_bucket(Bucket="rotating")
    s3.client().put_object(Bucket="rotating", Key="a.json", Body=b"1")
    calls = tmp_path / "calls"
    process = tmp_path / "creds.py"
    process.write_text(
        "import datetime, json, pathlib\n"
        f"p = pathlib.Path({str(calls)!r})\n"
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
        "soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'testing', 'SecretAccessKey': 'testing',"
        " 'SessionToken': 'token', 'Expiration': soon.isoformat()}))\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {process}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

    async def main() -> tuple[list[object], bool, bool]:
        async with open_store("s3://rotating", storage_options={"profile": "rotating"}) as store:
            assert isinstance(store, S3Store)
            first = await store.get("a.json")
            rest = [await store.get("a.json") for _ in range(3)]
            return [first, *rest], store.direct is not None, store.anonymous

    results, direct, anonymous = run(main)
    assert (results, direct, anonymous) == ([b"1"] * 4, True, False)
    # once to find them at open, then before each signature: the client's GET and 3 direct
    assert len(calls.read_text()) == 5
