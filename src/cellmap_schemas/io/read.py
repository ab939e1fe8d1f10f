"""Reading one node, or a tree to a depth, from storage; validating what was read.

:func:`read_node` fetches every metadata document a directory may hold and lets
:mod:`cellmap_schemas.formats` decide what it is. :func:`read_tree` hands a group to the one
walker (:class:`cellmap_schemas.io.walk.Crawler`), which ``scan`` and ``check`` use as well, so
all of them meet the same members, the same consolidated metadata and the same failures.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from cellmap_schemas.crop_grid import ImageGrid, image_grid
from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeNotFoundError,
    StoreError,
    ValidationError,
)
from cellmap_schemas.formats import METADATA_KEYS, ParsedNode, parse_node_lenient
from cellmap_schemas.io.walk import MAX_DEPTH
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

if TYPE_CHECKING:
    from cellmap_schemas.io.store import Store

__all__ = [
    "MAX_DEPTH",
    "depth_needed",
    "first_error",
    "generic_spec_type",
    "read_images",
    "read_model",
    "read_model_async",
    "read_node",
    "read_spec",
    "read_tree",
    "run_sync",
    "scope_url",
    "validate_node",
]

T = TypeVar("T")


def _raise_store_errors(results: Sequence[bytes | StoreError | None]) -> None:
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def read_node(store: Store, path: str = "") -> ParsedNode:
    """Fetch and parse the node at ``path`` (relative to the store's root).

    Broken consolidated metadata does not hide a readable group: the group is returned
    without it (and walked), as a scan does.

    Raises
    ------
    NodeNotFoundError
        If nothing exists there.
    UnsupportedFormatError
        If something exists but holds no readable N5 / Zarr metadata.
    StoreError
        If storage fails.
    """
    url = store.url_of(path)
    keys = [_key(path, k) for k in METADATA_KEYS]
    results = await store.get_many(keys)
    _raise_store_errors(results)
    docs = dict(zip(METADATA_KEYS, results, strict=True))
    if all(v is None for v in results):
        try:
            dirs, files = await store.list_dir(path)
        except (FileNotFoundError, NodeNotFoundError):
            dirs, files = [], []
        if not dirs and not files:
            raise NodeNotFoundError(f"{url}: not found (no such file or directory)")
    return parse_node_lenient(docs, url)  # type: ignore[arg-type]


def _key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


async def read_tree(store: Store, path: str = "", depth: int | None = None) -> ParsedNode:
    """Read the node at ``path`` and, for a group, its members down to ``depth`` levels.

    ``depth=None`` reads the whole hierarchy (up to :data:`MAX_DEPTH` levels), ``0`` only the
    node itself. The walk is the scan's: one listing per group, metadata fetched in batches,
    consolidated metadata in place of listings, arrays never listed. The result's ``spec`` has
    ``members`` filled with nested spec dicts; a member that cannot be read is left out of
    them and named in ``errors`` with its exception, so one bad member hides neither the
    others nor the node itself.

    Raises
    ------
    NodeNotFoundError, UnsupportedFormatError, StoreError
        The node itself cannot be read.
    """
    from cellmap_schemas.io.walk import Crawler

    node = await read_node(store, path)
    if node.kind == "array" or depth == 0:
        return node
    return await Crawler(store).tree(node, depth, path)


def scope_url(url: str) -> str | None:
    """The reconstruction above a URL inside a ``labels`` folder (``.../recon-1`` for
    ``.../recon-1/labels/groundtruth/crop1``), or ``None``."""
    parts = url.rstrip("/").split("/")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == "labels":
            return "/".join(parts[:i])
    return None


async def read_images(url: str, storage_options: Mapping[str, Any] | None) -> list[ImageGrid]:
    """The s0 grids of the images in a reconstruction's ``em`` folder at ``url`` (``CROP101``
    for a crop checked on its own); none when there is nothing readable there."""
    import contextlib

    import anyio

    from cellmap_schemas.io.store import open_store

    base = url.rstrip("/")
    found: dict[str, ParsedNode] = {}

    async def read(name: str) -> None:
        with contextlib.suppress(CellmapSchemasError):  # not an image: no grid
            found[name] = await read_node(store, name)

    try:
        async with open_store(base, storage_options=storage_options) as store:
            dirs, _ = await store.list_dir("")
            names = sorted(dirs)
            for i in range(0, len(names), _IMAGES_AT_ONCE):  # read together, not one by one
                async with anyio.create_task_group() as tg:
                    for name in names[i : i + _IMAGES_AT_ONCE]:
                        tg.start_soon(read, name)
    except CellmapSchemasError:
        return []
    grids = (image_grid(found[n].spec, found[n].format, f"{base}/{n}") for n in names if n in found)
    return [g for g in grids if g is not None]


_IMAGES_AT_ONCE = 16
"""Directories of an ``em`` folder read at once (a listing the server controls may be long)."""


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first leaf of an exception group, preferring this package's own errors."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    ours = [e for e in leaves if isinstance(e, CellmapSchemasError)]
    return (ours or leaves)[0]


# ---- models --------------------------------------------------------------------------------
def _origin(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return typing.get_origin(tp) or tp


def _structs_in(tp: Any) -> list[type[msgspec.Struct]] | None:
    """The struct types a field type can hold; ``None`` when it can hold anything."""
    if tp is Any or isinstance(tp, TypeVar):
        return None
    members = getattr(tp, "__cellmap_members__", None)
    if members is not None:
        return [_origin(m) for m in members]
    origin = _origin(tp)
    if isinstance(origin, type) and issubclass(origin, msgspec.Struct):
        return [origin]
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _structs_in(args[0])
    if not args:
        return []
    out: list[type[msgspec.Struct]] = []
    for arg in args:
        if arg is type(None):
            continue
        found = _structs_in(arg)
        if found is None:
            return None
        out.extend(found)
    return out


def depth_needed(model: Any) -> int | None:
    """How many levels below a node a model looks at (``None``: all of them).

    An array model needs 0, a group of arrays 1, a group of groups of arrays 2; a model whose
    members may be any group (a recursive type) needs the whole hierarchy, as the original read.
    """
    return _depth(model, frozenset())


def _depth(tp: Any, seen: frozenset[type]) -> int | None:
    structs = _structs_in(tp)
    if structs is None:
        return None
    best = 0
    for st in structs:
        members = next((f for f in msgspec.structs.fields(st) if f.name == "members"), None)
        if members is None:
            continue
        if st in seen:
            return None
        args = typing.get_args(members.type)
        value_type = args[1] if len(args) == 2 else Any
        sub = _depth(value_type, seen | {st})
        if sub is None:
            return None
        best = max(best, 1 + sub)
    return best


def generic_spec_type(node: ParsedNode) -> type[Any]:
    """The format's own spec class for a node: what :func:`read_spec` validates against."""
    if node.format == "zarr3":
        return ArraySpecV3 if node.kind == "array" else GroupSpecV3
    return ArraySpec if node.kind == "array" else GroupSpec


