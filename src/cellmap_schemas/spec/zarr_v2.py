"""Zarr v2 array and group specs: ``.zarray`` + ``.zattrs`` and ``.zgroup`` + ``.zattrs``.

Field names and order follow pydantic-zarr's v2 specs, which the original exposed, so a dump of
one of ours reads like a dump of theirs. N5 nodes are presented in this view too (see
:mod:`cellmap_schemas.n5_wrap`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar, cast

import msgspec

from cellmap_schemas.base import SCHEMA, Base, NonNegativeInt, auto_chunks, enforce_rules
from cellmap_schemas.rules import Problem, define

if TYPE_CHECKING:
    from cellmap_schemas.io.write import ArrayHandle, GroupHandle

__all__ = [
    "ArraySpec",
    "FillValue",
    "GroupSpec",
    "Node",
    "array_ok",
    "either",
]

TAttr = TypeVar("TAttr")

_SPEC_V2 = "Zarr v2 specification, Metadata (zarr-specs docs/v2/v2.0.rst)"
CHUNKS_RANK = define(
    "ZARR002", "error", "an array's chunks has one entry per dimension of its shape", _SPEC_V2
)
UNKNOWN_CODEC_V2 = define(
    "ZARR003",
    "error",
    "an array's compressor and filters are codecs numcodecs registers (readers fail otherwise)",
    "Zarr v2 specification, compressor / filters; numcodecs codec registry",
)
KNOWN_V2_CODECS = frozenset(
    (
        "blosc", "zlib", "gzip", "bz2", "lzma", "zstd", "lz4", "lzf", "shuffle", "delta",
        "fixedscaleoffset", "quantize", "packbits", "categorize", "astype", "bitround",
        "crc32", "adler32", "fletcher32", "jenkins_lookup3", "json2", "msgpack2", "pickle",
        "vlen-utf8", "vlen-bytes", "vlen-array", "n5_wrapper", "imagecodecs_jpeg2k",
        "imagecodecs_jpegxl", "imagecodecs_png", "imagecodecs_webp", "pcodec", "zfpy",
    )
)  # fmt: skip
"""Codec ids of numcodecs (and the imagecodecs ones seen in imaging data); others are flagged."""

FillValue = int | float | str | bool | list[Any] | None
"""Zarr v2 fill values: numbers, "NaN"/"Infinity" strings, base64 bytes, or null."""


@cache
def either(array: type, group: type) -> type:
    """A field type for "an array of type ``array`` or a group of type ``group``".

    msgspec cannot choose between two untagged structs, and Zarr v2 documents carry no tag; the
    choice is made from the document itself: a ``shape`` key means an array.
    """

    def dispatch(obj: Any) -> type:
        return array if isinstance(obj, Mapping) and "shape" in obj else group

    name = f"{array.__name__}Or{group.__name__}"
    doc = f"An {array.__name__} or a {group.__name__}, told apart by the `shape` key."
    return _Either(
        name,
        (),
        {
            "__cellmap_dispatch__": staticmethod(dispatch),
            "__cellmap_members__": (array, group),
            "__doc__": doc,
        },
    )


class _Either(type):
    """Metaclass of :func:`either` types: instances of either struct count as instances."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__cellmap_members__)  # type: ignore[attr-defined]


class _NodeMixin:
    """I/O entry points shared by all specs; the implementations live in ``cellmap_schemas.io``."""

    @classmethod
    def from_url(cls, url: str, *, storage_options: Mapping[str, Any] | None = None) -> Self:
        """Read the node at ``url`` (and, for groups, its members) and validate it as this model."""
        from cellmap_schemas.io.read import read_model

        return read_model(cls, url, storage_options=storage_options)

    @classmethod
    def from_zarr(cls, node: Any) -> Self:
        """Validate a zarr-python 3 ``Array`` or ``Group`` (and its members) as this model."""
        from cellmap_schemas.io.zarr_interop import model_from_zarr

        return model_from_zarr(cls, node)


