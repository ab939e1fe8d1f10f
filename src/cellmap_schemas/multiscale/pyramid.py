"""Cross-level rules of a multiscale pyramid: what no single document can check alone.

The per-document models check that each level's metadata is well formed; these rules check that
the levels form a pyramid: every level has the shape its downsampling factor implies, the levels
run finest to coarsest, share rank and data type, the factors agree with the transforms, and the
coarser levels are offset by half a voxel the way Cellmap's tools (and Neuroglancer) place them.

Everything here is a pure function of spec dicts (the ``parse_node`` / ``read_tree`` shapes): no
I/O, no models. The functions run on documents that may have failed the per-document rules, so a
check whose inputs are missing or malformed is skipped, never raised on. Rules are in
``docs/cross-level-rules.md``.

Axis order: every vector below is put in the order of the array's ``shape`` (C order in the Zarr
views). N5 attributes (``scales``, ``pixelResolution``, ``downsamplingFactors``) are in F order and
are reversed; COSEM transforms are reversed when their ``order`` is ``"F"``; OME-NGFF vectors are
already in array order.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import isclose
from typing import Any, Literal

from cellmap_schemas.formats import Format
from cellmap_schemas.rules import Problem, define

__all__ = [
    "CROP_GRID",
    "PYR_DTYPE",
    "PYR_FACTOR_TRANSFORM",
    "PYR_HALF_VOXEL",
    "PYR_ORDER",
    "PYR_RANK",
    "PYR_SHAPE",
    "crop_grid_problems",
    "pyramid_ok",
    "pyramid_problems",
    "worded_pyramid_problems",
]

Convention = Literal["neuroglancer_n5", "cosem", "ome_ngff"]

_NG_SOURCE = "google/neuroglancer src/datasource/n5/frontend.ts (scales: per-level downsampling)"
_OME_SOURCE = "OME-NGFF 0.4 / 0.5 #multiscale-md (datasets: resolution levels, scale per level)"
_HALF_SOURCE = (
    "JaneliaSciComp/xarray-multiscale src/xarray_multiscale/multiscale.py "
    "(get_downsampled_offset: (factor - 1) / 2 voxels); google/neuroglancer "
    "src/datasource/zarr/ome.ts (the origin of a voxel is its center)"
)

PYR_SHAPE = define(
    "PYR001",
    "error",
    "each level's shape is level 0's shape divided by its factor, rounded down or up",
    f"{_NG_SOURCE}; {_OME_SOURCE}; xarray-multiscale trims (floor) or pads (ceil)",
)
PYR_ORDER = define(
    "PYR002",
    "error",
    "levels run finest to coarsest: no level is larger than the one before on any axis",
    'OME-NGFF #multiscale-md: "The paths MUST be ordered from largest (i.e. highest '
    'resolution) to smallest"',
)
PYR_RANK = define(
    "PYR003",
    "error",
    "every level has the rank of level 0",
    'OME-NGFF #multiscale-md: "Each dataset ... MUST have the same number of dimensions"; '
    "google/neuroglancer src/datasource/zarr/frontend.ts (resolveOmeMultiscale)",
)
PYR_DTYPE = define(
    "PYR004",
    "error",
    "every level has the data type of level 0",
    "google/neuroglancer src/datasource/n5/frontend.ts (MultiscaleVolumeChunkSource: "
    "'Scale s{i} has data type ...'), src/datasource/zarr/frontend.ts (resolveOmeMultiscale)",
)
PYR_FACTOR_TRANSFORM = define(
    "PYR005",
    "error",
    "declared factors agree with the spacing: scale_i == scale_0 * factor_i "
    "(COSEM transform.scale, N5 pixelResolution)",
    "janelia-cellmap cosem / neuroglancer_n5 conventions (multiscale.cosem, "
    "multiscale.neuroglancer_n5): scales are the ratios of the levels' spacings",
)
PYR_HALF_VOXEL = define(
    "PYR006",
    "warning",
    "coarser levels are offset by half a voxel: translate_i == translate_0 + "
    "(scale_i - scale_0) / 2",
    _HALF_SOURCE,
)
CROP_GRID = define(
    "CROP101",
    "error",
    "a crop's voxels lie on the grid of the image's s0 (voxel corners on image voxel corners)",
    f"Cellmap half-voxel convention ({_HALF_SOURCE}); janelia-cellmap annotation crops",
)

_REL_TOL = 1e-6
"""Relative tolerance for spacings and offsets: decimal spacings carry float noise
(``5.24 * 4 == 20.96``, ``7.860000000000001``), real mismatches are far larger."""

_GRID_TOL = 1e-4
"""Tolerance, in image voxels, for a crop's offset to count as on the grid."""


