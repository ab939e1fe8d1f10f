"""The blocking API: the functions of :mod:`cellmap_schemas.asynchronous`, one event loop each.

Each function runs its async twin with ``anyio.run`` on asyncio (s3fs sessions and tensorstore
futures are asyncio-bound) and returns when the store is closed. Inside a running event loop use
:mod:`cellmap_schemas.asynchronous` instead; these raise ``RuntimeError`` there.

Examples
--------
>>> from cellmap_schemas import scan
>>> report = scan("examples/cellmap-bucket", models=["multiscale.cosem.Group"])
... # doctest: +SKIP
>>> report.summary.invalid  # doctest: +SKIP
4
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from cellmap_schemas import asynchronous as _async
from cellmap_schemas._scan.distributed import scan_distributed
from cellmap_schemas.asynchronous import Inspection, WorkerPool
from cellmap_schemas.io.read import run_sync as run_sync  # the CLI runs its own coroutines

__all__ = [
    "Inspection",
    "WorkerPool",
    "check",
    "inspect",
    "judge",
    "read",
    "scan",
    "scan_distributed",
]

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """The blocking twin of an async API function (same signature and docstring)."""

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(functools.partial(func, *args, **kwargs))

    call.__module__ = __name__
    return call


read = _blocking(_async.read)
check = _blocking(_async.check)
judge = _blocking(_async.judge)
inspect = _blocking(_async.inspect)
scan = _blocking(_async.scan)
