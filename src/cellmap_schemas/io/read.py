"""Reading N5 / Zarr v2 / Zarr v3 hierarchies into spec trees.

The format of a node is decided by the documents it holds, never by its URL: ``attributes.json``
is N5, ``.zarray`` / ``.zgroup`` / ``.zattrs`` / ``.zmetadata`` are Zarr v2 and ``zarr.json`` is
Zarr v3. A container suffix in the URL (``.n5``, ``.zarr``) only breaks ties, so
``s3://bucket/data.zarr/copy.n5/em`` reads as N5 and ``/data/raw`` reads as whatever it holds.

:func:`parse_node` is pure (documents in, spec dict out) so that the crawler can reuse it on
documents it fetched in bulk. :func:`read_tree` walks a group: one listing per group, then every
child's metadata in one concurrent batch; it never lists or reads inside an array.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeNotFoundError,
    StoreError,
    UnsupportedFormatError,
    ValidationError,
)
from cellmap_schemas.formats import (
    CHILD_KEYS,
    METADATA_KEYS,
    N5_KEYS,
    ZARR2_KEYS,
    ZARR3_KEYS,
    Format,
    Kind,
)
from cellmap_schemas.n5_wrap import is_n5_array, n5_array_to_spec_dict, n5_group_to_spec_dict
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec, spec_dict_from_zarray
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

if TYPE_CHECKING:
    from cellmap_schemas.io.store import Store

__all__ = [
    "CHILD_KEYS",
    "MAX_DEPTH",
    "MAX_JSON_NESTING",
    "METADATA_KEYS",
    "Format",
    "Kind",
    "ParsedNode",
    "build_node",
    "decode_document",
    "depth_needed",
    "first_error",
    "generic_spec_type",
    "parse_node",
    "read_model",
    "read_model_async",
    "read_node",
    "read_spec",
    "read_tree",
    "run_sync",
    "validate_node",
]

T = TypeVar("T")

_LOOKED_FOR = ", ".join(METADATA_KEYS)

MAX_DEPTH = 64
"""Levels of nodes below a root that readers follow (the crawler and :func:`read_tree`); a
group deeper is reported, not followed: a guard against cycles on stores without symlinks to
detect, and against pathological trees (recursion, output nested past what JSON encoders take).
"""

MAX_JSON_NESTING = 256
"""Deepest nesting of arrays and objects a metadata document may have. Metadata needs a few
levels; a document nested thousands deep is an attack on recursive decoders and validators."""


@dataclass(frozen=True)
class ParsedNode:
    """One node's metadata, decided and mapped to a spec dict.

    Attributes
    ----------
    url
        Where the node lives.
    format
        ``"n5"``, ``"zarr2"`` or ``"zarr3"``.
    kind
        ``"array"`` or ``"group"``.
    spec
        A dict ready for ``model_validate`` of a Zarr v2 spec (N5 and Zarr v2 nodes) or a
        Zarr v3 spec; groups carry ``members`` (empty unless filled by :func:`read_tree`).
    consolidated
        For a group with consolidated metadata, every descendant by its relative path
        (``"s0"``, ``"labels/mito"``); ``None`` when the group has none.
    errors
        Members below the node that could not be read (filled by :func:`read_tree`).
    """

    url: str
    format: Format
    kind: Kind
    spec: dict[str, Any]
    consolidated: Mapping[str, ParsedNode] | None = field(default=None, repr=False)
    errors: Mapping[str, CellmapSchemasError] = field(default_factory=dict, repr=False)
    """Members (paths relative to the node) that :func:`read_tree` could not read, and why."""

    @property
    def failures(self) -> dict[str, str]:
        """:attr:`errors` as one-line reasons (what a verdict reports)."""
        return {path: _one_line(exc) for path, exc in self.errors.items()}


# ---- pure: documents -> ParsedNode -------------------------------------------------------------
def _join_url(url: str, key: str) -> str:
    return f"{url.rstrip('/')}/{key}" if key else url


def _container_hint(url: str) -> Format | None:
    """The innermost ``.n5`` / ``.zarr`` container named in the URL, as a tie-breaker."""
    for segment in reversed(url.rstrip("/").split("/")):
        name = segment.lower()
        if name.endswith(".n5"):
            return "n5"
        if name.endswith(".zarr"):
            return "zarr2"
    return None


def _describe(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for tp, text in names.items():
        if isinstance(value, tp):
            return text
    return "a number" if isinstance(value, int | float) else type(value).__name__


def decode_document(raw: bytes, url: str, key: str) -> dict[str, Any]:
    """Decode one metadata document, or raise a one-line error naming it and the cause.

    Bare ``NaN`` / ``Infinity`` (written by Python's ``json``, read by zarr-python) are accepted.
    """
    try:  # the common case: one pass in C (valid JSON is valid UTF-8 without raw NUL bytes)
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec checks UTF-8 as it builds str
        try:
            doc = _decode_slowly(raw, _join_url(url, key))
        except RecursionError:
            raise _too_deep(_join_url(url, key)) from None
    except RecursionError:  # msgspec's limit is the interpreter's recursion limit
        raise _too_deep(_join_url(url, key)) from None
    if not isinstance(doc, dict):
        where = _join_url(url, key)
        raise UnsupportedFormatError(f"{where}: expected a JSON object, got {_describe(doc)}")
    # Fewer brackets than the limit cannot nest deeper than it: the walk is rarely needed.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_NESTING and _nesting(doc) > MAX_JSON_NESTING:
        raise _too_deep(_join_url(url, key))
    return doc


def _too_deep(where: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"{where}: JSON nested too deeply (more than {MAX_JSON_NESTING} levels)"
    )


def _nesting(doc: Any) -> int:
    """The deepest nesting of lists and dicts in ``doc``, walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > MAX_JSON_NESTING:
                break
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, level + 1) for v in children if isinstance(v, dict | list))
    return deepest