@dataclass(frozen=True, slots=True)
class _Level:
    """One level as the rules see it; every vector in array (``shape``) order, or ``None``."""

    name: str
    loc: str
    shape: tuple[int, ...] | None
    dtype: Any
    factor: tuple[float, ...] | None
    factor_loc: str
    scale: tuple[float, ...] | None
    scale_loc: str
    translate: tuple[float, ...] | None
    translate_loc: str


# ---- tolerant readers ------------------------------------------------------------------------
def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


_NUMBER_TYPES = frozenset({float, int})


def _vec(x: Any) -> tuple[float, ...] | None:
    """A list of finite numbers, or ``None``."""
    if not isinstance(x, list | tuple):
        return None
    if not _NUMBER_TYPES.issuperset(map(type, x)):  # decoded JSON: plain floats and ints
        out = tuple(_num(v) for v in x)  # (a bool is no number here)
        return None if any(v is None for v in out) else out  # type: ignore[return-value]
    vec = tuple(map(float, x))
    return vec if all(map(math.isfinite, vec)) else None


def _ints(x: Any) -> tuple[int, ...] | None:
    if not isinstance(x, list | tuple):
        return None
    for v in x:
        if type(v) is not int or v < 0:
            return None
    return tuple(x)


def _rev(v: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return None if v is None else v[::-1]


def _get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(d, Mapping):
            d = d.get(k)
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return None
    return d


def _member(spec: Mapping[str, Any], path: Any) -> tuple[Mapping[str, Any] | None, str]:
    """The member at a (possibly nested) relative path and its ``members.a.b`` location."""
    if not isinstance(path, str):
        return None, "members"
    if "/" not in path and path not in ("", "."):  # the common case: a direct member
        members = spec.get("members")
        direct = members.get(path) if isinstance(members, Mapping) else None
        return (direct if isinstance(direct, Mapping) else None), f"members.{path}"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    node: Any = spec
    for part in parts:
        node = _get(node, "members", part)
    loc = ".".join(["members", *parts])
    return (node if isinstance(node, Mapping) and parts else None), loc


def _is_array(node: Mapping[str, Any] | None) -> bool:
    return node is not None and "shape" in node and "members" not in node


def _dtype(node: Mapping[str, Any] | None, fmt: Format) -> Any:
    if node is None:
        return None
    return node.get("data_type") if fmt == "zarr3" else node.get("dtype")


def _fmt(v: Sequence[float] | None) -> str:
    if v is None:
        return "?"
    parts = [str(int(x)) if float(x).is_integer() else repr(x) for x in v]
    return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"


_LEVEL_NAME = re.compile(r"^s(0|[1-9][0-9]*)$")


# ---- levels by convention --------------------------------------------------------------------
def _array_level(
    spec: Mapping[str, Any],
    path: Any,
    fmt: Format,
    *,
    factor: tuple[float, ...] | None,
    factor_loc: str,
    scale: tuple[float, ...] | None = None,
    scale_loc: str = "",
    translate: tuple[float, ...] | None = None,
    translate_loc: str = "",
) -> _Level:
    node, loc = _member(spec, path)
    array = node if _is_array(node) else None
    return _Level(
        name=path if isinstance(path, str) else "?",
        loc=loc,
        shape=_ints(array.get("shape")) if array is not None else None,
        dtype=_dtype(array, fmt),
        factor=factor,
        factor_loc=factor_loc,
        scale=scale,
        scale_loc=scale_loc,
        translate=translate,
        translate_loc=translate_loc,
    )


def _neuroglancer_levels(spec: Mapping[str, Any], fmt: Format) -> list[_Level]:
    attrs = spec.get("attributes")
    attrs = attrs if isinstance(attrs, Mapping) else {}
    scales = attrs.get("scales")
    levels: list[_Level] = []
    if isinstance(scales, list) and scales:
        names = [f"s{i}" for i in range(len(scales))]
        factors = [(_rev(_vec(s)), f"attributes.scales[{i}]") for i, s in enumerate(scales)]
    else:  # Neuroglancer's other layout: arrays s0, s1, ... each with downsamplingFactors
        members = spec.get("members")
        found = sorted(
            (int(m.group(1)), name)
            for name in (members if isinstance(members, Mapping) else {})
            if (m := _LEVEL_NAME.match(name))
        )
        names = [name for _, name in found]
        factors = []
        for i, name in enumerate(names):
            node, loc = _member(spec, name)
            f = _rev(_vec(_get(node, "attributes", "downsamplingFactors")))
            if f is None and i == 0 and node is not None:
                f = (1.0,) * len(_ints(node.get("shape")) or ())
            factors.append((f, f"{loc}.attributes.downsamplingFactors"))
    for name, (factor, floc) in zip(names, factors, strict=True):
        node, loc = _member(spec, name)
        pixr = _rev(_vec(_get(node, "attributes", "pixelResolution", "dimensions")))
        levels.append(
            _array_level(
                spec,
                name,
                fmt,
                factor=factor,
                factor_loc=floc,
                scale=pixr,
                scale_loc=f"{loc}.attributes.pixelResolution.dimensions",
            )
        )
    return levels


def _cosem_levels(spec: Mapping[str, Any], fmt: Format) -> list[_Level]:
    attrs = spec.get("attributes")
    attrs = attrs if isinstance(attrs, Mapping) else {}
    datasets = _get(attrs, "multiscales", 0, "datasets")
    if not isinstance(datasets, list):
        return []
    scales = attrs.get("scales")
    scales = scales if isinstance(scales, list) else []
    levels = []
    for j, ds in enumerate(datasets):
        if not isinstance(ds, Mapping):
            continue
        path = ds.get("path")
        tx = ds.get("transform")
        tx_loc = f"attributes.multiscales[0].datasets[{j}].transform"
        if not isinstance(tx, Mapping):
            tx = _get(_member(spec, path)[0], "attributes", "transform")
            tx_loc = f"{_member(spec, path)[1]}.attributes.transform"
        flip = _get(tx, "order") == "F"
        scale = _vec(_get(tx, "scale"))
        translate = _vec(_get(tx, "translate"))
        m = _LEVEL_NAME.match(path) if isinstance(path, str) else None
        i = int(m.group(1)) if m else j
        factor = _rev(_vec(scales[i])) if i < len(scales) else None
        levels.append(
            _array_level(
                spec,
                path,
                fmt,
                factor=factor,
                factor_loc=f"attributes.scales[{i}]",
                scale=_rev(scale) if flip else scale,
                scale_loc=f"{tx_loc}.scale",
                translate=_rev(translate) if flip else translate,
                translate_loc=f"{tx_loc}.translate",
            )
        )
    return levels


def _ome_levels(spec: Mapping[str, Any], fmt: Format) -> list[_Level]:
    attrs = spec.get("attributes")
    root = "attributes.ome.multiscales" if fmt == "zarr3" else "attributes.multiscales"
    multiscales = _get(attrs, "ome", "multiscales") if fmt == "zarr3" else None
    if multiscales is None:
        multiscales = _get(attrs, "multiscales")
        root = "attributes.multiscales"
    datasets = _get(multiscales, 0, "datasets")
    if not isinstance(datasets, list):
        return []
    levels = []
    declared = False
    for j, ds in enumerate(datasets):
        if not isinstance(ds, Mapping):
            continue
        loc = f"{root}[0].datasets[{j}].coordinateTransformations"
        scale = translate = None
        scale_loc = translate_loc = loc
        transforms = ds.get("coordinateTransformations")
        for k, t in enumerate(transforms if isinstance(transforms, list) else []):
            kind = _get(t, "type")
            if kind == "scale" and scale is None:
                scale, scale_loc = _vec(_get(t, "scale")), f"{loc}[{k}].scale"
            elif kind == "translation" and translate is None:
                translate, translate_loc = _vec(_get(t, "translation")), f"{loc}[{k}].translation"
        if translate is not None:
            declared = True
        elif scale is not None:
            translate = (0.0,) * len(scale)  # the specification's default: no translation
        levels.append(
            _array_level(
                spec,
                ds.get("path"),
                fmt,
                factor=None,  # derived from the scales below
                factor_loc=scale_loc,
                scale=scale,
                scale_loc=scale_loc,
                translate=translate,
                translate_loc=translate_loc,
            )
        )
    if not declared:  # no offsets at all: the half-voxel convention is not this image's
        levels = [dataclasses.replace(lv, translate=None) for lv in levels]
    return levels


_LEVELS = {
    "neuroglancer_n5": _neuroglancer_levels,
    "cosem": _cosem_levels,
    "ome_ngff": _ome_levels,
}


# ---- the rules -------------------------------------------------------------------------------
def pyramid_problems(
    spec: Mapping[str, Any], fmt: Format, convention: Convention
) -> Iterator[Problem]:
    """The cross-level problems of a multiscale group spec dict (rules ``PYR001``-``PYR006``).

    ``fmt`` says how arrays are described (``dtype`` for N5 / Zarr v2 views, ``data_type`` for
    Zarr v3); ``convention`` says where levels, factors and transforms live. Levels that are
    missing or not arrays are skipped here: the per-document rules report them.
    """
    reader = _LEVELS.get(convention)
    if reader is None or not isinstance(spec, Mapping):
        return
    if pyramid_ok(spec, fmt, convention):  # the common case: nothing to word
        return
    yield from worded_pyramid_problems(spec, fmt, convention)


def worded_pyramid_problems(
    spec: Mapping[str, Any], fmt: Format, convention: Convention
) -> Iterator[Problem]:
    """The worded form of the rules (every problem, located and explained), without the fast
    check :func:`pyramid_problems` runs first. Exposed so tests can hold the two forms equal."""
    reader = _LEVELS.get(convention)
    if reader is None or not isinstance(spec, Mapping):
        return
    try:
        levels = reader(spec, fmt)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return
    if not levels:
        return
    base = levels[0]
    if convention == "ome_ngff":
        levels = [_with_derived_factor(lv, base) for lv in levels]
        base = levels[0]
    yield from _rank_dtype(levels, base, "data_type" if fmt == "zarr3" else "dtype")
    yield from _order(levels)
    yield from _shapes(levels, base, derived=convention == "ome_ngff")
    if convention != "ome_ngff":
        yield from _factor_vs_scale(levels, base)
    yield from _half_voxel(levels, base)


def _with_derived_factor(level: _Level, base: _Level) -> _Level:
    factor = None
    s, s0 = level.scale, base.scale
    if s is not None and s0 is not None and len(s) == len(s0) and all(b > 0 for b in s0):
        factor = tuple(a / b for a, b in zip(s, s0, strict=True))
    return _Level(
        level.name,
        level.loc,
        level.shape,
        level.dtype,
        factor,
        level.factor_loc,
        level.scale,
        level.scale_loc,
        level.translate,
        level.translate_loc,
    )


def _rank_dtype(levels: list[_Level], base: _Level, key: str) -> Iterator[Problem]:
    for lv in levels[1:]:
        if base.shape is not None and lv.shape is not None and len(lv.shape) != len(base.shape):
            yield PYR_RANK(
                f"{lv.loc}.shape",
                f"{lv.name}: rank {len(lv.shape)} {_fmt(lv.shape)} differs from {base.name}'s "
                f"rank {len(base.shape)} {_fmt(base.shape)}",
            )
        if base.dtype is not None and lv.dtype is not None and lv.dtype != base.dtype:
            yield PYR_DTYPE(
                f"{lv.loc}.{key}",
                f"{lv.name}: data type {lv.dtype!r} differs from {base.name}'s {base.dtype!r}",
            )


def _order(levels: list[_Level]) -> Iterator[Problem]:
    prev: _Level | None = None
    for lv in levels:
        if lv.shape is None:
            continue
        if prev is not None and prev.shape is not None and len(prev.shape) == len(lv.shape):
            axes = [k for k, (a, b) in enumerate(zip(prev.shape, lv.shape, strict=True)) if b > a]
            if axes:
                factor = f" with factor {_show_factor(lv.factor)}" if lv.factor else ""
                yield PYR_ORDER(
                    f"{lv.loc}.shape",
                    f"{lv.name}: shape {_fmt(lv.shape)} is larger than {prev.name} "
                    f"{_fmt(prev.shape)}{factor} on axis {', '.join(map(str, axes))}; levels "
                    "must run finest to coarsest",
                )
        prev = lv


def _show_factor(f: tuple[float, ...] | None) -> str:
    if f is None:
        return "?"
    if len(set(f)) == 1:
        return _fmt(f[:1]).strip("(),")
    return _fmt(f)


def _expected(n0: int, rel: float) -> tuple[int, int]:
    """Level-0 length ``n0`` divided by ``rel``, rounded down and up (float noise forgiven)."""
    q = n0 / rel
    lo = math.floor(q * (1 + 1e-9) if q > 0 else q)
    hi = math.ceil(q * (1 - 1e-9))
    return min(lo, hi), max(lo, hi)


def _shapes(levels: list[_Level], base: _Level, *, derived: bool) -> Iterator[Problem]:
    if base.shape is None or base.factor is None or len(base.factor) != len(base.shape):
        return
    if any(f <= 0 for f in base.factor):
        return
    for lv in levels[1:]:
        if lv.shape is None or lv.factor is None:
            continue
        if not (len(lv.shape) == len(lv.factor) == len(base.shape)):
            continue
        if any(f <= 0 for f in lv.factor):
            continue
        rel = [f / f0 for f, f0 in zip(lv.factor, base.factor, strict=True)]
        bounds = [_expected(n0, r) for n0, r in zip(base.shape, rel, strict=True)]
        bad = [
            k
            for k, (n, (lo, hi)) in enumerate(zip(lv.shape, bounds, strict=True))
            if not lo <= n <= hi
        ]
        if not bad:
            continue
        want = tuple(lo if lo == hi else f"{lo}|{hi}" for lo, hi in bounds)
        origin = (
            f"factor {_fmt(tuple(rel))} (the ratio of {lv.scale_loc} to {base.name}'s scale)"
            if derived
            else f"factor {_fmt(tuple(rel))} ({lv.factor_loc})"
        )
        yield PYR_SHAPE(
            f"{lv.loc}.shape",
            f"{lv.name}: shape {_fmt(lv.shape)} does not follow {base.name} "
            f"{_fmt(base.shape)} with {origin}: expected "
            f"({', '.join(str(w) for w in want)}) on axis {', '.join(map(str, bad))}",
        )


def _close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_REL_TOL * abs(scale))


