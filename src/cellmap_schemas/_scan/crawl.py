"""The concurrent crawler behind ``cellmap-schemas scan``.

Work items are directories. A dispatcher starts one task per item while a ``CapacityLimiter``
has tokens (``concurrency``), so at most that many tasks exist; waiting items are small records
in a deque. Each item costs as few requests as the format allows:

- below a node whose format is known, a child's metadata is fetched *before* listing it (N5:
  ``attributes.json``; Zarr v3: ``zarr.json``; Zarr v2: ``.zarray`` + ``.zattrs``). An array is
  then finished: its directory (the chunks) is never listed;
- a group is listed once (one level); metadata files the listing shows and that were not fetched
  yet are fetched, so nothing is probed blindly;
- a group with consolidated metadata (``.zmetadata``, ``zarr.json`` ``consolidated_metadata``)
  is not listed below: its descendants come from that document;
- above any node (the bucket, dataset folders) the documents that would make a directory an
  array are probed, then the directory is listed and the other metadata files it names are
  fetched.

Results stream out as nodes finish. A group that some applicable model must validate waits for
its members' spec dicts (the crawler reads them anyway); only those waiting groups and the
members they need are held in memory. The frontier is wide (every sibling of a level is queued
at once, and up to ``concurrency`` directories are in flight), but the deque is popped at the
end where children were pushed last, so each subtree is finished soon after it is started and
few groups wait at a time: on 20,000 COSEM groups (140,000 nodes) the scan peaks at ~105 MB,
where a strictly level-by-level order peaks at ~340 MB.

Nothing a hierarchy holds crashes the crawl: unreadable documents, denied prefixes, member names
such as ``..``, symlink loops (the local store leaves them out of listings) and documents of any
size become results with a reason.
"""

from __future__ import annotations

import collections
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.to_thread
import msgspec
from anyio.abc import ObjectSendStream

from cellmap_schemas._scan.report import NodeResult
from cellmap_schemas.errors import NodeNotFoundError, StoreError, UnsupportedFormatError
from cellmap_schemas.formats import METADATA_KEYS, format_of_key
from cellmap_schemas.io.read import MAX_DEPTH, ParsedNode, decode_document, parse_node
from cellmap_schemas.io.store import NotFollowedError, Store
from cellmap_schemas.validation import ModelResult, Status, Verdicts

__all__ = ["MAX_DEPTH", "MEMBER_DEPTH", "Crawler", "RootError", "Seed"]

T = TypeVar("T")

MEMBER_DEPTH = 2
"""Levels of members a group model sees: a crop's class groups and their arrays."""

LOCAL_BATCH = 512
"""Directories one task visits together on local disk (their reads merged into few calls)."""

LOCAL_TASKS = 4
"""Batches in flight at once on local disk."""

_META = frozenset(METADATA_KEYS)
_DEFINING = frozenset({"zarr.json", ".zarray", ".zgroup", "attributes.json"})