def _decode_slowly(raw: bytes, where: str) -> Any:
    """Decode a document msgspec refused: strip a BOM, accept NaN, or say what is wrong."""
    data = bytes(raw)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise UnsupportedFormatError(f"{where}: empty document, expected a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise UnsupportedFormatError(
            f"{where}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}); "
            "a binary file, not a JSON document"
        ) from None
    if "\x00" in text:
        raise UnsupportedFormatError(f"{where}: contains NUL bytes; a binary file, not JSON")
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        try:
            return json.loads(text)
        except ValueError:
            raise UnsupportedFormatError(f"{where}: invalid JSON: {exc}") from None


_V2_DEFINING = frozenset({".zarray", ".zgroup", ".zmetadata"})
"""A Zarr v2 node is an array (``.zarray``) or a group (``.zgroup``, or consolidated metadata);
``.zattrs`` alone makes neither (the Zarr v2 specification; zarr-python agrees)."""

DEFINING_KEYS = frozenset({"attributes.json", "zarr.json", *_V2_DEFINING})
"""The documents that make a directory a node."""


def _choose_format(present: set[str], url: str) -> Format | None:
    n5 = "attributes.json" in present
    v3 = "zarr.json" in present
    v2 = bool(present & _V2_DEFINING)
    if n5 and not (v2 or v3):
        return "n5"
    # an N5 container may hold stray Zarr files; the reverse is rarer
    if n5 and _container_hint(url) == "n5":
        return "n5"
    if v3:
        return "zarr3"
    if v2:
        return "zarr2"
    if n5:
        return "n5"
    return None


def parse_node(docs: Mapping[str, bytes | None], url: str) -> ParsedNode:
    """Decide a node's format and kind from its metadata documents and build its spec dict.

    Parameters
    ----------
    docs
        The documents fetched from the node's directory, by file name (``"attributes.json"``,
        ``".zarray"``, ...; see :data:`METADATA_KEYS`); ``None`` or absent means missing.
    url
        The node's URL, for error messages and the result.

    Returns
    -------
    ParsedNode
        The node with an empty ``members`` dict if it is a group.

    Raises
    ------
    UnsupportedFormatError
        If no metadata document is present, or one of those used is not a UTF-8 JSON object.
    """
    present = {k for k, v in docs.items() if v is not None}
    fmt = _choose_format(present, url)
    if fmt is None:
        if ".zattrs" in present:
            raise UnsupportedFormatError(
                f"{url}: holds .zattrs but no .zgroup or .zarray: not a Zarr v2 node"
            )
        raise UnsupportedFormatError(
            f"{url}: no N5 or Zarr metadata found (looked for {_LOOKED_FOR})"
        )
    decoded = {
        k: decode_document(docs[k], url, k)  # type: ignore[arg-type]
        for k in _relevant(fmt, present)
    }
    node = build_node(fmt, decoded, url)
    if fmt == "zarr2" and ".zmetadata" in decoded:
        node = _with_consolidated(node, _consolidated_v2(decoded[".zmetadata"], url))
    elif fmt == "zarr3" and node.kind == "group":
        meta = decoded["zarr.json"].get("consolidated_metadata")
        if meta is not None:
            node = _with_consolidated(node, _consolidated_v3(meta, url))
    return node