def _factor_vs_scale(levels: list[_Level], base: _Level) -> Iterator[Problem]:
    if base.scale is None or base.factor is None or len(base.scale) != len(base.factor):
        return
    if any(f <= 0 for f in base.factor):
        return
    for lv in levels[1:]:
        if lv.scale is None or lv.factor is None:
            continue
        if not (len(lv.scale) == len(lv.factor) == len(base.scale)):
            continue
        want = tuple(
            s0 * f / f0 for s0, f, f0 in zip(base.scale, lv.factor, base.factor, strict=True)
        )
        bad = [
            k for k, (s, w) in enumerate(zip(lv.scale, want, strict=True)) if not _close(s, w, w)
        ]
        if bad:
            yield PYR_FACTOR_TRANSFORM(
                lv.scale_loc,
                f"{lv.name}: scale {_fmt(lv.scale)} is not {base.name}'s {_fmt(base.scale)} times "
                f"the factor {_fmt(lv.factor)} of {lv.factor_loc} (expected {_fmt(want)}) on axis "
                f"{', '.join(map(str, bad))}",
            )


def _half_voxel(levels: list[_Level], base: _Level) -> Iterator[Problem]:
    if base.scale is None or base.translate is None or len(base.scale) != len(base.translate):
        return
    n = len(base.scale)
    for lv in levels[1:]:
        if lv.scale is None or lv.translate is None:
            continue
        if not (len(lv.scale) == len(lv.translate) == n):
            continue
        want = tuple(
            t0 + (s - s0) / 2
            for t0, s, s0 in zip(base.translate, lv.scale, base.scale, strict=True)
        )
        bad = [
            k
            for k, (t, w) in enumerate(zip(lv.translate, want, strict=True))
            if not _close(t, w, lv.scale[k])
        ]
        if bad:
            yield PYR_HALF_VOXEL(
                lv.translate_loc,
                f"{lv.name}: translate {_fmt(lv.translate)} is not {base.name}'s "
                f"{_fmt(base.translate)} + ({lv.name} scale - {base.name} scale) / 2 = "
                f"{_fmt(want)} on axis {', '.join(map(str, bad))}: the levels' voxel centers "
                "are misaligned by a fraction of a voxel",
            )


