"""Specs from zarr-python 3 ``Array`` / ``Group`` objects (``Model.from_zarr``).

The spec tree is built from each node's ``metadata`` document and ``members()``, so it is the
same dict a read from storage gives (:mod:`cellmap_schemas.io.read`) and validation behaves
identically. zarr is never imported here: any object with zarr-python 3's node interface works.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from cellmap_schemas.formats import ParsedNode
from cellmap_schemas.io.read import depth_needed, validate_node
from cellmap_schemas.spec.zarr_v2 import spec_dict_from_zarray

__all__ = ["model_from_zarr", "node_from_zarr"]

T = TypeVar("T")


def _plain(value: Any) -> Any:
    """zarr's ``to_dict`` output as JSON-shaped data: lists for tuples, numbers for numpy.

    The same document read from storage has lists, and specs keep free-form parts (codec
    configurations, attributes) as given, so both routes must give identical values.
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _plain(tolist())
    return msgspec.to_builtins(value)


def _is_group(node: Any) -> bool:
    return callable(getattr(node, "members", None))


def node_from_zarr(node: Any, depth: int | None = None) -> ParsedNode:
    """A zarr-python 3 array or group (and its members to ``depth`` levels) as a parsed node.

    Parameters
    ----------
    node
        A ``zarr.Array`` or ``zarr.Group`` of Zarr format 2 or 3.
    depth
        Levels of members to include; ``None`` for all, ``0`` for the node alone.

    Raises
    ------
    TypeError
        If ``node`` has no zarr ``metadata``.
    """
    meta = getattr(node, "metadata", None)
    to_dict = getattr(meta, "to_dict", None)
    if not callable(to_dict):
        raise TypeError(f"expected a zarr-python 3 Array or Group, got {type(node).__name__}")
    doc: dict[str, Any] = _plain(to_dict())
    url = str(getattr(node, "store_path", "")) or repr(node)
    group = _is_group(node)
    if doc.get("zarr_format", 2) == 2:
        attrs = doc.pop("attributes", None) or {}
        doc.pop("node_type", None)
        if group:
            spec: dict[str, Any] = {"zarr_version": 2, "attributes": attrs, "members": {}}
        else:
            spec = spec_dict_from_zarray(doc, attrs)
        fmt = "zarr2"
    else:
        doc.pop("consolidated_metadata", None)
        doc.setdefault("attributes", {})
        spec = doc
        if group:
            spec["members"] = {}
        fmt = "zarr3"
    if group and depth != 0:
        sub = None if depth is None else depth - 1
        members = {name: node_from_zarr(child, sub).spec for name, child in node.members()}
        spec["members"] = dict(sorted(members.items()))
    return ParsedNode(url, fmt, "group" if group else "array", spec)  # type: ignore[arg-type]


def model_from_zarr(model: type[T], node: Any) -> T:
    """Validate a zarr-python 3 node as ``model``, reading members to the depth it needs.

    Raises
    ------
    ValidationError
        If the node does not conform; ``.url`` is the node's store path.
    """
    return validate_node(model, node_from_zarr(node, depth_needed(model)))