def _relevant(fmt: Format, present: set[str]) -> list[str]:
    keys = {"n5": N5_KEYS, "zarr2": (*ZARR2_KEYS, ".zmetadata"), "zarr3": ZARR3_KEYS}[fmt]
    return [k for k in keys if k in present]


def build_node(fmt: Format, docs: Mapping[str, dict[str, Any]], url: str) -> ParsedNode:
    """A :class:`ParsedNode` from already-decoded documents of the given format."""
    if fmt == "n5":
        doc = docs["attributes.json"]
        if is_n5_array(doc):
            return ParsedNode(url, "n5", "array", n5_array_to_spec_dict(doc))
        return ParsedNode(url, "n5", "group", n5_group_to_spec_dict(doc))
    if fmt == "zarr2":
        attrs = docs.get(".zattrs", {})
        if ".zarray" in docs and ".zgroup" in docs:
            raise UnsupportedFormatError(
                f"{url}: holds both .zarray and .zgroup; a node is an array or a group"
            )
        if ".zarray" in docs:
            return ParsedNode(url, "zarr2", "array", spec_dict_from_zarray(docs[".zarray"], attrs))
        group = docs.get(".zgroup", {})
        version = group.get("zarr_format", 2)
        return ParsedNode(
            url, "zarr2", "group", {"zarr_version": version, "attributes": attrs, "members": {}}
        )
    doc = dict(docs["zarr.json"])
    doc.pop("consolidated_metadata", None)
    kind = doc.get("node_type")
    if kind not in ("array", "group"):
        raise UnsupportedFormatError(
            f"{_join_url(url, 'zarr.json')}: node_type must be 'array' or 'group', got {kind!r}"
        )
    doc.setdefault("attributes", {})
    if kind == "group":
        doc["members"] = {}
    return ParsedNode(url, "zarr3", kind, doc)


def _with_consolidated(node: ParsedNode, children: dict[str, ParsedNode]) -> ParsedNode:
    return ParsedNode(node.url, node.format, node.kind, node.spec, children)


def _consolidated_v2(doc: Mapping[str, Any], url: str) -> dict[str, ParsedNode]:
    where = _join_url(url, ".zmetadata")
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        raise UnsupportedFormatError(f"{where}: `metadata` must be a JSON object")
    by_dir: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in meta.items():
        path, _, name = key.rpartition("/")
        if name not in ZARR2_KEYS or not path:
            continue
        if not isinstance(value, dict):
            raise UnsupportedFormatError(f"{where}: entry {key!r} is not a JSON object")
        by_dir.setdefault(path, {})[name] = value
    return {
        path: build_node("zarr2", docs, _join_url(url, path))
        for path, docs in sorted(by_dir.items())
        if ".zarray" in docs or ".zgroup" in docs
    }


def _consolidated_v3(meta: Any, url: str) -> dict[str, ParsedNode]:
    """The nodes of a v3 ``consolidated_metadata``; an error names the group's ``zarr.json``
    (the file that exists) and the entry, never the entry's own ``zarr.json``."""
    where = _join_url(url, "zarr.json")
    entries = meta.get("metadata") if isinstance(meta, Mapping) else None
    if not isinstance(entries, Mapping):
        raise UnsupportedFormatError(f"{where}: consolidated_metadata.metadata must be an object")
    out: dict[str, ParsedNode] = {}
    for path, value in sorted(entries.items()):
        entry = f"{where}: consolidated_metadata entry {path!r}"
        if not isinstance(value, dict):
            raise UnsupportedFormatError(f"{entry} is not a JSON object")
        kind = value.get("node_type")
        if kind not in ("array", "group"):
            raise UnsupportedFormatError(
                f"{entry}: node_type must be 'array' or 'group', got {kind!r}"
            )
        try:
            out[path.strip("/")] = build_node("zarr3", {"zarr.json": value}, _join_url(url, path))
        except CellmapSchemasError as exc:
            raise UnsupportedFormatError(f"{entry}: {_one_line(exc)}") from None
    return out