# ---- the fast form: one boolean pass for the common, consistent pyramid ----------------------
# A level as the fast check sees it: (shape, dtype, factor, scale, translate), every vector in
# array order. The readers below return None for anything out of the ordinary (a level that is
# missing, not an array, a vector that is not numbers, a nested path...): the worded form then
# decides, so the fast form only has to be right on fully populated pyramids.
_FastLevel = tuple[
    tuple[int, ...], Any, tuple[float, ...], tuple[float, ...], tuple[float, ...] | None
]


def _fast_array(members: Any, path: Any, fmt: Format) -> tuple[tuple[int, ...], Any] | None:
    """The shape and data type of a direct member array, or None (the worded form decides)."""
    if type(path) is not str or "/" in path or path in ("", "."):
        return None
    node = members.get(path)
    if type(node) is not dict or "members" in node:
        return None
    shape = _ints(node.get("shape"))
    if shape is None:
        return None
    return shape, (node.get("data_type") if fmt == "zarr3" else node.get("dtype"))


def _fast_cosem(spec: Mapping[str, Any], fmt: Format) -> list[_FastLevel] | None:
    attrs = spec.get("attributes")
    members = spec.get("members")
    if type(attrs) is not dict or type(members) is not dict:
        return None
    multiscales = attrs.get("multiscales")
    if type(multiscales) is not list or not multiscales or type(multiscales[0]) is not dict:
        return None
    datasets = multiscales[0].get("datasets")
    scales = attrs.get("scales")
    if type(datasets) is not list or not datasets or type(scales) is not list:
        return None
    levels: list[_FastLevel] = []
    for j, ds in enumerate(datasets):
        if type(ds) is not dict:
            return None
        path = ds.get("path")
        tx = ds.get("transform")
        if type(tx) is not dict:
            return None
        scale = _vec(tx.get("scale"))
        translate = _vec(tx.get("translate"))
        if scale is None or translate is None:
            return None
        if tx.get("order") == "F":
            scale, translate = scale[::-1], translate[::-1]
        m = _LEVEL_NAME.match(path) if type(path) is str else None
        i = int(m.group(1)) if m else j
        factor = _vec(scales[i]) if i < len(scales) else None
        array = _fast_array(members, path, fmt)
        if factor is None or array is None:
            return None
        levels.append((array[0], array[1], factor[::-1], scale, translate))
    return levels


