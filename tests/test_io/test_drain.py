"""``drain``, the walker's scheduler: every queued directory (and those visits push) visited,
at most ``tasks`` visits at once, a bug raised as itself, cancellation reaching every visit."""

from __future__ import annotations

import collections

import anyio
import pytest

from cellmap_schemas.io._frontier import Item, drain


def _queue(*names: str) -> collections.deque[Item]:
    return collections.deque(Item(name, name, None) for name in names)


def test_every_item_and_every_child_is_visited_with_bounded_concurrency() -> None:
    queue = _queue("a", "b", "c")
    seen: list[str] = []
    running = peak = 0

    async def visit(items: list[Item]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        for it in items:
            seen.append(it.path)
            if it.path.count("/") < 2:  # each directory has two children, two levels down
                queue.extend(Item(f"{it.path}/{c}", c, None) for c in "xy")
        running -= 1

    anyio.run(drain, queue, 3, 2, visit)
    assert len(seen) == 3 * (1 + 2 + 4) and len(set(seen)) == len(seen)
    assert not queue
    assert peak == 3


def test_an_empty_queue_returns_at_once() -> None:
    async def visit(items: list[Item]) -> None:
        raise AssertionError("nothing to visit")

    anyio.run(drain, _queue(), 4, 1, visit)


def test_a_bug_stops_the_other_visits_and_is_raised_as_itself() -> None:
    cancelled: list[str] = []

    async def visit(items: list[Item]) -> None:
        (it,) = items
        if it.path == "bug":
            raise KeyError("a bug")
        try:
            await anyio.sleep(10)
        except BaseException:
            cancelled.append(it.path)
            raise

    async def main() -> None:
        with anyio.fail_after(5):
            await drain(_queue("a", "b", "bug", "c"), 8, 1, visit)

    with pytest.raises(KeyError, match="a bug"):
        anyio.run(main)
    assert sorted(cancelled) == ["a", "b", "c"]  # stopped before the bug was raised


def test_cancelling_the_caller_cancels_and_waits_for_every_visit() -> None:
    finished: list[str] = []

    async def visit(items: list[Item]) -> None:
        try:
            await anyio.sleep(10)
        finally:
            finished.extend(it.path for it in items)

    async def main() -> float:
        start = anyio.current_time()
        with anyio.move_on_after(0.2):
            await drain(_queue("a", "b", "c"), 8, 1, visit)
        assert sorted(finished) == ["a", "b", "c"]  # all done once drain returned
        return anyio.current_time() - start

    assert anyio.run(main) < 5
