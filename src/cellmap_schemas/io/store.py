"""Async reads of one hierarchy, whatever holds it: local disk, S3, GCS, HTTP or memory.

Every reader (``inspect``/``check``, the tree reader, the bulk scanner) goes through
:func:`open_store`. Three backends share the :class:`Store` interface:

- local paths: plain ``os`` reads and listings, many per worker-thread call (``_local.py``);
- ``s3://``: an aiobotocore client (s3fs's option names, every AWS setting), one GET per read
  and never a HEAD, anonymous when no credentials are found; after the first GET, plain aiohttp
  requests to the URL layout botocore chose, signed by botocore (``_s3.py``);
- anything else: the fsspec filesystem for the protocol (:class:`FsspecStore`); ``http(s)``
  bodies are streamed from its aiohttp session, so that the size limit holds.

A missing key is a value (``None``), not an error. Failures that may pass (throttling, 5xx,
timeouts, resets) are retried with backoff; what remains becomes a one-line
:class:`~cellmap_schemas.errors.StoreError` naming the URL (credentials redacted) and the cause.
A document larger than ``max_document_size`` is an error too, found without reading the rest.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import anyio

from cellmap_schemas.errors import NotFollowedError, StoreError
from cellmap_schemas.io._errors import dns_failure, translate
from cellmap_schemas.io._retry import retrying
from cellmap_schemas.io.url import Location, join_key, parse_url, redact

__all__ = [
    "DEFAULT_MAX_DOCUMENT_SIZE",
    "FsspecStore",
    "NotFollowedError",
    "Store",
    "StoreError",
    "dns_failure",
    "open_store",
]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 64
"""Requests in flight at once per remote store (local stores use a few worker threads)."""

DEFAULT_MAX_DOCUMENT_SIZE = 16 * 2**20
"""Largest document a store reads (bytes): metadata is kilobytes; more is a mistake or an attack."""

_CHUNK = 1 << 16


class Store:
    """One hierarchy root and the reads below it; keys are "/"-separated, relative to the root.

    Obtain one from :func:`open_store`. ``requests`` counts the store's attempts (each retry
    counts; a local ``get_many``/``list_many`` counts one per key), which the scanner reports as
    the cost of a read. The HTTP client may itself resend an idempotent request once when a
    kept-alive connection drops; that resend is not counted.
    """

    def __init__(
        self,
        location: Location,
        *,
        retries: int = 3,
        timeout: float | None = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    ) -> None:
        self.location = location
        self.retries = retries
        self.timeout = timeout
        self.concurrency = concurrency
        self.max_document_size = max_document_size
        self.requests = 0
        self._limiter = anyio.CapacityLimiter(concurrency)

    @property
    def url(self) -> str:
        """The root URL (local roots as plain absolute paths), passwords redacted."""
        return redact(self.location.url)

    def url_of(self, key: str) -> str:
        """The URL of ``key``, for messages and reports (passwords redacted)."""
        return redact(self.location.join(key).url)

    def _count(self) -> None:
        self.requests += 1

    async def get(self, key: str) -> bytes | None:
        """The bytes stored at ``key``, or ``None`` if there is no such object.

        Raises
        ------
        StoreError
            Access denied, unreachable storage, transient failures that outlasted the retries, or
            a document larger than ``max_document_size``.
        """
        raise NotImplementedError

    async def get_many(self, keys: Iterable[str]) -> list[bytes | StoreError | None]:
        """Read several keys concurrently; a failed key yields its ``StoreError`` in place."""
        return await fan_out(self.get, list(keys), self.concurrency)

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        """Names of the child directories and of the files directly below ``key``, sorted.

        One level only; a missing directory lists as empty.

        Raises
        ------
        StoreError
            As for :meth:`get`.
        """
        raise NotImplementedError

    async def list_many(
        self, keys: Iterable[str]
    ) -> list[tuple[list[str], list[str]] | StoreError]:
        """:meth:`list_dir` for several directories at once; a failure yields its error in place.

        Local stores list a batch per worker-thread call, which is much cheaper than one
        ``list_dir`` per directory.
        """
        return await fan_out(self.list_dir, list(keys), self.concurrency)

    async def aclose(self) -> None:
        """Release sessions and connections; :func:`open_store` calls it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