# ---- async: storage -> ParsedNode / tree -------------------------------------------------------
def _raise_store_errors(results: Sequence[bytes | StoreError | None]) -> None:
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def read_node(store: Store, path: str = "") -> ParsedNode:
    """Fetch and parse the node at ``path`` (relative to the store's root).

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
    return parse_node(docs, url)  # type: ignore[arg-type]


def _key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


async def read_tree(store: Store, path: str = "", depth: int | None = None) -> ParsedNode:
    """Read the node at ``path`` and, for a group, its members down to ``depth`` levels.

    ``depth=None`` reads the whole hierarchy, ``0`` only the node itself. Members are read
    concurrently: one listing per group, then every child's metadata in one batch, then every
    child group at once. Consolidated metadata, when the node has it, replaces the listings.
    The result's ``spec`` has ``members`` filled with nested spec dicts; a member that cannot
    be read is left out of them and named in ``errors`` with its exception, so one bad member
    hides neither the others nor the node itself. A group :data:`MAX_DEPTH` levels below the
    node is such a member (``nested deeper than 64 levels; not followed``): the reader never
    recurses without bound.

    Raises
    ------
    NodeNotFoundError, UnsupportedFormatError, StoreError
        The node itself cannot be read.
    """
    node = await read_node(store, path)
    if node.kind == "array" or depth == 0:
        return node
    errors: dict[str, CellmapSchemasError] = {}
    if node.consolidated is not None:
        spec = _tree_from_consolidated(node, depth)
    else:
        spec = await _read_members(store, path, node, depth, errors, "")
    return ParsedNode(
        node.url, node.format, node.kind, spec, node.consolidated, dict(sorted(errors.items()))
    )


def _tree_from_consolidated(node: ParsedNode, depth: int | None) -> dict[str, Any]:
    root = _fresh(node.spec)
    specs: dict[str, dict[str, Any]] = {"": root}
    for rel, child in sorted(node.consolidated.items(), key=lambda kv: kv[0].count("/")):  # type: ignore[union-attr]
        parts = rel.split("/")
        if depth is not None and len(parts) > depth:
            continue
        parent = specs.get("/".join(parts[:-1]))
        if parent is None or "members" not in parent:
            continue
        specs[rel] = parent["members"][parts[-1]] = _fresh(child.spec)
    return _sort_members(root)


def _fresh(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    if "members" in out:
        out["members"] = {}
    return out


def _sort_members(spec: dict[str, Any]) -> dict[str, Any]:
    if "members" in spec:
        spec["members"] = {k: _sort_members(v) for k, v in sorted(spec["members"].items())}
    return spec


async def _read_members(
    store: Store,
    path: str,
    node: ParsedNode,
    depth: int | None,
    failures: dict[str, CellmapSchemasError],
    rel: str,
) -> dict[str, Any]:
    import anyio

    spec = _fresh(node.spec)
    try:
        dirs, _files = await store.list_dir(path)
    except CellmapSchemasError as exc:
        failures[rel or "."] = type(exc)(f"cannot list members: {_one_line(exc)}")
        return spec
    names = sorted(dirs)
    child_keys = CHILD_KEYS[node.format]
    keys = [_key(path, name, k) for name in names for k in child_keys]
    results = await store.get_many(keys) if keys else []
    children: dict[str, ParsedNode] = {}
    for i, name in enumerate(names):
        where = f"{rel}/{name}" if rel else name
        chunk = results[i * len(child_keys) : (i + 1) * len(child_keys)]
        error = next((r for r in chunk if isinstance(r, CellmapSchemasError)), None)
        if error is not None:
            failures[where] = error
            continue
        found = (k for k, r in zip(child_keys, chunk, strict=True) if r is not None)
        if DEFINING_KEYS.isdisjoint(found):
            continue  # a plain directory, not a node
        docs = dict(zip(child_keys, chunk, strict=True))
        try:
            children[name] = parse_node(docs, store.url_of(_key(path, name)))  # type: ignore[arg-type]
        except CellmapSchemasError as exc:
            failures[where] = exc

    sub = None if depth is None else depth - 1
    if sub != 0:  # groups at MAX_DEPTH are not followed: reported, as the crawler does
        for name in [n for n, c in children.items() if c.kind == "group"]:
            where = f"{rel}/{name}" if rel else name
            if where.count("/") + 1 >= MAX_DEPTH:
                failures[where] = UnsupportedFormatError(
                    f"{children.pop(name).url}: nested deeper than {MAX_DEPTH} levels; not followed"
                )
    member_specs: dict[str, dict[str, Any]] = {n: c.spec for n, c in children.items()}

    async def fill(name: str) -> None:
        where = f"{rel}/{name}" if rel else name
        member_specs[name] = await _read_members(
            store, _key(path, name), children[name], sub, failures, where
        )

    if sub != 0:
        async with anyio.create_task_group() as tg:
            for name, child in children.items():
                if child.kind == "group":
                    tg.start_soon(fill, name)
    spec["members"] = {n: member_specs[n] for n in sorted(member_specs)}
    return spec


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
