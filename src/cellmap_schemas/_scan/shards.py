"""Scans cut into shards that other processes crawl: worker processes on this machine
(``scan --jobs``, :mod:`cellmap_schemas._scan.processes`) or a Dask cluster (``scan --dask``,
:mod:`cellmap_schemas._scan.distributed`). This module cuts the tree and merges what comes back;
a :class:`ShardPool` runs the shards.

One process judges a few thousand nodes a second, bounded by one core's JSON parsing and
validation. How a scan is cut:

1. This process crawls the first levels itself, with the ordinary :class:`Crawler` told to set
   aside (``split_depth``) the directories one level down that no group waits for: the bucket's
   datasets; when there are fewer than :data:`SHARDS_PER_THREAD` x the pool's width, their
   containers, and so on for at most :data:`DISCOVERY_LEVELS` levels. Directories a group
   waits for (the members a model needs) are never cut off, so every verdict is taken where the
   group's members are, exactly as in a single-process scan.
2. The set-aside directories (:class:`Seed`) are cut into contiguous batches, one task each. A
   task runs the async crawler on its batch with its own concurrency budget and returns its
   node records as one msgpack blob, plus the seeds it handed back: once a task has found
   ``split_after`` nodes it stops taking new subtrees and returns every queued directory no
   group waits for, which are submitted as new tasks.
3. Each blob's records are streamed into the report as its task completes and dropped.

Crops are held by every crawl and judged (``CROP101``) once all shards are in, against every
image any of them met. A task whose worker process died is crawled again in this process
(its records already sent left out); a task that fails for good otherwise (on a cluster, after
its retries) makes each seed of its batch not reported yet an ``unreadable`` node with the
reason, and the scan goes on. Leaving the block early (Ctrl-C
included) cancels every outstanding task.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cellmap_schemas._scan import (
    ScanStream,
    images_above,
    producing,
    report_options_for,
    scan_store,
)
from cellmap_schemas._scan.report import NodeResult, ReportOptions
from cellmap_schemas.crop_grid import ImageGrid
from cellmap_schemas.io._base import Store
from cellmap_schemas.io._outcomes import HeldCrop, crop_records
from cellmap_schemas.io.walk import Crawler, Seed
from cellmap_schemas.validation import Options, Verdicts

__all__ = [
    "DISCOVERY_LEVELS",
    "SHARDS_PER_THREAD",
    "SPLIT_AFTER",
    "Settings",
    "ShardPool",
    "ShardedScanStream",
    "Target",
    "TaskHost",
    "batches",
    "crawl_shard",
    "open_sharded_scan",
]

SHARDS_PER_THREAD = 4
"""Initial shards per worker thread: enough that a slow shard does not leave threads idle."""

DISCOVERY_LEVELS = 3
"""Levels this process visits itself at most (bucket, datasets, containers) to find shards."""

SPLIT_AFTER = 5000
"""Nodes a task finds before it hands the rest of its subtrees back (bounds one result blob
and lets a huge container spread over the pool)."""

_CHUNK = 512
"""Records per message from the merging task to the consumer."""


# ---- what travels to a task ---------------------------------------------------------------
class Target:
    """The URL and storage options of a scan, as a task argument whose ``repr`` names nothing
    (distributed logs a failed task's ``repr``, arguments included)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None) -> None:
        self.url = url
        self.storage_options = dict(storage_options) if storage_options else None

    def __repr__(self) -> str:
        return "<scan target: redacted>"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything but the target that a task needs to crawl as a single scan would."""

    models: tuple[str, ...]
    options: Options
    force: bool
    concurrency: int
    retries: int
    timeout: float | None
    max_depth: int | None
    split_after: int | None
    max_document_size: int | None = None
    follow_symlinks: bool = False
    scan: str = ""
    """Which scan the task is part of (random): a :class:`TaskHost` keeps one store per scan."""


class ShardOut(msgspec.Struct, array_like=True):
    """What one task returns (msgpack-encoded): its records, the seeds it handed back, and the
    crops it judged with the images it met, for ``CROP101`` across shards."""

    nodes: list[NodeResult]
    seeds: list[Seed]
    found: int
    requests: int
    crops: list[HeldCrop] = []
    images: dict[str, list[ImageGrid]] = {}
    streamed: int = 0
    """Batches of records sent ahead through the task's outbox (not in ``nodes``)."""


seeds_encoder = msgspec.msgpack.Encoder()
_seeds_decoder = msgspec.msgpack.Decoder(list[Seed])
_out_decoder = msgspec.msgpack.Decoder(ShardOut)
_nodes_decoder = msgspec.msgpack.Decoder(list[NodeResult])

FLUSH_NODES = 512
"""Records a task with an outbox sends at once, at most"""
FLUSH_SECONDS = 0.25
"""... or after this long: an interrupted scan reports what its workers had finished."""


def crawl_shard(
    target: Target,
    seeds: bytes,
    settings: Settings,
    outbox: Callable[[bytes], None] | None = None,
) -> bytes:
    """The task: crawl below ``seeds`` (msgpack) in this thread's own event loop. With an
    ``outbox``, records go out through it as they are judged (msgpack batches), not in the
    result."""
    decoded = _seeds_decoder.decode(seeds)
    return anyio.run(_crawl_shard_async, target, decoded, settings, outbox)


class TaskHost:
    """What the tasks a worker process runs one after the other share: an event loop, and the
    store of the scan they are part of. On S3 a store costs ~70 ms of CPU to open (a botocore
    session and client, the first GET that teaches it the direct path): opened per task, that
    was ~5% of a scan's CPU. A task of another scan closes the store and opens its own."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._scan = ""
        self._stack: AsyncExitStack | None = None
        self._store: Store | None = None

    def run(
        self,
        target: Target,
        seeds: bytes,
        settings: Settings,
        outbox: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """:func:`crawl_shard` in this host's loop, with this scan's store."""
        decoded = _seeds_decoder.decode(seeds)
        return self._runner.run(_crawl_shard_async(target, decoded, settings, outbox, self))

    @asynccontextmanager
    async def store(self, target: Target, s: Settings) -> AsyncIterator[Store]:
        if self._store is None or self._scan != s.scan:
            await self.release()
            stack = AsyncExitStack()
            self._store = await stack.enter_async_context(_shard_store(target, s))
            self._stack, self._scan = stack, s.scan
        yield self._store

    async def release(self) -> None:
        stack, self._stack, self._store, self._scan = self._stack, None, None, ""
        if stack is not None:
            await stack.aclose()


def _shard_store(target: Target, s: Settings) -> AbstractAsyncContextManager[Store]:
    return scan_store(
        target.url,
        target.storage_options,
        s.retries,
        s.timeout,
        s.concurrency,
        s.max_document_size,
        s.follow_symlinks,
    )


async def _crawl_shard_async(
    target: Target,
    seeds: list[Seed],
    s: Settings,
    outbox: Callable[[bytes], None] | None,
    host: TaskHost | None = None,
) -> bytes:
    verdicts = Verdicts(s.models, options=s.options, force=s.force)
    opened = host.store(target, s) if host is not None and s.scan else _shard_store(target, s)
    async with opened as store:
        requests = store.requests  # a kept store counted the scan's earlier tasks too
        crawler = Crawler(
            store, verdicts, concurrency=s.concurrency, max_depth=s.max_depth, hold_crops=True
        )
        out = ShardOut([], [], 0, 0)
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](math.inf)
        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(crawler.run, send, seeds)
            flushed = time.monotonic()
            async for batch in receive:
                out.nodes.extend(batch)
                if s.split_after is not None and crawler.found >= s.split_after:
                    out.seeds.extend(crawler.detach())
                if outbox is not None and (
                    len(out.nodes) >= FLUSH_NODES or time.monotonic() - flushed > FLUSH_SECONDS
                ):
                    outbox(msgspec.msgpack.encode(out.nodes))
                    out.nodes, out.streamed, flushed = [], out.streamed + 1, time.monotonic()
        out.requests = store.requests - requests
    out.found = crawler.found
    out.crops, out.images = crawler.take_held()
    return msgspec.msgpack.encode(out)


def batches(seeds: Sequence[Seed], n: int) -> list[list[Seed]]:
    """``seeds`` in ``n`` contiguous runs of near-equal length (neighbours share prefixes)."""
    n = max(1, min(n, len(seeds)))
    size, extra = divmod(len(seeds), n)
    out: list[list[Seed]] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(seeds[start:end]))
        start = end
    return out


# ---- what runs the tasks ------------------------------------------------------------------
class ShardPool(Protocol):
    """Runs shard tasks (:func:`crawl_shard`) elsewhere: worker processes, a Dask cluster."""

    where: str
    """Where a failed task ran, for its seeds' reason ("in a worker process")."""

    recrawl: bool
    """Crawl a failed task's seeds again in the scan's own process (worker processes: one that
    died took the records it had not sent); a cluster retries its tasks itself."""

    async def width(self) -> int:
        """Tasks that run at once (to cut the tree into enough shards)."""
        ...

    def submit(self, target: Target, seeds: bytes, settings: Settings) -> Hashable:
        """Start one task; the handle :meth:`completed` gives back when it is over."""
        ...

    async def next(self) -> tuple[Hashable, bytes | BaseException, bool]:
        """What a task (of those submitted) sent next: ``(handle, records, False)`` for a batch
        sent ahead (msgpack ``list[NodeResult]``), ``(handle, result, True)`` when it ended
        (its :class:`ShardOut` blob, or what it failed with)."""
        ...

    async def cancel(self, handles: Sequence[Hashable]) -> None:
        """Stop these tasks (the scan was left early or failed)."""
        ...


# ---- the merging side ---------------------------------------------------------------------
class ShardedScanStream(ScanStream):
    """A :class:`ScanStream` whose nodes come from this process's first levels and the pool's
    tasks; ``found`` and ``requests`` include the tasks completed so far."""

    def __init__(
        self,
        crawler: Crawler,
        receive: MemoryObjectReceiveStream[list[NodeResult]],
        started: float,
        options: ReportOptions | None = None,
    ) -> None:
        super().__init__(crawler, receive, started, options=options)
        self.extra_found = 0
        self.remote_requests = 0
        self.tasks = 0
        """Tasks submitted so far (handed-back seeds included)."""
        self.failed_tasks = 0
        """Tasks that failed for good (crawled again here, or their seeds reported unreadable)."""
        self.cancelled = 0
        """Tasks cancelled because the scan was left early."""

    @property
    def found(self) -> int:
        return self._crawler.found + self.extra_found

    @property
    def requests(self) -> int:
        return self._crawler.store.requests + self.remote_requests


@asynccontextmanager
async def open_sharded_scan(
    url: str,
    pool: ShardPool,
    *,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    task_concurrency: int | None = None,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
    max_depth: int | None = None,
    force: bool = False,
    split_after: int | None = SPLIT_AFTER,
    max_document_size: int | None = None,
    follow_symlinks: bool = False,
) -> AsyncIterator[ShardedScanStream]:
    """Like :func:`cellmap_schemas.asynchronous.open_scan`, with the crawl cut into shards that
    ``pool`` runs; iterate the yielded stream for the results as tasks complete.
    ``task_concurrency``: directories one task reads at once (default ``concurrency``)."""
    verdicts = Verdicts(models, options=options or Options(), force=force)
    settings = Settings(
        models=verdicts.names if verdicts.explicit else (),
        options=verdicts.options,
        force=force,
        concurrency=concurrency if task_concurrency is None else task_concurrency,
        retries=retries,
        timeout=timeout,
        max_depth=max_depth,
        split_after=split_after,
        max_document_size=max_document_size,
        follow_symlinks=follow_symlinks,
        scan=secrets.token_hex(8),
    )
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
            split_depth=1,
            images=images,
            hold_crops=True,
        )
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](16)
        names = list(models) if models is not None else None
        report_options = report_options_for(names, verdicts.options, concurrency, retries, timeout)
        stream = ShardedScanStream(crawler, receive, started, options=report_options)
        run = _Run(pool, stream, crawler, Target(url, storage_options), settings, images)
        try:
            async with producing(run.produce, stream, send, receive) as failure:
                yield stream
        finally:  # whatever happened, stop the tasks still running
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await run.cancel()
        if failure:
            raise failure[0]


