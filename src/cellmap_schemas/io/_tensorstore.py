"""Where tensorstore reads and writes: kvstore specs for our URLs, bounded retries, error text.

tensorstore has its own configuration model (kvstore specs and context resources) and does not
read the variables fsspec and boto honour, such as ``AWS_ENDPOINT_URL``. This module maps a
:class:`~cellmap_schemas.io.url.Location` and fsspec-style storage options onto tensorstore's
terms, so the rest of the package can speak URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellmap_schemas.io._errors import describe_error
from cellmap_schemas.io._s3_options import s3_settings
from cellmap_schemas.io.url import Location, parse_url

if TYPE_CHECKING:
    import tensorstore as ts

__all__ = ["Container", "container", "describe_error"]

# tensorstore retries a failing S3 request 32 times by default, backing off up to 32 s: a wrong
# endpoint then hangs for minutes. A few quick retries still ride out a transient error.
DEFAULT_RETRIES = 5
_RETRY_DELAYS = {"initial_delay": "100ms", "max_delay": "4s"}


@dataclass(frozen=True)
class Container:
    """A container's root as tensorstore sees it.

    ``kvstore`` is a kvstore spec whose ``path`` ends with "/" (empty for a bucket root), so a
    node's spec is the same dict with ``path + node + "/"``.
    """

    url: str
    kvstore: dict[str, Any]
    context: dict[str, Any]

    def kvstore_at(self, key: str) -> dict[str, Any]:
        """The kvstore spec of the directory ``key`` (relative, "/"-separated; "" = the root)."""
        base = self.kvstore.get("path", "")
        return {**self.kvstore, "path": base + (key.strip("/") + "/" if key.strip("/") else "")}

    def url_of(self, key: str) -> str:
        """The URL of ``key`` below the root, for messages."""
        key = key.strip("/")
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    def ts_context(self) -> ts.Context:
        import tensorstore as ts

        return ts.Context(self.context)


def container(
    store: str | os.PathLike[str] | Location, storage_options: Mapping[str, Any] | None
) -> Container:
    """The tensorstore view of the container at ``store`` (a local path or ``s3://`` URL).

    S3 settings follow fsspec's names where they exist: ``endpoint_url`` (also under
    ``client_kwargs``, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``), ``anon``,
    ``profile``, ``client_kwargs.region_name``; ``retries`` bounds tensorstore's retries.
    Local files: ``fsync`` (default false) makes every file durable before a write completes.
    """
    location = parse_url(
        store if isinstance(store, Location) else os.fspath(store), storage_options
    )
    options = dict(location.storage_options)
    retries = int(options.get("retries", DEFAULT_RETRIES))
    if location.protocol == "file":
        # tensorstore fsyncs every file it writes unless told otherwise; zarr-python and fsspec
        # do not, and a pyramid of small chunks then spends most of its time in fsync. Writes
        # stay atomic (temporary file + rename) either way; ``fsync=True`` restores durability.
        return Container(
            url=location.url,
            kvstore={"driver": "file", "path": location.path.rstrip("/") + "/"},
            context={"file_io_sync": bool(options.get("fsync", False))},
        )
    if location.protocol == "s3":
        bucket, _, prefix = location.path.partition("/")
        spec: dict[str, Any] = {
            "driver": "s3",
            "bucket": bucket,
            "path": prefix.strip("/") + "/" if prefix.strip("/") else "",
            "aws_credentials": _aws_credentials(options),
        }
        settings = s3_settings(options)  # the reader's reading of the same options
        if settings.endpoint:
            spec["endpoint"] = settings.endpoint
        if settings.region:
            spec["aws_region"] = settings.region
        context = {"s3_request_retries": {"max_retries": max(retries, 1), **_RETRY_DELAYS}}
        return Container(url=location.url, kvstore=spec, context=context)
    raise ValueError(
        f"{location.url}: cannot write to {location.protocol}:// storage "
        "(writing supports local paths and s3:// URLs)"
    )


def _aws_credentials(options: Mapping[str, Any]) -> dict[str, Any]:
    settings = s3_settings(options)
    if settings.anon:
        return {"type": "anonymous"}
    if settings.key or settings.secret:
        raise ValueError(
            "explicit S3 keys in storage_options are not supported for writing: set "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or pass a `profile`"
        )
    if settings.profile:
        return {"type": "profile", "profile": settings.profile}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {"type": "environment"}
    return {"type": "default"}
