"""The one walker: ``scan`` and ``check`` stream verdicts from it, ``read``, ``inspect`` and
``Model.from_url`` collect a tree to a depth with it (:meth:`Crawler.tree`).

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
few groups wait at a time: on 20,000 groups (118,000 nodes, ``generate_hierarchy.py --layout
irregular``) an ndjson scan peaks at ~70 MB (41 MB at 500 groups), where a strictly
level-by-level order peaked at ~340 MB.

Nothing a hierarchy holds crashes the crawl: unreadable documents, denied prefixes, member names
such as ``..``, symlink loops (the local store leaves them out of listings) and documents of any
size become results with a reason.
"""

from __future__ import annotations

import collections
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from anyio.abc import ObjectSendStream

from cellmap_schemas.crop_grid import ImageGrid
from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeNotFoundError,
    NotFollowedError,
    RootError,
    StoreError,
    UnsupportedFormatError,
)
from cellmap_schemas.formats import (
    METADATA_KEYS,
    ParsedNode,
    format_of_key,
    one_line,
    parse_node_lenient,
)
from cellmap_schemas.io._frontier import (
    DEFINING,
    EAGER_PROBES,
    META,
    PROBES,
    Consolidated,
    Item,
    Seed,
    Work,
    drain,
    hint,
    join,
    kind_of_keys,
    may_hold_nodes,
)
from cellmap_schemas.io._outcomes import MEMBER_DEPTH, HeldCrop, Outcomes
from cellmap_schemas.io.store import Store
from cellmap_schemas.validation import ModelResult, NodeResult, Status, Verdicts

__all__ = ["MAX_DEPTH", "MEMBER_DEPTH", "Crawler", "RootError", "Seed"]

T = TypeVar("T")

MAX_DEPTH = 64
"""Levels of nodes below a root the walker follows; a group deeper is reported, not followed:
a guard against cycles on stores without symlinks to detect, and against pathological trees
(recursion, output nested past what JSON encoders take)."""

LOCAL_BATCH = 256
"""Directories one task visits together on local disk (their reads merged into few calls).

It bounds what is in flight: every group of a batch may wait for its members at once, with
their documents. Measured on the 2,010-root benchmark tree and a 20,000-root one: 512 took 2.0 s
and peaked at 70 / 72 MB (ndjson, 20,000 roots); 128 took 2.6 s (more thread hops) and 48 MB;
256 takes 2.0-2.2 s and 55 MB."""

LOCAL_TASKS = 4
"""Batches in flight at once on local disk."""

REPEATS_KEPT = 1024
"""Array documents a scan remembers, with their spec (see :meth:`Crawler._parse`)."""
REPEAT_MAX_BYTES = 16384
"""Larger array documents are parsed every time (remembering them would cost more memory
than parsing them costs time)."""