def _fast_neuroglancer(spec: Mapping[str, Any], fmt: Format) -> list[_FastLevel] | None:
    attrs = spec.get("attributes")
    members = spec.get("members")
    if type(attrs) is not dict or type(members) is not dict:
        return None
    scales = attrs.get("scales")
    if type(scales) is not list or not scales:
        return None  # the downsamplingFactors layout: the worded form
    levels: list[_FastLevel] = []
    for i, s in enumerate(scales):
        name = f"s{i}"
        factor = _vec(s)
        array = _fast_array(members, name, fmt)
        if factor is None or array is None:
            return None
        pixr = _get(members[name], "attributes", "pixelResolution", "dimensions")
        scale = _vec(pixr)
        if scale is None:
            return None
        levels.append((array[0], array[1], factor[::-1], scale[::-1], None))
    return levels


_FAST_LEVELS = {"cosem": _fast_cosem, "neuroglancer_n5": _fast_neuroglancer}


def pyramid_ok(spec: Mapping[str, Any], fmt: Format, convention: Convention) -> bool:
    """Whether :func:`pyramid_problems` certainly finds nothing: the fast form of its rules.

    ``True`` only for a pyramid every rule (``PYR001``-``PYR006``, the warning included) passes;
    ``False`` when something is off *or unusual* (then the worded form decides).
    """
    reader = _FAST_LEVELS.get(convention)
    if reader is None:
        return False
    try:
        levels = reader(spec, fmt)
        return levels is not None and _levels_ok(levels)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError):
        return False


