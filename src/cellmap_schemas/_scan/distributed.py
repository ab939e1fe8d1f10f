"""Scans sharded over a Dask cluster (``cellmap-schemas scan URL --dask ADDRESS``).

One process reaches a few thousand nodes a second, bounded by one core's JSON parsing and
validation; a bucket of millions of nodes wants more cores than one machine has. Dask
``distributed`` does the scheduling, retries and worker bookkeeping; this module only cuts the
tree into shards and merges what comes back.

How a scan is cut:

1. The client crawls the first levels itself, with the ordinary :class:`Crawler` told to set
   aside (``split_depth``) the directories one level down that no group waits for: the bucket's
   datasets; when there are fewer than :data:`SHARDS_PER_THREAD` x the cluster's threads, their
   containers, and so on for at most :data:`DISCOVERY_LEVELS` levels. Directories a group
   waits for (the members a model needs) are never cut off, so every verdict is taken where the
   group's members are, exactly as in a single-process scan.
2. The set-aside directories (:class:`Seed`) are cut into contiguous batches, one task each
   (``pure=False``, a random key that names nothing of the scan). A task runs the async crawler
   on its batch with its own concurrency budget and returns its node records as one msgpack
   blob (``msgspec``), plus the seeds it handed back: once a task has found ``split_after``
   nodes it stops taking new subtrees and returns every queued directory no group waits for,
   which the client submits as new tasks. A very large container is so spread over the cluster.
3. The client streams each blob's records into the report as its task completes
   (``as_completed(..., with_results=True)``) and drops the future, so neither the scheduler
   nor the client holds what was already reported.

Faults: a worker lost mid-task has its task rerun by the scheduler elsewhere, and a task that
raised is retried (``task_retries``); either way only the attempt that completed reaches the
client, so no node is counted twice. A task that still fails makes each seed of its batch an
``unreadable`` node with the reason, and the scan goes on. Leaving the block early (Ctrl-C
included) cancels every outstanding future.

The URL and ``storage_options`` (credentials) reach the workers as a task argument wrapped in
:class:`_Private`, whose ``repr`` is redacted: distributed writes a task's ``repr`` in its logs
when the task fails, and task keys are random. Workers otherwise resolve credentials in their
own environment (instance roles, ``AWS_*`` variables) as any S3 client does; ``local:N``
workers inherit the client's.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cellmap_schemas._scan import ScanStream
from cellmap_schemas._scan.report import NodeResult, ReportOptions, ScanReport
from cellmap_schemas.crop_grid import ImageGrid
from cellmap_schemas.errors import DistributedNotInstalled
from cellmap_schemas.io._outcomes import HeldCrop, crop_records
from cellmap_schemas.io.walk import Crawler, Seed
from cellmap_schemas.validation import Options, Verdicts

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DISCOVERY_LEVELS",
    "SHARDS_PER_THREAD",
    "SPLIT_AFTER",
    "DistributedNotInstalled",
    "DistributedScanStream",
    "collect_distributed",
    "open_distributed_scan",
    "require_distributed",
    "scan_distributed",
]

SHARDS_PER_THREAD = 4
"""Initial shards per worker thread: enough that a slow shard does not leave threads idle."""

DISCOVERY_LEVELS = 3
"""Levels the client visits itself at most (bucket, datasets, containers) to find shards."""

SPLIT_AFTER = 5000
"""Nodes a task finds before it hands the rest of its subtrees back (bounds one result blob
and lets a huge container spread over the cluster)."""

TASK_RETRIES = 2
"""Reruns of a task that raised (a lost worker's tasks are rerun by the scheduler anyway)."""

_CHUNK = 512
"""Records per message from the merging task to the consumer."""

INSTALL_HINT = "pip install 'cellmap-schemas[dask]'"


def require_distributed() -> Any:
    """The ``distributed`` module, or :class:`DistributedNotInstalled` saying how to get it
    (call it before a long setup to fail early)."""
    try:
        import distributed
    except ImportError as exc:
        raise DistributedNotInstalled(
            f"scanning on a Dask cluster needs the `distributed` package: {INSTALL_HINT}"
        ) from exc
    return distributed


# ---- what travels to a task ---------------------------------------------------------------
class _Private:
    """The URL and storage options of a scan, as a task argument whose ``repr`` names nothing:
    distributed logs a failed task's ``repr`` (args included)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None) -> None:
        self.url = url
        self.storage_options = dict(storage_options) if storage_options else None

    def __repr__(self) -> str:
        return "<scan target: redacted>"


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything but the target that a task needs to crawl as the client would."""

    models: tuple[str, ...]
    options: Options
    force: bool
    concurrency: int
    retries: int
    timeout: float | None
    max_depth: int | None
    split_after: int | None


class _ShardOut(msgspec.Struct, array_like=True):
    """What one task returns (msgpack-encoded): its records, the seeds it handed back, and the
    crops it judged with the images it met, for the client to take ``CROP101`` across shards."""

    nodes: list[NodeResult]
    seeds: list[Seed]
    found: int
    requests: int
    crops: list[HeldCrop] = []
    images: dict[str, list[ImageGrid]] = {}


_seeds_encoder = msgspec.msgpack.Encoder()
_seeds_decoder = msgspec.msgpack.Decoder(list[Seed])
_out_decoder = msgspec.msgpack.Decoder(_ShardOut)


def _crawl_shard(target: _Private, seeds: bytes, settings: _Settings) -> bytes:
    """The task: crawl below ``seeds`` (msgpack) in this worker thread's own event loop."""
    return anyio.run(_crawl_shard_async, target, _seeds_decoder.decode(seeds), settings)


async def _crawl_shard_async(target: _Private, seeds: list[Seed], s: _Settings) -> bytes:
    from cellmap_schemas.io.store import open_store

    verdicts = Verdicts(s.models, options=s.options, force=s.force)
    nodes: list[NodeResult] = []
    handed_back: list[Seed] = []
    async with open_store(
        target.url,
        storage_options=target.storage_options,
        retries=s.retries,
        timeout=s.timeout,
        concurrency=max(s.concurrency, 1),
    ) as store:
        crawler = Crawler(
            store, verdicts, concurrency=s.concurrency, max_depth=s.max_depth, hold_crops=True
        )
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](math.inf)
        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(crawler.run, send, seeds)
            async for batch in receive:
                nodes.extend(batch)
                if s.split_after is not None and crawler.found >= s.split_after:
                    handed_back.extend(crawler.detach())
        requests = store.requests
    crops, images = crawler.take_held()
    out = _ShardOut(
        nodes=nodes,
        seeds=handed_back,
        found=crawler.found,
        requests=requests,
        crops=crops,
        images=images,
    )
    return msgspec.msgpack.encode(out)