class Crawler(Outcomes):
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
    images
        The images of the reconstruction above the root (``CROP101`` for a crop whose own
        reconstruction the walk does not reach: ``check`` of a crop).
    hold_crops
        Keep the crops judged for :meth:`take_held` instead of reporting them at the end of the
        walk (a shard of a sharded scan: a crop's image may be in another shard).
    """

    def __init__(
        self,
        store: Store,
        verdicts: Verdicts | None = None,
        *,
        concurrency: int = 64,
        max_depth: int | None = None,
        split_depth: int | None = None,
        done: Mapping[str, NodeResult] | None = None,
        images: Sequence[ImageGrid] = (),
        hold_crops: bool = False,
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
        self._probes = EAGER_PROBES if local else PROBES
        # On local disk a worker-thread hop costs more than reading a small file, and the store
        # reads a whole batch of keys per hop: directories are visited in batches, their reads
        # merged. Remote stores get one directory per task, so a slow request delays only one.
        self._batch = LOCAL_BATCH if local else 1
        self._tasks = LOCAL_TASKS if local else concurrency
        self._base = store.url.rstrip("/")
        self._queue: collections.deque[Item] = collections.deque()
        self._send: ObjectSendStream[list[NodeResult]] | None = None
        self._out: list[NodeResult] = []
        self._array_models = verdicts is not None and verdicts.has_models("array")
        self._split_depth = split_depth
        self.detached: list[Seed] = []
        """Seeds set aside by ``split_depth`` (in name order per directory)."""
        self._finished: Mapping[str, NodeResult] = done or {}
        self._tree: str | None = None
        """The root path of :meth:`tree` (``None``: a scan, which reports every node)."""
        self._tree_out: tuple[dict[str, Any], dict[str, str]] | None = None
        self._reasons: dict[str, CellmapSchemasError] = {}
        self._images: dict[str, list[ImageGrid]] = {}
        self._outside: list[ImageGrid] = list(images)
        self._crops: list[HeldCrop] = []
        self.hold_crops = hold_crops
        self._repeats: dict[tuple[tuple[str, bytes | None], ...], ParsedNode] = {}
        self._verdicts_of: dict[
            int, tuple[dict[str, Any], tuple[Status, dict[str, ModelResult]] | None]
        ] = {}

    def _parse(self, docs: Mapping[str, bytes | None], url: str) -> ParsedNode:
        """:func:`parse_node_lenient`, remembering array documents a scan meets again.

        The label arrays of an image repeat its levels' documents byte for byte (one per
        class and level), so a scan parses each distinct one once and hands the same spec to
        its repeats: :meth:`_array` then judges it once too. Only a scan does (a tree's specs
        are handed to the caller, who may change them), and only for documents of one format
        (their format and spec then depend on the bytes alone, not on the URL).
        """
        if self._tree is not None:
            return parse_node_lenient(docs, url)
        key = tuple(docs.items())
        known = self._repeats.get(key)
        if known is not None:
            return ParsedNode(url, known.format, "array", known.spec)
        node = parse_node_lenient(docs, url)
        if (
            node.kind == "array"
            and node.consolidated is None
            and all(v is None or format_of_key(k) == node.format for k, v in key)
            and sum(len(v) for _, v in key if v is not None) <= REPEAT_MAX_BYTES
        ):
            if len(self._repeats) >= REPEATS_KEPT:
                self._repeats.clear()
                self._verdicts_of.clear()
            self._repeats[key] = node
            self._verdicts_of[id(node.spec)] = (node.spec, None)  # taken by its first judgement
        return node

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
        keep: list[Item] = []
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
                await self._visit_many([Item("", self.root_name, None)])
                await self._flush()
            else:
                for path, ctx in reversed(seeds):
                    name = path.rsplit("/", 1)[-1]
                    self._queue.append(Item(path, name, ctx, depth=path.count("/") + 1))
            await self._drain()
            if not self.hold_crops:
                await self._report_crops()
            await self._flush()

    async def tree(self, node: ParsedNode, depth: int | None, path: str = "") -> ParsedNode:
        """The group ``node`` (already read at ``path``) with its members ``depth`` levels deep
        (``None``: all, to :data:`MAX_DEPTH`): what ``read``, ``inspect`` and ``from_url`` see.

        Nothing is judged or reported; a member that cannot be read is left out of the
        members and named, with its exception, in the result's ``errors``.
        """
        self._tree = path
        if depth is not None:
            self._leaf_depth = depth
        need = (MAX_DEPTH if depth is None else depth) + 1
        name = path.rsplit("/", 1)[-1] or self.root_name
        it = Item(path, name, node.format, need=need)
        if node.consolidated is not None:
            await self._group(it, node, False, cons=Consolidated(path, node.consolidated))
        else:
            (listed,) = await self._list_many([path])
            if isinstance(listed, StoreError):
                reason = type(listed)(f"cannot list members: {one_line(listed)}")
                return ParsedNode(node.url, node.format, node.kind, node.spec, None, {".": reason})
            await self._group(it, node, False, names=listed[0])
        await self._drain()
        assert self._tree_out is not None
        spec, failures = self._tree_out
        errors = {
            rel: self._reasons.get(join(path, rel)) or UnsupportedFormatError(text)
            for rel, text in sorted(failures.items())
        }
        return ParsedNode(node.url, node.format, node.kind, spec, node.consolidated, errors)

    async def _drain(self) -> None:
        await drain(self._queue, self._tasks, self._batch, self._visit_batch)

    async def _visit_batch(self, items: list[Item]) -> None:
        try:
            await self._visit_many(items)
        except Exception as exc:  # a bug must not end the scan: report the nodes
            for item in items:
                await self._unreadable(item, None, None, f"internal error: {exc!r}")
        await self._flush()

    # ---- directories ----------------------------------------------------------------------------
    async def _visit_many(self, items: list[Item]) -> None:
        """Visit directories together: one ``get_many`` for all their probes, their listings
        concurrently, one ``get_many`` for the metadata files the listings name."""
        store = self.store
        todo: list[Work] = []
        for it in items:
            if self._finished and self._skip(it):
                continue
            if it.cons is not None:
                await self._guard(it, self._visit_consolidated(it))
            else:
                probe = METADATA_KEYS if not it.path else self._probes.get(it.ctx or hint(it.name))
                todo.append(Work(it, self._url(it.path), probe or ()))
        if not todo:
            return
        flat = [join(w.it.path, k) for w in todo for k in w.keys]
        values = await store.get_many(flat) if flat else []
        listing: list[Work] = []
        i = 0
        for w in todo:
            n = len(w.keys)
            if await self._guard(w.it, self._probed(w, values[i : i + n])):
                listing.append(w)
            i += n
        if not listing:
            return
        listings = await self._list_many([w.it.path for w in listing])
        fetch: list[Work] = []
        for w, result in zip(listing, listings, strict=True):
            if isinstance(result, StoreError):
                await self._list_failed(w, result)
                continue
            w.dirs, w.files = result
            w.keys = tuple(f for f in w.files if f in META and f not in w.docs)
            fetch.append(w)
        flat = [join(w.it.path, k) for w in fetch for k in w.keys]
        values = await store.get_many(flat) if flat else []
        i = 0
        for w in fetch:
            n = len(w.keys)
            await self._guard(w.it, self._listed(w, values[i : i + n]))
            i += n

    def _skip(self, it: Item) -> bool:
        """Whether a directory was finished by an earlier scan and nothing needs it read."""
        rec = self._finished.get(it.path) if it.path and it.parent is None else None
        return rec is not None and (rec.kind == "array" or rec.status == "unreadable")

    async def _list_many(self, keys: list[str]) -> list[tuple[list[str], list[str]] | StoreError]:
        """List several directories (on local disk, a batch per worker-thread call)."""
        return await self.store.list_many(keys)

    async def _guard(self, it: Item, step: Coroutine[Any, Any, T]) -> T | None:
        """Run one directory's step; a bug costs that directory, not the batch or the scan."""
        try:
            return await step
        except (RootError, NodeNotFoundError):
            raise
        except Exception as exc:
            await self._unreadable(it, None, None, f"internal error: {exc!r}")
            return None

    async def _probed(self, w: Work, values: Sequence[bytes | StoreError | None]) -> bool:
        """Take the documents fetched before listing; True if the directory must be listed."""
        it = w.it
        root = not it.path
        # Above any node a probe is a guess: if it is refused (a denied prefix answers 403 for
        # missing keys too), the listing says which documents really exist.
        guessing = not root and it.ctx is None and hint(it.name) is None
        for key, value in zip(w.keys, values, strict=True):
            if isinstance(value, NotFollowedError) and not root:
                await self._unreadable(it, None, None, value)  # a link: the reason is the link's
                return False
            if isinstance(value, BaseException):
                if guessing:
                    continue
                if root:
                    raise RootError(str(value))
                await self._unreadable(it, format_of_key(key), kind_of_keys([key]), value)
                return False
            w.docs[key] = value
        if any(w.docs.get(k) is not None for k in DEFINING):
            try:
                w.node = self._parse(w.docs, w.url)
            except UnsupportedFormatError as exc:
                await self._bad_document(it, w.docs, exc, root)
                w.reported = True
                return may_hold_nodes(w.docs)
            if w.node.kind == "array":
                await self._array(it, w.node, root)
                return False
            if w.node.consolidated is not None:
                cons = Consolidated(it.path, w.node.consolidated)
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

    async def _list_failed(self, w: Work, exc: StoreError) -> None:
        node = w.node
        if not w.it.path and node is None:
            raise RootError(str(exc)) from None
        if node is None and self._tree is not None:  # no document: not a member of a tree
            await self._done(w.it.parent, w.it.name, None, None)
            return
        fmt, kind = (node.format, node.kind) if node else (None, None)
        # a link not followed is not a failed listing: its message is the whole reason
        await self._unreadable(w.it, fmt, kind, exc, listing=not isinstance(exc, NotFollowedError))

    async def _listed(self, w: Work, values: Sequence[bytes | StoreError | None]) -> None:
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
                kind = node.kind if node else kind_of_keys([key])
                await self._unreadable(it, format_of_key(key), kind, value)
                return
            w.docs[key] = value
        if any(v is not None for v in values):
            try:
                node = self._parse(w.docs, w.url)
            except UnsupportedFormatError as exc:
                await self._bad_document(it, w.docs, exc, root)
                if may_hold_nodes(w.docs):
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
            await self._group(it, node, root, cons=Consolidated(it.path, node.consolidated))
        else:
            await self._group(it, node, root, names=w.dirs)

    async def _visit_consolidated(self, it: Item) -> None:
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
