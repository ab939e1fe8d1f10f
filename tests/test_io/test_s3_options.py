"""One reading of S3 options for the reader and the writer: names, precedence, environment."""

from __future__ import annotations

import pytest

from cellmap_schemas.io._s3_options import s3_settings
from cellmap_schemas.io._tensorstore import container

ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_client_kwargs_win_over_top_level_options_which_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert s3_settings({}).endpoint == "http://env:1"
    assert s3_settings({}).region == "eu-west-1"
    top = {"endpoint_url": "http://top:2", "region_name": "us-east-2"}
    assert (s3_settings(top).endpoint, s3_settings(top).region) == ("http://top:2", "us-east-2")
    both = {**top, "client_kwargs": {"endpoint_url": "http://ck:3", "region_name": "ap-1"}}
    assert (s3_settings(both).endpoint, s3_settings(both).region) == ("http://ck:3", "ap-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3env:4")
    assert s3_settings({}).endpoint == "http://s3env:4"  # the service-specific variable first


def test_credentials_anon_and_profile_under_s3fs_names() -> None:
    s = s3_settings({"key": "AK", "secret": "SK", "token": "T", "profile": "p"})
    assert (s.key, s.secret, s.token, s.profile, s.anon) == ("AK", "SK", "T", "p", None)
    assert s3_settings({"username": "AK", "password": "SK"}).secret == "SK"
    assert s3_settings({"anon": False}).anon is False
    assert s3_settings({"anon": True}).anon is True


def test_the_writer_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:1")
    spec = container("s3://bucket/data.n5", {"anon": True, "region_name": "us-east-2"}).kvstore
    assert spec["endpoint"] == "http://env:1"
    assert spec["aws_region"] == "us-east-2"
    assert spec["aws_credentials"] == {"type": "anonymous"}
    with pytest.raises(ValueError, match="explicit S3 keys"):
        container("s3://bucket/data.n5", {"key": "AK", "secret": "SK"})
