"""N5 metadata and its Zarr v2 view.

An N5 node has one document, ``attributes.json``, holding both the array metadata
(``dimensions``, ``blockSize``, ``dataType``, ``compression``; lists in F order, x first) and the
user's attributes. The rest of the package sees every node as a Zarr v2 spec, so this module maps
between the two, both ways:

- shape and chunks are reversed (F order <-> C order);
- ``dataType`` <-> a little-endian numpy dtype string, as zarr-python's N5 store presents it;
- ``compression`` <-> a numcodecs-style compressor config (``raw`` is ``None``);
- every other key is an attribute, kept verbatim (including the container's ``"n5"`` version).

The view is the *unwrapped* one: ``dimension_separator`` is ``"/"`` (N5 nests chunk keys) and the
compressor is the codec itself. :func:`wrap` gives the view zarr-python 2's ``N5FSStore`` shows
(``"."`` and an ``n5_wrapper`` compressor), which the original printed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

from cellmap_schemas.base import SCHEMA, Base, NonNegativeInt, PositiveInt, enforce_rules
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v2 import CHUNKS_RANK, ArraySpec, GroupSpec

__all__ = [
    "N5_ARRAY_KEYS",
    "N5_VERSION",
    "N5ArrayMetadata",
    "N5ArraySpec",
    "N5GroupSpec",
    "compression_from_n5",
    "compression_to_n5",
    "dtype_from_n5",
    "dtype_to_n5",
    "from_zarr",
    "is_n5_array",
    "n5_array_to_spec_dict",
    "n5_array_unwrapper",
    "n5_array_wrapper",
    "n5_group_to_spec_dict",
    "n5_group_unwrapper",
    "n5_group_wrapper",
    "n5_spec_unwrapper",
    "n5_spec_wrapper",
    "spec_to_n5_array",
    "spec_to_n5_group",
    "unwrap",
    "update_n5_attrs",
    "wrap",
]

N5_VERSION = "2.0.0"
N5_ARRAY_KEYS = frozenset({"dimensions", "blockSize", "dataType", "compression"})
_LEGACY_KEYS = frozenset({"compressionType"})

N5DataType = Literal[
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
]

_DTYPES: dict[str, str] = {
    "uint8": "|u1",
    "int8": "|i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "int64": "<i8",
    "float32": "<f4",
    "float64": "<f8",
}
_DTYPES_BACK = {v[1:]: k for k, v in _DTYPES.items()}


class N5Compression(Base, frozen=True, kw_only=True):
    """The ``compression`` object; codec parameters beside ``type`` are kept as a dict."""

    type: Literal["raw", "gzip", "bzip2", "xz", "blosc", "zstd", "lz4"]


class N5ArrayMetadata(Base, frozen=True, kw_only=True):
    """The array keys of an N5 ``attributes.json``, as N5 readers require them."""

    dimensions: tuple[NonNegativeInt, ...]
    blockSize: tuple[PositiveInt, ...]
    dataType: N5DataType
    compression: N5Compression

    # N5 documents are judged in their Zarr v2 view (the same rules, about ``shape``/``chunks``);
    # this struct reports with those rules too.
    _schema_rule = SCHEMA

    def _problems(self) -> Iterator[Problem]:
        if len(self.blockSize) != len(self.dimensions):
            yield CHUNKS_RANK(
                "blockSize",
                f"has {len(self.blockSize)} entries but dimensions has {len(self.dimensions)}",
            )

    def __post_init__(self) -> None:
        enforce_rules(self)


def is_n5_array(doc: Mapping[str, Any]) -> bool:
    """Whether an ``attributes.json`` describes an array (N5 arrays carry these two keys)."""
    return "dimensions" in doc and "dataType" in doc


def dtype_from_n5(data_type: str) -> str:
    """``uint16`` -> ``<u2``; unknown names are returned unchanged, for validation to reject."""
    return _DTYPES.get(data_type, data_type)


def dtype_to_n5(dtype: str) -> str:
    """``<u2`` (or ``>u2``, ``uint16``) -> ``uint16``."""
    import numpy as np

    try:
        return np.dtype(dtype).name if np.dtype(dtype).name in _DTYPES else dtype
    except TypeError:
        return _DTYPES_BACK.get(dtype[1:], dtype)


# n5 type -> (numcodecs id, {n5 key: numcodecs key}); keys not listed are carried as they are.
_CODECS: dict[str, tuple[str, dict[str, str]]] = {
    "gzip": ("gzip", {}),
    "bzip2": ("bz2", {"blockSize": "level"}),
    "xz": ("lzma", {}),
    "blosc": ("blosc", {}),
    "zstd": ("zstd", {}),
    "lz4": ("lz4", {}),
}
_CODECS_BACK = {cid: (n5, {v: k for k, v in keys.items()}) for n5, (cid, keys) in _CODECS.items()}
_CODECS_BACK["zlib"] = ("gzip", {})


def compression_from_n5(compression: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An N5 ``compression`` object as a numcodecs config (``raw`` -> ``None``)."""
    if compression is None:
        return None
    params = dict(compression)
    kind = params.pop("type", None)
    if kind in (None, "raw"):
        return None
    if kind == "gzip":
        zlib = params.pop("useZlib", False)
        return {"id": "zlib" if zlib else "gzip", **params}
    if kind not in _CODECS:
        return {"id": kind, **params}
    cid, renames = _CODECS[kind]
    out: dict[str, Any] = {"id": cid}
    for key, value in params.items():
        if key == "id":  # zarr-python leaks the codec id into N5 zstd metadata; same value
            continue
        out[renames.get(key, key)] = value
    if cid == "lzma":
        out = {
            "id": "lzma",
            "format": 1,
            "check": -1,
            **{k: v for k, v in out.items() if k != "id"},
            "filters": None,
        }
    return out


