"""The scan against a real S3 server (moto on 127.0.0.1): a bucket of 1,000 groups, injected
faults, a denied prefix, keys with ``..`` segments, and what each node costs in requests."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from cellmap_schemas._scan import NodeResult, RootError, ScanReport
from conftest import S3Server
from faults import FaultProxy

from .conftest import gh, run_scan
from .test_crawl_local import _crawl

COSEM = "multiscale.cosem.Group"


@pytest.fixture(autouse=True)
def _quiet_server_log() -> Iterator[None]:
    """The in-process moto server logs every request; thousands of captured lines only slow
    the tests down."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def _public(s3: S3Server, bucket: str, deny: str | None = None) -> None:
    """A bucket anyone may list and read, except objects below ``deny`` (GetObject denied)."""
    s3.public_bucket(bucket)
    if deny is None:
        return
    statements = [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{deny}*"],
        },
    ]
    policy = {"Version": "2012-10-17", "Statement": statements}
    s3.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """1,000 COSEM groups over 4 datasets, one scale level each (metadata only): moto answers
    a few hundred requests a second, so the test keeps to ~5,000 (uploads included)."""
    out = tmp_path_factory.mktemp("big")
    truth = gh.generate(out, datasets=4, groups=1000, levels=1, broken_fraction=0.05, seed=3)
    return out, truth


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("small")
    truth = gh.generate(out, datasets=3, groups_per_dataset=8, levels=3, broken_fraction=0.0,
                        seed=4)  # fmt: skip
    return out, truth


def _upload(s3: S3Server, bucket: str, root: Path) -> int:
    return gh.upload(root, bucket, endpoint_url=s3.endpoint, workers=32, client=s3.client())


def test_bucket_of_1000_groups(s3: S3Server, big_tree: tuple[Path, Any]) -> None:
    root, truth = big_tree
    assert truth.roots == 1000
    _public(s3, "cosem-bucket")
    _upload(s3, "cosem-bucket", root)
    report = run_scan("s3://cosem-bucket", models=[COSEM])
    datasets = {d.name: d for d in report.datasets}
    assert set(datasets) == set(truth.datasets)
    for name, t in truth.datasets.items():
        assert datasets[name].nodes == t.nodes
        assert datasets[name].unreadable == t.unreadable
        judged = [n for n in report.nodes if n.path.startswith(name + "/") and n.results]
        assert len(judged) == t.models[COSEM].valid + t.models[COSEM].invalid
        assert sum(n.status == "invalid" for n in judged) == t.models[COSEM].invalid
    s = report.summary
    assert (s.nodes, s.groups, s.arrays) == (truth.nodes, truth.groups, truth.arrays)
    # N5 on S3: one GET per node and one listing per group; above the containers, the bucket
    # root (6 documents probed, 1 listing) and each dataset folder (3 probed, 1 listing)
    above = 6 + 1 + 4 * len(truth.datasets)
    # one GET per node, one listing per group and per unreadable node (a broken document may
    # be a group's, with nodes below it)
    assert s.requests == truth.nodes + truth.groups + s.unreadable + above