def _batches(seeds: Sequence[Seed], n: int) -> list[list[Seed]]:
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


# ---- the client side ----------------------------------------------------------------------
class DistributedScanStream(ScanStream):
    """A :class:`ScanStream` whose nodes come from the client's first levels and the cluster's
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
        """Tasks that failed for good (their seeds are reported unreadable)."""
        self.cancelled = 0
        """Futures cancelled because the scan was left early."""

    @property
    def found(self) -> int:
        return self._crawler.found + self.extra_found

    @property
    def requests(self) -> int:
        return self._crawler.store.requests + self.remote_requests


@asynccontextmanager
async def _connect(client_or_address: Client | str) -> AsyncIterator[Client]:
    """An asynchronous client on this event loop: for ``local:N`` a LocalCluster of N worker
    processes on 127.0.0.1, for an address a connection to that scheduler, for a client built
    elsewhere (a blocking one, another loop) a second connection to its scheduler."""
    distributed = require_distributed()
    Client = distributed.Client
    if isinstance(client_or_address, str):
        address = client_or_address.strip()
        if address.startswith("local:"):
            try:
                n = int(address.removeprefix("local:"))
            except ValueError:
                raise ValueError(
                    f"expected local:N (N worker processes), got {address!r}"
                ) from None
            if n < 1:
                raise ValueError(f"local:N needs at least one worker, got {address!r}")
            async with (
                distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    asynchronous=True,
                ) as cluster,
                Client(cluster, asynchronous=True) as client,
            ):
                yield client
            return
        async with Client(address, asynchronous=True, timeout="30s") as client:
            yield client
        return
    client = client_or_address
    if client.asynchronous and getattr(client.loop, "asyncio_loop", None) is _running_loop():
        yield client
        return
    async with Client(
        getattr(client.scheduler, "address", None),
        asynchronous=True,
        security=client.security,
        timeout="30s",
    ) as own:
        yield own


def _running_loop() -> Any:
    import asyncio

    return asyncio.get_running_loop()


async def _threads(client: Client) -> int:
    nthreads: dict[str, int] = await client.nthreads()  # type: ignore[no-untyped-call]
    return max(1, sum(nthreads.values()))


@asynccontextmanager
async def open_distributed_scan(
    url: str,
    client_or_address: Client | str,
    *,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
    max_depth: int | None = None,
    force: bool = False,
    split_after: int | None = SPLIT_AFTER,
    task_retries: int = TASK_RETRIES,
) -> AsyncIterator[DistributedScanStream]:
    """Like :func:`cellmap_schemas.asynchronous.open_scan`, with the crawl sharded over a Dask
    cluster; iterate the yielded stream for the results as tasks complete.

    Parameters
    ----------
    client_or_address
        ``tcp://HOST:PORT`` (a running scheduler), ``local:N`` (a LocalCluster of N worker
        processes, closed at the end), or a ``distributed.Client``.
    concurrency
        Directories one task reads at once (each task has its own budget).
    split_after
        Nodes a task finds before it hands its remaining subtrees back to be split (``None``:
        never).
    task_retries
        Reruns of a task that raised before its seeds are reported unreadable.

    Other parameters are those of ``open_scan``. Must run on asyncio (distributed needs it).

    Raises
    ------
    DistributedNotInstalled
        ``distributed`` is missing (``pip install 'cellmap-schemas[dask]'``).
    UnknownModelError
        A model name is not registered (raised before any I/O).
    RootError, NodeNotFoundError
        Raised by the iteration when the root itself cannot be read.
    """
    require_distributed()
    verdicts = Verdicts(models, options=options or Options(), force=force)
    settings = _Settings(
        models=verdicts.names if verdicts.explicit else (),
        options=verdicts.options,
        force=force,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        max_depth=max_depth,
        split_after=split_after,
    )
    target = _Private(url, storage_options)
    from cellmap_schemas.io.store import open_store

    started = time.perf_counter()
    async with (
        _connect(client_or_address) as client,
        open_store(
            url,
            storage_options=storage_options,
            retries=retries,
            timeout=timeout,
            concurrency=max(concurrency, 1),
        ) as store,
    ):
        crawler = Crawler(
            store,
            verdicts,
            concurrency=concurrency,
            max_depth=max_depth,
            split_depth=1,
            hold_crops=True,
        )
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](16)
        opts = verdicts.options
        report_options = ReportOptions(
            models=list(verdicts.names) if verdicts.explicit else None,
            strict=opts.strict,
            select=list(opts.select),
            ignore=list(opts.ignore),
            concurrency=concurrency,
            retries=retries,
            timeout=timeout,
        )
        stream = DistributedScanStream(crawler, receive, started, options=report_options)
        run = _Run(client, stream, crawler, target, settings, task_retries)

        async def produce() -> None:
            try:
                await run.produce(send)
            except Exception as exc:  # handed to the consumer, not raised in the task group
                stream.error = exc
                await send.aclose()

        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(produce)
                try:
                    yield stream
                except Exception as exc:  # re-raised below as itself
                    failure = exc
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await run.cancel()
        if failure is not None:
            raise failure


class _Run:
    """One distributed scan's bookkeeping: futures in flight and the seeds of each."""

    def __init__(
        self,
        client: Client,
        stream: DistributedScanStream,
        crawler: Crawler,
        target: _Private,
        settings: _Settings,
        task_retries: int,
    ) -> None:
        self.client = client
        self.stream = stream
        self.crawler = crawler
        self.target = target
        self.settings = settings
        self.task_retries = task_retries
        self.pending: dict[Any, list[Seed]] = {}
        self._token = uuid.uuid4().hex[:12]
        self._count = itertools.count()
        self.crops: list[HeldCrop] = []
        """Crops judged by the client's crawls and the shards, reported once all are in."""
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
            records = crop_records(self.crawler.verdicts, self.crops, self.images)
            for i in range(0, len(records), _CHUNK):
                await send.send(records[i : i + _CHUNK])

    async def _shards(
        self, seeds: list[Seed], send: MemoryObjectSendStream[list[NodeResult]]
    ) -> None:
        """Submit ``seeds`` as tasks; stream their records (and their handed-back seeds' as
        new tasks) as they complete."""
        threads = await _threads(self.client)
        distributed = require_distributed()
        done = distributed.as_completed(
            [], with_results=True, raise_errors=False, loop=self.client.loop
        )
        done.update(self._submit(seeds, SHARDS_PER_THREAD * threads))
        async for future, result in done:
            batch = self.pending.pop(future)
            if future.status == "finished":
                out = _out_decoder.decode(result)
                self.stream.extra_found += out.found
                self.stream.remote_requests += out.requests
                self._hold(out.crops, out.images)
                if out.seeds:
                    threads = await _threads(self.client)
                    done.update(self._submit(out.seeds, threads))
                nodes = out.nodes
                del out
            else:
                self.stream.failed_tasks += 1
                self.stream.extra_found += len(batch)
                nodes = [_failed(seed, result) for seed in batch]
            del future, result  # the scheduler may forget the task now
            for i in range(0, len(nodes), _CHUNK):
                await send.send(nodes[i : i + _CHUNK])

    async def _discover(self, send: MemoryObjectSendStream[list[NodeResult]]) -> list[Seed]:
        """Crawl the first levels here; return the directories set aside for the cluster."""
        crawler = self.crawler
        await crawler.run(send.clone())
        self._hold(*crawler.take_held())
        seeds = crawler.detached
        levels = 1
        want = SHARDS_PER_THREAD * await _threads(self.client) if seeds else 0
        while seeds and len(seeds) < want and levels < DISCOVERY_LEVELS:
            levels += 1
            depth = min(seed.path.count("/") for seed in seeds) + 2
            s = self.settings
            level = Crawler(
                crawler.store,
                crawler.verdicts,
                concurrency=s.concurrency,
                max_depth=s.max_depth,
                split_depth=depth,
                hold_crops=True,
            )
            await level.run(send.clone(), seeds)
            self._hold(*level.take_held())
            self.stream.extra_found += level.found
            seeds = level.detached
        return seeds

    def _submit(self, seeds: Sequence[Seed], n: int) -> list[Any]:
        futures = []
        for batch in _batches(seeds, n):
            key = f"cellmap-scan-{self._token}-{next(self._count)}"
            future = self.client.submit(
                _crawl_shard,
                self.target,
                _seeds_encoder.encode(batch),
                self.settings,
                key=key,
                pure=False,
                retries=self.task_retries,
            )
            self.pending[future] = batch
            futures.append(future)
        self.stream.tasks += len(futures)
        return futures

    async def cancel(self) -> None:
        """Cancel what is still running (the scan was left early or failed)."""
        if not self.pending:
            return
        futures = list(self.pending)
        self.pending.clear()
        self.stream.cancelled += len(futures)
        await self.client.cancel(futures)  # type: ignore[no-untyped-call]


def _failed(seed: Seed, error: Any) -> NodeResult:
    """A seed of a task that failed for good: unreadable, with the reason."""
    exc = error[1] if isinstance(error, tuple) and len(error) == 3 else error
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return NodeResult(
        path=seed.path,
        kind=None,
        format=None,
        status="unreadable",
        error=f"shard failed on the Dask cluster: {text}",
    )


async def collect_distributed(
    url: str, client_or_address: Client | str, **kwargs: Any
) -> ScanReport:
    """Run a distributed scan to the end and gather every result (nodes sorted by path);
    keyword arguments are those of :func:`open_distributed_scan`."""
    async with open_distributed_scan(url, client_or_address, **kwargs) as scan:
        nodes = [node async for node in scan]
        summary, _ = scan.finish()
    nodes.sort(key=lambda n: n.path)
    return ScanReport(summary=summary, nodes=nodes)


def scan_distributed(url: str, client: Client | str, **kwargs: Any) -> ScanReport:
    """Blocking :func:`collect_distributed` (from code without an event loop)."""
    return anyio.run(lambda: collect_distributed(url, client, **kwargs), backend="asyncio")
