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

import datetime
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cellmap_schemas._scan.report import (
    DatasetSummary,
    NodeResult,
    ReportOptions,
    ScanReport,
    Summary,
    Tally,
    relative_messages,
)
from cellmap_schemas.errors import RootError
from cellmap_schemas.io.read import read_images, scope_url
from cellmap_schemas.io.walk import MEMBER_DEPTH, Crawler
from cellmap_schemas.validation import Options, Verdicts

if TYPE_CHECKING:
    from cellmap_schemas._scan.processes import WorkerPool
    from cellmap_schemas.crop_grid import ImageGrid
    from cellmap_schemas.io.store import Store

__all__ = [
    "MEMBER_DEPTH",
    "DatasetSummary",
    "NodeResult",
    "ReportOptions",
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

    Records carry their ``dataset`` and name locations relative to the root. With ``done``
    (resuming), those records come first, then the crawler's. While iterating, ``found``,
    ``done``, ``requests`` and the running ``summary`` show progress; after the last result (or
    when stopping early, after :meth:`ready`), :meth:`finish` gives the totals.
    """

    def __init__(
        self,
        crawler: Crawler,
        receive: MemoryObjectReceiveStream[list[NodeResult]],
        started: float,
        *,
        options: ReportOptions | None = None,
        done: list[NodeResult] | None = None,
    ) -> None:
        self._crawler = crawler
        self._receive = receive
        self._resumed = list(done or ())
        self._batch: list[NodeResult] = []
        self._next = 0
        self._started = started
        self.started_at = (
            datetime.datetime.now(datetime.UTC)
            .replace(microsecond=0)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        self._tally = Tally()
        self.error: BaseException | None = None
        self.root: str = crawler.store.url
        self._base = crawler.store.url.rstrip("/")
        self.models: list[str] = list(crawler.verdicts.names) if crawler.verdicts else []
        self.options = options or ReportOptions()
        self.resumed = 0

    def __aiter__(self) -> ScanStream:
        return self

    async def __anext__(self) -> NodeResult:
        if self._resumed:
            return self._take_resumed()
        if self._next >= len(self._batch):
            try:
                self._batch = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self.error is not None:
                    raise self.error from None
                raise StopAsyncIteration from None
            self._next = 0
        return self._take()

    def _take_resumed(self) -> NodeResult:
        node = self._resumed.pop()
        self.resumed += 1
        self._tally.add(node, node.dataset or self._crawler.dataset_of(node.path))
        return node

    def _take(self) -> NodeResult:
        node = self._batch[self._next]
        self._next += 1
        dataset = self._crawler.dataset_of(node.path)
        node = msgspec.structs.replace(relative_messages(node, self._base), dataset=dataset)
        self._tally.add(node, dataset)
        return node

    @property
    def drained(self) -> bool:
        """Whether the next result has to be waited for: every result finished so far has
        been handed out (the moment to flush a report)."""
        if self._resumed or self._next < len(self._batch):
            return False
        return self._receive.statistics().current_buffer_used == 0

    def ready(self) -> list[NodeResult]:
        """The results finished but not handed out yet, without waiting (what an interrupted
        scan still reports)."""
        out = []
        while self._resumed:
            out.append(self._take_resumed())
        while True:
            while self._next < len(self._batch):
                out.append(self._take())
            try:
                self._batch = self._receive.receive_nowait()
                self._next = 0
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return out

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

    def finish(self, *, interrupted: bool = False) -> tuple[Summary, list[DatasetSummary]]:
        """Totals and per-dataset verdicts (call after the last result), with the header."""
        from cellmap_schemas import _version

        summary, datasets = self._tally.finish(
            elapsed_s=time.perf_counter() - self._started, requests=self.requests
        )
        summary.tool_version = _version()
        summary.started_at = self.started_at
        summary.root = self.root
        summary.models = self.models
        summary.options = self.options
        summary.interrupted = interrupted
        summary.resumed = self.resumed
        return summary, datasets


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
    done: Iterable[NodeResult] | None = None,
    max_document_size: int | None = None,
    follow_symlinks: bool = False,
    jobs: int | WorkerPool = 1,
) -> AsyncIterator[ScanStream]:
    """Start a scan of ``url``; iterate the yielded stream for the results as they come.

    Leaving the block early stops the crawl. Parameters are those of
    :func:`cellmap_schemas.asynchronous.scan`, plus ``max_document_size`` (bytes; a larger
    metadata document makes its node unreadable), ``follow_symlinks`` (local disk: follow links
    that lead outside the root), ``max_depth`` (visit nodes at most this
    deep; a group there is a leaf) and ``force`` (judge by ``models`` whatever a node carries),
    with which :func:`cellmap_schemas.asynchronous.judge` reads one node's verdict.

    ``done``: the records of an interrupted scan of ``url`` with the same models and options
    (``--resume``). They are handed out first and their nodes are not reported again; arrays and
    unreadable nodes among them are not read again unless a group still to judge needs them
    (groups are listed again, to find what was not finished below them).

    ``jobs``: worker processes that crawl and judge shards of the tree (a number, or a
    :class:`~cellmap_schemas._scan.processes.WorkerPool` to reuse); the report is the one a
    single process gives. With ``done``, the scan runs in this process.

    Raises
    ------
    UnknownModelError
        A model name is not registered (raised before any I/O).
    RootError, NodeNotFoundError
        Raised by the iteration when the root itself cannot be read.
    """
    opts = options or Options()
    names = list(models) if models is not None else None
    verdicts = Verdicts(names, options=opts, force=force)
    finished = list(done or ())
    if jobs != 1 and not finished:
        from cellmap_schemas._scan.processes import open_process_scan

        async with open_process_scan(
            url, jobs, models=names, concurrency=concurrency, retries=retries,
            timeout=timeout, storage_options=storage_options, options=opts,
            max_depth=max_depth, force=force, max_document_size=max_document_size,
            follow_symlinks=follow_symlinks,
        ) as sharded:  # fmt: skip
            yield sharded
        return
    started = time.perf_counter()
    images = await images_above(url, storage_options)
    async with scan_store(
        url, storage_options, retries, timeout, concurrency, max_document_size, follow_symlinks
    ) as store:
        crawler = Crawler(
            store,
            verdicts,
            concurrency=concurrency,
            max_depth=max_depth,
            done={n.path: n for n in finished} if finished else None,
            images=images,
        )
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](_BUFFER)
        report_options = report_options_for(names, opts, concurrency, retries, timeout)
        finished.sort(key=lambda n: n.path, reverse=True)  # popped from the end, in path order
        stream = ScanStream(crawler, receive, started, options=report_options, done=finished)

        async with producing(crawler.run, stream, send, receive) as failure:
            yield stream
        if failure:
            raise failure[0]


@asynccontextmanager
async def producing(
    produce: Callable[[MemoryObjectSendStream[list[NodeResult]]], Awaitable[object]],
    stream: ScanStream,
    send: MemoryObjectSendStream[list[NodeResult]],
    receive: MemoryObjectReceiveStream[list[NodeResult]],
) -> AsyncIterator[list[Exception]]:
    """Run ``produce(send)`` while the caller consumes ``stream``; leaving the block stops it.

    What ``produce`` raises goes to the consumer (``stream.error``), not into a task group;
    what the caller raises inside the block is handed back in the yielded list, for it to
    raise as itself once the block is left (not wrapped in an ``ExceptionGroup``).
    """

    async def run() -> None:
        try:
            await produce(send)
        except Exception as exc:
            stream.error = exc
            await send.aclose()

    failure: list[Exception] = []
    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(run)
        try:
            yield failure
        except Exception as exc:
            failure.append(exc)
        finally:
            tg.cancel_scope.cancel()


def scan_store(
    url: str,
    storage_options: Mapping[str, Any] | None,
    retries: int,
    timeout: float | None,
    concurrency: int,
    max_document_size: int | None,
    follow_symlinks: bool,
) -> AbstractAsyncContextManager[Store]:
    """The store a scan (or one shard of it) reads ``url`` through."""
    from cellmap_schemas.io.store import open_store

    limits = {} if max_document_size is None else {"max_document_size": max_document_size}
    return open_store(
        url,
        storage_options=storage_options,
        retries=retries,
        timeout=timeout,
        concurrency=max(concurrency, 1),
        follow_symlinks=follow_symlinks,
        **limits,
    )


async def images_above(url: str, storage_options: Mapping[str, Any] | None) -> list[ImageGrid]:
    """For a root inside a reconstruction's ``labels``, the images its crops are judged
    against (``CROP101``), which lie above the root; otherwise none."""
    scope = scope_url(url)
    return [] if scope is None else await read_images(f"{scope}/em", storage_options)


def report_options_for(
    models: list[str] | None,
    options: Options,
    concurrency: int,
    retries: int,
    timeout: float | None,
) -> ReportOptions:
    """The options a scan's summary records."""
    return ReportOptions(
        models=models or None,
        strict=options.strict,
        select=list(options.select),
        ignore=list(options.ignore),
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
    )


async def collect(
    url: str,
    *,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
    jobs: int | WorkerPool = 1,
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
        jobs=jobs,
    ) as scan:
        nodes = [node async for node in scan]
        summary, _ = scan.finish()
    nodes.sort(key=lambda n: n.path)
    return ScanReport(summary=summary, nodes=nodes)