def _levels_ok(levels: list[_FastLevel]) -> bool:
    shape0, dtype0, factor0, scale0, translate0 = levels[0]
    n = len(shape0)
    if len(factor0) != n or len(scale0) != n or (translate0 is not None and len(translate0) != n):
        return False
    for f in factor0:
        if f <= 0:
            return False
    prev = shape0
    for shape, dtype, factor, scale, translate in levels[1:]:
        # PYR003 / PYR004 (the fast form insists on one rank throughout)
        if len(shape) != n or len(factor) != n or len(scale) != n:
            return False
        if dtype0 is not None and dtype is not None and dtype != dtype0:
            return False
        # PYR002: no axis larger than the level before
        for a, b in zip(prev, shape, strict=True):
            if b > a:
                return False
        prev = shape
        for n0, f0, s0, n_k, f, s in zip(shape0, factor0, scale0, shape, factor, scale):  # noqa: B905
            if f <= 0:
                return False
            # PYR001: the shape follows level 0 with the relative factor (as in _expected; an
            # exact quotient is always within its own floor and ceiling)
            q = n0 / (f / f0)
            if n_k != q:
                lo = math.floor(q * (1 + 1e-9) if q > 0 else q)
                hi = math.ceil(q * (1 - 1e-9))
                if not min(lo, hi) <= n_k <= max(lo, hi):
                    return False
            # PYR005: the scale is level 0's times the relative factor (as in _close)
            w = s0 * f / f0
            if s != w and not isclose(s, w, rel_tol=_REL_TOL, abs_tol=_REL_TOL * abs(w)):
                return False
        # PYR006: the half-voxel offset
        if translate0 is not None:
            if translate is None or len(translate) != n:
                return False
            for t0, t, s0, s in zip(translate0, translate, scale0, scale):  # noqa: B905
                w = t0 + (s - s0) / 2
                if t != w and not isclose(t, w, rel_tol=_REL_TOL, abs_tol=_REL_TOL * abs(s)):
                    return False
    return True


