"""``fan_out``, the concurrency of every remote ``get_many``/``list_many``: results in order, a
StoreError in its key's place, a bug raised as itself, cancellation reaching every worker."""

from __future__ import annotations

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._base import fan_out


def test_results_in_order_with_errors_in_place_and_bounded_concurrency() -> None:
    running = peak = 0

    async def func(key: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01 * (int(key) % 3))
        running -= 1
        if key == "4":
            raise StoreError("s3://b/4: access denied (403)")
        return key

    async def main() -> list[str | StoreError]:
        return await fan_out(func, [str(i) for i in range(12)], 5)

    results = anyio.run(main)
    assert [r if isinstance(r, str) else str(r) for r in results] == [
        *"0123",
        "s3://b/4: access denied (403)",
        *(str(i) for i in range(5, 12)),
    ]
    assert peak == 5


def test_a_bug_stops_the_other_workers_and_is_raised_as_itself() -> None:
    cancelled: list[str] = []

    async def func(key: str) -> str:
        if key == "bug":
            raise KeyError("a bug")
        try:
            await anyio.sleep(10)
        except BaseException:
            cancelled.append(key)
            raise
        return key

    async def main() -> None:
        with anyio.fail_after(5):
            await fan_out(func, ["a", "b", "bug", "c"], 8)

    with pytest.raises(KeyError, match="a bug"):
        anyio.run(main)
    assert sorted(cancelled) == ["a", "b", "c"]  # stopped before the bug was raised


def test_cancelling_the_caller_cancels_and_waits_for_every_worker() -> None:
    finished: list[str] = []

    async def func(key: str) -> str:
        try:
            await anyio.sleep(10)
        finally:
            finished.append(key)
        return key

    async def main() -> float:
        start = anyio.current_time()
        with anyio.move_on_after(0.2):
            await fan_out(func, ["a", "b", "c"], 8)
        assert sorted(finished) == ["a", "b", "c"]  # all done once fan_out returned
        return anyio.current_time() - start

    assert anyio.run(main) < 5
