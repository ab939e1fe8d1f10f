"""Retrying one storage request: exponential backoff with full jitter, a timeout per attempt.

Backends translate their own exceptions at the boundary (through the one table in
:mod:`cellmap_schemas.io._errors`) into two kinds: :class:`Transient` (throttling, 5xx, timeouts,
resets: worth another attempt) and :class:`StoreError` (permanent: access denied, bad
credentials). This module only loops; it knows no backend.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io.url import redact

__all__ = ["Transient", "backoff_delay", "retrying"]

T = TypeVar("T")

BASE_DELAY = 0.1
"""Seconds before the first retry; doubled for each further attempt."""

MAX_DELAY = 10.0
"""Upper bound of one backoff sleep."""


class Transient(Exception):
    """A failure that may go away if the request is sent again; ``cause`` is a short phrase."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0-based), with jitter.

    The random half of the delay spreads the retries of many concurrent requests that failed
    together (what throttling needs); the fixed half keeps a retry from firing at once.
    """
    cap = min(MAX_DELAY, BASE_DELAY * 2**attempt)
    return (rng or random).uniform(cap / 2, cap)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    url: str,
    retries: int,
    timeout: float | None,
    on_attempt: Callable[[], object] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, at most ``retries + 1`` times.

    Each attempt gets ``timeout`` seconds. ``Transient`` failures and timeouts are retried; the
    last one becomes a ``StoreError`` naming ``url`` (passwords redacted). Any other exception
    passes through.
    """
    cause = "no attempt made"
    for n in range(retries + 1):
        if n:
            await anyio.sleep(backoff_delay(n - 1))
        if on_attempt is not None:
            on_attempt()
        try:
            # asyncio's timeout rather than anyio's fail_after (a cancel scope behind a generator
            # context manager: ~9 µs against ~4 per request); every store runs on asyncio, and a
            # cancel scope around this one still cancels through it
            async with asyncio.timeout(timeout):
                return await attempt()
        except Transient as exc:
            cause = exc.cause
        except TimeoutError:
            cause = f"timed out after {timeout:g} s"
    tries = retries + 1
    detail = f" (gave up after {tries} attempts)" if tries > 1 else ""
    raise StoreError(redact(f"{url}: {cause}{detail}"))
