"""The storage formats: their names, their metadata documents, and how a node is read from them.

One table for every module that reads, crawls, writes or validates. A node's format is decided
by the documents it holds (``attributes.json`` is N5, ``.zarray`` / ``.zgroup`` / ``.zmetadata``
Zarr v2, ``zarr.json`` Zarr v3), never by its URL: a container suffix (``.n5``, ``.zarr``) only
breaks ties, so ``s3://bucket/data.zarr/copy.n5/em`` reads as N5 and ``/data/raw`` as whatever
it holds. :func:`parse_node` is pure (documents in, spec dict out): the walker fetches the
documents, this module decides what they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from cellmap_schemas.errors import CellmapSchemasError, UnsupportedFormatError
from cellmap_schemas.n5_wrap import is_n5_array, n5_array_to_spec_dict, n5_group_to_spec_dict
from cellmap_schemas.spec.zarr_v2 import spec_dict_from_zarray

__all__ = [
    "CHILD_KEYS",
    "DEFINING_KEYS",
    "FORMAT_NAMES",
    "MAX_JSON_NESTING",
    "METADATA_KEYS",
    "N5_KEYS",
    "ZARR2_KEYS",
    "ZARR3_KEYS",
    "Format",
    "Kind",
    "ParsedNode",
    "build_node",
    "decode_document",
    "format_of_key",
    "one_line",
    "parse_node",
    "parse_node_lenient",
]

Format = Literal["n5", "zarr2", "zarr3"]
"""A node's storage format."""

Kind = Literal["array", "group"]
"""A node's kind."""

N5_KEYS: tuple[str, ...] = ("attributes.json",)
ZARR2_KEYS: tuple[str, ...] = (".zarray", ".zgroup", ".zattrs")
ZARR3_KEYS: tuple[str, ...] = ("zarr.json",)
METADATA_KEYS: tuple[str, ...] = (*ZARR3_KEYS, *ZARR2_KEYS, ".zmetadata", *N5_KEYS)
"""Every document that can make a directory a node; all are fetched for the node asked for."""

CHILD_KEYS: dict[Format, tuple[str, ...]] = {
    "n5": N5_KEYS,
    "zarr2": ZARR2_KEYS,
    "zarr3": ZARR3_KEYS,
}
"""The documents to fetch for a group's children: a group only holds nodes of its own format."""

FORMAT_NAMES: dict[Format, str] = {"n5": "N5", "zarr2": "Zarr v2", "zarr3": "Zarr v3"}


def format_of_key(key: str) -> Format | None:
    """The format a metadata document belongs to (``None`` for any other file)."""
    if key == "attributes.json":
        return "n5"
    if key == "zarr.json":
        return "zarr3"
    if key in (".zarray", ".zgroup", ".zattrs", ".zmetadata"):
        return "zarr2"
    return None


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (what a verdict or a report shows)."""
    return " ".join(str(exc).split()) or type(exc).__name__


_LOOKED_FOR = ", ".join(METADATA_KEYS)

MAX_JSON_NESTING = 256
"""Deepest nesting of arrays and objects a metadata document may have. Metadata needs a few
levels; a document nested thousands deep is an attack on recursive decoders and validators."""


@dataclass(frozen=True, slots=True)
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
        Zarr v3 spec; groups carry ``members`` (empty unless filled by a walk to a depth).
    consolidated
        For a group with consolidated metadata, every descendant by its relative path
        (``"s0"``, ``"labels/mito"``); ``None`` when the group has none.
    errors
        Members below the node that could not be read (filled by a walk to a depth).
    """

    url: str
    format: Format
    kind: Kind
    spec: dict[str, Any]
    consolidated: Mapping[str, ParsedNode] | None = field(default=None, repr=False)
    errors: Mapping[str, CellmapSchemasError] = field(default_factory=dict, repr=False)
    """Members (paths relative to the node) that a walk could not read, and why."""

    @property
    def failures(self) -> dict[str, str]:
        """:attr:`errors` as one-line reasons (what a verdict reports)."""
        return {path: one_line(exc) for path, exc in self.errors.items()}


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


_DOCUMENTS_OF: dict[str, tuple[str, ...]] = {
    "n5": N5_KEYS,
    "zarr2": (*ZARR2_KEYS, ".zmetadata"),
    "zarr3": ZARR3_KEYS,
}
"""The documents a node of each format is built from."""


def _relevant(fmt: Format, present: set[str]) -> list[str]:
    return [k for k in _DOCUMENTS_OF[fmt] if k in present]


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
            raise UnsupportedFormatError(f"{entry}: {one_line(exc)}") from None
    return out


def parse_node_lenient(docs: Mapping[str, bytes | None], url: str) -> ParsedNode:
    """:func:`parse_node`, except that broken consolidated metadata (a ``.zmetadata``, or a bad
    entry of a ``zarr.json``'s ``consolidated_metadata``) does not hide a readable group: the
    group is returned without it, to be walked instead. Any other error is raised as is."""
    try:
        return parse_node(docs, url)
    except UnsupportedFormatError as exc:
        rest = dict(docs)
        if rest.get(".zmetadata") is not None:
            rest.pop(".zmetadata")
        elif rest.get("zarr.json") is not None:
            try:
                doc = decode_document(rest["zarr.json"], url, "zarr.json")  # type: ignore[arg-type]
            except UnsupportedFormatError:
                raise exc from None
            if doc.pop("consolidated_metadata", None) is None:
                raise
            rest["zarr.json"] = msgspec.json.encode(doc)
        else:
            raise
        try:
            return parse_node(rest, url)
        except UnsupportedFormatError:
            raise exc from None
