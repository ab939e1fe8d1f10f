"""The S3 store against the real moto server (the ``s3`` fixture), with and without credentials."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from cellmap_schemas.io._s3 import S3Store
from conftest import S3Server, _free_port
from faults import FaultProxy


def run(coro_fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return anyio.run(functools.partial(coro_fn, *args, **kwargs), backend="asyncio")


def put(s3: S3Server, bucket: str, objects: dict[str, bytes]) -> None:
    client = s3.client()
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


LAYOUT = {
    "data/x.n5/attributes.json": b'{"n5": "2.0.0"}',
    "data/x.n5/s0/attributes.json": b'{"dimensions": [4]}',
    "data/x.n5/s0/0/0": b"\x00\x01",
    "data/x.n5/labels/a/attributes.json": b"{}",
}


@pytest.fixture
def private(s3: S3Server) -> str:
    s3.client().create_bucket(Bucket="private")
    put(s3, "private", LAYOUT)
    return "private"


@pytest.fixture
def public(s3: S3Server) -> str:
    s3.public_bucket("public")
    put(s3, "public", LAYOUT)
    return "public"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere: variables deleted, config and credential files empty."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    # keep the credential chain from probing an instance-metadata service
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def read_everything(url: str, **kw: object) -> dict[str, object]:
    async with open_store(url, **kw) as store:  # type: ignore[arg-type]
        assert isinstance(store, S3Store)
        return {
            "root": await store.get("attributes.json"),
            "s0": await store.get("s0/attributes.json"),
            "missing": await store.get("missing.json"),
            "top": await store.list_dir(),
            "s0/": await store.list_dir("s0"),
            "nothing/": await store.list_dir("nothing"),
            "many": await store.get_many(["labels/a/attributes.json", "nope", "s0/0/0"]),
            "url": store.url_of("s0/attributes.json"),
            "anonymous": store.anonymous,
            "requests": store.requests,
            "direct": store.direct is not None,
        }


def expected(bucket: str, *, anonymous: bool) -> dict[str, object]:
    return {
        "root": b'{"n5": "2.0.0"}',
        "s0": b'{"dimensions": [4]}',
        "missing": None,
        "top": (["labels", "s0"], ["attributes.json"]),
        "s0/": (["0"], ["attributes.json"]),
        "nothing/": ([], []),
        "many": [b"{}", None, b"\x00\x01"],
        "url": f"s3://{bucket}/data/x.n5/s0/attributes.json",
        "anonymous": anonymous,
        "requests": 9,
        "direct": True,
    }


def test_signed_access_through_aws_endpoint_url(private: str) -> None:
    assert run(read_everything, "s3://private/data/x.n5/") == expected(private, anonymous=False)


def test_anonymous_access_to_a_public_bucket(public: str, no_credentials: None) -> None:
    assert run(read_everything, "s3://public/data/x.n5") == expected(public, anonymous=True)


def test_private_bucket_without_credentials_is_access_denied(
    private: str, no_credentials: None
) -> None:
    async def main() -> None:
        async with open_store("s3://private/data/x.n5") as store:
            await store.get("attributes.json")

    with pytest.raises(StoreError) as info:
        run(main)
    message = str(info.value)
    assert message.startswith("s3://private/data/x.n5/attributes.json: access denied (403)")
    assert "no AWS credentials found" in message
    assert "\n" not in message and "Traceback" not in message


def test_profile_from_aws_profile_and_from_storage_options(
    private: str, no_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[reader]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    async def main(**kw: object) -> tuple[bytes | None, bool]:
        async with open_store("s3://private/data/x.n5", **kw) as store:  # type: ignore[arg-type]
            assert isinstance(store, S3Store)
            return await store.get("attributes.json"), store.anonymous

    assert run(main, storage_options={"profile": "reader"}) == (b'{"n5": "2.0.0"}', False)
    monkeypatch.setenv("AWS_PROFILE", "reader")
    assert run(main) == (b'{"n5": "2.0.0"}', False)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StoreError, match=r"s3://private/data/x\.n5: .*no-such-profile"):
        run(main)


def test_explicit_anon_and_credentials_in_storage_options(private: str, public: str) -> None:
    async def main(url: str, options: dict[str, object]) -> tuple[bytes | None, bool]:
        async with open_store(url, storage_options=options) as store:
            assert isinstance(store, S3Store)
            return await store.get("attributes.json"), store.anonymous

    assert run(main, "s3://public/data/x.n5", {"anon": True}) == (b'{"n5": "2.0.0"}', True)
    signed = {"key": "testing", "secret": "testing"}
    assert run(main, "s3://private/data/x.n5", signed) == (b'{"n5": "2.0.0"}', False)
    with pytest.raises(StoreError, match="access denied"):
        run(main, "s3://private/data/x.n5", {"anon": True})


def test_endpoint_url_as_a_storage_option(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    async def main() -> bytes | None:
        options = {"endpoint_url": s3.endpoint}
        async with open_store("s3://private/data/x.n5", storage_options=options) as store:
            return await store.get("s0/attributes.json")

    assert run(main) == b'{"dimensions": [4]}'


def test_missing_bucket_is_a_store_error(s3: S3Server) -> None:
    async def main() -> None:
        async with open_store("s3://no-such-bucket/x.n5") as store:
            await store.get("attributes.json")

    with pytest.raises(StoreError, match=r"^s3://no-such-bucket/x\.n5/attributes\.json: bucket"):
        run(main)


def test_reads_send_one_get_and_no_head(private: str, s3: S3Server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> int:
            async with open_store("s3://private/data/x.n5") as store:
                await store.get("attributes.json")
                await store.get("missing")
                await store.get_many(["s0/attributes.json", "s0/0/0", "nope"])
                return store.requests

        assert run(main) == 5
        assert proxy.requests == 5


@pytest.mark.parametrize("direct", [True, False])
def test_listing_is_paginated(private: str, s3: S3Server, direct: bool) -> None:
    put(s3, "private", {f"data/x.n5/s0/0/{i}": b"" for i in range(1, 5)})
    put(s3, "private", {f"data/x.n5/s{i}/attributes.json": b"{}" for i in range(1, 4)})
    put(s3, "private", {"data/x.n5/s1/odd name+%/x": b""})

    async def main() -> tuple[object, ...]:
        # MaxKeys=2 applies to listings only (get_object takes no such parameter)
        options = {"s3_additional_kwargs": {"MaxKeys": 2}}
        async with open_store("s3://private/data/x.n5", storage_options=options) as store:
            if direct:  # a first GET teaches the store its direct path
                assert await store.get("attributes.json") == b'{"n5": "2.0.0"}'
            before = store.requests
            top = await store.list_dir()
            pages = store.requests - before
            return (
                top,
                pages,
                await store.list_dir("s0/0"),
                await store.list_dir("s1"),
                await store.list_dir("s1/odd name+%"),
                store.direct is not None,
            )

    top, pages, deep, odd, odd_inside, used_direct = run(main)
    assert top == (["labels", "s0", "s1", "s2", "s3"], ["attributes.json"])
    assert pages == 3
    assert deep == ([], ["0", "1", "2", "3", "4"])
    assert odd == (["odd name+%"], ["attributes.json"])
    assert odd_inside == ([], ["x"])
    assert used_direct is direct


def test_bucket_root_listing(private: str) -> None:
    async def main() -> tuple[list[str], list[str]]:
        async with open_store("s3://private") as store:
            return await store.list_dir()

    assert run(main) == (["data"], [])


def test_get_many_concurrent(private: str, s3: S3Server) -> None:
    objects = {f"data/many/{i}.json": str(i).encode() for i in range(40)}
    put(s3, "private", objects)
    keys = [f"{i}.json" for i in range(40)] + ["missing"]

    async def main() -> tuple[list[bytes | StoreError | None], int]:
        async with open_store("s3://private/data/many", concurrency=8) as store:
            return await store.get_many(keys), store.requests

    results, requests = run(main)
    assert results == [str(i).encode() for i in range(40)] + [None]
    assert requests == 41


# -- failures -------------------------------------------------------------------------------


def test_unreachable_endpoint_fails_fast_after_retries(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)

    attempts: list[int] = []

    async def main() -> None:
        async with open_store("s3://bucket/x.n5", retries=2, timeout=5) as store:
            try:
                await store.get("attributes.json")
            finally:
                attempts.append(store.requests)

    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        run(main)
    assert time.monotonic() - start < 10
    assert str(info.value) == (
        f"s3://bucket/x.n5/attributes.json: cannot connect to {closed[7:]} "
        "(gave up after 3 attempts)"
    )
    assert attempts == [3]


def test_throttling_and_server_errors_are_retried(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint, first_faults=["503", "500", "503"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[bytes | None, int]:
            async with open_store("s3://private/data/x.n5", retries=3) as store:
                return await store.get("attributes.json"), store.requests

        assert run(main) == (b'{"n5": "2.0.0"}', 4)
        assert (proxy.requests, proxy.injected) == (4, 3)


def test_persistent_throttling_becomes_a_store_error(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint, error_rate=1.0, statuses=["503"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> None:
            async with open_store("s3://private/data/x.n5", retries=2) as store:
                await store.list_dir()

        with pytest.raises(StoreError) as info:
            run(main)
        assert str(info.value) == (
            "s3://private/data/x.n5: SlowDown (503) (gave up after 3 attempts)"
        )
        assert proxy.requests == 3


def test_slow_answers_time_out_then_succeed(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint, first_faults=["slow"], delay=6.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[bytes | None, int, float]:
            async with open_store("s3://private/data/x.n5", retries=1, timeout=0.5) as store:
                start = time.monotonic()
                data = await store.get("attributes.json")
                return data, store.requests, time.monotonic() - start

        data, requests, elapsed = run(main)
        assert (data, requests) == (b'{"n5": "2.0.0"}', 2)
        assert elapsed < 5.0  # the slow answer was abandoned, not awaited
        assert proxy.by_fault == {"slow": 1, "ok": 1}


def test_timeouts_exhaust_retries(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint, first_faults=["slow"] * 2, delay=1.5) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> None:
            async with open_store("s3://private/data/x.n5", retries=1, timeout=0.3) as store:
                await store.get("attributes.json")

        with pytest.raises(StoreError, match=r"attributes\.json: timed out .*after 2 attempts"):
            run(main)


def test_random_faults_under_load(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = {f"data/f/{i}": str(i).encode() for i in range(30)}
    put(s3, "private", objects)
    with FaultProxy(s3.endpoint, error_rate=0.3, cut_rate=0.1, seed=7) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> list[bytes | StoreError | None]:
            async with open_store("s3://private/data/f", retries=8) as store:
                return await store.get_many([str(i) for i in range(30)])

        assert run(main) == [str(i).encode() for i in range(30)]
        assert proxy.injected > 0
        assert proxy.forwarded == 30


# -- the direct GET path --------------------------------------------------------------------


def test_direct_path_retries_and_falls_back_to_botocore(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> list[object]:
            async with open_store("s3://private/data/x.n5", retries=3) as store:
                seen: list[object] = [await store.get("attributes.json"), store.direct is not None]
                # direct GETs: throttled twice, then served
                proxy.first_faults = ["503", "cut", "cut", "ok"]
                proxy.reset_counters()
                seen += [await store.get("s0/attributes.json"), proxy.requests, store.requests]
                # a refusal the direct path does not expect: the same attempt goes to botocore
                proxy.first_faults = ["400", "ok"]
                proxy.reset_counters()
                seen += [await store.get("s0/0/0"), proxy.requests, store.requests]
                seen += [store.direct is None, await store.get("missing"), proxy.requests]
                return seen

        assert run(main) == [
            b'{"n5": "2.0.0"}',
            True,
            b'{"dimensions": [4]}',
            4,
            4,  # 1 + 3 attempts (aiohttp resent one cut by itself)
            b"\x00\x01",
            2,
            5,
            True,
            None,
            3,
        ]


def test_direct_path_reports_access_denied(public: str, s3: S3Server, no_credentials: None) -> None:
    """A public-read policy on one prefix only: the direct path meets the 403 and words it."""
    import json

    client = s3.client()
    client.create_bucket(Bucket="half")
    put(s3, "half", {"open/a.json": b"1", "closed/b.json": b"2"})
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::half/open/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket="half", Policy=json.dumps(policy))

    async def main() -> tuple[object, ...]:
        async with open_store("s3://half") as store:
            first = await store.get("open/a.json")
            direct = store.direct is not None
            results = await store.get_many(["closed/b.json", "open/a.json"])
            return first, direct, results

    first, direct, results = run(main)
    assert (first, direct, results[1]) == (b"1", True, b"1")
    assert isinstance(results[0], StoreError)
    assert str(results[0]) == (
        "s3://half/closed/b.json: access denied (403) with anonymous access: "
        "no AWS credentials found"
    )


def test_direct_path_reports_an_endpoint_that_went_away(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = FaultProxy(s3.endpoint).start()
    endpoint = proxy.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)

    async def main() -> tuple[object, ...]:
        async with open_store("s3://private/data/x.n5", retries=2, timeout=5) as store:
            first = await store.get("attributes.json")
            direct = store.direct is not None
            proxy.stop()
            before = store.requests
            start = time.monotonic()
            with pytest.raises(StoreError) as info:
                await store.get("s0/attributes.json")
            return first, direct, str(info.value), store.requests - before, time.monotonic() - start

    first, direct, message, attempts, elapsed = run(main)
    assert (first, direct, attempts) == (b'{"n5": "2.0.0"}', True, 3)
    assert message.startswith(
        f"s3://private/data/x.n5/s0/attributes.json: cannot connect to {endpoint[7:]}"
    )
    assert message.endswith("(gave up after 3 attempts)")
    assert elapsed < 10


def test_aws_endpoint_url_s3_is_honoured(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)

    async def main() -> tuple[bytes | None, tuple[list[str], list[str]]]:
        async with open_store("s3://private/data/x.n5") as store:
            return await store.get("attributes.json"), await store.list_dir("labels")

    assert run(main) == (b'{"n5": "2.0.0"}', (["a"], []))


def test_fallback_while_direct_requests_are_in_flight(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3, "private", {f"data/many/{i}": str(i).encode() for i in range(24)})
    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[list[bytes | StoreError | None], bool]:
            async with open_store("s3://private/data/many", concurrency=8) as store:
                await store.get("0")
                proxy.first_faults = ["ok", "ok", "400"]
                proxy.reset_counters()
                results = await store.get_many([str(i) for i in range(24)])
                return results, store.direct is None

        results, fell_back = run(main)
        assert results == [str(i).encode() for i in range(24)]
        assert fell_back
        assert proxy.by_fault["400"] == 1


def test_direct_listing_retries_transient_faults(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[object, ...]:
            async with open_store("s3://private/data/x.n5", retries=3) as store:
                await store.get("attributes.json")
                proxy.first_faults = ["500", "503"]
                proxy.reset_counters()
                listing = await store.list_dir()
                return listing, store.direct is not None, proxy.requests, proxy.injected

        assert run(main) == ((["labels", "s0"], ["attributes.json"]), True, 3, 2)


def test_cli_storage_options_reach_the_client_and_the_signer(
    private: str, s3: S3Server, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--storage-option`` pairs as the CLI parses them: credentials, endpoint, region."""
    from cellmap_schemas.io import parse_storage_options

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    options = parse_storage_options(
        [
            "anon=false",
            "key=testing",
            "secret=testing",
            f"endpoint_url={s3.endpoint}",
            "client_kwargs.region_name=eu-west-1",
        ]
    )

    async def main() -> tuple[object, ...]:
        async with open_store("s3://private/data/x.n5", storage_options=options) as store:
            assert isinstance(store, S3Store)
            first = await store.get("attributes.json")
            assert store.direct is not None
            second = await store.get("s0/attributes.json")
            return first, second, store.anonymous, store.direct.region, await store.list_dir()

    assert run(main) == (
        b'{"n5": "2.0.0"}',
        b'{"dimensions": [4]}',
        False,
        "eu-west-1",
        (["labels", "s0"], ["attributes.json"]),
    )


