"""The tolerant readers of the cross-level pyramid rules, and the rules' fast form.

:func:`pyramid_ok` is one boolean pass over a pyramid's levels: ``True`` only when every rule of
:mod:`cellmap_schemas.multiscale.pyramid` (``PYR001``-``PYR006``) passes, so the worded form
(which builds located, explained findings) runs only when something is off or unusual, for each
convention (COSEM, Neuroglancer N5, OME-NGFF 0.4 and 0.5). The two are held equal by
``tests/test_fast_paths.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from math import isclose
from typing import Any, Literal

import msgspec

from cellmap_schemas.formats import Format

__all__ = ["pyramid_ok"]

Convention = Literal["neuroglancer_n5", "cosem", "ome_ngff"]

_REL_TOL = 1e-6
"""Relative tolerance for spacings and offsets: decimal spacings carry float noise
(``5.24 * 4 == 20.96``, ``7.860000000000001``), real mismatches are far larger."""


# ---- tolerant readers ------------------------------------------------------------------------
def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


_NUMBER_TYPES = frozenset({float, int})


def _vec(x: Any) -> tuple[float, ...] | None:
    """A list of finite numbers, or ``None``."""
    if type(x) is not list and not isinstance(x, list | tuple):
        return None
    if not _NUMBER_TYPES.issuperset(map(type, x)):  # decoded JSON: plain floats and ints
        out = tuple(_num(v) for v in x)  # (a bool is no number here)
        return None if any(v is None for v in out) else out  # type: ignore[return-value]
    vec = tuple(map(float, x))
    return vec if all(map(math.isfinite, vec)) else None


_INT_TYPE = frozenset({int})


def _ints(x: Any) -> tuple[int, ...] | None:
    """A list of non-negative integers (no bools), or ``None``."""
    if type(x) is not list and not isinstance(x, list | tuple):
        return None
    if not _INT_TYPE.issuperset(map(type, x)) or (x and min(x) < 0):
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


_LEVEL_NAME = re.compile(r"^s(0|[1-9][0-9]*)$")
_LEVEL_NAMES = tuple(f"s{i}" for i in range(32))
"""The names of the first levels, for the common case of level ``i`` at ``s{i}``."""


def _close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_REL_TOL * abs(scale))


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
        if j < len(_LEVEL_NAMES) and path == _LEVEL_NAMES[j]:
            i = j
        else:
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
        name = _LEVEL_NAMES[i] if i < len(_LEVEL_NAMES) else f"s{i}"
        factor = _vec(s)
        array = _fast_array(members, name, fmt)
        if factor is None or array is None:
            return None
        attrs = members[name].get("attributes")
        pixr = attrs.get("pixelResolution") if type(attrs) is dict else None
        scale = _vec(pixr.get("dimensions") if type(pixr) is dict else None)
        if scale is None:
            return None
        levels.append((array[0], array[1], factor[::-1], scale[::-1], None))
    return levels


def _fast_ome(spec: Mapping[str, Any], fmt: Format) -> list[_FastLevel] | None:
    # OME-NGFF declares no factors: they are the ratios of the scales, so the scales stand in
    # for them (_levels_ok compares level i to level 0 by factor_i / factor_0 = scale_i / scale_0,
    # exactly the factor the worded form derives; its scale check then holds by construction).
    attrs = spec.get("attributes")
    members = spec.get("members")
    if type(attrs) is not dict or type(members) is not dict:
        return None
    ome = attrs.get("ome") if fmt == "zarr3" else None
    if ome is not None and type(ome) is not dict:
        return None
    multiscales = ome.get("multiscales") if ome is not None else None
    if multiscales is None:  # as the worded form: 0.4's place, also for a Zarr v3 group
        multiscales = attrs.get("multiscales")
    if type(multiscales) is not list or not multiscales or type(multiscales[0]) is not dict:
        return None
    datasets = multiscales[0].get("datasets")
    if type(datasets) is not list or not datasets:
        return None
    levels: list[_FastLevel] = []
    declared = False
    for ds in datasets:
        transforms = ds.get("coordinateTransformations") if type(ds) is dict else None
        if type(transforms) is not list:
            return None
        scale = translate = None
        for t in transforms:
            if type(t) is not dict:
                return None
            kind = t.get("type")
            if kind == "scale" and scale is None:
                scale = _vec(t.get("scale"))
                if scale is None:
                    return None
            elif kind == "translation" and translate is None:
                translate = _vec(t.get("translation"))
                if translate is None:
                    return None
        array = _fast_array(members, ds.get("path"), fmt)
        if scale is None or array is None:
            return None
        if translate is None:
            translate = (0.0,) * len(scale)  # the specification's default: no translation
        else:
            declared = True
        levels.append((array[0], array[1], scale, scale, translate))
    if not declared:  # no offsets at all: the half-voxel convention is not this image's
        return [(shape, dtype, f, s, None) for shape, dtype, f, s, _ in levels]
    return levels


_FAST_LEVELS = {"cosem": _fast_cosem, "neuroglancer_n5": _fast_neuroglancer, "ome_ngff": _fast_ome}


def pyramid_ok(spec: Mapping[str, Any], fmt: Format, convention: Convention) -> bool:
    """Whether :func:`pyramid_problems` certainly finds nothing: the fast form of its rules.

    ``True`` only for a pyramid every rule (``PYR001``-``PYR006``, the warning included) passes;
    ``False`` when something is off *or unusual* (then the worded form decides).
    """
    reader = _FAST_LEVELS.get(convention)
    if reader is None:
        return False
    try:
        key = _geometry(spec, fmt, convention)
        known = _KNOWN.get(key) if key is not None else None
        if known is None:
            levels = reader(spec, fmt)
            known = levels is not None and _levels_ok(levels)
            if key is not None:
                if len(_KNOWN) >= _KNOWN_MAX:
                    _KNOWN.clear()
                _KNOWN[key] = known
        return known
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError):
        return False


def _geometry(spec: Mapping[str, Any], fmt: Format, convention: Convention) -> bytes | None:
    """Everything of ``spec`` the fast form reads, as JSON: the key pyramids are remembered by.

    Cheaper than reading the levels (one pass in C, no conversions), and exact: JSON tells
    ``1`` from ``1.0`` and ``true``, and whatever it cannot tell apart (``NaN`` and ``null``
    are both ``null``) the fast form refuses alike. The image's name and other attributes are
    left out, so the label groups of an image (same levels, other names) share one key.
    ``None``: no key (the levels are read as they are).
    """
    attrs = spec.get("attributes")
    members = spec.get("members")
    if type(attrs) is not dict or type(members) is not dict:
        return None
    declared: Any
    if convention == "neuroglancer_n5":
        declared = attrs.get("scales")
    else:  # where the reader finds the datasets (and, for COSEM, the factors)
        multiscales = attrs.get("multiscales")
        if convention == "ome_ngff" and fmt == "zarr3" and "ome" in attrs:
            ome = attrs["ome"]
            if type(ome) is not dict:
                return None
            if ome.get("multiscales") is not None:
                multiscales = ome["multiscales"]
        if type(multiscales) is not list or not multiscales or type(multiscales[0]) is not dict:
            return None
        declared = multiscales[0].get("datasets")
        if convention == "cosem":
            declared = (declared, attrs.get("scales"))
    dtype = "data_type" if fmt == "zarr3" else "dtype"
    pixels = convention == "neuroglancer_n5"
    levels = [
        (
            name,
            node.get("shape"),
            node.get(dtype),
            "members" in node,
            _pixel_resolution(node) if pixels else None,
        )
        if type(node) is dict
        else (name, None)
        for name, node in members.items()
    ]
    for level in levels:  # a data type is compared as it is: NaN must not pass for null
        if len(level) > 2 and level[2] is not None and type(level[2]) is not str:
            return None
    return _encode((fmt, declared, levels))


def _pixel_resolution(node: dict[str, Any]) -> Any:
    attrs = node.get("attributes")
    pixr = attrs.get("pixelResolution") if type(attrs) is dict else None
    return pixr.get("dimensions") if type(pixr) is dict else None


_encode = msgspec.json.Encoder().encode

_KNOWN: dict[bytes, bool] = {}
"""Pyramids already checked, by :func:`_geometry`: the label groups of an image, and its copies
in other containers, repeat its geometry (on the benchmark bucket 3 checks in 4 are repeats)."""
_KNOWN_MAX = 1024
"""Pyramids remembered at most (a few KiB each); emptied when full: repeats come close
together, a walk meets an image's labels right after it."""


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