def compression_to_n5(compressor: Mapping[str, Any] | None) -> dict[str, Any]:
    """A numcodecs config as an N5 ``compression`` object (``None`` -> ``raw``)."""
    if compressor is None:
        return {"type": "raw"}
    params = dict(compressor)
    if params.get("id") == "n5_wrapper":
        return compression_to_n5(params.get("compressor_config"))
    cid = params.pop("id", None)
    if cid in ("gzip", "zlib"):
        return {"type": "gzip", **params, "useZlib": cid == "zlib"}
    if cid == "lzma":
        return {"type": "xz", "preset": params.get("preset", 6)}
    if cid not in _CODECS_BACK:
        raise ValueError(f"compressor {cid!r} has no N5 equivalent")
    kind, renames = _CODECS_BACK[cid]
    return {"type": kind, **{renames.get(k, k): v for k, v in params.items()}}


def _legacy(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Fold N5 1.x's ``compressionType`` into the 2.x ``compression`` object."""
    out = dict(doc)
    legacy = out.pop("compressionType", None)
    if legacy is not None and "compression" not in out:
        out["compression"] = {"type": legacy}
    return out


def n5_array_to_spec_dict(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Zarr v2 spec dict (unwrapped view) of an N5 array's ``attributes.json``.

    Values are passed through untouched where they have the wrong type, so that validating the
    result reports the problem (e.g. ``shape: Expected `int`, got `str```) instead of crashing;
    a missing array key is left out, so validation reports the field as required. This runs
    once per array in a scan, so the common case takes no detours.
    """
    if "compressionType" in doc:
        doc = _legacy(doc)
    dims = doc.get("dimensions")
    block = doc.get("blockSize")
    dtype = doc.get("dataType")
    comp = doc.get("compression", _RAW)
    spec: dict[str, Any] = {
        "zarr_version": 2,
        "attributes": {k: v for k, v in doc.items() if k not in N5_ARRAY_KEYS},
        "shape": dims[::-1] if isinstance(dims, list) else dims,
        "chunks": block[::-1] if isinstance(block, list) else block,
        "dtype": _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": compression_from_n5(comp) if isinstance(comp, Mapping) else comp,
    }
    for key in ("shape", "chunks", "dtype"):
        if spec[key] is None:
            del spec[key]
    return spec


_RAW: Mapping[str, Any] = {"type": "raw"}


def n5_group_to_spec_dict(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Zarr v2 spec dict of an N5 group's ``attributes.json``: all keys are attributes."""
    return {"zarr_version": 2, "attributes": dict(doc), "members": {}}


def spec_to_n5_array(spec: ArraySpec[Any]) -> dict[str, Any]:
    """The ``attributes.json`` of an array spec: N5 array keys (F order) plus its attributes."""
    attrs = spec.attributes
    if isinstance(attrs, msgspec.Struct):
        attrs = msgspec.to_builtins(attrs)
    if spec.order != "C":
        raise ValueError("N5 arrays are stored in C order (F order on disk): order must be 'C'")
    return {
        **{k: v for k, v in dict(attrs).items() if k not in N5_ARRAY_KEYS | _LEGACY_KEYS},
        "dimensions": list(reversed(spec.shape)),
        "blockSize": list(reversed(spec.chunks)),
        "dataType": dtype_to_n5(spec.dtype) if isinstance(spec.dtype, str) else spec.dtype,
        "compression": compression_to_n5(spec.compressor),
    }


def spec_to_n5_group(spec: GroupSpec[Any], *, root: bool = False) -> dict[str, Any]:
    """The ``attributes.json`` of a group spec; the container root also gets ``{"n5": ...}``."""
    attrs = spec.attributes
    if isinstance(attrs, msgspec.Struct):
        attrs = msgspec.to_builtins(attrs)
    out = dict(attrs)
    if root:
        out.setdefault("n5", N5_VERSION)
    return out


# ---- the wrapped view (zarr-python 2's N5FSStore) ---------------------------------------------
class N5ArraySpec(ArraySpec[Any], frozen=True, kw_only=True):
    """An array spec in the wrapped view: ``"."`` separator, ``n5_wrapper`` compressor."""

    dimension_separator: Literal["/", "."] = "."


class N5GroupSpec(GroupSpec[Any], frozen=True, kw_only=True):
    """A group spec read from N5 storage; ``from_url`` refuses containers of other formats."""


def _same_array(spec: ArraySpec[Any]) -> dict[str, Any]:
    """The fields the wrapped and unwrapped views of an array share."""
    return {
        "attributes": spec.attributes,
        "shape": spec.shape,
        "chunks": spec.chunks,
        "dtype": spec.dtype,
        "fill_value": spec.fill_value,
        "order": spec.order,
    }


def wrap(spec: ArraySpec[Any]) -> N5ArraySpec:
    """The wrapped view of an unwrapped array spec."""
    wrapped = {"id": "n5_wrapper", "compressor_config": spec.compressor}
    return N5ArraySpec(
        **_same_array(spec), filters=spec.filters, dimension_separator=".", compressor=wrapped
    )


def unwrap(spec: ArraySpec[Any]) -> ArraySpec[Any]:
    """The unwrapped view of a wrapped array spec (a no-op on an unwrapped one)."""
    comp = spec.compressor
    if comp is not None and comp.get("id") == "n5_wrapper":
        comp = comp.get("compressor_config")
    return ArraySpec(
        **_same_array(spec),
        filters=None if not spec.filters else spec.filters,
        dimension_separator="/",
        compressor=comp,
    )


# ---- the original's names for the wrapped / unwrapped views -----------------------------------
def n5_array_wrapper(spec: ArraySpec[Any]) -> ArraySpec[Any]:
    """``spec`` with the ``"."`` separator zarr-python 2's ``N5FSStore`` needs (same class)."""
    return msgspec.structs.replace(spec, dimension_separator=".")


def n5_group_wrapper(spec: GroupSpec[Any]) -> GroupSpec[Any]:
    """:func:`n5_array_wrapper` applied to every array below ``spec``."""
    return msgspec.structs.replace(
        spec, members={k: n5_spec_wrapper(m) for k, m in spec.members.items()}
    )


def n5_spec_wrapper(spec: Any) -> Any:
    """:func:`n5_array_wrapper` for arrays, :func:`n5_group_wrapper` for groups."""
    return n5_array_wrapper(spec) if hasattr(spec, "shape") else n5_group_wrapper(spec)


def n5_array_unwrapper(spec: ArraySpec[Any]) -> ArraySpec[Any]:
    """``spec`` with the ``"/"`` separator and the ``n5_wrapper`` compressor unwrapped."""
    comp = spec.compressor
    if comp is not None and comp.get("id") == "n5_wrapper":
        comp = comp.get("compressor_config")
    return msgspec.structs.replace(spec, dimension_separator="/", compressor=comp)


def n5_group_unwrapper(spec: GroupSpec[Any]) -> GroupSpec[Any]:
    """:func:`n5_array_unwrapper` applied to every array below ``spec``."""
    return msgspec.structs.replace(
        spec, members={k: n5_spec_unwrapper(m) for k, m in spec.members.items()}
    )


def n5_spec_unwrapper(spec: Any) -> Any:
    """:func:`n5_array_unwrapper` for arrays, :func:`n5_group_unwrapper` for groups."""
    return n5_array_unwrapper(spec) if hasattr(spec, "shape") else n5_group_unwrapper(spec)


def from_zarr(element: Any) -> N5ArraySpec | N5GroupSpec:
    """The N5 spec (tree) of a zarr node; refuses nodes that are not stored as N5.

    zarr-python 3 cannot open N5, so in practice read N5 with ``N5GroupSpec.from_url``.
    """
    if callable(getattr(element, "members", None)):
        return N5GroupSpec.from_zarr(element)
    return N5ArraySpec.from_zarr(element)


def update_n5_attrs(node: Any, new_spec: N5GroupSpec | N5ArraySpec) -> Any:
    """Replace the attributes of an N5 node and its members by those of a same-shaped spec.

    Raises
    ------
    ValueError
        If ``new_spec`` differs from the node in anything but attributes.
    """
    from cellmap_schemas.base import structure_equal

    if not structure_equal(from_zarr(node), new_spec):
        raise ValueError(
            f"{node} differs from the new spec in more than attributes; only attributes can "
            "be updated"
        )
    attrs = new_spec.attributes
    node.update_attributes(
        msgspec.to_builtins(attrs) if isinstance(attrs, msgspec.Struct) else attrs
    )
    for name, member in getattr(new_spec, "members", {}).items():
        update_n5_attrs(node[name], member)
    return node
