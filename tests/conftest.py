"""Fixtures shared by every test: a real S3 server (moto, server mode) on loopback; and how
two scan reports are compared."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

if TYPE_CHECKING:
    from cellmap_schemas._scan import ScanReport

DATA = Path(__file__).parent / "data"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on 127.0.0.1 and the settings that reach it."""

    endpoint: str

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 client with credentials, for arranging buckets in tests."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def public_bucket(self, name: str) -> None:
        """Create a bucket whose objects anyone may read and list (like janelia-cosem-datasets)."""
        import json

        c = self.client()
        c.create_bucket(Bucket=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                }
            ],
        }
        c.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))

    def upload_dir(self, bucket: str, local: Path, prefix: str = "") -> int:
        """Upload every file below ``local`` to ``bucket/prefix``; return how many."""
        c = self.client()
        n = 0
        for path in sorted(local.rglob("*")):
            if path.is_file():
                key = "/".join(p for p in (prefix, path.relative_to(local).as_posix()) if p)
                c.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
                n += 1
        return n


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto server for the session; use the ``s3`` fixture, which also resets it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """An empty S3 server, with the standard AWS variables pointing at it (signed requests).

    Tests of anonymous access delete the credential variables with ``monkeypatch.delenv``.
    """
    s3_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "FSSPEC_S3_ENDPOINT_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return s3_server


def same_report(a: ScanReport, b: ScanReport) -> None:
    """Equal scan reports (a sharded scan against one process): every record, the dataset
    totals, the summary with its request count (each directory is read once, by one
    process), but for the time and the per-task concurrency budget."""
    assert [n.path for n in a.nodes] == [n.path for n in b.nodes]
    assert a.nodes == b.nodes
    assert msgspec.to_builtins(a.datasets) == msgspec.to_builtins(b.datasets)
    sa, sb = msgspec.to_builtins(a.summary), msgspec.to_builtins(b.summary)
    for s in (sa, sb):
        s.pop("elapsed_s")
        s.pop("started_at")
        s["options"].pop("concurrency")
    assert sa == sb
    assert (a.root, a.models) == (b.root, b.models)
