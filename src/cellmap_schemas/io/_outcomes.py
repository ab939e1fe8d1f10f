"""What the walker makes of a directory once it is read: a node reported (judged, not
applicable or unreadable), a group held until its members are in, or a plain directory to
look below. :class:`cellmap_schemas.io.walk.Crawler` reads; this half decides and reports.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from anyio.abc import ObjectSendStream

from cellmap_schemas.crop_grid import (
    CROP_MODEL,
    CropLevel,
    ImageGrid,
    crop_levels,
    crop_problems,
    crop_scope,
    image_grid,
    image_scope,
)
from cellmap_schemas.errors import CellmapSchemasError, UnsupportedFormatError
from cellmap_schemas.formats import Format, ParsedNode, format_of_key, one_line
from cellmap_schemas.io._frontier import (
    DEFINING,
    Consolidated,
    Item,
    Pending,
    Seed,
    hint,
    join,
    kind_of_keys,
    numeric,
    truncate,
    unsafe,
)
from cellmap_schemas.validation import ModelResult, NodeResult, Status, Verdicts

__all__ = ["MEMBER_DEPTH", "HeldCrop", "Outcomes", "crop_records"]

MEMBER_DEPTH = 2
"""Levels of members a group model sees: a crop's class groups and their arrays."""


class HeldCrop(NamedTuple):
    """A crop judged and held until the images of its reconstruction are known (``CROP101``):
    its verdicts and its class groups' s0, all the rule needs of it."""

    path: str
    format: Format
    results: dict[str, ModelResult]
    levels: list[CropLevel]


def crop_records(
    verdicts: Verdicts,
    crops: Iterable[HeldCrop],
    images: Mapping[str, Sequence[ImageGrid]],
    outside: Sequence[ImageGrid] = (),
) -> list[NodeResult]:
    """The records of held crops, with ``CROP101`` against the images of their reconstruction
    (``images`` by reconstruction; ``outside``: those above the root, for a crop whose own
    reconstruction lies outside the walk). One walk calls this when it is over; a sharded scan
    once every shard is in, with the images all of them met."""
    out = []
    for path, fmt, results, levels in crops:
        scope = crop_scope(path)
        found = outside if scope is None else images.get(scope, ())
        status, amended = verdicts.amend(results, CROP_MODEL, crop_problems(levels, found))
        out.append(NodeResult(path=path, kind="group", format=fmt, status=status, results=amended))
    return out


