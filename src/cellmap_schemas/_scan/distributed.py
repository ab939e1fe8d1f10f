"""Scans sharded over a Dask cluster (``cellmap-schemas scan URL --dask ADDRESS``).

A bucket of millions of nodes wants more cores than one machine has. Dask ``distributed`` does
the scheduling, retries and worker bookkeeping; :mod:`cellmap_schemas._scan.shards` cuts the
tree into shards and merges what comes back, and this module is the :class:`ShardPool` that
submits the shards to the cluster (``pure=False``, a random key that names nothing of the scan)
and streams each blob as its task completes (``as_completed(..., with_results=True)``), dropping
the future so that neither the scheduler nor the client holds what was already reported.

Faults: a worker lost mid-task has its task rerun by the scheduler elsewhere, and a task that
raised is retried (``task_retries``); either way only the attempt that completed reaches the
client, so no node is counted twice. A task that still fails makes each seed of its batch an
``unreadable`` node with the reason, and the scan goes on. Leaving the block early (Ctrl-C
included) cancels every outstanding future.

The URL and ``storage_options`` (credentials) reach the workers as a task argument wrapped in
:class:`~cellmap_schemas._scan.shards.Target`, whose ``repr`` is redacted: distributed writes a
task's ``repr`` in its logs when the task fails, and task keys are random. Workers otherwise
resolve credentials in their own environment (instance roles, ``AWS_*`` variables) as any S3
client does; ``local:N`` workers inherit the client's.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from cellmap_schemas._scan.report import ScanReport
from cellmap_schemas._scan.shards import (
    DISCOVERY_LEVELS,
    SHARDS_PER_THREAD,
    SPLIT_AFTER,
    Settings,
    ShardedScanStream,
    Target,
    crawl_shard,
    open_sharded_scan,
)
from cellmap_schemas.errors import DistributedNotInstalled
from cellmap_schemas.validation import Options

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

DistributedScanStream = ShardedScanStream
"""The stream of a distributed scan (``tasks``, ``failed_tasks``, ``cancelled`` besides the
:class:`~cellmap_schemas._scan.ScanStream` counters)."""

TASK_RETRIES = 2
"""Reruns of a task that raised (a lost worker's tasks are rerun by the scheduler anyway)."""

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


class _DaskPool:
    """The :class:`~cellmap_schemas._scan.shards.ShardPool` of a Dask cluster."""

    where = "on the Dask cluster"
    recrawl = False  # the scheduler reruns a lost worker's task elsewhere

    def __init__(self, client: Client, task_retries: int) -> None:
        self.client = client
        self.task_retries = task_retries
        self._token = uuid.uuid4().hex[:12]
        self._count = itertools.count()
        self._done: Any = None

    async def width(self) -> int:
        return await _threads(self.client)

    def submit(self, target: Target, seeds: bytes, settings: Settings) -> Hashable:
        if self._done is None:
            distributed = require_distributed()
            self._done = distributed.as_completed(
                [], with_results=True, raise_errors=False, loop=self.client.loop
            )
        key = f"cellmap-scan-{self._token}-{next(self._count)}"
        future = self.client.submit(
            crawl_shard,
            target,
            seeds,
            settings,
            key=key,
            pure=False,
            retries=self.task_retries,
        )
        self._done.add(future)
        return future

    async def next(self) -> tuple[Hashable, bytes | BaseException, bool]:
        future, result = await self._done.__anext__()
        if future.status == "finished":
            return future, result, True
        error = result[1] if isinstance(result, tuple) and len(result) == 3 else result
        if not isinstance(error, BaseException):
            error = RuntimeError(str(error))
        return future, error, True

    async def cancel(self, handles: Sequence[Hashable]) -> None:
        await self.client.cancel(list(handles))  # type: ignore[no-untyped-call]


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
    max_document_size: int | None = None,
    follow_symlinks: bool = False,
) -> AsyncIterator[ShardedScanStream]:
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
    from cellmap_schemas.validation import Verdicts

    Verdicts(models, options=options or Options(), force=force)  # unknown models: before I/O
    async with (
        _connect(client_or_address) as client,
        open_sharded_scan(
            url,
            _DaskPool(client, task_retries),
            models=models,
            concurrency=concurrency,
            retries=retries,
            timeout=timeout,
            storage_options=storage_options,
            options=options,
            max_depth=max_depth,
            force=force,
            split_after=split_after,
            max_document_size=max_document_size,
            follow_symlinks=follow_symlinks,
        ) as stream,
    ):
        yield stream


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