def validate_node(model: type[T], node: ParsedNode) -> T:
    """Validate a node (tree) read from storage as ``model``, through the verdicts engine.

    Raises
    ------
    ValidationError
        Every error the engine finds (format, document, unreadable members), with the node's
        URL; warnings do not raise.
    """
    from cellmap_schemas.validation import judge_node

    result = judge_node(model, node.spec, node.format, node.kind, failures=node.failures)
    if not result.valid:
        problems = [Problem(e.rule, e.loc, e.msg) for e in result.errors]
        title = getattr(model, "__qualname__", str(model))
        raise ValidationError(problems, title=title, url=node.url)
    return model.model_validate(node.spec)  # type: ignore[attr-defined,no-any-return]


async def read_spec(
    url: str,
    *,
    depth: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """The node at ``url`` as its format's spec tree (see :func:`cellmap_schemas.read`)."""
    from cellmap_schemas.io.store import open_store

    async with open_store(url, storage_options=storage_options) as store:
        node = await read_tree(store, "", depth)
    if node.errors:  # a tree with a hole is no spec tree: the first member's error, as itself
        raise next(iter(node.errors.values()))
    return validate_node(generic_spec_type(node), node)


async def read_model_async(
    model: type[T], url: str, *, storage_options: Mapping[str, Any] | None = None
) -> T:
    """Read ``url`` to the depth ``model`` needs and validate it (see ``Model.from_url``)."""
    from cellmap_schemas.io.store import open_store

    async with open_store(url, storage_options=storage_options) as store:
        node = await read_tree(store, "", depth_needed(model))
    return validate_node(model, node)


def read_model(model: type[T], url: str, *, storage_options: Mapping[str, Any] | None = None) -> T:
    """Blocking :func:`read_model_async`: the implementation of ``Model.from_url``."""
    from functools import partial

    return run_sync(partial(read_model_async, model, url, storage_options=storage_options))


def run_sync(func: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function to completion from blocking code, on a fresh asyncio loop.

    s3fs sessions and tensorstore futures are asyncio-bound, hence the fixed backend. Inside a
    running loop this cannot work; the error says what to use instead.
    """
    import asyncio

    import anyio

    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if running:
        raise RuntimeError(
            "cellmap_schemas' blocking API was called from a running event loop; "
            "use cellmap_schemas.asynchronous (await read(...) / check(...)) instead"
        )
    # The result comes back in a box, not as the main task's: after the run asyncio's Runner
    # calls signal.getsignal, which reprs its handler (a partial holding the main task), and a
    # task's repr holds repr(result) in full: ~0.1 s for a large scan report.
    box: list[T] = []

    async def main() -> None:
        box.append(await func())

    anyio.run(main, backend="asyncio")
    return box[0]