@dataclass(slots=True)
class _Task:
    """A task in flight: its seeds, what it sent ahead, its result."""

    batch: list[Seed]
    """All the seeds it was given (those not among ``sent`` are not reported yet)."""
    sent: set[str] = field(default_factory=set)
    """The paths of the records it sent ahead."""
    received: int = 0
    streamed: int = 0
    """Records received in those batches."""
    out: ShardOut | None = None


class _Run:
    """One sharded scan's bookkeeping: tasks in flight and the seeds of each."""

    def __init__(
        self,
        pool: ShardPool,
        stream: ShardedScanStream,
        crawler: Crawler,
        target: Target,
        settings: Settings,
        outside: Sequence[ImageGrid],
    ) -> None:
        self.pool = pool
        self.stream = stream
        self.crawler = crawler
        self.target = target
        self.settings = settings
        self.outside = outside
        self.pending: dict[Hashable, _Task] = {}
        self.crops: list[HeldCrop] = []
        """Crops judged by this process's crawls and the shards, reported once all are in."""
        self.images: dict[str, list[ImageGrid]] = {}
        """Every image met, by reconstruction, wherever it was met."""

    def _hold(self, crops: list[HeldCrop], images: dict[str, list[ImageGrid]]) -> None:
        self.crops.extend(crops)
        for scope, grids in images.items():
            self.images.setdefault(scope, []).extend(grids)

    async def produce(self, send: MemoryObjectSendStream[list[NodeResult]]) -> None:
        async with send:
            seeds = await self._discover(send)
            if seeds:
                await self._shards(seeds, send)
            # a crop's image may have been in another shard: only now are they all known
            assert self.crawler.verdicts is not None
            records = crop_records(self.crawler.verdicts, self.crops, self.images, self.outside)
            for i in range(0, len(records), _CHUNK):
                await send.send(records[i : i + _CHUNK])

    async def _shards(
        self, seeds: list[Seed], send: MemoryObjectSendStream[list[NodeResult]]
    ) -> None:
        """Submit ``seeds`` as tasks; stream their records (and their handed-back seeds' as
        new tasks) as they come."""
        self._submit(seeds, SHARDS_PER_THREAD * await self.pool.width())
        while self.pending:
            handle, payload, last = await self.pool.next()
            task = self.pending.get(handle)
            if task is None:
                continue  # a task that failed for good: its seeds are reported already
            if not last:
                nodes = _nodes_decoder.decode(payload)  # type: ignore[arg-type]
                task.received += 1
                self.stream.extra_found += len(nodes)
                task.streamed += len(nodes)
                task.sent.update(node.path for node in nodes)
            elif isinstance(payload, bytes):
                task.out = _out_decoder.decode(payload)
                nodes = []
            else:
                del self.pending[handle]
                self.stream.failed_tasks += 1
                nodes = await self._failed(task, payload)
            if task.out is not None and task.received == task.out.streamed:
                nodes += await self._ended(handle, task)
            del payload
            for i in range(0, len(nodes), _CHUNK):
                await send.send(nodes[i : i + _CHUNK])

    async def _failed(self, task: _Task, error: BaseException) -> list[NodeResult]:
        """The records of a task that failed: its seeds crawled again in this process where
        the pool says so (a dead worker's task, its records already sent left out), else
        (or if that crawl fails too) its seeds not reported yet, unreadable with the reason."""
        if self.pool.recrawl:
            again = self._here()
            send, receive = anyio.create_memory_object_stream[list[NodeResult]](math.inf)
            nodes: list[NodeResult] = []
            try:
                async with anyio.create_task_group() as tg, receive:
                    tg.start_soon(again.run, send, task.batch)
                    async for batch in receive:
                        nodes.extend(n for n in batch if n.path not in task.sent)
            except Exception:  # the worker's error is the one reported, below
                pass
            else:
                self._hold(*again.take_held())
                self.stream.extra_found += len(nodes)
                return nodes
        unreported = [seed for seed in task.batch if seed.path not in task.sent]
        self.stream.extra_found += len(unreported)
        return [failed(seed, error, self.pool.where) for seed in unreported]

    async def _ended(self, handle: Hashable, task: _Task) -> list[NodeResult]:
        """A task's last records, once its result and every batch it sent ahead are in."""
        out = task.out
        assert out is not None
        del self.pending[handle]
        self.stream.extra_found += out.found - task.streamed
        self.stream.remote_requests += out.requests
        self._hold(out.crops, out.images)
        if out.seeds:
            self._submit(out.seeds, await self.pool.width())
        return out.nodes

    def _here(self, split_depth: int | None = None) -> Crawler:
        """A crawler in this process, on the scan's store and verdicts, holding its crops."""
        c = self.crawler
        return Crawler(
            c.store,
            c.verdicts,
            concurrency=c.concurrency,
            max_depth=self.settings.max_depth,
            split_depth=split_depth,
            hold_crops=True,
        )

    async def _discover(self, send: MemoryObjectSendStream[list[NodeResult]]) -> list[Seed]:
        """Crawl the first levels here; return the directories set aside for the pool."""
        crawler = self.crawler
        await crawler.run(send.clone())
        self._hold(*crawler.take_held())
        seeds = crawler.detached
        levels = 1
        want = SHARDS_PER_THREAD * await self.pool.width() if seeds else 0
        while seeds and len(seeds) < want and levels < DISCOVERY_LEVELS:
            levels += 1
            level = self._here(split_depth=min(seed.path.count("/") for seed in seeds) + 2)
            await level.run(send.clone(), seeds)
            self._hold(*level.take_held())
            self.stream.extra_found += level.found
            seeds = level.detached
        return seeds

    def _submit(self, seeds: Sequence[Seed], n: int) -> None:
        for batch in batches(seeds, n):
            handle = self.pool.submit(self.target, seeds_encoder.encode(batch), self.settings)
            self.pending[handle] = _Task(batch)
            self.stream.tasks += 1

    async def cancel(self) -> None:
        """Cancel what is still running (the scan was left early or failed)."""
        if not self.pending:
            return
        handles = list(self.pending)
        self.pending.clear()
        self.stream.cancelled += len(handles)
        await self.pool.cancel(handles)


def failed(seed: Seed, error: BaseException, where: str) -> NodeResult:
    """A seed of a task that failed for good: unreadable, with the reason."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return NodeResult(
        path=seed.path,
        kind=None,
        format=None,
        status="unreadable",
        error=f"shard failed {where}: {text}",
    )
