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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cellmap_schemas.formats import Format
from cellmap_schemas.multiscale._pyramid_fast import (
    _LEVEL_NAME,
    Convention,
    _close,
    _get,
    _ints,
    _rev,
    _vec,
    pyramid_ok,
)
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
