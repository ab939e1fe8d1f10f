"""Async reads of one hierarchy, whatever holds it: local disk, S3, GCS, HTTP or memory.

Every reader (``inspect``/``check``, the tree reader, the bulk scanner) goes through
:func:`open_store`, which picks one of three backends sharing the :class:`Store` interface
(``_base.py``):

- local paths: plain ``os`` reads and listings, many per worker-thread call (``_local.py``);
- ``s3://``: an aiobotocore client (s3fs's option names, every AWS setting), one GET per read
  and never a HEAD, anonymous when no credentials are found; after the first GET, plain aiohttp
  requests to the URL layout botocore chose, signed by botocore (``_s3.py``);
- anything else: the fsspec filesystem for the protocol (``_fsspec.py``).

The backends import :mod:`~cellmap_schemas.io._base`, never this module; the local and S3
backends are imported when a store of theirs is opened. The names that used to live here
(``Store``, ``FsspecStore``, the size limit, ``NotFollowedError``...) are re-exported.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from cellmap_schemas.errors import NotFollowedError, StoreError
from cellmap_schemas.io._base import DEFAULT_CONCURRENCY, DEFAULT_MAX_DOCUMENT_SIZE, Store
from cellmap_schemas.io._errors import dns_failure
from cellmap_schemas.io._fsspec import FsspecStore
from cellmap_schemas.io.url import Location, parse_url

__all__ = [
    "DEFAULT_MAX_DOCUMENT_SIZE",
    "FsspecStore",
    "NotFollowedError",
    "Store",
    "StoreError",
    "dns_failure",
    "open_store",
]


def preload(url: str) -> None:
    """Import the backend that reads ``url`` (S3: aiohttp and botocore, ~0.2 s) now, so that
    worker processes forked next have it (each would import it again); anyio's asyncio
    backend too, which ``anyio.run`` imports on first use (the module it names)."""
    import importlib

    importlib.import_module("anyio._backends._asyncio")
    location = parse_url(url)
    if location.protocol == "file":
        importlib.import_module("cellmap_schemas.io._local")
    elif location.protocol == "s3":
        importlib.import_module("cellmap_schemas.io._s3")
        importlib.import_module("cellmap_schemas.io._s3_direct")
    else:
        import fsspec

        with contextlib.suppress(ImportError, ValueError):
            fsspec.get_filesystem_class(location.protocol)


@asynccontextmanager
async def open_store(
    url_or_location: str | Location,
    *,
    storage_options: Mapping[str, Any] | None = None,
    retries: int = 3,
    timeout: float | None = 30.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    follow_symlinks: bool = False,
) -> AsyncIterator[Store]:
    """Open the hierarchy at a URL for reading; the store is closed on exit.

    Parameters
    ----------
    url_or_location
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://``, ``memory://`` URL, or a
        :class:`~cellmap_schemas.io.url.Location`.
    storage_options
        fsspec options, merged over those of a given ``Location``. For S3, s3fs's names
        (``anon``, ``endpoint_url``, ``profile``, ``key``/``secret``/``token``,
        ``client_kwargs``, ``config_kwargs``, ``requester_pays``, ``s3_additional_kwargs``).
        Without them the standard AWS variables and files apply,
        and a public bucket is read anonymously when no credentials are found.
    retries
        Extra attempts for a request that failed transiently (throttling, 5xx, timeout, reset).
    timeout
        Seconds allowed for one attempt of one request (``None``: no limit).
    concurrency
        Requests in flight at once for this store (``get_many`` and concurrent callers).
    max_document_size
        Largest document :meth:`Store.get` returns, in bytes; a larger one is a ``StoreError``,
        detected while streaming (the rest of the body is never read).
    follow_symlinks
        Local stores: follow symlinks whose target lies outside the root. Off by default: such
        a link is listed, but reading or listing through it is a :class:`NotFollowedError`
        naming the link and its target (a link into ``/proc`` would crawl the process table).
        Links inside the root are always followed; other stores have no symlinks.

    Yields
    ------
    Store

    Raises
    ------
    StoreError
        If the storage cannot be set up (unknown protocol, missing driver, bad profile).
    ValueError
        If the URL cannot be parsed (see :func:`~cellmap_schemas.io.url.parse_url`), or a limit
        is out of range.

    Examples
    --------
    >>> import anyio
    >>> async def main():
    ...     async with open_store("memory://doc-example") as store:
    ...         return await store.get("missing.json")
    >>> anyio.run(main) is None
    True
    """
    if (
        retries < 0
        or concurrency < 1
        or (timeout is not None and timeout <= 0)
        or max_document_size < 1
    ):
        raise ValueError(
            "need retries >= 0, concurrency >= 1, timeout > 0 or None and max_document_size >= 1;"
            f" got {retries=}, {concurrency=}, {timeout=}, {max_document_size=}"
        )
    location = parse_url(url_or_location, storage_options)
    kw: dict[str, Any] = {
        "retries": retries,
        "timeout": timeout,
        "concurrency": concurrency,
        "max_document_size": max_document_size,
    }
    store: Store
    if location.protocol == "file" and not location.storage_options:
        from cellmap_schemas.io._local import LocalStore

        store = LocalStore(location, follow_symlinks=follow_symlinks, **kw)
    elif location.protocol == "s3":
        from cellmap_schemas.io._s3 import open_s3

        store = await open_s3(location, **kw)
    else:
        store = await FsspecStore.open(location, **kw)
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