# ---- crops -----------------------------------------------------------------------------------
def crop_grid_problems(
    crop_translate: Sequence[float] | None,
    crop_scale: Sequence[float] | None,
    image_scale_s0: Sequence[float] | None,
    image_translate_s0: Sequence[float] | None,
    *,
    loc: str = "translation",
) -> Iterator[Problem]:
    """Whether a crop's voxels lie on the grid of the image it annotates (rule ``CROP101``).

    Positions are voxel centers (OME-NGFF, the Cellmap convention), so the test is on voxel
    *corners*: ``crop_translate - crop_scale / 2`` must be ``image_translate - image_scale / 2``
    plus a whole number of image voxels. For a crop at the image's resolution this is "the
    translate is a multiple of the image's scale from its origin"; for a crop at a finer or
    coarser resolution (Cellmap crops are often annotated at half the image's spacing) it is
    the same alignment, which the center-based test would wrongly refuse.
    """
    ct, cs = _vec(list(crop_translate or ())), _vec(list(crop_scale or ()))
    iss, it = _vec(list(image_scale_s0 or ())), _vec(list(image_translate_s0 or ()))
    if not ct or cs is None or iss is None or it is None:
        return
    if not (len(ct) == len(cs) == len(iss) == len(it)) or any(s <= 0 for s in iss):
        return
    bad: list[str] = []
    for k, (t, c, s0, t0) in enumerate(zip(ct, cs, iss, it, strict=True)):
        k_voxels = ((t - c / 2) - (t0 - s0 / 2)) / s0
        off = k_voxels - round(k_voxels)
        if abs(off) > _GRID_TOL:
            bad.append(f"axis {k} is {off:+.3g} image voxels off")
    if bad:
        yield CROP_GRID(
            loc,
            f"crop translate {_fmt(ct)} (scale {_fmt(cs)}) is not on the grid of the image's s0 "
            f"(scale {_fmt(iss)}, translate {_fmt(it)}): {'; '.join(bad)}",
        )