async def fan_out(
    func: Callable[[str], Awaitable[T]], keys: list[str], concurrency: int
) -> list[T | StoreError]:
    """``func`` over ``keys`` by at most ``concurrency`` workers, results in order.

    A ``StoreError`` takes its key's place; any other exception (a bug) stops the others and is
    raised as itself, not wrapped in an exception group.
    """
    results: list[T | StoreError] = [None] * len(keys)  # type: ignore[list-item]
    pending = iter(enumerate(keys))
    failures: list[Exception] = []

    async def worker(scope: anyio.CancelScope) -> None:
        try:
            for i, key in pending:
                try:
                    results[i] = await func(key)
                except StoreError as exc:
                    results[i] = exc
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    if len(keys) == 1:
        await worker(anyio.CancelScope())
    elif keys:
        async with anyio.create_task_group() as tg:
            for _ in range(min(len(keys), concurrency)):
                tg.start_soon(worker, tg.cancel_scope)
    if failures:
        raise failures[0]
    return results


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


class FsspecStore(Store):
    """Any fsspec filesystem: async ones are awaited, sync ones run in a worker thread."""

    def __init__(self, location: Location, fs: Any, **kw: Any) -> None:
        super().__init__(location, **kw)
        self.fs = fs
        self._root: str = fs._strip_protocol(location.url)
        self._session: Any = None

    @classmethod
    async def open(cls, location: Location, **kw: Any) -> FsspecStore:
        """Build the filesystem inside the running loop, as fsspec asks for async use."""
        try:
            import fsspec

            fs_cls = fsspec.get_filesystem_class(location.protocol)
            # drivers log their retries as warnings; our error names the URL once, on one line
            logging.getLogger(fs_cls.__module__.split(".")[0]).setLevel(logging.ERROR)
            options = dict(location.storage_options)
            if fs_cls.async_impl:
                options.setdefault("asynchronous", True)
            fs = fs_cls(skip_instance_cache=True, **options)
        except Exception as exc:  # drivers raise anything from their constructors
            raise StoreError(redact(f"{location.url}: cannot open storage: {exc}")) from None
        store = cls(location, fs, **kw)
        if getattr(fs, "async_impl", False) and hasattr(fs, "set_session"):
            try:
                store._session = await fs.set_session()
            except Exception as exc:
                raise StoreError(redact(f"{location.url}: cannot open storage: {exc}")) from None
        return store

    @property
    def _async(self) -> bool:
        return bool(getattr(self.fs, "async_impl", False)) and bool(
            getattr(self.fs, "asynchronous", False)
        )

    @property
    def _http(self) -> bool:
        return self.location.protocol in ("http", "https")

    def _path(self, key: str) -> str:
        # keys are names, as on every other backend: over HTTP "#", "%", "?" must reach the
        # server as part of the name, so the key (not the root the user wrote) is quoted
        return join_key(self._root, quote(key, safe="/~") if self._http else key)

    async def _call(self, method: str, *args: Any) -> Any:
        if self._async:
            return await getattr(self.fs, f"_{method}")(*args)
        if self.location.protocol == "memory":  # no I/O: a thread would only cost time
            return getattr(self.fs, method)(*args)
        # abandon_on_cancel: a call stuck in the kernel (a dead mount) must not outlive the timeout
        return await anyio.to_thread.run_sync(
            lambda: getattr(self.fs, method)(*args), abandon_on_cancel=True
        )

    @property
    def _streams_http(self) -> bool:
        """An aiohttp-based HTTP filesystem, whose bodies :meth:`_http_get` streams itself."""
        return (
            self.location.protocol in ("http", "https")
            and self._session is not None
            and hasattr(self.fs, "encode_url")
        )

    async def _http_get(self, path: str, url: str) -> bytes | None:
        """One GET on fsspec's session: ``_cat_file`` would read any body whole, however big."""
        async with self._session.get(
            self.fs.encode_url(path), **getattr(self.fs, "kwargs", {})
        ) as response:
            if response.status in (404, 410):
                return None
            response.raise_for_status()
            length = response.content_length
            if length is not None and length > self.max_document_size:
                response.close()
                raise too_large(url, self.max_document_size)
            return await read_capped(
                functools.partial(response.content.read, _CHUNK), self.max_document_size, url
            )

    async def get(self, key: str) -> bytes | None:
        url = self.url_of(key)
        path = self._path(key)
        limit = self.max_document_size

        async def attempt() -> bytes | None:
            try:
                if self._streams_http:
                    return await self._http_get(path, url)
                if self.location.protocol == "file":  # fsspec would block on opening a FIFO
                    await anyio.to_thread.run_sync(_refuse_special, path, url)
                # a ranged read: one byte past the limit tells a larger document
                data = bytes(await self._call("cat_file", path, 0, limit + 1))
            except StoreError:
                raise
            except Exception as exc:
                translate_error(exc, url)  # raises unless the key is missing
                return None
            if len(data) > limit:
                raise too_large(url, limit)
            return data

        async with self._limiter:
            return await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        url = self.url_of(key)
        path = self._path(key)

        async def attempt() -> Sequence[Mapping[str, Any]] | None:
            try:
                found: Sequence[Mapping[str, Any]] = await self._call("ls", path, True)
            except Exception as exc:
                translate_error(exc, url)  # raises unless the key is missing
                return None
            return found

        async with self._limiter:
            entries = await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )
        dirs: set[str] = set()
        files: set[str] = set()
        for entry in entries or ():
            name = str(entry.get("name", "")).rstrip("/")
            child = name.rsplit("/", 1)[-1]
            if not child or name.rstrip("/") == path.rstrip("/"):
                continue
            if self._http:  # an index page's links are quoted: the name is what they quote
                child = unquote(child)
            (dirs if entry.get("type") == "directory" else files).add(child)
        return sorted(dirs), sorted(files - dirs)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            closing = session.close()
            if inspect.isawaitable(closing):
                await closing


