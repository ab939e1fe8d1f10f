#!/usr/bin/env python3
"""Fetch-only floor for the S3 scan: GET every metadata object by key, nothing else.

The keys come from the local copy of the uploaded tree (no listing), the requests run with a fixed
concurrency, and the bodies are read and dropped (no parsing, no validation). The time this takes
is what any scan of the same objects with the same concurrency must at least spend, so the scan's
wall time divided by this one is its overhead.

Three clients: ``store`` (default: cellmap-schemas' own S3 store, ``Store.get``, i.e. the scan's
client stack without listing and validation), ``aiobotocore`` (a plain signed ``get_object``
client with default settings) and ``aiohttp`` (unsigned GETs: the lowest client cost possible).

    python benchmarks/fetch_floor.py --root /tmp/bucket --bucket cellmap \\
        --endpoint-url http://127.0.0.1:8020 --concurrency 64 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fetch_all", "keys_below"]


METADATA = frozenset({"attributes.json", ".zgroup", ".zattrs", ".zarray", "zarr.json"})


def keys_below(
    root: str | os.PathLike[str], prefix: str = "", *, metadata_only: bool = False
) -> list[str]:
    """The object keys of every file below ``root`` (without the root's truth.json); with
    ``metadata_only``, of the metadata documents only (what a scan reads)."""
    root = Path(root)
    out = []
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            p = Path(dirpath, f)
            if (f == "truth.json" and p.parent == root) or (metadata_only and f not in METADATA):
                continue
            rel = p.relative_to(root).as_posix()
            out.append(f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel)
    out.sort()
    return out


async def _fetch_aiobotocore(
    keys: Sequence[str], bucket: str, endpoint_url: str, concurrency: int
) -> int:
    import aiobotocore.session
    from botocore.config import Config

    session = aiobotocore.session.get_session()
    config = Config(
        max_pool_connections=concurrency, retries={"total_max_attempts": 3, "mode": "standard"}
    )
    nbytes = 0
    async with session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        config=config,
    ) as client:
        it = iter(keys)

        async def worker() -> None:
            nonlocal nbytes
            for key in it:
                r = await client.get_object(Bucket=bucket, Key=key)
                async with r["Body"] as body:
                    data = await body.read()  # first: `+=` would load the total before the await
                    nbytes += len(data)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return nbytes


async def _fetch_store(
    keys: Sequence[str], bucket: str, endpoint_url: str, concurrency: int
) -> int:
    """Through cellmap-schemas' own S3 store (the scan's client stack), minus listing and
    validation."""
    from cellmap_schemas.io.store import open_store

    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    nbytes = 0
    async with open_store(f"s3://{bucket}", concurrency=concurrency) as store:
        it = iter(keys)

        async def worker() -> None:
            nonlocal nbytes
            for key in it:
                data = await store.get(key)
                if data is None:
                    raise FileNotFoundError(store.url_of(key))
                nbytes += len(data)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return nbytes


async def _fetch_aiohttp(
    keys: Sequence[str], bucket: str, endpoint_url: str, concurrency: int
) -> int:
    from urllib.parse import quote

    import yarl
    from aiohttp import ClientSession, TCPConnector

    base = f"{endpoint_url.rstrip('/')}/{bucket}/"
    nbytes = 0
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:
        it = iter(keys)

        async def worker() -> None:
            nonlocal nbytes
            for key in it:  # keys as S3 names them: `#`, `%` and spaces percent-encoded
                url = yarl.URL(base + quote(key, safe="/~"), encoded=True)
                async with session.get(url) as r:
                    r.raise_for_status()
                    body = await r.read()  # first: `+=` would load the total before the await
                    nbytes += len(body)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return nbytes


def fetch_all(
    keys: Sequence[str],
    bucket: str,
    endpoint_url: str,
    *,
    concurrency: int = 64,
    client: str = "store",
) -> dict[str, float | int]:
    """GET every key; return seconds, request count and bytes."""
    fetch = {"store": _fetch_store, "aiobotocore": _fetch_aiobotocore, "aiohttp": _fetch_aiohttp}[
        client
    ]
    t0 = time.perf_counter()
    nbytes = asyncio.run(fetch(keys, bucket, endpoint_url, concurrency))
    return {"seconds": time.perf_counter() - t0, "requests": len(keys), "bytes": nbytes}


def main(argv: Sequence[str] | None = None) -> int:
    t_start = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="local copy of the uploaded tree (key list)")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--client", choices=("store", "aiobotocore", "aiohttp"), default="store")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--metadata-only", action="store_true", help="only metadata documents")
    a = p.parse_args(argv)
    if not a.endpoint_url:
        p.error("--endpoint-url (or AWS_ENDPOINT_URL) is required")
    keys = keys_below(a.root, a.prefix, metadata_only=a.metadata_only)
    result: dict[str, object] = dict(
        fetch_all(keys, a.bucket, a.endpoint_url, concurrency=a.concurrency, client=a.client)
    )
    ru = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        client=a.client,
        concurrency=a.concurrency,
        process_seconds=time.perf_counter() - t_start,
        cpu_seconds=ru.ru_utime + ru.ru_stime,
        maxrss_mib=ru.ru_maxrss / 1024,
    )
    if a.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['requests']} objects ({result['bytes']} bytes) in {result['seconds']:.2f} s "
            f"with {a.client}, concurrency {a.concurrency}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