class Outcomes:
    """The reporting half of the walker (state set up by ``Crawler.__init__``)."""

    verdicts: Verdicts | None
    root_is_node: bool | None
    found: int
    detached: list[Seed]
    _queue: collections.deque[Item]
    _send: ObjectSendStream[list[NodeResult]] | None
    _out: list[NodeResult]
    _array_models: bool
    _leaf_depth: int | None
    _split_depth: int | None
    _finished: Mapping[str, NodeResult]
    _tree: str | None
    _tree_out: tuple[dict[str, Any], dict[str, str]] | None
    _reasons: dict[str, CellmapSchemasError]
    _images: dict[str, list[ImageGrid]]
    """The s0 grid of every image met, by reconstruction (``CROP101``)."""
    _outside: list[ImageGrid]
    """Images of the reconstruction above the root, for crops whose own lies outside the walk."""
    _crops: list[HeldCrop]
    """Crops judged and held: their records go out once the walk is over, ``CROP101`` added
    against every image it could reach (or, with ``hold_crops``, are taken by the caller)."""
    hold_crops: bool
    _verdicts_of: dict[int, tuple[dict[str, Any], tuple[Status, dict[str, ModelResult]] | None]]
    """The verdicts on the array specs ``Crawler._parse`` remembers (it hands out the same spec
    for the same documents), by the spec's identity, ``None`` until judged once; emptied with
    the documents, whose specs keep the identities their own."""

    async def _emit(self, result: NodeResult) -> None:
        if self._tree is None and result.path not in self._finished:
            self._out.append(result)

    async def _flush(self) -> None:
        """Hand the results of a visit to the consumer in one message (one task switch)."""
        if self._out:
            out, self._out = self._out, []
            assert self._send is not None
            await self._send.send(out)

    async def _bad_document(
        self, it: Item, docs: Mapping[str, bytes | None], exc: Exception, root: bool
    ) -> None:
        present = [k for k, v in docs.items() if v is not None]
        fmt = next((format_of_key(k) for k in present if k in DEFINING), None)
        fmt = fmt or next((format_of_key(k) for k in present), None)
        if root:
            self.root_is_node = True
        await self._unreadable(it, fmt, kind_of_keys(present), exc)

    async def _below_unreadable(
        self, it: Item, dirs: Sequence[str], docs: Mapping[str, bytes | None]
    ) -> None:
        """Crawl on below a group whose own document cannot be read: its members are nodes of
        their own (each judged, counted, or reported unreadable in turn), not its fate. A
        tree stops there: the group is missing from its parent's members."""
        if self._tree is not None:
            return
        present = [k for k, v in docs.items() if v is not None]
        fmt = next((format_of_key(k) for k in present if k in DEFINING), None)
        names = [n for n in dirs if unsafe(n) is None]
        if fmt == "n5" and numeric(names):
            return  # the chunk directories of an N5 array whose metadata is broken
        self._push(names, it.path, fmt, None, 0, it.cons, it.depth + 1)

    async def _unreadable(
        self,
        it: Item,
        fmt: str | None,
        kind: str | None,
        reason: BaseException | str,
        *,
        listing: bool = False,
    ) -> None:
        self.found += 1
        text = one_line(reason) if isinstance(reason, BaseException) else " ".join(reason.split())
        if listing:
            text = f"cannot list members: {text}"
        if self._tree is not None:  # a tree keeps the error itself, as the reader raises it
            ours = isinstance(reason, CellmapSchemasError)
            cls = type(reason) if ours else UnsupportedFormatError
            self._reasons[it.path] = reason if ours and not listing else cls(text)  # type: ignore[assignment]
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

    async def _array(self, it: Item, node: ParsedNode, root: bool) -> None:
        self.found += 1
        if root:
            self.root_is_node = True
        spec = node.spec
        status: Status = "not_applicable"
        results: dict[str, ModelResult] = {}
        if self._array_models:
            assert self.verdicts is not None
            known = self._verdicts_of.get(id(spec))
            if known is not None and known[1] is not None:
                status, results = known[1]
            else:
                models = self.verdicts.applicable("array", spec.get("attributes"))
                if models:
                    status, results = self.verdicts.judge(models, spec, node.format, "array")
                if known is not None:  # a document the walker remembers: judged once
                    self._verdicts_of[id(spec)] = (spec, (status, results))
        await self._emit(
            NodeResult(
                path=it.path, kind="array", format=node.format, status=status, results=results
            )
        )
        await self._done(it.parent, it.name, spec if it.need else None, None)

    async def _group(
        self,
        it: Item,
        node: ParsedNode,
        root: bool,
        *,
        names: Sequence[str] = (),
        cons: Consolidated | None = None,
    ) -> None:
        """A group: validated now if no model needs its members, else once they are read.

        ``cons``: the group's own consolidated metadata, which then replaces listings below it.
        """
        self.found += 1
        if root:
            self.root_is_node = True
        scope = image_scope(it.path) if self._tree is None else None
        if scope is not None:
            grid = image_grid(node.spec, node.format, it.path)
            if grid is not None:
                self._images.setdefault(scope, []).append(grid)
        if cons is not None:
            names = cons.children.get("", [])
        else:
            cons = it.cons
        if self._leaf_depth is not None and it.depth >= self._leaf_depth:
            names = ()  # deeper nodes cannot change the verdict asked for
        verdicts = self.verdicts
        models = verdicts.applicable("group", node.spec.get("attributes")) if verdicts else ()
        if models and not it.need and it.path in self._finished:
            models = ()  # judged by the earlier scan: its members need not be read for it
        child_need = max(MEMBER_DEPTH if models else 0, it.need - 1)
        safe = [n for n in names if unsafe(n) is None]
        refused = [n for n in names if unsafe(n) is not None]
        fmt = node.format
        depth = it.depth + 1
        if child_need == 0:
            await self._emit(
                NodeResult(path=it.path, kind="group", format=fmt, status="not_applicable")
            )
            await self._done(it.parent, it.name, node.spec if it.need else None)
            self._push(safe, it.path, fmt, None, 0, cons, depth)
            for name in refused:
                child = Item(join(it.path, name), name, fmt, None, 0, cons, depth)
                await self._unreadable(child, None, None, unsafe(name) or "")
            return
        pending = Pending(it.path, it.name, it.parent, it.need, node, models, len(names))
        if not names:
            await self._finish(pending)
            return
        self._push(safe, it.path, fmt, pending, child_need, cons, depth)
        for name in refused:
            child = Item(join(it.path, name), name, fmt, pending, child_need, cons, depth)
            await self._unreadable(child, None, None, unsafe(name) or "")

    async def _plain(self, it: Item, dirs: Sequence[str], files: Iterable[str]) -> None:
        """A directory without metadata: not a node; look below it unless it holds chunks
        (a tree does not: a plain directory is not one of its group's members)."""
        if self._tree is not None:
            await self._done(it.parent, it.name, None, None)
            return
        ctx = hint(it.name) or it.ctx
        files = list(files)
        if ctx is not None and (dirs or files) and numeric(dirs) and numeric(files):
            dirs = ()  # chunk keys of an array whose metadata is missing: never crawled
        safe = [n for n in dirs if unsafe(n) is None]
        self._push(safe, it.path, ctx, None, 0, it.cons, it.depth + 1)
        for name in dirs:
            if unsafe(name) is not None:
                child = Item(join(it.path, name), name, ctx, None, 0, it.cons, it.depth + 1)
                await self._unreadable(child, None, None, unsafe(name) or "")
        await self._done(it.parent, it.name, None, None)

    def _push(
        self,
        names: Sequence[str],
        path: str,
        ctx: str | None,
        parent: Pending | None,
        need: int,
        cons: Consolidated | None,
        depth: int,
    ) -> None:
        if self._leaf_depth is not None and depth > self._leaf_depth:
            return
        split = self._split_depth
        if split is not None and depth >= split and parent is None and cons is None:
            self.detached.extend(Seed(join(path, name), ctx) for name in names)
            return
        # Pushed in reverse so that popping from the right visits them in name order.
        append = self._queue.append
        for name in reversed(names):
            append(Item(join(path, name), name, ctx, parent, need, cons, depth))

    async def _done(
        self,
        parent: Pending | None,
        name: str,
        spec: dict[str, Any] | None,
        failures: Mapping[str, str] | None = None,
    ) -> None:
        """A member of ``parent`` is finished: record its spec or why it failed."""
        while parent is not None:
            if failures:
                parent.failures.update(failures)
            # a scan's group with a failure below it is not handed up (the failure is); a
            # tree keeps whatever of it could be read
            if spec is not None and (not failures or self._tree is not None):
                parent.members[name] = spec
            parent.waiting -= 1
            if parent.waiting > 0:
                return
            # the group is complete: validate it, then report to its own parent
            spec, failures = await self._judge(parent)
            name, parent = parent.name, parent.parent

    async def _finish(self, pending: Pending) -> None:
        spec, failures = await self._judge(pending)
        await self._done(pending.parent, pending.name, spec, failures)

    async def _judge(self, p: Pending) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
        spec = dict(p.node.spec)
        spec["members"] = dict(sorted(p.members.items()))
        if self._tree is not None:
            if p.parent is None:
                self._tree_out = (spec, dict(p.failures))
            # the walk's leaf depth already bounds the members: nothing to truncate
            failures = {f"{p.name}/{k}": v for k, v in p.failures.items()}
            return spec, failures or None
        await self._report(p, spec)
        if not p.need:
            return None, None
        # The parent sees this group's members ``need - 1`` levels deep: only failures that
        # deep can change its verdict (deeper ones are this group's own business).
        failures = {f"{p.name}/{k}": v for k, v in p.failures.items() if k.count("/") < p.need - 1}
        return truncate(spec, p.need - 1), failures or None

    async def _report(self, p: Pending, spec: dict[str, Any]) -> None:
        status: Status = "not_applicable"
        results: dict[str, ModelResult] = {}
        if p.models:
            assert self.verdicts is not None
            status, results = self.verdicts.judge(
                p.models, spec, p.node.format, "group", p.failures
            )
            if CROP_MODEL in results:  # reported once every image is known
                levels = crop_levels(spec, p.node.format)
                self._crops.append(HeldCrop(p.path, p.node.format, results, levels))
                return
        await self._emit(
            NodeResult(
                path=p.path, kind="group", format=p.node.format, status=status, results=results
            )
        )

    async def _report_crops(self) -> None:
        """Report the crops held back, their ``CROP101`` findings added now that the walk has
        met every image it can."""
        crops, self._crops = self._crops, []
        if crops:
            assert self.verdicts is not None
            for record in crop_records(self.verdicts, crops, self._images, self._outside):
                await self._emit(record)

    def take_held(self) -> tuple[list[HeldCrop], dict[str, list[ImageGrid]]]:
        """The crops held (``hold_crops``) and the images met, by reconstruction, taken out:
        what a shard of a sharded scan hands back for :func:`crop_records`."""
        crops, self._crops = self._crops, []
        images, self._images = self._images, {}
        return crops, images
