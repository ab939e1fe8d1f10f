"""The :class:`Store` interface and the small pieces every backend shares.

A module of its own so that the backends (``_local``, ``_fsspec``, ``_s3``) and the dispatch
(:func:`cellmap_schemas.io.store.open_store`) all import it and none imports another: the
dispatch picks a backend, a backend never needs the dispatch.

A missing key is a value (``None``), not an error. Failures that may pass (throttling, 5xx,
timeouts, resets) are retried with backoff; what remains becomes a one-line
:class:`~cellmap_schemas.errors.StoreError` naming the URL (credentials redacted) and the cause.
A document larger than ``max_document_size`` is an error too, found without reading the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._errors import translate
from cellmap_schemas.io.url import Location, redact

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_DOCUMENT_SIZE",
    "Store",
    "fan_out",
    "format_size",
    "read_capped",
    "too_large",
    "translate_error",
]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 64
"""Requests in flight at once per remote store (local stores use a few worker threads)."""

DEFAULT_MAX_DOCUMENT_SIZE = 16 * 2**20
"""Largest document a store reads (bytes): metadata is kilobytes; more is a mistake or an attack."""


class Store:
    """One hierarchy root and the reads below it; keys are "/"-separated, relative to the root.

    Obtain one from :func:`~cellmap_schemas.io.store.open_store`. ``requests`` counts the store's
    attempts (each retry counts; a local ``get_many``/``list_many`` counts one per key), which
    the scanner reports as the cost of a read. The HTTP client may itself resend an idempotent
    request once when a kept-alive connection drops; that resend is not counted.
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
        # asyncio's semaphore, not anyio's limiter: a free limiter still yields to the loop twice
        # and opens a cancel scope per request (~8 µs against 1); every store runs on asyncio
        self._limiter = asyncio.Semaphore(concurrency)

    @property
    def url(self) -> str:
        """The root URL (local roots as plain absolute paths), passwords redacted."""
        return redact(self.location.url)

    def url_of(self, key: str) -> str:
        """The URL of ``key``, for messages and reports (passwords redacted)."""
        return redact(self.location.url_at(key))

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
        """Release sessions and connections; :func:`~cellmap_schemas.io.store.open_store` calls
        it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


async def fan_out(
    func: Callable[[str], Awaitable[T]], keys: list[str], concurrency: int
) -> list[T | StoreError]:
    """``func`` over ``keys`` by at most ``concurrency`` workers, results in order.

    A ``StoreError`` takes its key's place; any other exception (a bug) stops the others and is
    raised as itself, not wrapped in an exception group. The workers are asyncio tasks under
    ``gather`` rather than an anyio task group, which costs ~20 µs per worker (a cancel scope and
    a task record each): as much as a whole GET of the S3 direct path, and a crawl fans out a few
    keys at a time. Cancelling the caller cancels the workers and waits for them, as a group
    would.
    """
    results: list[T | StoreError] = [None] * len(keys)  # type: ignore[list-item]
    pending = iter(enumerate(keys))

    async def worker() -> None:
        for i, key in pending:
            try:
                results[i] = await func(key)
            except StoreError as exc:
                results[i] = exc

    if len(keys) <= 1:
        await worker()
        return results
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(worker()) for _ in range(min(len(keys), concurrency))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # a bug in one worker: the others stop before it is raised (a cancelled gather has
        # already waited for them)
        for task in tasks:
            task.cancel()
        unfinished = [task for task in tasks if not task.done()]
        if unfinished:
            await asyncio.wait(unfinished)
        raise
    return results


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
