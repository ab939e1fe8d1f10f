"""Can Neuroglancer open this multiscale group? Checks taken from its N5 and OME-Zarr readers.

A document can be valid by its own specification and still fail in Neuroglancer, whose readers
accept a subset: fewer data types and codecs, units spelt one particular way, OME-NGFF 0.5 only
on Zarr v3. Each rule below names the Neuroglancer source file that decides it (google/neuroglancer
at commit c0f79b1, August 2026); the list with quotes is in ``docs/cross-level-rules.md``.

Like :mod:`cellmap_schemas.multiscale.pyramid` these are pure functions of spec dicts (as
``read_tree`` builds them): N5 groups (arrays in their Zarr v2 view), Zarr v2 groups with
OME-NGFF 0.4 and Zarr v3 groups with OME-NGFF 0.5. Missing or malformed inputs skip a check.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from cellmap_schemas.base import Base
from cellmap_schemas.formats import Format
from cellmap_schemas.multiscale._pyramid_fast import _get  # the tolerant reader of spec dicts
from cellmap_schemas.rules import Problem, define

__all__ = ["Multiscale", "neuroglancer_problems"]


_NG = "google/neuroglancer@c0f79b1 "
_N5 = f"{_NG}src/datasource/n5/frontend.ts"
_OME = f"{_NG}src/datasource/zarr/ome.ts"
_ZARR = f"{_NG}src/datasource/zarr/metadata/parse.ts"
_ZARR_FRONT = f"{_NG}src/datasource/zarr/frontend.ts (resolveOmeMultiscale)"

NGL_DTYPE = define(
    "NGL001",
    "error",
    "data type Neuroglancer reads: uint8, int8, uint16, int16, uint32, int32, uint64, float32",
    f"{_NG}src/util/data_type.ts (enum DataType), src/util/numpy_dtype.ts, {_N5} "
    "(parseScaleMetadata: verifyEnumString(dataType, DataType)), "
    "src/datasource/zarr/metadata/parse.ts (parseV3Metadata)",
)
NGL_INT64 = define(
    "NGL002",
    "warning",
    "Zarr v2 int64 is read as uint64 (negative values show as huge positive ones)",
    f'{_NG}src/util/numpy_dtype.ts ("treat both signed and unsigned integer types as '
    'unsigned": <i8 and <u8 are both DataType.UINT64)',
)
NGL_N5_COMPRESSION = define(
    "NGL003",
    "error",
    "N5 compression Neuroglancer decodes: raw, gzip (or useZlib), blosc, zstd",
    f"{_NG}src/datasource/n5/base.ts (enum VolumeChunkEncoding), {_N5} (parseScaleMetadata)",
)
NGL_ZARR2_COMPRESSOR = define(
    "NGL004",
    "error",
    "Zarr v2 compressor Neuroglancer decodes: null, blosc, zlib, gzip, zstd",
    f"{_ZARR} (parseV2Metadata: 'Unsupported compressor')",
)
NGL_ZARR3_CODECS = define(
    "NGL005",
    "error",
    "Zarr v3 codecs Neuroglancer decodes: bytes, transpose, blosc, gzip, zlib, zstd, crc32c, "
    "sharding_indexed",
    f"{_NG}src/datasource/zarr/codec/*/resolve.ts (registerCodec)",
)
NGL_ZARR2_FILTERS = define(
    "NGL006",
    "error",
    "no Zarr v2 filters: Neuroglancer never reads `filters` and would show undecoded values",
    f"{_ZARR} (parseV2Metadata builds the codec chain from order and compressor only)",
)
NGL_OME_UNITS = define(
    "NGL007",
    "error",
    "OME axis units are long names Neuroglancer knows (nanometer, not nm)",
    f"{_OME} (OME_UNITS; parseOmeAxis: 'Unsupported unit')",
)
NGL_N5_UNITS = define(
    "NGL008",
    "error",
    "N5 units are SI symbols Neuroglancer knows (nm, not nanometer)",
    f"{_NG}src/util/si_units.ts (supportedUnits, unitFromJson), {_N5} (getMultiscaleMetadata)",
)
NGL_OME_VERSION = define(
    "NGL009",
    "error",
    "OME-NGFF version Neuroglancer supports for the Zarr version (0.5 only on Zarr v3)",
    f"{_OME} (SUPPORTED_OME_MULTISCALE_VERSIONS, parseOmeMetadata)",
)
NGL_RANK = define(
    "NGL010",
    "error",
    "one rank across the multiscale attributes and every level's array",
    f"{_N5} (verifyRank: 'Rank mismatch'), {_OME} (parseFixedLengthArray of scale / "
    f"translation), {_ZARR_FRONT}",
)
NGL_DTYPE_LEVELS = define(
    "NGL011",
    "error",
    "every level has the data type of the first",
    f"{_N5} (MultiscaleVolumeChunkSource: 'Scale s{{i}} has data type ...'), {_ZARR_FRONT}",
)
NGL_N5_LISTING = define(
    "NGL012",
    "warning",
    "an N5 multiscale group declares `scales` (or per-level `downsamplingFactors` lists), so "
    "Neuroglancer need not list the directory",
    f"{_N5} (getMultiscaleMetadata -> findScaleDirectories lists the group's directory)",
)
NGL_N5_FACTORS = define(
    "NGL013",
    "error",
    "without group `scales`, every level but s0 has `downsamplingFactors`",
    f"{_N5} (parseScaleMetadata: 'Expected downsamplingFactors attribute')",
)
NGL_N5_EMPTY = define(
    "NGL014",
    "error",
    "N5 array dimensions are positive (Neuroglancer refuses a zero-length axis)",
    f"{_N5} (parseScaleMetadata: dimensions parsed with verifyPositiveInt)",
)

# ---- what the readers accept ------------------------------------------------------------------
_DTYPE_NAMES = {
    "|u1": "uint8",
    "|i1": "int8",
    "<u2": "uint16",
    "<i2": "int16",
    "<u4": "uint32",
    "<i4": "int32",
    "<u8": "uint64",
    "<i8": "int64",
    "<f4": "float32",
    "<f8": "float64",
}
_N5_DTYPES = frozenset({"|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<f4"})
"""The Zarr v2 views of N5's dataTypes in data_type.ts's DataType enum (no int64, float64)."""
_ZARR2_DTYPES = frozenset(
    {"|u1", "|i1"} | {f"{e}{t}" for e in "<>" for t in ("u2", "i2", "u4", "i4", "f4", "u8", "i8")}
)
"""numpy_dtype.ts: the only dtype strings parseNumpyDtype knows."""
_ZARR3_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32"}
)
_N5_CODECS = {None: "raw", "gzip": "gzip", "zlib": "gzip (useZlib)", "blosc": "blosc"}
_N5_CODECS["zstd"] = "zstd"
_N5_NAMES = {"bz2": "bzip2", "lzma": "xz", "lz4": "lz4"}
_ZARR2_CODECS = frozenset({"blosc", "zlib", "gzip", "zstd"})
_ZARR3_CODECS = frozenset(
    {"bytes", "transpose", "blosc", "gzip", "zlib", "zstd", "crc32c", "sharding_indexed"}
)

_SHORT_PREFIXES: tuple[str, ...] = ("u", "Y", "Z", "E", "P", "T", "G", "M", "k", "", "m", "\u00b5")
_SHORT_PREFIXES += ("n", "p", "f", "a", "z", "y", "h", "da", "d", "c")
_N5_UNITS = frozenset(
    {""} | {f"{p}{u}" for p in _SHORT_PREFIXES for u in ("m", "s", "Hz", "rad/s")}
)
"""si_units.ts supportedUnits: what unitFromJson accepts (N5 ``units``, ``pixelResolution``)."""

_LONG_PREFIXES: tuple[str, ...] = (
    "yotta",
    "zetta",
    "exa",
    "peta",
    "tera",
    "giga",
    "mega",
    "kilo",
    "",
)
_LONG_PREFIXES += ("milli", "micro", "nano", "pico", "femto", "atto", "zepto", "yocto")
_LONG_PREFIXES += ("hecto", "deca", "deci", "centi")
_OME_UNITS = frozenset(
    {"angstrom", "foot", "inch", "mile", "parsec", "yard", "minute", "hour", "day"}
    | {f"{p}{u}" for p in _LONG_PREFIXES for u in ("meter", "second")}
)
"""ome.ts OME_UNITS: what parseOmeAxis accepts."""

_SUPPORTED_OME = ("0.4", "0.5-dev", "0.5", "0.6.dev1", "0.6.dev3", "0.6")
_OME_ON_V2 = ("0.4", "0.5-dev")

_LONG_OF = {
    "nm": "nanometer",
    "um": "micrometer",
    "\u00b5m": "micrometer",
    "mm": "millimeter",
    "m": "meter",
    "pm": "picometer",
    "s": "second",
    "ms": "millisecond",
    "us": "microsecond",
    "ns": "nanosecond",
}
_SHORT_OF = {v: k for k, v in _LONG_OF.items() if k != "\u00b5m"}
_SHORT_OF |= {"micron": "um", "microns": "um", "angstrom": "(no SI symbol; use 0.1 nm)"}

_LEVEL_NAME = re.compile(r"^s(0|[1-9][0-9]*)$")


# ---- helpers ---------------------------------------------------------------------------------
def _member(spec: Mapping[str, Any], path: Any) -> tuple[Mapping[str, Any] | None, str]:
    if not isinstance(path, str):
        return None, "members"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    node: Any = spec
    for part in parts:
        node = _get(node, "members", part)
    is_array = isinstance(node, Mapping) and "shape" in node and "members" not in node
    return (node if is_array and parts else None), ".".join(["members", *parts])


def _hint(unit: str, table: Mapping[str, str]) -> str:
    better = table.get(unit) or table.get(unit.lower())
    return f" (write {better!r})" if better else ""


# ---- entry point -------------------------------------------------------------------------------
def neuroglancer_problems(spec: Mapping[str, Any], fmt: Format) -> Iterator[Problem]:
    """Why Neuroglancer would fail to open (or misread) a multiscale group (rules ``NGL``).

    ``spec`` is the group's spec dict with its members; ``fmt`` is how it is stored. N5 groups
    are read the way Neuroglancer's N5 source reads them (``scales`` / ``downsamplingFactors``,
    ``pixelResolution``, ``units``); Zarr groups through their OME-NGFF ``multiscales``.
    """
    if not isinstance(spec, Mapping):
        return
    try:
        if fmt == "n5":
            yield from _n5_problems(spec)
        elif fmt in ("zarr2", "zarr3"):
            yield from _ome_problems(spec, fmt)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return


# ---- N5 ----------------------------------------------------------------------------------------
def _n5_problems(spec: Mapping[str, Any]) -> Iterator[Problem]:
    attrs = spec.get("attributes")
    attrs = attrs if isinstance(attrs, Mapping) else {}
    yield from _n5_units(attrs)
    rank, rank_key = yield from _n5_rank(attrs)
    scales = attrs.get("scales")
    factors = attrs.get("downsamplingFactors")
    multi = isinstance(factors, list) and bool(factors) and isinstance(factors[0], list)
    listed = False
    if isinstance(scales, list) and scales:
        names = [f"s{i}" for i in range(len(scales))]
    elif multi and isinstance(factors, list):
        names = [f"s{i}" for i in range(len(factors))]
    else:
        if "dimensions" in attrs:
            return  # a single-resolution array, not a group
        members = spec.get("members")
        found = sorted(
            (int(m.group(1)), n)
            for n in (members if isinstance(members, Mapping) else {})
            if (m := _LEVEL_NAME.match(n))
        )
        names = [n for _, n in found]
        listed = True
        if names:
            yield NGL_N5_LISTING(
                "attributes.scales",
                f"missing: Neuroglancer must list the group's directory to find {names[0]}"
                f"..{names[-1]}, which only works on a store it can list; give `scales` (one "
                "downsampling factor list per level, x first)",
            )
    first: tuple[str, Any] | None = None
    for i, name in enumerate(names):
        node, loc = _member(spec, name)
        if node is None:
            continue
        dtype = node.get("dtype")
        yield from _n5_array(node, loc, name, rank, rank_key)
        if (
            listed
            and i > 0
            and not isinstance(_get(node, "attributes", "downsamplingFactors"), list)
        ):
            yield NGL_N5_FACTORS(
                f"{loc}.attributes.downsamplingFactors",
                f"{name}: missing, and the group has no `scales`: Neuroglancer cannot place "
                f"{name} relative to {names[0]}",
            )
        if first is None:
            first = (name, dtype)
        elif dtype != first[1] and isinstance(dtype, str) and isinstance(first[1], str):
            yield NGL_DTYPE_LEVELS(
                f"{loc}.dtype",
                f"{name}: data type {_DTYPE_NAMES.get(dtype, dtype)} differs from {first[0]}'s "
                f"{_DTYPE_NAMES.get(first[1], first[1])}; Neuroglancer refuses mixed levels",
            )


def _n5_units(attrs: Mapping[str, Any]) -> Iterator[Problem]:
    units = attrs.get("units")
    for k, u in enumerate(units if isinstance(units, list) else []):
        if isinstance(u, str) and u not in _N5_UNITS:
            yield NGL_N5_UNITS(
                f"attributes.units[{k}]",
                f"{u!r} is not a unit Neuroglancer's N5 reader knows{_hint(u, _SHORT_OF)}",
            )
    unit = _get(attrs, "pixelResolution", "unit")
    if isinstance(unit, str) and unit not in _N5_UNITS:
        yield NGL_N5_UNITS(
            "attributes.pixelResolution.unit",
            f"{unit!r} is not a unit Neuroglancer's N5 reader knows{_hint(unit, _SHORT_OF)}",
        )


def _n5_rank(attrs: Mapping[str, Any]) -> Generator[Problem, None, tuple[int | None, str]]:
    """Yield rank mismatches among the group keys Neuroglancer reads; return (rank, key)."""
    entries: list[tuple[str, Any]] = [
        ("resolution", attrs.get("resolution")),
        ("axes", attrs.get("axes")),
        ("units", attrs.get("units")),
    ]
    factors = attrs.get("downsamplingFactors")
    if isinstance(factors, list) and factors and isinstance(factors[0], list):
        entries += [(f"downsamplingFactors[{i}]", f) for i, f in enumerate(factors)]
    else:
        entries.append(("downsamplingFactors", factors))
    entries.append(("pixelResolution.dimensions", _get(attrs, "pixelResolution", "dimensions")))
    scales = attrs.get("scales")
    if isinstance(scales, list):
        entries += [(f"scales[{i}]", s) for i, s in enumerate(scales)]
    rank: int | None = None
    rank_key = ""
    for key, value in entries:
        if not isinstance(value, list):
            continue
        if rank is None:
            rank, rank_key = len(value), key
        elif len(value) != rank:
            yield NGL_RANK(
                f"attributes.{key}",
                f"has {len(value)} entries but attributes.{rank_key} has {rank}: Neuroglancer "
                "stops with 'Rank mismatch'",
            )
    return rank, rank_key


def _n5_array(
    node: Mapping[str, Any], loc: str, name: str, rank: int | None, rank_key: str
) -> Iterator[Problem]:
    dtype = node.get("dtype")
    if isinstance(dtype, str) and dtype not in _N5_DTYPES:
        yield NGL_DTYPE(
            f"{loc}.dtype",
            f"{name}: dataType {_DTYPE_NAMES.get(dtype, dtype)} is not one Neuroglancer reads "
            "(uint8, int8, uint16, int16, uint32, int32, uint64, float32)",
        )
    comp = node.get("compressor", None)
    cid = comp.get("id") if isinstance(comp, Mapping) else comp
    if (comp is None or isinstance(cid, str)) and cid not in _N5_CODECS:
        yield NGL_N5_COMPRESSION(
            f"{loc}.compressor",
            f"{name}: compression {_N5_NAMES.get(str(cid), cid)!r} is not one Neuroglancer's N5 "
            "reader decodes (raw, gzip, blosc, zstd)",
        )
    shape = node.get("shape")
    if isinstance(shape, list):
        if rank is not None and len(shape) != rank:
            yield NGL_RANK(
                f"{loc}.shape",
                f"{name}: has {len(shape)} dimensions but the group's attributes.{rank_key} has "
                f"{rank} entries",
            )
        if any(isinstance(n, int) and n == 0 for n in shape):
            yield NGL_N5_EMPTY(
                f"{loc}.shape",
                f"{name}: dimensions {shape[::-1]} (x first) have a zero; Neuroglancer refuses it",
            )


# ---- OME-Zarr ----------------------------------------------------------------------------------
def _ome_problems(spec: Mapping[str, Any], fmt: Format) -> Iterator[Problem]:
    attrs = spec.get("attributes")
    attrs = attrs if isinstance(attrs, Mapping) else {}
    ome = attrs.get("ome")
    meta = ome if isinstance(ome, Mapping) else attrs
    root = "attributes.ome" if meta is ome else "attributes"
    multiscales = meta.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        return
    ms = multiscales[0]
    if not isinstance(ms, Mapping):
        return
    msloc = f"{root}.multiscales[0]"
    version = _get(ome, "version") if isinstance(ome, Mapping) else None
    vloc = f"{root}.version"
    if version is None:
        version, vloc = ms.get("version"), f"{msloc}.version"
    if version is None:
        yield NGL_OME_VERSION(
            vloc,
            "missing: without a version Neuroglancer ignores the OME metadata and cannot open "
            "the group as an image",
        )
    elif version not in _SUPPORTED_OME:
        yield NGL_OME_VERSION(
            vloc,
            f"{version!r} is not a version Neuroglancer supports ({', '.join(_SUPPORTED_OME)})",
        )
    elif version not in _OME_ON_V2 and fmt != "zarr3":
        yield NGL_OME_VERSION(
            vloc,
            f"OME-NGFF {version} on Zarr v2: Neuroglancer reads only 0.4 (or 0.5-dev) on Zarr v2 "
            "('is not supported for zarr v2'); store it as Zarr v3",
        )
    axes = ms.get("axes")
    axes = axes if isinstance(axes, list) else None
    for k, ax in enumerate(axes or []):
        unit = _get(ax, "unit")
        if isinstance(unit, str) and unit not in _OME_UNITS:
            yield NGL_OME_UNITS(
                f"{msloc}.axes[{k}].unit",
                f"{unit!r} is not a unit Neuroglancer's OME reader knows{_hint(unit, _LONG_OF)}",
            )
    rank = len(axes) if axes is not None else None
    datasets = ms.get("datasets")
    first: tuple[str, Any] | None = None
    for j, ds in enumerate(datasets if isinstance(datasets, list) else []):
        if not isinstance(ds, Mapping):
            continue
        path = ds.get("path")
        dsloc = f"{msloc}.datasets[{j}]"
        if rank is not None:
            yield from _transform_ranks(ds, dsloc, path, rank)
        node, loc = _member(spec, path)
        if node is None:
            continue
        yield from _zarr_array(node, loc, str(path), fmt, rank)
        dtype = node.get("data_type" if fmt == "zarr3" else "dtype")
        if first is None:
            first = (str(path), dtype)
        elif dtype != first[1] and dtype is not None and first[1] is not None:
            key = "data_type" if fmt == "zarr3" else "dtype"
            yield NGL_DTYPE_LEVELS(
                f"{loc}.{key}",
                f"{path}: data type {dtype!r} differs from {first[0]}'s {first[1]!r}; Neuroglancer "
                "refuses mixed levels",
            )


def _transform_ranks(ds: Mapping[str, Any], dsloc: str, path: Any, rank: int) -> Iterator[Problem]:
    transforms = ds.get("coordinateTransformations")
    for k, t in enumerate(transforms if isinstance(transforms, list) else []):
        for key in ("scale", "translation"):
            v = _get(t, key)
            if isinstance(v, list) and len(v) != rank:
                yield NGL_RANK(
                    f"{dsloc}.coordinateTransformations[{k}].{key}",
                    f"{path}: {key} has {len(v)} entries but the multiscale has {rank} axes",
                )


def _zarr_array(
    node: Mapping[str, Any], loc: str, name: str, fmt: Format, rank: int | None
) -> Iterator[Problem]:
    shape = node.get("shape")
    if rank is not None and isinstance(shape, list) and len(shape) != rank:
        yield NGL_RANK(
            f"{loc}.shape",
            f"{name}: has {len(shape)} dimensions but the multiscale has {rank} axes",
        )
    if fmt == "zarr3":
        dtype = node.get("data_type")
        if dtype is not None and dtype not in _ZARR3_DTYPES:
            yield NGL_DTYPE(
                f"{loc}.data_type",
                f"{name}: {dtype!r} is not a data type Neuroglancer reads "
                f"({', '.join(sorted(_ZARR3_DTYPES))})",
            )
        yield from _codecs(node.get("codecs"), f"{loc}.codecs", name)
        return
    dtype = node.get("dtype")
    if isinstance(dtype, str) and dtype not in _ZARR2_DTYPES:
        yield NGL_DTYPE(
            f"{loc}.dtype",
            f"{name}: {dtype!r} is not a dtype Neuroglancer reads (|u1, |i1, u2, i2, u4, i4, u8, "
            "i8, f4; no f8, bool or structured types)",
        )
    elif isinstance(dtype, str) and dtype[1:] == "i8":
        yield NGL_INT64(
            f"{loc}.dtype",
            f"{name}: {dtype!r} (int64) is shown as uint64 by Neuroglancer; negative values "
            "appear as huge positive ones",
        )
    comp = node.get("compressor")
    cid = comp.get("id") if isinstance(comp, Mapping) else None
    if comp is not None and cid not in _ZARR2_CODECS:
        yield NGL_ZARR2_COMPRESSOR(
            f"{loc}.compressor",
            f"{name}: compressor {cid!r} is not one Neuroglancer decodes (blosc, zlib, gzip, "
            "zstd, or none)",
        )
    filters = node.get("filters")
    if isinstance(filters, list) and filters:
        ids = [_get(f, "id") for f in filters]
        yield NGL_ZARR2_FILTERS(
            f"{loc}.filters",
            f"{name}: filters {ids} are ignored by Neuroglancer, which would show the "
            "filtered values",
        )


def _codecs(codecs: Any, loc: str, name: str) -> Iterator[Problem]:
    for k, c in enumerate(codecs if isinstance(codecs, list) else []):
        cname = c if isinstance(c, str) else _get(c, "name")
        if not isinstance(cname, str):
            continue
        if cname not in _ZARR3_CODECS:
            yield NGL_ZARR3_CODECS(
                f"{loc}[{k}]",
                f"{name}: codec {cname!r} is not one Neuroglancer decodes "
                f"({', '.join(sorted(_ZARR3_CODECS))})",
            )
        elif cname == "sharding_indexed":
            for key in ("codecs", "index_codecs"):
                inner = _get(c, "configuration", key)
                yield from _codecs(inner, f"{loc}[{k}].configuration.{key}", name)


class Multiscale(Base, frozen=True, kw_only=True):
    """The Neuroglancer readability profile of a multiscale group (N5, OME-Zarr 0.4 / 0.5).

    A model without a document schema of its own: every verdict comes from
    :func:`neuroglancer_problems`, which the engine runs on the group's spec dict. Registered as
    ``neuroglancer.Multiscale`` and judged only when asked for (``--model``), since a pyramid can
    follow its own convention and still use what Neuroglancer does not read.
    """

    attributes: dict[str, Any] = {}
    members: dict[str, Any] = {}

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return neuroglancer_problems(spec, fmt)  # type: ignore[arg-type]
