"""URLs of hierarchies: one parsed form for local paths and every fsspec protocol.

Parsing imports nothing heavy (no fsspec, no s3fs), so the CLI can parse arguments and print
``--help`` without paying for the storage stack.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Location", "parse_storage_options", "parse_url", "redact"]

# Aliases accepted on input -> the protocol name a Location carries.
_ALIASES = {
    "": "file",
    "file": "file",
    "local": "file",
    "s3": "s3",
    "s3a": "s3",
    "gs": "gs",
    "gcs": "gs",
    "http": "http",
    "https": "https",
    "memory": "memory",
}

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_LOCAL_HOSTS = frozenset({"", "localhost"})

# scheme://user:password@ (the password may hold "@": the authority ends at the last one)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*):[^/?#\s]*@")
# the secrets of presigned URLs (S3, GCS, Azure SAS) and bearer tokens in a query string
_SECRET_QUERY = re.compile(
    r"(?i)(?P<head>[?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential|signature|sig|awsaccesskeyid|access_token|token)=)"
    r"[^&#\s]*"
)


def redact(text: str) -> str:
    """``text`` (a URL, or a message quoting URLs) with every password and URL secret as ``***``.

    Messages and reports name URLs; a URL may carry credentials (``http://user:PASS@host``, an
    ``endpoint_url`` with userinfo, a presigned query string) that must not reach a terminal or
    a log. The user name stays, to tell which account was used.

    Examples
    --------
    >>> redact("http://me:s3cret@example.org/x.zarr: access denied (403)")
    'http://me:***@example.org/x.zarr: access denied (403)'
    >>> redact("https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&x-id=GetObject")
    'https://b.s3.amazonaws.com/k?X-Amz-Signature=***&x-id=GetObject'
    """
    if "@" in text:
        text = _USERINFO.sub(r"\g<head>:***@", text)
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\g<head>***", text)
    return text


@dataclass(frozen=True)
class Location:
    """Where a hierarchy lives: a protocol, a path within it, and fsspec storage options.

    ``path`` has no protocol and no trailing slash: an absolute POSIX path for ``file``,
    ``bucket/prefix`` for ``s3``/``gs``, ``host[:port]/path`` for ``http(s)`` and ``name`` for
    ``memory``. Storage options are excluded from the hash (they may hold unhashable values) but
    take part in equality.

    Examples
    --------
    >>> loc = parse_url("s3://janelia-cosem-datasets/jrc_hela-2/jrc_hela-2.n5/")
    >>> loc.protocol, loc.path
    ('s3', 'janelia-cosem-datasets/jrc_hela-2/jrc_hela-2.n5')
    >>> loc.join("em", "fibsem-uint16").url
    's3://janelia-cosem-datasets/jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint16'
    """

    protocol: str
    path: str
    storage_options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)

    @property
    def url(self) -> str:
        """The canonical string form; local files are shown as plain absolute paths."""
        if self.protocol == "file":
            return self.path
        return f"{self.protocol}://{self.path}"

    def url_at(self, key: str) -> str:
        """``self.join(key).url``, without building the location (asked ~3 times per node)."""
        path = join_key(self.path, key)
        return path if self.protocol == "file" else f"{self.protocol}://{path}"

    def join(self, *parts: str) -> Location:
        """The location of a descendant; ``parts`` are "/"-separated keys relative to this one."""
        return Location(self.protocol, join_key(self.path, *parts), self.storage_options)

    def __str__(self) -> str:
        return self.url


def join_key(base: str, *parts: str) -> str:
    """Join "/"-separated keys, dropping empty segments and "." (not resolving "..")."""
    if len(parts) == 1:  # the common call: one key, usually already clean
        segments = parts[0].split("/")
        if "" in segments or "." in segments:
            segments = [s for s in segments if s and s != "."]
    else:
        segments = [s for part in parts for s in part.split("/") if s and s != "."]
    if not segments:
        return base
    tail = "/".join(segments)
    if not base:
        return tail
    return f"{base.rstrip('/')}/{tail}" if base != "/" else f"/{tail}"


def parse_url(
    url: str | os.PathLike[str] | Location, storage_options: Mapping[str, Any] | None = None
) -> Location:
    """Parse a local path or URL into a :class:`Location`.

    Parameters
    ----------
    url
        A local path (relative paths are made absolute, ``~`` is expanded), ``file://``,
        ``s3://``, ``gs://``, ``http(s)://`` or ``memory://`` URL, or an existing ``Location``
        (returned with ``storage_options`` merged over its own). Other fsspec protocols are kept
        as given and served through fsspec.
    storage_options
        fsspec options for the filesystem (for example ``{"anon": True}`` or
        ``{"endpoint_url": "http://127.0.0.1:9000"}``).

    Returns
    -------
    Location

    Raises
    ------
    ValueError
        If the URL has no path (``s3://``), uses a chained (``a::b``) URL, or is a ``file://``
        URL naming another host (only ``file:///path`` and ``file://localhost/path`` are local).

    Examples
    --------
    >>> parse_url("/data/../data/x.n5/").url
    '/data/x.n5'
    >>> parse_url("https://example.org/data/x.zarr/").path
    'example.org/data/x.zarr'
    """
    options: Mapping[str, Any] = MappingProxyType(dict(storage_options or {}))
    if isinstance(url, Location):
        merged = {**url.storage_options, **options}
        return Location(url.protocol, url.path, MappingProxyType(merged))
    text = os.fspath(url)
    if "::" in text:
        raise ValueError(f"{redact(text)}: chained URLs are not supported")
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").isalnum() or len(scheme) < 2:
        # No scheme (or a Windows-like drive letter): a local path.
        return Location("file", _local_path(text), options)
    protocol = _ALIASES.get(scheme.lower(), scheme.lower())
    if protocol == "file":
        parts = urlsplit(text)
        host = parts.netloc.rpartition("@")[2].lower()
        if host not in _LOCAL_HOSTS:
            raise ValueError(
                f"{redact(text)}: a file URL on another host ({host}) cannot be read here; "
                "local files are file:///path or file://localhost/path"
            )
        return Location("file", _local_path(parts.path or "/"), options)
    if protocol in ("http", "https"):
        path = rest.split("#", 1)[0].rstrip("/")
    elif protocol == "memory":
        path = rest.strip("/")
    else:
        path = posixpath.normpath("/" + rest).lstrip("/") if rest.strip("/") else ""
    if not path and protocol != "memory":
        raise ValueError(f"{redact(text)}: the URL names no bucket or host")
    return Location(protocol, path, options)


def _local_path(text: str) -> str:
    path = os.path.abspath(os.path.expanduser(text))
    return path if path == "/" else path.rstrip("/")


def parse_storage_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (as given to ``--storage-option``) into fsspec options.

    Values are read as JSON when they parse as JSON (``true``, ``3``, ``null``,
    ``{"region_name": "eu-west-1"}``), otherwise kept as strings. Dotted keys nest:
    ``client_kwargs.region_name=eu-west-1`` gives ``{"client_kwargs": {"region_name": ...}}``.

    Raises
    ------
    ValueError
        If an item has no ``=`` or an empty key.

    Examples
    --------
    >>> parse_storage_options(["anon=true", "endpoint_url=http://127.0.0.1:9000"])
    {'anon': True, 'endpoint_url': 'http://127.0.0.1:9000'}
    >>> parse_storage_options(["config_kwargs.max_pool_connections=50"])
    {'config_kwargs': {'max_pool_connections': 50}}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"storage option {pair!r} is not of the form key=value")
        value = _parse_value(raw.strip())
        *parents, leaf = key.split(".")
        target = out
        for name in parents:
            child = target.setdefault(name, {})
            if not isinstance(child, dict):
                raise ValueError(f"storage option {pair!r} conflicts with {name}={child!r}")
            target = child
        if isinstance(target.get(leaf), dict) and isinstance(value, dict):
            target[leaf].update(value)
        else:
            target[leaf] = value
    return out


def _parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false", "null", "none"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return json.loads(raw)
    except ValueError:
        return raw
