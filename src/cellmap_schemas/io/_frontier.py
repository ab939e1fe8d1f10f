"""The walker's records: directories to visit, groups waiting for members, and the small
pure decisions made on names and documents (which to probe, which to follow).

Kept apart from :mod:`cellmap_schemas.io.walk` so that the walk reads as the walk.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cellmap_schemas.formats import METADATA_KEYS, ParsedNode

__all__ = [
    "DEFINING",
    "EAGER_PROBES",
    "META",
    "PROBES",
    "Consolidated",
    "Item",
    "Pending",
    "Seed",
    "Work",
    "drain",
    "hint",
    "join",
    "kind_of_keys",
    "may_hold_nodes",
    "numeric",
    "truncate",
    "unsafe",
]

META = frozenset(METADATA_KEYS)
DEFINING = frozenset({"zarr.json", ".zarray", ".zgroup", "attributes.json"})

# Documents fetched before listing, by the format of the nearest node above (None: unknown).
# Above any node, the documents that make a directory an array are probed too: listing a bare
# array (a flat Zarr v2 one can hold millions of chunk keys) must never happen.
PROBES: dict[str | None, tuple[str, ...]] = {
    None: ("zarr.json", ".zarray", "attributes.json"),
    "n5": ("attributes.json",),
    "zarr": ("zarr.json", ".zarray", ".zattrs"),
    "zarr2": (".zarray", ".zattrs"),
    "zarr3": ("zarr.json",),
}
# Where a thread hop costs more than a missing file (local disk), a Zarr v2 group's .zgroup is
# fetched with the first batch instead of after the listing.
EAGER_PROBES: dict[str | None, tuple[str, ...]] = {
    **PROBES,
    "zarr": ("zarr.json", ".zarray", ".zattrs", ".zgroup"),
    "zarr2": (".zarray", ".zattrs", ".zgroup"),
}


class Seed(NamedTuple):
    """A directory to crawl from, found by another crawl (sharding, ``_scan/distributed.py``).

    Only directories no group waits for are seeds, so a crawl started at them reports exactly
    what one crawl of the whole root reports for them. ``ctx`` is the format of the nearest
    node above (``None``: none); the depth is the number of components of ``path``.
    """

    path: str
    ctx: str | None


def hint(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".n5"):
        return "n5"
    if lowered.endswith(".zarr"):
        return "zarr"
    return None


def unsafe(name: str) -> str | None:
    """Why a member name must not be followed, or None."""
    if name in ("", ".", ".."):
        return f"unsafe member name {name!r}: not followed"
    if "/" in name or "\\" in name or "\x00" in name:
        return f"unsafe member name {name!r} (contains a path separator or NUL): not followed"
    return None


def join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def kind_of_keys(keys: Iterable[str]) -> str | None:
    keys = set(keys)
    if ".zarray" in keys:
        return "array"
    if ".zgroup" in keys or ".zmetadata" in keys:
        return "group"
    return None


def may_hold_nodes(docs: Mapping[str, bytes | None]) -> bool:
    """Whether a directory whose metadata cannot be read may still hold nodes below it: a Zarr
    v2 group (its `.zgroup` says so) or an N5 node (an array's chunk directories are numbers,
    left alone). A Zarr v2 or v3 array's directory (millions of chunk keys) is never listed."""
    present = {k for k, v in docs.items() if v is not None}
    if ".zarray" in present or "zarr.json" in present:
        return False
    return ".zgroup" in present or "attributes.json" in present


def numeric(names: Iterable[str]) -> bool:
    return all(n.isdigit() for n in names)


def truncate(spec: dict[str, Any], depth: int) -> dict[str, Any]:
    """A spec whose members are kept ``depth`` levels deep (0: ``members`` emptied)."""
    members = spec.get("members")
    if not members:
        return spec
    if depth <= 0:
        return {**spec, "members": {}}
    return {**spec, "members": {k: truncate(v, depth - 1) for k, v in members.items()}}


class Consolidated:
    """The descendants a consolidated-metadata document lists, indexed by directory."""

    __slots__ = ("base", "children", "nodes")

    def __init__(self, base: str, nodes: Mapping[str, ParsedNode]) -> None:
        self.base = base
        self.nodes = nodes
        children: dict[str, set[str]] = collections.defaultdict(set)
        for rel in nodes:
            parts = rel.split("/")
            for i in range(len(parts)):
                children["/".join(parts[:i])].add(parts[i])
                if unsafe(parts[i]):
                    break  # reported at this level, nothing below is followed
        self.children = {k: sorted(v) for k, v in children.items()}

    def rel(self, path: str) -> str:
        if not self.base:
            return path
        return path[len(self.base) + 1 :] if path != self.base else ""


@dataclass(slots=True)
class Pending:
    """A group waiting for its members before it can be validated or handed up."""

    path: str
    name: str
    parent: Pending | None
    need: int
    node: ParsedNode
    models: tuple[tuple[str, type[Any]], ...]
    waiting: int = 0
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Work:
    """A directory being visited: what was fetched and listed so far."""

    it: Item
    url: str
    keys: tuple[str, ...]
    docs: dict[str, bytes | None] = field(default_factory=dict)
    node: ParsedNode | None = None
    dirs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    reported: bool = False
    """Already reported unreadable; listed only to look for the nodes below it."""


@dataclass(slots=True)
class Item:
    """A directory to visit."""

    path: str
    name: str
    ctx: str | None
    parent: Pending | None = None
    need: int = 0
    cons: Consolidated | None = None
    depth: int = 0


async def drain(
    queue: collections.deque[Item],
    tasks: int,
    batch: int,
    visit: Callable[[list[Item]], Coroutine[Any, Any, None]],
) -> None:
    """Visit queued directories, ``batch`` per task and at most ``tasks`` tasks at once,
    until the queue is empty and no task runs (visits push more work onto ``queue``).

    Popped from the right, where children were pushed last: each subtree is finished soon
    after it is started, so few groups wait for their members at a time. The tasks are plain
    asyncio tasks (an S3 crawl starts one per directory; an anyio task group costs ~20 µs a
    task, as ``fan_out``'s workers do): an exception in one (a bug: ``visit`` reports its own
    failures) cancels the others and is raised as itself; cancelling the caller cancels them
    and waits for them, as a task group would.
    """
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()
    failed: list[BaseException] = []
    wake = asyncio.Event()

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failed.append(task.exception())  # type: ignore[arg-type]
        wake.set()

    try:
        while not failed:
            while queue and len(running) < tasks:
                n = min(len(queue), batch)
                running.add(started := loop.create_task(visit([queue.pop() for _ in range(n)])))
                started.add_done_callback(ended)
            if not running:
                return
            await wake.wait()
            wake.clear()
        raise failed[0]
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(list(running))