def test_injected_faults_every_node_accounted_for(
    s3: S3Server, small_tree: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, truth = small_tree
    _public(s3, "faulty")
    _upload(s3, "faulty", root)
    clean = run_scan("s3://faulty", models=[COSEM])
    assert clean.conforms and clean.summary.nodes == truth.nodes

    with FaultProxy(s3.endpoint, error_rate=0.3, cut_rate=0.05, seed=12) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        faulty = run_scan("s3://faulty", models=[COSEM], retries=1, timeout=10)
        assert proxy.injected >= 10
    assert faulty.summary.unreadable > 0  # some requests failed twice in a row
    _accounted_for(clean, faulty)

    with FaultProxy(s3.endpoint, error_rate=0.3, cut_rate=0.05, seed=12) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        retried = run_scan("s3://faulty", models=[COSEM], retries=8, timeout=10)
        assert proxy.injected >= 10
    assert [(n.path, n.status) for n in retried.nodes] == [
        (n.path, n.status) for n in clean.nodes
    ]  # fmt: skip


def _accounted_for(clean: ScanReport, faulty: ScanReport) -> None:
    """Each node of the clean scan is in the faulty one (same verdict, or unreadable with a
    reason, or a group invalid because a member was unreadable), or below an unreadable node."""
    seen = {n.path: n for n in faulty.nodes}
    unreadable = [p for p, n in seen.items() if n.status == "unreadable"]
    for n in faulty.nodes:
        if n.status == "unreadable":
            assert n.error and ("503" in n.error or "500" in n.error or "connect" in n.error
                                or "InternalError" in n.error or "SlowDown" in n.error
                                or "connection" in n.error), n.error  # fmt: skip
    for node in clean.nodes:
        got: NodeResult | None = seen.get(node.path)
        if got is None:
            assert any(node.path.startswith(p + "/") or p == "" for p in unreadable), node.path
        elif got.status == "unreadable":
            continue
        elif got.status != node.status:
            assert got.status == "invalid" and node.status == "valid"
            assert all("member unreadable" in e.msg for e in got.results[COSEM].errors)
        assert got is None or got.path in seen
    # the only extra entries: folders whose listing failed (not nodes in the clean scan)
    extra = set(seen) - {n.path for n in clean.nodes}
    assert all(seen[p].status == "unreadable" and seen[p].kind is None for p in extra)


def test_denied_prefix_anonymous(
    s3: S3Server, small_tree: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, truth = small_tree
    denied = sorted(truth.datasets)[1]
    _public(s3, "partly-denied", deny=f"{denied}/")
    _upload(s3, "partly-denied", root)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    report = run_scan("s3://partly-denied", models=[COSEM])
    datasets = {d.name: d for d in report.datasets}
    assert datasets[denied].conforms is False
    bad = [n for n in report.nodes if n.path.startswith(denied + "/")]
    [container] = bad  # the container's metadata is denied: nothing below it is followed
    assert container.status == "unreadable" and "access denied (403)" in (container.error or "")
    assert "anonymous" in (container.error or "")
    for name in truth.datasets:
        if name != denied:
            assert datasets[name].conforms and datasets[name].nodes == truth.datasets[name].nodes


def test_denied_prefix_signed(s3: S3Server, small_tree: tuple[Path, Any]) -> None:
    root, truth = small_tree
    name = sorted(truth.datasets)[0]
    group = next(p for p in truth.datasets[name].roots)  # one multiscale group
    _public(s3, "signed-denied", deny=f"{group}/s1/")
    _upload(s3, "signed-denied", root)
    report = run_scan("s3://signed-denied", models=[COSEM])
    nodes = {n.path: n for n in report.nodes}
    s1 = nodes[f"{group}/s1"]
    assert s1.status == "unreadable" and "access denied (403)" in (s1.error or "")
    assert nodes[group].status == "invalid"
    [error] = nodes[group].results[COSEM].errors
    assert error.loc == "members.s1" and "access denied" in error.msg
    assert report.summary.unreadable == 1
    assert report.summary.nodes == truth.nodes


def test_keys_with_dot_dot_segments(s3: S3Server) -> None:
    _public(s3, "dots")
    c = s3.client()
    objects = {
        "ds/c.n5/attributes.json": b'{"n5": "2.0.0"}',
        "ds/c.n5/g/attributes.json": b"{}",
        "ds/c.n5/../escape/attributes.json": b"{}",
        "ds/c.n5/g/./dot/attributes.json": b"{}",
        "ds/c.n5/g/../../../etc/attributes.json": b"{}",
        "ds/c.n5/g/a\\b/attributes.json": b"{}",
    }
    for key, body in objects.items():
        c.put_object(Bucket="dots", Key=key, Body=body)
    report = run_scan("s3://dots")
    nodes = {n.path: n for n in report.nodes}
    assert nodes["ds/c.n5"].status == "not_applicable"
    assert nodes["ds/c.n5/g"].status == "not_applicable"
    unsafe = {p: n for p, n in nodes.items() if n.status == "unreadable"}
    assert set(unsafe) == {"ds/c.n5/..", "ds/c.n5/g/.", "ds/c.n5/g/..", "ds/c.n5/g/a\\b"}
    assert all("unsafe member name" in (n.error or "") for n in unsafe.values())


def test_missing_bucket_and_denied_root(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from cellmap_schemas.errors import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        run_scan("s3://no-such-bucket")
    s3.client().create_bucket(Bucket="private")
    s3.client().put_object(Bucket="private", Key="c.n5/attributes.json", Body=b"{}")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # the root's own metadata is denied: the scan cannot start
    with pytest.raises(RootError, match=r"access denied \(403\) with anonymous access"):
        run_scan("s3://private/c.n5")
    # below the root, the same denial is one unreadable node
    report = run_scan("s3://private")
    [node] = report.nodes
    assert node.path == "c.n5" and node.status == "unreadable" and node.format == "n5"


def test_mixed_formats_read_on_s3_as_on_disk(
    s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """N5, Zarr v2 (OME-NGFF 0.4, crops) and Zarr v3 on S3, where metadata is fetched only
    where a listing or the parent's format says it is: same verdicts as on local disk."""
    root = tmp_path_factory.mktemp("mixed-s3")
    truth = gh.generate(root, datasets=2, groups_per_dataset=3, levels=2, broken_fraction=0.5,
                        seed=9, layout="mixed")  # fmt: skip
    _public(s3, "mixed")
    _upload(s3, "mixed", root)
    remote = run_scan("s3://mixed")
    local = run_scan(str(root))

    def key(report: ScanReport) -> list[tuple[Any, ...]]:
        return [(n.path, n.kind, n.format, n.status, sorted(n.results)) for n in report.nodes]

    assert key(remote) == key(local)
    assert remote.summary.nodes == truth.nodes
    assert {n.format for n in remote.nodes} == {"n5", "zarr2", "zarr3"}
    # arrays cost their metadata documents only: never a listing; nothing but metadata is read
    store, results = anyio.run(_crawl, "s3://mixed")
    arrays = {n.path for n in results if n.kind == "array"}
    assert arrays and not arrays & set(store.listed)
    names = {"attributes.json", ".zarray", ".zattrs", ".zgroup", "zarr.json", ".zmetadata"}
    assert {key.rsplit("/", 1)[-1] for key in store.read} <= names
    # groups are listed once; no directory is read or listed twice
    assert len(store.listed) == len(set(store.listed))
    assert len(store.read) == len(set(store.read))
