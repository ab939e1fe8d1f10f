"""Zarr v3 array and group specs: the fields of ``zarr.json``.

Zarr v3 documents carry ``node_type``, so arrays and groups form a tagged union that msgspec
decodes natively (no dispatch on keys, unlike v2).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, Literal, Self, TypeVar

import msgspec

from cellmap_schemas.base import SCHEMA, Base, NonNegativeInt, enforce_rules
from cellmap_schemas.rules import Problem, define
from cellmap_schemas.spec.zarr_v2 import _ArrayIO, _GroupIO

__all__ = ["ArraySpecV3", "GroupSpecV3", "NamedConfig", "NodeV3"]

TAttr = TypeVar("TAttr")

NamedConfig = dict[str, Any]
"""A ``{"name": ..., "configuration": {...}}`` object (codecs, chunk grids, key encodings)."""

_SPEC_V3 = "Zarr v3 core specification, array metadata (zarr-specs docs/v3/core)"
CHUNK_GRID = define("ZARR010", "error", "an array names its chunk grid", _SPEC_V3)
CHUNK_SHAPE_RANK = define(
    "ZARR011", "error", "a regular chunk grid's chunk_shape has one entry per dimension", _SPEC_V3
)
DIMENSION_NAMES_RANK = define(
    "ZARR012", "error", "dimension_names has one entry per dimension", _SPEC_V3
)
CODEC_NAMED = define("ZARR013", "error", "every codec has a name", _SPEC_V3)
UNKNOWN_CODEC_V3 = define(
    "ZARR014",
    "error",
    "every codec is one the Zarr v3 specification or its registered extensions define",
    "Zarr v3 core specification, codecs: an implementation MUST fail on an unknown codec",
)
KNOWN_V3_CODECS = frozenset(
    (
        "bytes", "transpose", "gzip", "blosc", "zstd", "crc32c", "sharding_indexed",
        "vlen-utf8", "vlen-bytes", "numcodecs.zlib", "numcodecs.bz2", "numcodecs.lzma",
        "numcodecs.lz4", "numcodecs.shuffle", "numcodecs.delta", "numcodecs.crc32",
        "numcodecs.adler32", "numcodecs.fletcher32", "numcodecs.jenkins_lookup3",
        "numcodecs.fixedscaleoffset", "numcodecs.quantize", "numcodecs.bitround",
        "numcodecs.packbits", "numcodecs.pcodec", "numcodecs.zfpy", "numcodecs.astype",
    )
)  # fmt: skip


def _named(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        name = value.get("name")
        return name if isinstance(name, str) else None
    return None


class ArraySpecV3(
    Base, _ArrayIO, Generic[TAttr], frozen=True, kw_only=True, tag_field="node_type", tag="array"
):
    """A Zarr v3 array: the fields of its ``zarr.json`` (``node_type`` is the tag)."""

    _schema_rule = SCHEMA

    zarr_format: Literal[3] = 3
    attributes: TAttr = {}  # type: ignore[assignment]
    shape: tuple[NonNegativeInt, ...]
    data_type: str | NamedConfig
    chunk_grid: NamedConfig
    chunk_key_encoding: NamedConfig = msgspec.field(
        default_factory=lambda: {"name": "default", "configuration": {"separator": "/"}}
    )
    fill_value: Any = 0
    codecs: tuple[NamedConfig, ...] = ({"name": "bytes", "configuration": {"endian": "little"}},)
    storage_transformers: tuple[NamedConfig, ...] = ()
    dimension_names: tuple[str | None, ...] | None = None

    def _problems(self) -> Iterator[Problem]:
        if _named(self.chunk_grid) is None:
            yield CHUNK_GRID("chunk_grid", "must name a chunk grid")
        elif self.chunk_grid.get("name") == "regular":
            config = self.chunk_grid.get("configuration")
            shape = config.get("chunk_shape") if isinstance(config, Mapping) else None
            if not isinstance(shape, list | tuple) or len(shape) != len(self.shape):
                yield CHUNK_SHAPE_RANK(
                    "chunk_grid.configuration.chunk_shape",
                    f"must have one entry per dimension ({len(self.shape)})",
                )
        if self.dimension_names is not None and len(self.dimension_names) != len(self.shape):
            yield DIMENSION_NAMES_RANK(
                "dimension_names",
                f"has {len(self.dimension_names)} entries but shape has {len(self.shape)}",
            )
        for i, codec in enumerate(self.codecs):
            name = _named(codec)
            if name is None:
                yield CODEC_NAMED(f"codecs[{i}]", "must have a `name`")
            elif name not in KNOWN_V3_CODECS:
                yield UNKNOWN_CODEC_V3(f"codecs[{i}].name", f"{name!r} is not a known codec")

    def __post_init__(self) -> None:
        enforce_rules(self)

    @property
    def chunks(self) -> tuple[int, ...]:
        """The chunk shape of a regular chunk grid (the read chunk, for sharded arrays)."""
        return tuple(self.chunk_grid.get("configuration", {}).get("chunk_shape", ()))

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        chunks: Literal["auto"] | tuple[int, ...] = "auto",
        attributes: Any = None,
        fill_value: Any = "auto",
        codecs: tuple[NamedConfig, ...] | None = None,
        dimension_names: tuple[str | None, ...] | None = None,
    ) -> Self:
        """The v3 spec of an array-like, with a regular chunk grid.

        ``fill_value="auto"`` is the array's own fill value if it has one, else zero of the
        array's type (``false`` for booleans: Zarr v3 readers refuse ``0`` there).
        """
        import numpy as np

        from cellmap_schemas.base import auto_chunks

        dtype = np.dtype(array.dtype)
        shape = tuple(int(s) for s in array.shape)
        if chunks == "auto":
            chunks = auto_chunks(shape, dtype.itemsize)
        endian = "big" if dtype.byteorder == ">" else "little"
        if isinstance(fill_value, str) and fill_value == "auto":
            own = getattr(array, "fill_value", None)
            fill_value = own if own is not None else dtype.type(0)
            if isinstance(fill_value, np.generic):
                fill_value = fill_value.item()
        return cls(
            attributes={} if attributes is None else attributes,
            shape=shape,
            data_type=dtype.name,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            fill_value=fill_value,
            codecs=codecs or ({"name": "bytes", "configuration": {"endian": endian}},),
            dimension_names=dimension_names,
        )

    def to_document(self) -> dict[str, Any]:
        """The ``zarr.json`` document of this spec."""
        doc: dict[str, Any] = msgspec.to_builtins(self)
        return doc


class GroupSpecV3(
    Base, _GroupIO, Generic[TAttr], frozen=True, kw_only=True, tag_field="node_type", tag="group"
):
    """A Zarr v3 group: ``zarr.json`` attributes plus members (arrays or groups)."""

    _schema_rule = SCHEMA

    zarr_format: Literal[3] = 3
    attributes: TAttr = {}  # type: ignore[assignment]
    members: dict[str, NodeV3] = {}

    def to_document(self) -> dict[str, Any]:
        """The ``zarr.json`` document of this group (members are separate documents)."""
        doc: dict[str, Any] = msgspec.to_builtins(self)
        doc.pop("members")
        return doc


NodeV3 = ArraySpecV3[Any] | GroupSpecV3[Any]
"""A v3 array or group, told apart by ``node_type``."""
