#!/usr/bin/env python3
"""Client cost of the storage layer: CPU per S3 GET against moto, and local batched reads.

moto runs in a separate process, behind a keep-alive proxy in a third one (moto closes every
connection), so this process's CPU time (``time.process_time``) is the client's alone. Each S3
mode fetches the same small objects with the same concurrency:

- ``store-signed``: ``get_many`` on an open store (direct aiohttp GETs, SigV4-signed, no HEAD);
- ``store-anon``: the same on a public bucket with no credentials (unsigned);
- ``store-get``: ``store.get`` one key at a time (sequential; latency, not throughput);
- ``store-botocore``: ``get_many`` with every GET through aiobotocore (the direct path off);
- ``<mode>-list``: ``list_many`` over one directory per object (ListObjectsV2, delimiter "/");
- ``s3fs-cat``: s3fs ``_cat_file`` (a HEAD before every GET), the path the store avoids;
- ``aiohttp-raw``: plain unsigned aiohttp GETs, the floor for any client.

Local modes read N small files: ``local-get_many`` (batches in few thread calls),
``local-get_many-5s`` (``get_many`` of 5 keys at a time, as a scan probes a directory),
``local-get`` (one thread call per file) and ``local-os`` (a plain loop, no event loop); and list
one directory per file: ``local-list_many`` (batched) and ``local-list_dir`` (one call each).

    uv run python benchmarks/bench_store.py --objects 400 --concurrency 32 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not start")


def start_keepalive_proxy(target: str) -> tuple[subprocess.Popen[str], str]:
    """tests/faults.py's proxy (no faults) in its own process: HTTP/1.1 keep-alive to the client.

    moto closes every connection after one answer, so without it each request would pay for a
    new TCP connection, which real S3 does not make clients do.
    """
    tests = Path(__file__).resolve().parent.parent / "tests"
    code = (
        f"import sys, time; sys.path.insert(0, {str(tests)!r}); from faults import FaultProxy; "
        f"p = FaultProxy({target!r}).start(); print(p.endpoint, flush=True); time.sleep(1e9)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def populate(endpoint: str, n: int) -> list[str]:
    import boto3

    c = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for bucket in ("bench-private", "bench-public"):
        c.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::bench-public", "arn:aws:s3:::bench-public/*"],
            }
        ],
    }
    c.put_bucket_policy(Bucket="bench-public", Policy=json.dumps(policy))
    keys = [f"g{i // 50}/n{i}/attributes.json" for i in range(n)]
    body = json.dumps({"n5": "2.0.0", "dimensions": [512, 512, 512], "blockSize": [64] * 3})
    for bucket in ("bench-private", "bench-public"):
        for key in keys:
            c.put_object(Bucket=bucket, Key=f"root/{key}", Body=body.encode())
    return keys


def set_env(endpoint: str, *, signed: bool) -> None:
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    if signed:
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    else:
        os.environ.pop("AWS_ACCESS_KEY_ID", None)
        os.environ.pop("AWS_SECRET_ACCESS_KEY", None)


async def measure(name: str, n: int, work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    await work()  # warm-up: imports, client setup, connection pool
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await work()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "mode": name,
        "requests": n,
        "wall_s": round(wall, 3),
        "per_s": round(n / wall),
        "cpu_ms_per_request": round(1000 * cpu / n, 3),
    }


async def s3_modes(endpoint: str, keys: list[str], concurrency: int) -> list[dict[str, Any]]:
    from cellmap_schemas.io import open_store

    n = len(keys)
    out = []

    async def store_modes(url: str, name: str, *, direct: bool = True) -> None:
        # One store for warm-up and measured run: steady state, as a scan keeps its store open.
        async with open_store(url, concurrency=concurrency) as store:
            if not direct:
                store._learn = False  # type: ignore[attr-defined]  # botocore for every GET

            async def many() -> None:
                before = store.requests
                results = await store.get_many(keys)
                assert all(isinstance(r, bytes) for r in results), results[:3]
                assert store.requests - before == n

            dirs = [k.rsplit("/", 1)[0] for k in keys]

            async def listings() -> None:
                results = await store.list_many(dirs)
                assert all(r == ([], ["attributes.json"]) for r in results), results[:3]

            async def sequential() -> None:
                for key in keys:
                    await store.get(key)

            out.append(await measure(f"{name}", n, many))
            out.append(await measure(f"{name}-list", n, listings))
            if name == "store-signed":
                out.append(await measure("store-get", n, sequential))

    async def s3fs_cat() -> None:
        import s3fs

        fs = s3fs.S3FileSystem(asynchronous=True, skip_instance_cache=True)
        session = await fs.set_session()
        sem = asyncio.Semaphore(concurrency)
        try:

            async def one(key: str) -> None:
                async with sem:
                    await fs._cat_file(f"bench-private/root/{key}")

            await asyncio.gather(*(one(k) for k in keys))
        finally:
            await session.close()

    async def aiohttp_raw() -> None:
        import aiohttp

        sem = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(key: str) -> None:
                async with sem, session.get(f"{endpoint}/bench-public/root/{key}") as r:
                    r.raise_for_status()
                    await r.read()

            await asyncio.gather(*(one(k) for k in keys))

    set_env(endpoint, signed=True)
    await store_modes("s3://bench-private/root", "store-signed")
    await store_modes("s3://bench-private/root", "store-botocore", direct=False)
    out.append(await measure("s3fs-cat", n, s3fs_cat))
    set_env(endpoint, signed=False)
    await store_modes("s3://bench-public/root", "store-anon")
    out.append(await measure("aiohttp-raw", n, aiohttp_raw))
    return out


async def local_modes(n: int) -> list[dict[str, Any]]:
    from cellmap_schemas.io import open_store

    with tempfile.TemporaryDirectory() as tmp:
        keys = [f"g{i // 50}/n{i}/attributes.json" for i in range(n)]
        for key in keys:
            p = Path(tmp, key)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b'{"n5": "2.0.0", "dimensions": [512, 512, 512]}')

        async def many() -> None:
            async with open_store(tmp) as store:
                await store.get_many(keys)

        async def small_batches() -> None:
            # the scanner's pattern: a few probes per directory, one get_many each
            async with open_store(tmp) as store:
                for i in range(0, len(keys), 5):
                    await store.get_many(keys[i : i + 5])

        async def one_by_one() -> None:
            async with open_store(tmp) as store:
                await asyncio.gather(*(store.get(k) for k in keys))

        dirs = [k.rsplit("/", 1)[0] for k in keys]

        async def list_many() -> None:
            async with open_store(tmp) as store:
                await store.list_many(dirs)

        async def list_one_by_one() -> None:
            async with open_store(tmp) as store:
                await asyncio.gather(*(store.list_dir(d) for d in dirs))

        async def plain() -> None:
            for key in keys:
                with open(os.path.join(tmp, key), "rb") as f:
                    f.read()

        return [
            await measure("local-get_many", n, many),
            await measure("local-get_many-5s", n, small_batches),
            await measure("local-get", n, one_by_one),
            await measure("local-os", n, plain),
            await measure("local-list_many", n, list_many),
            await measure("local-list_dir", n, list_one_by_one),
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--local-files", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument(
        "--no-keepalive", action="store_true", help="talk to moto directly (a connection per GET)"
    )
    args = parser.parse_args(argv)

    rows = asyncio.run(local_modes(args.local_files))
    if not args.skip_s3:
        proc, endpoint = start_moto()
        proxy = None
        try:
            keys = populate(endpoint, args.objects)
            if not args.no_keepalive:
                proxy, endpoint = start_keepalive_proxy(endpoint)
            rows += asyncio.run(s3_modes(endpoint, keys, args.concurrency))
        finally:
            for p in (proxy, proc):
                if p is not None:
                    p.terminate()
                    p.wait(10)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'mode':20} {'requests':>8} {'wall s':>8} {'req/s':>7} {'CPU ms/req':>10}")
        for r in rows:
            print(
                f"{r['mode']:20} {r['requests']:>8} {r['wall_s']:>8} {r['per_s']:>7} "
                f"{r['cpu_ms_per_request']:>10}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