def test_requester_pays_keeps_every_get_on_the_client(private: str, s3: S3Server) -> None:
    """A GET with ``RequestPayer`` needs a header the direct path does not send: client only."""
    with FaultProxy(s3.endpoint) as proxy:

        async def main() -> tuple[object, ...]:
            options = {"requester_pays": True, "endpoint_url": proxy.endpoint}
            async with open_store("s3://private/data/x.n5", storage_options=options) as store:
                assert isinstance(store, S3Store)
                data = await store.get_many(["attributes.json", "s0/attributes.json", "nope"])
                return data, store.direct is None, store.requests

        assert run(main) == ([b'{"n5": "2.0.0"}', b'{"dimensions": [4]}', None], True, 3)
        assert proxy.requests == 3


def test_a_stalled_direct_get_ends_at_the_store_timeout(
    private: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first GET the store sends GETs itself (the direct path), without aiohttp's own
    timer: the store's timeout alone must end a request the server stalls, and the retry that
    follows succeeds."""
    put(s3, "private", {"data/x.n5/s0/attributes.json": b"{}"})
    with FaultProxy(s3.endpoint, first_faults=["ok", "slow"], delay=6.0) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)

        async def main() -> tuple[bytes | None, bool, float]:
            async with open_store("s3://private/data/x.n5", retries=1, timeout=0.5) as store:
                await store.get("attributes.json")  # through botocore: teaches the direct path
                assert isinstance(store, S3Store)
                direct = store.direct is not None
                start = time.monotonic()
                data = await store.get("s0/attributes.json")
                return data, direct, time.monotonic() - start

        data, direct, elapsed = run(main)
        assert direct and data == b"{}"
        assert elapsed < 5.0  # the stalled answer was abandoned at 0.5 s, then retried
        assert proxy.by_fault == {"slow": 1, "ok": 2}