def _refuse_special(path: str, url: str) -> None:
    """A local FIFO, socket or device is not a document: refuse it before anything opens it."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the read itself says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise StoreError(f"{url}: not a regular file")


def format_size(n: int) -> str:
    """``16 MiB``, ``1.5 KiB``, ``100 bytes``: a limit as a person reads it."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def too_large(url: str, limit: int) -> StoreError:
    """The error for a document over the size limit (``url`` already redacted)."""
    return StoreError(
        f"{url}: document larger than the {format_size(limit)} limit (max_document_size)"
    )


async def read_capped(read: Callable[[], Awaitable[bytes]], limit: int, url: str) -> bytes:
    """Concatenate ``read()`` chunks until one returns ``b""``; past ``limit`` bytes, stop.

    The stream is abandoned there: the caller closes the connection, so an endless body costs
    at most ``limit`` plus one chunk.
    """
    parts: list[bytes] = []
    total = 0
    while chunk := await read():
        total += len(chunk)
        if total > limit:
            raise too_large(url, limit)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def translate_error(exc: BaseException, url: str) -> None:
    """Map a foreign exception to ``None`` (missing), :class:`Transient` or :class:`StoreError`.

    The fsspec backend's (and the S3 direct path's transport errors): the ``remote`` rows of the
    one table in :mod:`cellmap_schemas.io._errors`. A ``StoreError`` passes unchanged.
    """
    translate(exc, url, "remote")