# Documents fetched before listing, by the format of the nearest node above (None: unknown).
# Above any node, the documents that make a directory an array are probed too: listing a bare
# array (a flat Zarr v2 one can hold millions of chunk keys) must never happen.
_PROBES: dict[str | None, tuple[str, ...]] = {
    None: ("zarr.json", ".zarray", "attributes.json"),
    "n5": ("attributes.json",),
    "zarr": ("zarr.json", ".zarray", ".zattrs"),
    "zarr2": (".zarray", ".zattrs"),
    "zarr3": ("zarr.json",),
}
# Where a thread hop costs more than a missing file (local disk), a Zarr v2 group's .zgroup is
# fetched with the first batch instead of after the listing.
_EAGER_PROBES: dict[str | None, tuple[str, ...]] = {
    **_PROBES,
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


class RootError(StoreError):
    """The scanned root itself cannot be read (missing, denied, unreachable)."""


def _hint(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".n5"):
        return "n5"
    if lowered.endswith(".zarr"):
        return "zarr"
    return None


def _unsafe(name: str) -> str | None:
    """Why a member name must not be followed, or None."""
    if name in ("", ".", ".."):
        return f"unsafe member name {name!r}: not followed"
    if "/" in name or "\\" in name or "\x00" in name:
        return f"unsafe member name {name!r} (contains a path separator or NUL): not followed"
    return None


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _kind_of_keys(keys: Iterable[str]) -> str | None:
    keys = set(keys)
    if ".zarray" in keys:
        return "array"
    if ".zgroup" in keys or ".zmetadata" in keys:
        return "group"
    return None


def _may_hold_nodes(docs: Mapping[str, bytes | None]) -> bool:
    """Whether a directory whose metadata cannot be read may still hold nodes below it: a Zarr
    v2 group (its `.zgroup` says so) or an N5 node (an array's chunk directories are numbers,
    left alone). A Zarr v2 or v3 array's directory (millions of chunk keys) is never listed."""
    present = {k for k, v in docs.items() if v is not None}
    if ".zarray" in present or "zarr.json" in present:
        return False
    return ".zgroup" in present or "attributes.json" in present


def _numeric(names: Iterable[str]) -> bool:
    return all(n.isdigit() for n in names)


def _truncate(spec: dict[str, Any], depth: int) -> dict[str, Any]:
    """A spec whose members are kept ``depth`` levels deep (0: ``members`` emptied)."""
    members = spec.get("members")
    if not members:
        return spec
    if depth <= 0:
        return {**spec, "members": {}}
    return {**spec, "members": {k: _truncate(v, depth - 1) for k, v in members.items()}}


class _Consolidated:
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
                if _unsafe(parts[i]):
                    break  # reported at this level, nothing below is followed
        self.children = {k: sorted(v) for k, v in children.items()}

    def rel(self, path: str) -> str:
        if not self.base:
            return path
        return path[len(self.base) + 1 :] if path != self.base else ""


@dataclass(slots=True)
class _Pending:
    """A group waiting for its members before it can be validated or handed up."""

    path: str
    name: str
    parent: _Pending | None
    need: int
    node: ParsedNode
    models: tuple[tuple[str, type[Any]], ...]
    waiting: int = 0
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Work:
    """A directory being visited: what was fetched and listed so far."""

    it: _Item
    url: str
    keys: tuple[str, ...]
    docs: dict[str, bytes | None] = field(default_factory=dict)
    node: ParsedNode | None = None
    dirs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    reported: bool = False
    """Already reported unreadable; listed only to look for the nodes below it."""


@dataclass(slots=True)
class _Item:
    """A directory to visit."""

    path: str
    name: str
    ctx: str | None
    parent: _Pending | None = None
    need: int = 0
    cons: _Consolidated | None = None
    depth: int = 0


class Crawler:
    """Crawls one store and sends a :class:`NodeResult` for every node it meets.

    Parameters
    ----------
    store
        An open store; keys are relative to the scanned root.
    verdicts
        The models of the scan.
    concurrency
        Directories processed at once (each may have several requests in flight).
    max_depth
        Visit nodes at most this many levels below the root (``None``: all). A group at that
        depth is finished as a leaf: its members are not listed. ``check`` uses
        :data:`MEMBER_DEPTH`, which is all the root's verdict depends on.
    split_depth
        Sharding hook: directories this deep or deeper that no group waits for are not visited
        but collected in :attr:`detached` as :class:`Seed` (for other crawls to visit).
    done
        Records of nodes already reported (resuming an interrupted scan): they are not reported
        again, and an array or unreadable node among them that no waiting group needs is not
        read at all (a group is read and listed again: what below it was not finished is found
        only so; a finished group does not wait for its members). The ``--resume`` hook.
    """

    def __init__(
        self,
        store: Store,
        verdicts: Verdicts,
        *,
        concurrency: int = 64,
        max_depth: int | None = None,
        split_depth: int | None = None,
        done: Mapping[str, NodeResult] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.store = store
        self.verdicts = verdicts
        self.concurrency = concurrency
        self._leaf_depth = max_depth
        self.root_is_node: bool | None = None
        self.root_name = store.location.path.rstrip("/").rsplit("/", 1)[-1] or store.url
        self.found = 0
        """Nodes whose metadata has been read (or failed to read)."""
        from cellmap_schemas.io import _local

        local = isinstance(store, _local.LocalStore)
        self._probes = _EAGER_PROBES if local else _PROBES
        # On local disk a worker-thread hop costs more than reading a small file, and the store
        # reads a whole batch of keys per hop: directories are visited in batches, their reads
        # merged. Remote stores get one directory per task, so a slow request delays only one.
        self._batch = LOCAL_BATCH if local else 1
        self._tasks = LOCAL_TASKS if local else concurrency
        self._base = store.url.rstrip("/")
        self._queue: collections.deque[_Item] = collections.deque()
        self._send: ObjectSendStream[list[NodeResult]] | None = None
        self._out: list[NodeResult] = []
        self._array_models = verdicts.has_models("array")
        self._split_depth = split_depth
        self.detached: list[Seed] = []
        """Seeds set aside by ``split_depth`` (in name order per directory)."""
        self._finished: Mapping[str, NodeResult] = done or {}

    def _url(self, path: str) -> str:
        return f"{self._base}/{path}" if path else self.store.url

    # ---- public -----------------------------------------------------------------------------
    def dataset_of(self, path: str) -> str:
        """The dataset a node belongs to: the first path component, or the root container."""
        if self.root_is_node or not path:
            return self.root_name
        return path.split("/", 1)[0]

    def detach(self) -> list[Seed]:
        """Take the queued directories no group waits for out of this crawl (to shed work
        while it runs); the crawl finishes the rest."""
        keep: list[_Item] = []
        out: list[Seed] = []
        for it in self._queue:
            if it.parent is None and it.cons is None:
                out.append(Seed(it.path, it.ctx))
            else:
                keep.append(it)
        self._queue.clear()  # the same deque: run() holds it
        self._queue.extend(keep)
        out.reverse()  # popped from the right: name order
        return out

    async def run(
        self, send: ObjectSendStream[list[NodeResult]], seeds: Sequence[Seed] | None = None
    ) -> None:
        """Crawl everything below the root (or below ``seeds`` only); ``send`` is closed when
        done.

        Raises
        ------
        RootError
            The root cannot be read: nothing there, access denied, storage unreachable.
        """
        self._send = send
        async with send:
            if seeds is None:
                await self._visit_many([_Item("", self.root_name, None)])
                await self._flush()
            else:
                for path, ctx in reversed(seeds):
                    name = path.rsplit("/", 1)[-1]
                    self._queue.append(_Item(path, name, ctx, depth=path.count("/") + 1))
            limiter = anyio.CapacityLimiter(self._tasks)
            wake = anyio.Event()
            running = 0

            async def run_one(items: list[_Item], token: object) -> None:
                nonlocal running, wake
                try:
                    await self._visit_many(items)
                except Exception as exc:  # a bug must not end the scan: report the nodes
                    for item in items:
                        await self._unreadable(item, None, None, f"internal error: {exc!r}")
                try:
                    await self._flush()
                finally:
                    running -= 1
                    limiter.release_on_behalf_of(token)
                    wake.set()

            async with anyio.create_task_group() as tg:
                queue = self._queue
                while True:
                    while queue and limiter.available_tokens:
                        token = object()
                        limiter.acquire_on_behalf_of_nowait(token)
                        running += 1
                        n = min(len(queue), self._batch)
                        tg.start_soon(run_one, [queue.pop() for _ in range(n)], token)
                    if not queue and not running:
                        break
                    await wake.wait()
                    wake = anyio.Event()

    # ---- directories ----------------------------------------------------------------------------
    async def _visit_many(self, items: list[_Item]) -> None:
        """Visit directories together: one ``get_many`` for all their probes, their listings
        concurrently, one ``get_many`` for the metadata files the listings name."""
        store = self.store
        todo: list[_Work] = []
        for it in items:
            if self._finished and self._skip(it):
                continue
            if it.cons is not None:
                await self._guard(it, self._visit_consolidated(it))
            else:
                probe = METADATA_KEYS if not it.path else self._probes.get(it.ctx or _hint(it.name))
                todo.append(_Work(it, self._url(it.path), probe or ()))
        if not todo:
            return
        flat = [_join(w.it.path, k) for w in todo for k in w.keys]
        values = await store.get_many(flat) if flat else []
        listing: list[_Work] = []
        i = 0
        for w in todo:
            n = len(w.keys)
            if await self._guard(w.it, self._probed(w, values[i : i + n])):
                listing.append(w)
            i += n
        if not listing:
            return
        listings = await self._list_many([w.it.path for w in listing])
        fetch: list[_Work] = []
        for w, result in zip(listing, listings, strict=True):
            if isinstance(result, StoreError):
                await self._list_failed(w, result)
                continue
            w.dirs, w.files = result
            w.keys = tuple(f for f in w.files if f in _META and f not in w.docs)
            fetch.append(w)
        flat = [_join(w.it.path, k) for w in fetch for k in w.keys]
        values = await store.get_many(flat) if flat else []
        i = 0
        for w in fetch:
            n = len(w.keys)
            await self._guard(w.it, self._listed(w, values[i : i + n]))
            i += n

    def _skip(self, it: _Item) -> bool:
        """Whether a directory was finished by an earlier scan and nothing needs it read."""
        rec = self._finished.get(it.path) if it.path and it.parent is None else None
        return rec is not None and (rec.kind == "array" or rec.status == "unreadable")

    async def _list_many(self, keys: list[str]) -> list[tuple[list[str], list[str]] | StoreError]:
        """List several directories (on local disk, a batch per worker-thread call)."""
        return await self.store.list_many(keys)

    async def _guard(self, it: _Item, step: Coroutine[Any, Any, T]) -> T | None:
        """Run one directory's step; a bug costs that directory, not the batch or the scan."""
        try:
            return await step
        except (RootError, NodeNotFoundError):
            raise
        except Exception as exc:
            await self._unreadable(it, None, None, f"internal error: {exc!r}")
            return None

    async def _probed(self, w: _Work, values: Sequence[bytes | StoreError | None]) -> bool:
        """Take the documents fetched before listing; True if the directory must be listed."""
        it = w.it
        root = not it.path
        # Above any node a probe is a guess: if it is refused (a denied prefix answers 403 for
        # missing keys too), the listing says which documents really exist.
        guessing = not root and it.ctx is None and _hint(it.name) is None
        for key, value in zip(w.keys, values, strict=True):
            if isinstance(value, NotFollowedError) and not root:
                await self._unreadable(it, None, None, value)  # a link: the reason is the link's
                return False
            if isinstance(value, BaseException):
                if guessing:
                    continue
                if root:
                    raise RootError(str(value))
                await self._unreadable(it, format_of_key(key), _kind_of_keys([key]), value)
                return False
            w.docs[key] = value
        if any(w.docs.get(k) is not None for k in _DEFINING):
            try:
                w.node = parse_node(w.docs, w.url)
            except UnsupportedFormatError as exc:
                w.node = self._without_consolidated(w.docs, w.url)
                if w.node is None:
                    await self._bad_document(it, w.docs, exc, root)
                    w.reported = True
                    return _may_hold_nodes(w.docs)
            if w.node.kind == "array":
                await self._array(it, w.node, root)
                return False
            if w.node.consolidated is not None:
                cons = _Consolidated(it.path, w.node.consolidated)
                await self._group(it, w.node, root, cons=cons)
                return False
        if it.depth >= MAX_DEPTH:
            node = w.node
            await self._unreadable(
                it, node.format if node else None, node.kind if node else None,
                f"{w.url}: nested deeper than {MAX_DEPTH} levels; not followed",
            )  # fmt: skip
            return False
        return True

    async def _list_failed(self, w: _Work, exc: StoreError) -> None:
        node = w.node
        if not w.it.path and node is None:
            raise RootError(str(exc)) from None
        fmt, kind = (node.format, node.kind) if node else (None, None)
        # a link not followed is not a failed listing: its message is the whole reason
        await self._unreadable(w.it, fmt, kind, exc, listing=not isinstance(exc, NotFollowedError))

    async def _listed(self, w: _Work, values: Sequence[bytes | StoreError | None]) -> None:
        """Take the listing and the metadata files it named; finish the directory."""
        it = w.it
        root = not it.path
        node = w.node
        if w.reported:  # the node itself was reported; the nodes below are their own
            await self._below_unreadable(it, w.dirs, w.docs)
            return
        for key, value in zip(w.keys, values, strict=True):
            if isinstance(value, BaseException):
                if root:
                    raise RootError(str(value))
                kind = node.kind if node else _kind_of_keys([key])
                await self._unreadable(it, format_of_key(key), kind, value)
                return
            w.docs[key] = value
        if any(v is not None for v in values):
            try:
                node = parse_node(w.docs, w.url)
            except UnsupportedFormatError as exc:
                node = self._without_consolidated(w.docs, w.url)
                if node is None:
                    await self._bad_document(it, w.docs, exc, root)
                    if _may_hold_nodes(w.docs):
                        await self._below_unreadable(it, w.dirs, w.docs)
                    return
        if node is None:
            if root:
                if not w.dirs and not w.files:
                    raise NodeNotFoundError(f"{w.url}: not found (no such file or directory)")
                self.root_is_node = False
            await self._plain(it, w.dirs, w.files)
        elif node.kind == "array":  # only reached above any known format
            await self._array(it, node, root)
        elif node.consolidated is not None:
            await self._group(it, node, root, cons=_Consolidated(it.path, node.consolidated))
        else:
            await self._group(it, node, root, names=w.dirs)

    async def _visit_consolidated(self, it: _Item) -> None:
        cons = it.cons
        assert cons is not None
        rel = cons.rel(it.path)
        node = cons.nodes.get(rel)
        names = cons.children.get(rel, [])
        if node is None:
            await self._plain(it, names, ())
        elif node.kind == "array":
            await self._array(it, node, False)
        else:
            await self._group(it, node, False, names=names)

    def _without_consolidated(self, docs: dict[str, bytes | None], url: str) -> ParsedNode | None:
        """Broken consolidated metadata (a ``.zmetadata``, or a bad entry of a ``zarr.json``'s
        ``consolidated_metadata``) must not hide a readable group: crawl it instead."""
        rest = dict(docs)
        if rest.get(".zmetadata") is not None:
            rest.pop(".zmetadata")
        elif rest.get("zarr.json") is not None:
            try:
                doc = decode_document(rest["zarr.json"], url, "zarr.json")  # type: ignore[arg-type]
            except UnsupportedFormatError:
                return None
            if doc.pop("consolidated_metadata", None) is None:
                return None
            rest["zarr.json"] = msgspec.json.encode(doc)
        else:
            return None
        try:
            return parse_node(rest, url)
        except UnsupportedFormatError:
            return None

    # ---- outcomes ---------------------------------------------------------------------------
    async def _emit(self, result: NodeResult) -> None:
        if result.path not in self._finished:
            self._out.append(result)

    async def _flush(self) -> None:
        """Hand the results of a visit to the consumer in one message (one task switch)."""
        if self._out:
            out, self._out = self._out, []
            assert self._send is not None
            await self._send.send(out)

    async def _bad_document(
        self, it: _Item, docs: Mapping[str, bytes | None], exc: Exception, root: bool
    ) -> None:
        present = [k for k, v in docs.items() if v is not None]
        fmt = next((format_of_key(k) for k in present if k in _DEFINING), None)
        fmt = fmt or next((format_of_key(k) for k in present), None)
        if root:
            self.root_is_node = True
        await self._unreadable(it, fmt, _kind_of_keys(present), exc)

    async def _below_unreadable(
        self, it: _Item, dirs: Sequence[str], docs: Mapping[str, bytes | None]
    ) -> None:
        """Crawl on below a group whose own document cannot be read: its members are nodes of
        their own (each judged, counted, or reported unreadable in turn), not its fate."""
        present = [k for k, v in docs.items() if v is not None]
        fmt = next((format_of_key(k) for k in present if k in _DEFINING), None)
        names = [n for n in dirs if _unsafe(n) is None]
        if fmt == "n5" and _numeric(names):
            return  # the chunk directories of an N5 array whose metadata is broken
        self._push(names, it.path, fmt, None, 0, it.cons, it.depth + 1)

    async def _unreadable(
        self,
        it: _Item,
        fmt: str | None,
        kind: str | None,
        reason: BaseException | str,
        *,
        listing: bool = False,
    ) -> None:
        self.found += 1
        text = " ".join(str(reason).split()) or type(reason).__name__
        if listing:
            text = f"cannot list members: {text}"
        await self._emit(
            NodeResult(
                path=it.path,
                kind=kind,  # type: ignore[arg-type]
                format=fmt,  # type: ignore[arg-type]
                status="unreadable",
                error=text,
            )
        )
        await self._done(it.parent, it.name, None, {it.name: text})

    async def _array(self, it: _Item, node: ParsedNode, root: bool) -> None:
        self.found += 1
        if root:
            self.root_is_node = True
        spec = node.spec
        status: Status = "not_applicable"
        results: dict[str, ModelResult] = {}
        if self._array_models:
            models = self.verdicts.applicable("array", spec.get("attributes"))
            if models:
                status, results = self.verdicts.judge(models, spec, node.format, "array")
        await self._emit(
            NodeResult(
                path=it.path, kind="array", format=node.format, status=status, results=results
            )
        )
        await self._done(it.parent, it.name, spec if it.need else None, None)

    async def _group(
        self,
        it: _Item,
        node: ParsedNode,
        root: bool,
        *,
        names: Sequence[str] = (),
        cons: _Consolidated | None = None,
    ) -> None:
        """A group: validated now if no model needs its members, else once they are read.

        ``cons``: the group's own consolidated metadata, which then replaces listings below it.
        """
        self.found += 1
        if root:
            self.root_is_node = True
        if cons is not None:
            names = cons.children.get("", [])
        else:
            cons = it.cons
        if self._leaf_depth is not None and it.depth >= self._leaf_depth:
            names = ()  # deeper nodes cannot change the verdict asked for
        models = self.verdicts.applicable("group", node.spec.get("attributes"))
        if models and not it.need and it.path in self._finished:
            models = ()  # judged by the earlier scan: its members need not be read for it
        child_need = max(MEMBER_DEPTH if models else 0, it.need - 1)
        safe = [n for n in names if _unsafe(n) is None]
        unsafe = [n for n in names if _unsafe(n) is not None]
        fmt = node.format
        depth = it.depth + 1
        if child_need == 0:
            await self._emit(
                NodeResult(path=it.path, kind="group", format=fmt, status="not_applicable")
            )
            await self._done(it.parent, it.name, node.spec if it.need else None)
            self._push(safe, it.path, fmt, None, 0, cons, depth)
            for name in unsafe:
                child = _Item(_join(it.path, name), name, fmt, None, 0, cons, depth)
                await self._unreadable(child, None, None, _unsafe(name) or "")
            return
        pending = _Pending(it.path, it.name, it.parent, it.need, node, models, len(names))
        if not names:
            await self._finish(pending)
            return
        self._push(safe, it.path, fmt, pending, child_need, cons, depth)
        for name in unsafe:
            child = _Item(_join(it.path, name), name, fmt, pending, child_need, cons, depth)
            await self._unreadable(child, None, None, _unsafe(name) or "")

    async def _plain(self, it: _Item, dirs: Sequence[str], files: Iterable[str]) -> None:
        """A directory without metadata: not a node; look below it unless it holds chunks."""
        ctx = _hint(it.name) or it.ctx
        files = list(files)
        if ctx is not None and (dirs or files) and _numeric(dirs) and _numeric(files):
            dirs = ()  # chunk keys of an array whose metadata is missing: never crawled
        safe = [n for n in dirs if _unsafe(n) is None]
        self._push(safe, it.path, ctx, None, 0, it.cons, it.depth + 1)
        for name in dirs:
            if _unsafe(name) is not None:
                child = _Item(_join(it.path, name), name, ctx, None, 0, it.cons, it.depth + 1)
                await self._unreadable(child, None, None, _unsafe(name) or "")
        await self._done(it.parent, it.name, None, None)

    def _push(
        self,
        names: Sequence[str],
        path: str,
        ctx: str | None,
        parent: _Pending | None,
        need: int,
        cons: _Consolidated | None,
        depth: int,
    ) -> None:
        if self._leaf_depth is not None and depth > self._leaf_depth:
            return
        split = self._split_depth
        if split is not None and depth >= split and parent is None and cons is None:
            self.detached.extend(Seed(_join(path, name), ctx) for name in names)
            return
        # Pushed in reverse so that popping from the right visits them in name order.
        append = self._queue.append
        for name in reversed(names):
            append(_Item(_join(path, name), name, ctx, parent, need, cons, depth))

    async def _done(
        self,
        parent: _Pending | None,
        name: str,
        spec: dict[str, Any] | None,
        failures: Mapping[str, str] | None = None,
    ) -> None:
        """A member of ``parent`` is finished: record its spec or why it failed."""
        while parent is not None:
            if failures:
                parent.failures.update(failures)
            elif spec is not None:
                parent.members[name] = spec
            parent.waiting -= 1
            if parent.waiting > 0:
                return
            # the group is complete: validate it, then report to its own parent
            spec, failures = await self._judge(parent)
            name, parent = parent.name, parent.parent

    async def _finish(self, pending: _Pending) -> None:
        spec, failures = await self._judge(pending)
        await self._done(pending.parent, pending.name, spec, failures)

    async def _judge(self, p: _Pending) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
        spec = dict(p.node.spec)
        spec["members"] = dict(sorted(p.members.items()))
        if not p.models:
            status: Status = "not_applicable"
            results: dict[str, ModelResult] = {}
        else:
            status, results = self.verdicts.judge(
                p.models, spec, p.node.format, "group", p.failures
            )
        await self._emit(
            NodeResult(
                path=p.path, kind="group", format=p.node.format, status=status, results=results
            )
        )
        if not p.need:
            return None, None
        # The parent sees this group's members ``need - 1`` levels deep: only failures that
        # deep can change its verdict (deeper ones are this group's own business).
        failures = {f"{p.name}/{k}": v for k, v in p.failures.items() if k.count("/") < p.need - 1}
        return _truncate(spec, p.need - 1), failures or None
