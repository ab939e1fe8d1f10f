"""Bulk audit: crawl a bucket or a container concurrently and validate every node.

Two ways in:

- :func:`open_scan`, an async context manager yielding a :class:`ScanStream` that gives each
  :class:`NodeResult` as soon as its node is judged (memory stays flat however large the tree);
- :func:`cellmap_schemas.asynchronous.scan` / :func:`cellmap_schemas.synchronous.scan`, which
  collect the whole :class:`ScanReport`.

Examples
--------
>>> import anyio
>>> from cellmap_schemas.asynchronous import open_scan
>>> async def failures(url):
...     async with open_scan(url, models=["multiscale.cosem.Group"]) as scan:
...         return [node.path async for node in scan if node.status == "invalid"]
>>> anyio.run(failures, "/data/cellmap-bucket")  # doctest: +SKIP
['jrc_hela-2/jrc_hela-2.n5/labels/er_seg']
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from cellmap_schemas._scan.crawl import MEMBER_DEPTH, Crawler, RootError
from cellmap_schemas._scan.report import (
    DatasetSummary,
    NodeResult,
    ScanReport,
    Summary,
    Tally,
)
from cellmap_schemas.validation import Options, Verdicts

__all__ = [
    "MEMBER_DEPTH",
    "DatasetSummary",
    "NodeResult",
    "RootError",
    "ScanReport",
    "ScanStream",
    "Summary",
    "collect",
    "open_scan",
]

_BUFFER = 16
"""Batches of results (one per visit of some directories) the crawler may finish ahead of the
consumer before it waits."""


class ScanStream:
    """The results of a running scan, as an async iterator of :class:`NodeResult`.

    While iterating, ``found``, ``done``, ``requests`` and the running ``summary`` show progress;
    after the last result, :meth:`finish` gives the totals.
    """

    def __init__(
        self, crawler: Crawler, receive: ObjectReceiveStream[list[NodeResult]], started: float
    ) -> None:
        self._crawler = crawler
        self._receive = receive
        self._batch: list[NodeResult] = []
        self._next = 0
        self._started = started
        self._tally = Tally()
        self.error: BaseException | None = None
        self.root: str = crawler.store.url
        self.models: list[str] = list(crawler.verdicts.names)

    def __aiter__(self) -> ScanStream:
        return self

    async def __anext__(self) -> NodeResult:
        if self._next >= len(self._batch):
            try:
                self._batch = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self.error is not None:
                    raise self.error from None
                raise StopAsyncIteration from None
            self._next = 0
        node = self._batch[self._next]
        self._next += 1
        self._tally.add(node, self._crawler.dataset_of(node.path))
        return node

    def dataset_of(self, path: str) -> str:
        """The dataset of a node path (see :meth:`Crawler.dataset_of`)."""
        return self._crawler.dataset_of(path)

    @property
    def found(self) -> int:
        """Nodes read so far."""
        return self._crawler.found

    @property
    def done(self) -> int:
        """Nodes judged and handed out so far."""
        return self._tally.summary.nodes

    @property
    def requests(self) -> int:
        """Storage requests sent so far (retries included)."""
        return self._crawler.store.requests

    @property
    def summary(self) -> Summary:
        """Running totals of the nodes handed out so far."""
        return self._tally.summary

    def finish(self) -> tuple[Summary, list[DatasetSummary]]:
        """Totals and per-dataset verdicts (call after the last result)."""
        return self._tally.finish(
            elapsed_s=time.perf_counter() - self._started, requests=self.requests
        )


@asynccontextmanager
async def open_scan(
    url: str,
    *,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
    max_depth: int | None = None,
    force: bool = False,
) -> AsyncIterator[ScanStream]:
    """Start a scan of ``url``; iterate the yielded stream for the results as they come.

    Leaving the block early stops the crawl. Parameters are those of
    :func:`cellmap_schemas.asynchronous.scan`, plus ``max_depth`` (visit nodes at most this
    deep; a group there is a leaf) and ``force`` (judge by ``models`` whatever a node carries),
    with which :func:`cellmap_schemas.asynchronous.judge` reads one node's verdict.

    Raises
    ------
    UnknownModelError
        A model name is not registered (raised before any I/O).
    RootError, NodeNotFoundError
        Raised by the iteration when the root itself cannot be read.
    """
    verdicts = Verdicts(models, options=options or Options(), force=force)
    from cellmap_schemas.io.store import open_store

    started = time.perf_counter()
    async with open_store(
        url,
        storage_options=storage_options,
        retries=retries,
        timeout=timeout,
        concurrency=max(concurrency, 1),
    ) as store:
        crawler = Crawler(store, verdicts, concurrency=concurrency, max_depth=max_depth)
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](_BUFFER)
        stream = ScanStream(crawler, receive, started)

        async def crawl() -> None:
            try:
                await crawler.run(send)
            except Exception as exc:  # handed to the consumer, not raised in the task group
                stream.error = exc
                await send.aclose()

        failure: Exception | None = None
        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(crawl)
            try:
                yield stream
            except Exception as exc:  # re-raised below as itself, not in an ExceptionGroup
                failure = exc
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure


async def collect(
    url: str,
    *,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
) -> ScanReport:
    """Run a scan to the end and gather every result (nodes sorted by path)."""
    async with open_scan(
        url,
        models=models,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        storage_options=storage_options,
        options=options,
    ) as scan:
        nodes = [node async for node in scan]
        summary, datasets = scan.finish()
    nodes.sort(key=lambda n: n.path)
    return ScanReport(
        root=scan.root, models=scan.models, summary=summary, datasets=datasets, nodes=nodes
    )