class _ArrayIO(_NodeMixin):
    def to_zarr(
        self,
        store: str,
        path: str = "",
        *,
        overwrite: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> ArrayHandle:
        """Create this array in storage (metadata only) and return a writable handle.

        ``store`` is the container's path or URL; a name ending in ``.n5`` means N5, otherwise
        Zarr v2 (Zarr v3 for v3 specs). An existing node is replaced only with ``overwrite``.
        """
        from cellmap_schemas.io.write import write_spec

        return write_spec(self, store, path, overwrite=overwrite, storage_options=storage_options)  # type: ignore[arg-type, return-value]


class _GroupIO(_NodeMixin):
    def to_zarr(
        self,
        store: str,
        path: str = "",
        *,
        overwrite: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> GroupHandle:
        """Create this group and all its members in storage and return a handle to it.

        The handle's members are tensorstore arrays, so ``group["s0"][:] = data`` writes data.
        ``store`` is the container's path or URL; a name ending in ``.n5`` means N5, otherwise
        Zarr v2 (Zarr v3 for v3 specs). An existing node is replaced only with ``overwrite``.
        """
        from cellmap_schemas.io.write import write_spec

        return write_spec(self, store, path, overwrite=overwrite, storage_options=storage_options)  # type: ignore[arg-type, return-value]


def array_ok(spec: ArraySpec[Any]) -> bool:
    """The fast form of :meth:`ArraySpec._problems`; subclasses' ``__post_init__`` call it."""
    if len(spec.chunks) != len(spec.shape):
        return False
    compressor = spec.compressor
    if compressor is not None:
        name = compressor.get("id")  # an id may be any JSON value
        if not isinstance(name, str) or name not in KNOWN_V2_CODECS:
            return False
    return not spec.filters or all(_known_codec(f) for f in spec.filters)


def _known_codec(codec: Mapping[str, Any]) -> bool:
    name = codec.get("id")
    return isinstance(name, str) and name in KNOWN_V2_CODECS  # an id may be any JSON value


class ArraySpec(Base, _ArrayIO, Generic[TAttr], frozen=True, kw_only=True):
    """A Zarr v2 array: the ``.zarray`` fields plus its attributes.

    Generic over the attributes type: ``ArraySpec[MyAttrs]`` validates them as ``MyAttrs``; a
    subclass can instead redeclare ``attributes: MyAttrs``.
    """

    _schema_rule = SCHEMA

    zarr_version: Literal[2] = 2
    attributes: TAttr = {}  # type: ignore[assignment]
    shape: tuple[NonNegativeInt, ...]
    chunks: tuple[NonNegativeInt, ...]
    dtype: str | list[Any]
    fill_value: FillValue = 0
    order: Literal["C", "F"] = "C"
    filters: tuple[dict[str, Any], ...] | None = None
    dimension_separator: Literal["/", "."] = "/"
    compressor: dict[str, Any] | None = None

    def _problems(self) -> Iterator[Problem]:
        if len(self.chunks) != len(self.shape):
            yield CHUNKS_RANK(
                "chunks", f"has {len(self.chunks)} entries but shape has {len(self.shape)}"
            )
        codecs = [("compressor", self.compressor)] if self.compressor is not None else []
        codecs += [(f"filters[{i}]", f) for i, f in enumerate(self.filters or ())]
        for loc, codec in codecs:
            if not _known_codec(codec):
                name = codec.get("id")
                yield UNKNOWN_CODEC_V2(f"{loc}.id", f"{name!r} is not a codec numcodecs knows")

    def __post_init__(self) -> None:
        if not array_ok(self):
            enforce_rules(self)

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        chunks: Literal["auto"] | tuple[int, ...] = "auto",
        compressor: Literal["auto"] | dict[str, Any] | None = "auto",
        attributes: Any = None,
        fill_value: FillValue | Literal["auto"] = "auto",
        order: Literal["auto", "C", "F"] = "auto",
        filters: Literal["auto"] | tuple[dict[str, Any], ...] | None = "auto",
        dimension_separator: Literal["/", "."] = "/",
    ) -> Self:
        """The spec of an array-like (NumPy, zarr, tensorstore, dask...).

        ``"auto"`` takes a value from the array when it has one (a zarr array's chunks and
        compressor) and otherwise a default: chunks from :func:`~cellmap_schemas.base.auto_chunks`,
        no compressor, fill value 0.
        """
        import numpy as np

        dtype = np.dtype(array.dtype)
        shape = tuple(int(s) for s in array.shape)
        if chunks == "auto":
            own = getattr(array, "chunks", None)
            if isinstance(own, tuple) and all(isinstance(c, int) for c in own):
                chunks = own
            else:
                chunks = auto_chunks(shape, dtype.itemsize)
        if compressor == "auto":
            compressor = _zarr_compressor(array)
        if fill_value == "auto":
            own_fill = getattr(array, "fill_value", None)
            fill_value = own_fill if own_fill is not None else (False if dtype.kind == "b" else 0)
            if isinstance(fill_value, np.generic):
                fill_value = fill_value.item()
        if order == "auto":
            order = getattr(array, "order", "C") if getattr(array, "order", "C") in "CF" else "C"
        if filters == "auto":
            filters = None
        return cls(
            attributes={} if attributes is None else attributes,
            shape=shape,
            chunks=tuple(int(c) for c in chunks),
            dtype=dtype.str if dtype.fields is None else dtype.descr,
            fill_value=fill_value,
            order=order,  # type: ignore[arg-type]
            filters=filters,
            dimension_separator=dimension_separator,
            compressor=compressor,
        )

    # ---- Zarr v2 documents --------------------------------------------------------------
    def to_documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``.zarray`` and ``.zattrs`` documents of this spec."""
        doc = msgspec.to_builtins(self)
        attrs = doc.pop("attributes")
        doc.pop("zarr_version")
        return {"zarr_format": 2, **doc}, attrs

    @classmethod
    def from_documents(cls, zarray: Mapping[str, Any], zattrs: Mapping[str, Any]) -> Self:
        """Validate a ``.zarray`` and its ``.zattrs`` as this model."""
        return cls.model_validate(spec_dict_from_zarray(zarray, zattrs))


def spec_dict_from_zarray(zarray: Mapping[str, Any], zattrs: Mapping[str, Any]) -> dict[str, Any]:
    """The spec dict of an array from its ``.zarray`` and ``.zattrs`` (pure key mapping)."""
    doc = {k: v for k, v in zarray.items() if k != "zarr_format"}
    doc["zarr_version"] = zarray.get("zarr_format", 2)
    doc["attributes"] = dict(zattrs)
    return doc


class GroupSpec(Base, _GroupIO, Generic[TAttr], frozen=True, kw_only=True):
    """A Zarr v2 group: its attributes and its members, each an array or a group spec."""

    _schema_rule = SCHEMA

    zarr_version: Literal[2] = 2
    attributes: TAttr = {}  # type: ignore[assignment]
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    def to_flat(self, root: str = "") -> dict[str, ArraySpec[Any] | GroupSpec[Any]]:
        """Every node of the tree by its path (``""`` is this group), members without members."""
        out: dict[str, Any] = {root: msgspec.structs.replace(self, members={})}
        for name, member in self.members.items():
            path = f"{root}/{name}" if root else name
            if isinstance(member, GroupSpec):
                out.update(cast(GroupSpec[Any], member).to_flat(path))
            else:
                out[path] = member
        return out


Node = either(ArraySpec, GroupSpec)
"""Field type of a v2 group's members: an :class:`ArraySpec` or a :class:`GroupSpec`."""


def _zarr_compressor(array: Any) -> dict[str, Any] | None:
    """The numcodecs-style config of a zarr array's compressor, or None for other arrays."""
    # zarr-python 3 has `compressors` for both formats; its `compressor` is deprecated and
    # raises TypeError on Zarr v3 arrays. zarr-python 2 arrays only have `compressor`.
    compressors = getattr(array, "compressors", None)
    if compressors is not None:
        comp = compressors[0] if compressors else None
    else:
        comp = getattr(array, "compressor", None)
    if comp is None:
        return None
    config = getattr(comp, "get_config", None)
    if callable(config):
        return dict(config())
    to_dict = getattr(comp, "to_dict", None)
    if callable(to_dict):
        doc = dict(to_dict())
        if "name" in doc:  # a Zarr v3 codec: {"name", "configuration"} -> numcodecs style
            return {"id": doc["name"], **(doc.get("configuration") or {})}
        return doc
    return None
