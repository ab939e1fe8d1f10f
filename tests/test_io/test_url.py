"""URL parsing and ``--storage-option`` parsing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellmap_schemas.io.url import Location, join_key, parse_storage_options, parse_url, redact


@pytest.mark.parametrize(
    ("url", "protocol", "path", "canonical"),
    [
        ("s3://bucket/a/b.n5/", "s3", "bucket/a/b.n5", "s3://bucket/a/b.n5"),
        ("s3a://bucket/a", "s3", "bucket/a", "s3://bucket/a"),
        ("s3://bucket", "s3", "bucket", "s3://bucket"),
        ("s3://bucket//a/./b/../c", "s3", "bucket/a/c", "s3://bucket/a/c"),
        ("gs://bucket/x.zarr", "gs", "bucket/x.zarr", "gs://bucket/x.zarr"),
        ("gcs://bucket/x.zarr", "gs", "bucket/x.zarr", "gs://bucket/x.zarr"),
        ("http://127.0.0.1:8000/d/x.zarr/", "http", "127.0.0.1:8000/d/x.zarr", None),
        ("https://example.org/x.zarr", "https", "example.org/x.zarr", None),
        ("memory://tree/x.n5/", "memory", "tree/x.n5", "memory://tree/x.n5"),
        ("file:///data/x.n5/", "file", "/data/x.n5", "/data/x.n5"),
        ("/data/../data/x.n5/", "file", "/data/x.n5", "/data/x.n5"),
        ("/", "file", "/", "/"),
    ],
)
def test_parse_url(url: str, protocol: str, path: str, canonical: str | None) -> None:
    loc = parse_url(url)
    assert (loc.protocol, loc.path) == (protocol, path)
    assert loc.url == (canonical or f"{protocol}://{path}")
    assert str(loc) == loc.url


def test_relative_and_home_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("x.n5").path == str(tmp_path / "x.n5")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_url("~/y.zarr").path == str(tmp_path / "y.zarr")
    assert parse_url(tmp_path / "z.zarr").path == str(tmp_path / "z.zarr")


@pytest.mark.parametrize("url", ["s3://", "s3:///", "http://", "cache::s3://bucket/x"])
def test_unusable_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        parse_url(url)


def test_unknown_protocols_pass_through() -> None:
    loc = parse_url("abfs://container/x.zarr")
    assert (loc.protocol, loc.path) == ("abfs", "container/x.zarr")


def test_join_and_storage_options() -> None:
    loc = parse_url("s3://b/root.n5", {"anon": True})
    child = loc.join("s0", "attributes.json")
    assert child.url == "s3://b/root.n5/s0/attributes.json"
    assert child.storage_options == {"anon": True}
    assert loc.join("").url == loc.url
    assert loc.join("/a//b/", "./c").url == "s3://b/root.n5/a/b/c"
    assert parse_url("/").join("a").url == "/a"
    assert join_key("", "a", "b") == "a/b"
    # hashable despite holding a mapping; options count for equality
    assert hash(loc) == hash(parse_url("s3://b/root.n5"))
    assert loc != parse_url("s3://b/root.n5")
    assert {loc: 1}[parse_url("s3://b/root.n5", {"anon": True})] == 1


def test_location_options_merge() -> None:
    base = parse_url("s3://b/x", {"anon": True, "profile": "a"})
    merged = parse_url(base, {"profile": "b"})
    assert merged.storage_options == {"anon": True, "profile": "b"}
    assert merged.path == "b/x"
    assert isinstance(merged, Location)
    with pytest.raises(TypeError):
        merged.storage_options["x"] = 1  # type: ignore[index]


def test_parse_storage_options_values() -> None:
    opts = parse_storage_options(
        [
            "anon=true",
            "use_ssl=False",
            "retries=5",
            "timeout=2.5",
            "token=null",
            "endpoint_url=http://127.0.0.1:9000",
            'client_kwargs={"region_name": "eu-west-1"}',
            "client_kwargs.verify=false",
            "config_kwargs.max_pool_connections=50",
            "profile= spaced ",
            "empty=",
        ]
    )
    assert opts == {
        "anon": True,
        "use_ssl": False,
        "retries": 5,
        "timeout": 2.5,
        "token": None,
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-1", "verify": False},
        "config_kwargs": {"max_pool_connections": 50},
        "profile": "spaced",
        "empty": "",
    }


@pytest.mark.parametrize("bad", ["anon", "=true", " =1"])
def test_parse_storage_options_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_storage_options([bad])


def test_parse_storage_options_rejects_conflicting_nesting() -> None:
    with pytest.raises(ValueError, match="conflicts"):
        parse_storage_options(["a=1", "a.b=2"])


def test_importing_io_leaves_the_storage_stack_unloaded() -> None:
    code = (
        "import sys, cellmap_schemas.io, cellmap_schemas.io.store;"
        "print(sorted(m for m in ('fsspec', 's3fs', 'aiohttp', 'botocore') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("http://user:PASS@host/x.zarr", "http://user:***@host/x.zarr"),
        ("https://:PASS@host:8443/a", "https://:***@host:8443/a"),
        ("http://u:P@SS@127.0.0.1:9000", "http://u:***@127.0.0.1:9000"),  # "@" in the password
        (
            "s3://b/k: cannot reach http://u:PASS@10.0.0.1/ (or http://v:PASS2@h/)",
            "s3://b/k: cannot reach http://u:***@10.0.0.1/ (or http://v:***@h/)",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=ab12&x-id=Get",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x-id=Get",
        ),
        ("https://host/a?token=SECRET#frag", "https://host/a?token=***#frag"),
        # nothing secret: unchanged
        ("http://user@host/a", "http://user@host/a"),
        ("s3://bucket/key=value/a@b:c", "s3://bucket/key=value/a@b:c"),
        ("/data/x.n5", "/data/x.n5"),
    ],
)
def test_redact(text: str, redacted: str) -> None:
    assert redact(text) == redacted
    assert "PASS" not in redact(text) and "SECRET" not in redact(text)


def test_parse_errors_redact_passwords() -> None:
    with pytest.raises(ValueError) as info:
        parse_url("http://user:PASS@host/x::memory://y")
    assert "PASS" not in str(info.value)
    assert str(info.value).startswith("http://user:***@host/x::memory://y: chained URLs")


@pytest.mark.parametrize("url", ["file:///data/x.n5", "file://localhost/data/x.n5",
                                 "file://LOCALHOST/data/x.n5", "local:///data/x.n5"])  # fmt: skip
def test_local_file_urls(url: str) -> None:
    assert parse_url(url) == Location("file", "/data/x.n5")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("file://otherhost/data/x.n5", "otherhost"),
        ("file://fileserver.example.org/share/x.zarr", "fileserver.example.org"),
        ("file://data/x.n5", "data"),  # a relative path written as a URL names a host
        ("file://me:PASS@nas/x.n5", "nas"),
    ],
)
def test_file_urls_on_another_host_are_refused(url: str, host: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_url(url)
    message = str(info.value)
    assert f"a file URL on another host ({host}) cannot be read here" in message
    assert "\n" not in message and "PASS" not in message


_SEGMENT = st.sampled_from(["", ".", "..", "a", "s0", "b c", "x.n5", "%2F", "é"])
_KEY = st.lists(_SEGMENT, max_size=5).map("/".join)


@given(base=st.sampled_from(["", "/", "/data", "bucket/x.n5", "bucket/"]), key=_KEY)
def test_join_key_of_one_key_is_the_general_join(base: str, key: str) -> None:
    """The one-key fast path drops empty and "." segments exactly as the general join does."""
    segments = [s for s in key.split("/") if s and s != "."]
    expected = base if not segments else join_key(base, *segments)
    assert join_key(base, key) == expected
    assert join_key(base, key, "") == expected


@given(
    loc=st.sampled_from(
        [Location("file", "/data/x"), Location("s3", "bucket"), Location("https", "h:8/p")]
    ),
    key=_KEY,
)
def test_url_at_is_the_url_of_the_joined_location(loc: Location, key: str) -> None:
    assert loc.url_at(key) == loc.join(key).url
