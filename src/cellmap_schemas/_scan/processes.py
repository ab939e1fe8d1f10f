"""Scans sharded over worker processes on this machine (``scan --jobs N``).

One process judges a few thousand nodes a second on one core: parsing and validating JSON holds
the GIL, so threads do not help, processes do. The tree is cut and merged as for a Dask scan
(:mod:`cellmap_schemas._scan.shards`); here a :class:`WorkerPool` of forked processes runs the
shards. Forking is cheap once the modules are imported (the children share the parent's pages),
so the CLI forks its workers first thing, before any thread exists; a process that already runs
threads gets its workers from a fork server instead (a fork copies only the forking thread, and
locks other threads held would stay locked in the child).

Workers ignore SIGINT: Ctrl-C reaches the whole process group, and it is the parent's to act on
(it stops the scan, terminates the workers and writes what it has). A worker that dies (killed,
out of memory) breaks the pool: the parent crawls the seeds of every task not finished again
itself, leaving out the records those tasks had sent, and the scan ends as usual; the next
scan gets new workers.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread

from cellmap_schemas import registry
from cellmap_schemas._scan.shards import (
    Settings,
    ShardedScanStream,
    Target,
    TaskHost,
    open_sharded_scan,
)

__all__ = ["WorkerPool", "available_cpus", "open_process_scan"]

_Event = tuple[int, bytes | BaseException, bool]

MAX_JOBS = 8
"""Most worker processes started by default. The parent merges every record (~10 µs a node on
the bench tree, against ~100 µs of a worker's crawl and verdicts), so beyond about this many it
is the limit; each worker also holds 25-35 MiB of its own."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_OUTBOX: Any = None
"""In a worker: the pool's queue, on which tasks send their records ahead as they go."""

_HOST: TaskHost | None = None
"""In a worker: the event loop and the store its tasks share."""


def _worker_started(outbox: Any) -> None:
    """In each worker: leave signals to the parent, which stops the scan and the workers; one
    :class:`TaskHost` for the tasks."""
    global _OUTBOX, _HOST
    _OUTBOX = outbox
    _HOST = TaskHost()
    with suppress(ValueError):
        signal.set_wakeup_fd(-1)  # a forked child shares the parent loop's wake-up pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _task(task: int, target: Target, seeds: bytes, settings: Settings) -> bytes:
    """A shard in a worker: its records go ahead on the pool's queue, tagged with ``task``
    (a ``SimpleQueue`` writes to its pipe before ``put`` returns: nothing sent is lost)."""
    outbox = _OUTBOX

    def send(blob: bytes) -> None:
        outbox.put((task, blob))

    assert _HOST is not None  # set by the pool's initializer
    return _HOST.run(target, seeds, settings, send if outbox is not None else None)


def _start_method() -> str:
    """``fork`` on Linux from a process of one thread; else the fork server, or where there
    is none (Windows) or forking is unsafe (macOS's system libraries), the platform's own."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return "fork" if threading.active_count() == 1 else "forkserver"
    return multiprocessing.get_start_method(allow_none=False)


class WorkerPool:
    """Worker processes for sharded scans (``open_scan(..., jobs=pool)``), reusable across
    scans; use it as a context manager, or :meth:`close` it.

    ``jobs``: how many (default: the CPUs this process may use, at most :data:`MAX_JOBS`).
    One scan uses the pool at a time (another raises ``RuntimeError``).
    The workers are forked by :meth:`start` (or the first scan): create the pool before
    starting threads, or they come from a fork server, which imports the package anew (on
    Linux; elsewhere they are always started the platform's way). As with any process pool
    started so, a script that starts one keeps its own top level under
    ``if __name__ == "__main__":`` (each worker imports the script).
    """

    def __init__(self, jobs: int | None = None) -> None:
        if jobs is not None and jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs if jobs is not None else min(available_cpus(), MAX_JOBS)
        self.start_method: str | None = None
        """``fork`` or ``forkserver``, once the workers are started."""
        self._executor: ProcessPoolExecutor | None = None
        self.outbox: Any = None
        """The queue the workers send records ahead on (``(task, blob)``; ``None`` ends)."""
        self._ids = itertools.count()
        self._lock = threading.Lock()
        """Held by the scan using the workers: one at a time (they send on one queue)."""

    def start(self) -> WorkerPool:
        """Start the workers now (forked from this process while it runs one thread)."""
        if self._executor is None:
            method = _start_method()
            context = multiprocessing.get_context(method)
            if method == "forkserver":
                context.set_forkserver_preload(["cellmap_schemas._scan.shards"])
            self.outbox = context.SimpleQueue()
            self._executor = ProcessPoolExecutor(
                self.jobs,
                mp_context=context,
                initializer=_worker_started,
                initargs=(self.outbox,),
            )
            self.start_method = method
            if method == "fork":  # every worker is forked at the first task, models loaded
                registry.preload()
                self._executor.submit(int).result()
            else:  # one is started per task while none is idle: tasks that wait start them all
                ready = [self._executor.submit(time.sleep, 0.02) for _ in range(self.jobs)]
                for future in ready:
                    future.result()
        return self

    def submit(self, target: Target, seeds: bytes, settings: Settings) -> tuple[int, Future[bytes]]:
        """One shard task and its number (which tags what it sends ahead); a broken pool (a
        worker died) gives a future failed with why."""
        executor = self.start()._executor
        assert executor is not None
        task = next(self._ids)
        try:
            return task, executor.submit(_task, task, target, seeds, settings)
        except (BrokenProcessPool, RuntimeError) as exc:
            future: Future[bytes] = Future()
            future.set_exception(exc)
            return task, future

    def terminate(self) -> None:
        """Stop the workers at once, tasks running included; the next scan starts new ones."""
        executor, self._executor = self._executor, None
        self.outbox = None
        if executor is None:
            return
        # ProcessPoolExecutor.terminate_workers() is Python 3.14's; before it, the processes
        # are only reachable through the executor's table of them (emptied by shutdown).
        # Futures are left to fail with BrokenProcessPool, never cancelled here: Python 3.11's
        # executor thread would set that exception on a cancelled one too, and raise.
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)

    def close(self) -> None:
        """Let the workers finish and exit."""
        executor, self._executor = self._executor, None
        self.outbox = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ProcessShards:
    """The :class:`~cellmap_schemas._scan.shards.ShardPool` of a :class:`WorkerPool`, for one
    scan. Two threads hand events to the event loop through a thread-safe queue, never
    waiting for it: the executor's (a task ended) and a reader of the pool's queue (records
    sent ahead); the loop takes them in a worker thread when none is waiting."""

    where = "in a worker process"
    recrawl = True  # a worker that died took the records it had not sent yet

    def __init__(self, pool: WorkerPool) -> None:
        if not pool._lock.acquire(blocking=False):
            raise RuntimeError("a WorkerPool runs one scan at a time (its workers share a queue)")
        self.pool = pool
        self._futures: dict[int, Future[bytes]] = {}
        self._events: queue.SimpleQueue[_Event | None] = queue.SimpleQueue()
        try:
            self._outbox = pool.start().outbox
            self._reader = threading.Thread(target=self._read, name="cellmap-shards", daemon=True)
            self._reader.start()
        except BaseException:
            pool._lock.release()
            raise

    async def width(self) -> int:
        return self.pool.jobs

    def submit(self, target: Target, seeds: bytes, settings: Settings) -> Hashable:
        task, future = self.pool.submit(target, seeds, settings)
        self._futures[task] = future
        future.add_done_callback(lambda f: self._ended(task, f))
        return task

    def _ended(self, task: int, future: Future[bytes]) -> None:
        """In the executor's thread (or this one, for a future failed at once)."""
        if future.cancelled():
            event: _Event = (task, RuntimeError("the task was cancelled"), True)
        else:
            error = future.exception()
            event = (task, error if error is not None else future.result(), True)
            if isinstance(error, BrokenProcessPool):
                self.pool.terminate()  # the next scan gets new workers (and a new queue)
        self._hand(event)

    def _read(self) -> None:
        with suppress(EOFError, OSError):  # the queue was closed (its workers terminated)
            while (item := self._outbox.get()) is not None:
                task, blob = item
                self._hand((task, blob, False))

    def _hand(self, event: _Event) -> None:
        """From any thread, never blocking it (the event loop may be gone already)."""
        self._events.put(event)

    async def next(self) -> _Event:
        try:
            event = self._events.get_nowait()
        except queue.Empty:
            event = await anyio.to_thread.run_sync(self._events.get, abandon_on_cancel=True)
        assert event is not None
        task, payload, last = event
        if last:
            self._futures.pop(task, None)
        return task, payload, last

    async def cancel(self, handles: Sequence[Hashable]) -> None:
        futures = [self._futures.pop(h) for h in handles if h in self._futures]
        if any(not f.done() for f in futures):
            self.pool.terminate()

    def close(self) -> None:
        """End the reader (after the scan: every task's records are in, or it was cancelled).

        A pool still whole takes the end marker on its queue, to be reused. A pool whose
        workers were terminated (or died) may have left the queue's lock taken: its queue is
        closed instead, and the reader ends on the pipe's end of file."""
        self._events.put(None)  # a waiting thread left behind by a cancelled next()
        if self.pool.outbox is self._outbox:
            self._outbox.put(None)
        else:
            self._outbox.close()
        self._reader.join(1)
        self.pool._lock.release()


@asynccontextmanager
async def open_process_scan(
    url: str, jobs: int | WorkerPool, *, concurrency: int = 64, **kwargs: Any
) -> AsyncIterator[ShardedScanStream]:
    """:func:`~cellmap_schemas._scan.shards.open_sharded_scan` on worker processes: ``jobs``
    of them (closed at the end) or a :class:`WorkerPool` (left open). The ``concurrency``
    budget is shared out among them; other keyword arguments are those of ``open_scan``."""
    pool = jobs if isinstance(jobs, WorkerPool) else WorkerPool(jobs)
    shards = ProcessShards(pool)
    try:
        async with open_sharded_scan(
            url,
            shards,
            concurrency=concurrency,
            task_concurrency=max(1, concurrency // pool.jobs),
            **kwargs,
        ) as stream:
            yield stream
    finally:
        shards.close()
        if pool is not jobs:
            pool.close()
