"""Creating hierarchies on S3 (the moto server of the ``s3`` fixture)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from cellmap_schemas.errors import NodeExistsError, StoreError
from cellmap_schemas.io.write import write_pyramid
from faults import FaultProxy

from . import FORMATS, SUFFIX, read_back, sample_data, sample_spec

BUCKET = "cellmap-write"


def _kv(s3: Any, key: str) -> dict[str, Any]:
    return {
        "driver": "s3",
        "bucket": BUCKET,
        "path": key.strip("/") + "/",
        "endpoint": s3.endpoint,
        "aws_credentials": {"type": "environment"},
    }


def _data(spec: Any, fmt: str) -> dict[str, np.ndarray]:
    leaves = {"s0": spec.members["s0"], "s1": spec.members["s1"]}
    leaves["labels/mask"] = spec.members["labels"].members["mask"]
    return {
        name: a.astype(leaves[name].data_type if fmt == "zarr3" else leaves[name].dtype)
        for name, a in sample_data().items()
    }


def _keys(s3: Any, prefix: str = "") -> dict[str, bytes]:
    client = s3.client()
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listing
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_on_s3(s3: Any, fmt: str) -> None:
    s3.client().create_bucket(Bucket=BUCKET)
    spec = sample_spec(fmt)
    url = f"s3://{BUCKET}/prefix/{SUFFIX[fmt]}"
    group = spec.to_zarr(url, "image")  # endpoint from AWS_ENDPOINT_URL
    data = _data(spec, fmt)
    for name, array in data.items():
        group[name][:] = array

    assert type(spec).from_url(f"{url}/image") == spec
    for name, array in data.items():
        back = read_back(fmt, _kv(s3, f"prefix/{SUFFIX[fmt]}/image/{name}"))
        np.testing.assert_array_equal(back, array)
    keys = _keys(s3)
    assert all(k.startswith(f"prefix/{SUFFIX[fmt]}/") for k in keys)
    if fmt == "n5":
        assert json.loads(keys["prefix/data.n5/attributes.json"]) == {"n5": "2.0.0"}


def test_endpoint_from_storage_options(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    s3.client().create_bucket(Bucket=BUCKET)
    spec = sample_spec("zarr2")
    data = _data(spec, "zarr2")
    options = {"endpoint_url": s3.endpoint}
    write_pyramid(spec, f"s3://{BUCKET}/data.zarr", "image", data, storage_options=options)
    assert type(spec).from_url(f"s3://{BUCKET}/data.zarr/image", storage_options=options) == spec
    np.testing.assert_array_equal(read_back("zarr2", _kv(s3, "data.zarr/image/s0")), data["s0"])


def test_endpoint_from_aws_endpoint_url_s3(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the S3-specific one wins
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    s3.client().create_bucket(Bucket=BUCKET)
    sample_spec("n5").to_zarr(f"s3://{BUCKET}/data.n5", "image")
    assert "data.n5/image/s0/attributes.json" in _keys(s3)


def test_existing_node_on_s3_is_refused(s3: Any) -> None:
    s3.client().create_bucket(Bucket=BUCKET)
    spec = sample_spec("n5")
    url = f"s3://{BUCKET}/data.n5"
    write_pyramid(spec, url, "image", _data(spec, "n5"))
    before = _keys(s3)
    with pytest.raises(NodeExistsError, match=rf"{url}: node 'image' already exists"):
        spec.to_zarr(url, "image")
    assert _keys(s3) == before
    spec.members["s1"].to_zarr(url, "image/s1", overwrite=True)
    after = _keys(s3)
    assert not [k for k in after if k.startswith("data.n5/image/s1/") and k[-1].isdigit()]
    assert {k: v for k, v in after.items() if not k.startswith("data.n5/image/s1/")} == {
        k: v for k, v in before.items() if not k.startswith("data.n5/image/s1/")
    }


def test_missing_bucket_is_a_store_error(s3: Any) -> None:
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"s3://no-such-bucket/data.n5: .*NoSuchBucket"):
        sample_spec("n5").to_zarr("s3://no-such-bucket/data.n5", "image")
    assert time.monotonic() - start < 30


def test_unreachable_endpoint_fails_quickly(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing there
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"s3://cellmap-write/data.zarr: reading .* failed"):
        sample_spec("zarr2").to_zarr(
            f"s3://{BUCKET}/data.zarr", "image", storage_options={"retries": 2}
        )
    assert time.monotonic() - start < 30


def test_failed_chunk_write_names_array_and_region(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.client().create_bucket(Bucket=BUCKET)
    url = f"s3://{BUCKET}/data.n5"
    with FaultProxy(s3.endpoint, statuses=("503",)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        group = sample_spec("n5").to_zarr(url, "image", storage_options={"retries": 2})
        proxy.error_rate = 1.0  # from now on S3 answers every request with 503 SlowDown
        start = time.monotonic()
        with pytest.raises(
            StoreError, match=rf"{url}: writing image/s1 \[0:2, 0:5, 0:7\] failed: .*(503|SlowDown)"
        ) as info:
            group["s1"][0:2] = np.ones((2, 5, 7), dtype="uint16")
        assert time.monotonic() - start < 30
        assert proxy.injected > 0
    assert "tensorstore_spec" not in str(info.value)
    assert "http_response_body" not in str(info.value)


def test_concurrent_writers_on_s3_exactly_one_wins(s3: Any) -> None:
    """The claim of the target's document is a conditional PUT: one writer wins on S3 too."""
    import threading

    from cellmap_schemas.spec.zarr_v2 import ArraySpec

    s3.client().create_bucket(Bucket=BUCKET)
    spec = ArraySpec.from_array(np.zeros((4, 6), dtype="uint8"), chunks=(2, 3))
    for trial in range(5):
        url = f"s3://{BUCKET}/race{trial}/data.zarr"
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def writer(
            url: str = url, barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
        ) -> None:
            barrier.wait()
            try:
                spec.to_zarr(url, "raw")
                outcomes.append("ok")
            except NodeExistsError:
                outcomes.append("exists")

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == ["exists", "exists", "exists", "ok"], (trial, outcomes)
