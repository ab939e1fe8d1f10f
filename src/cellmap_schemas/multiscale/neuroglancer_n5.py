"""Neuroglancer-compatible multiscale images stored in N5 groups.

Neuroglancer reads a multiscale N5 group from the group's ``axes``, ``units``, ``scales`` and
``pixelResolution`` attributes and from arrays named ``s0``, ``s1``, ... (one per entry of
``scales``); see `Neuroglancer's N5 notes
<https://github.com/google/neuroglancer/tree/master/src/neuroglancer/datasource/n5>`_.

Every dimensional attribute here is in N5 (F, colexicographic) order: ``x`` first for a NumPy
array whose last axis is ``x``.

Validation speed matters (a scan validates thousands of these), so each model's
``__post_init__`` runs a cheap boolean check first and only falls back to the generator of
:meth:`~cellmap_schemas.base.Base._problems` (which words each problem) when that check fails.
The attribute models are ``gc=False`` structs: they hold only strings, numbers, tuples and other
such structs, so they can never be part of a reference cycle, and leaving them out of the cyclic
garbage collector makes decoding cheaper (and a scan's collections shorter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Self

import msgspec

from cellmap_schemas.base import (
    Base,
    PositiveInt,
    enforce_rules,
    join_loc,
    normalize_chunks,
)
from cellmap_schemas.multiscale.pyramid import pyramid_problems
from cellmap_schemas.n5_wrap import N5GroupSpec
from cellmap_schemas.rules import Problem, define
from cellmap_schemas.spec.zarr_v2 import ArraySpec, FillValue, GroupSpec, array_ok, either

__all__ = [
    "Array",
    "ArrayMetadata",
    "Group",
    "GroupMetadata",
    "N5GroupSpec",
    "PixelResolution",
    "levels_present",
    "normalize_chunks",
    "scale_ratio",
]


_NG = "Neuroglancer N5 multiscale metadata (neuroglancer src/datasource/n5/frontend.ts)"
_NG_176 = "google/neuroglancer issue 176 (multiscale N5 attributes), comment 553027775"
SCHEMA = define(
    "NG001",
    "error",
    "the Neuroglancer attributes (axes, units, scales, pixelResolution) have the required types",
    _NG_176,
)
UNITS_RANK = define("NG002", "error", "units has one entry per axis", _NG_176)
SCALES_RANK = define("NG003", "error", "every entry of scales has one factor per axis", _NG_176)
SCALES_FIRST = define("NG004", "error", "the first level's scales entry is all 1s", _NG_176)
PIXR_RANK = define("NG005", "error", "pixelResolution.dimensions has one entry per axis", _NG_176)
UNITS_PIXR = define("NG006", "error", "every unit equals pixelResolution.unit", _NG_176)
LEVEL_MISSING = define(
    "NG007", "error", "level i of scales is a member array named s{i}", _NG, on_missing_member=True
)
LEVEL_IS_GROUP = define("NG008", "error", "level s{i} is an array, not a group", _NG)


class PixelResolution(Base, frozen=True, kw_only=True, gc=False):
    """Sample spacing and its unit, as N5 tools (Neuroglancer, n5-viewer) read it.

    In the attributes of an N5 array it gives that array's coordinates; in the attributes of a
    multiscale group it gives the coordinates of the full-resolution level.

    Attributes
    ----------
    dimensions : tuple[float, ...]
        Distance between samples along each axis, in F order (the reverse of NumPy's order).
    unit : str
        Physical unit of ``dimensions``.
    """

    dimensions: tuple[float, ...]
    unit: str

    _schema_rule = SCHEMA


class ArrayMetadata(Base, frozen=True, kw_only=True, gc=False):
    """Attributes of one scale level of a Neuroglancer N5 multiscale group.

    Attributes
    ----------
    pixelResolution : PixelResolution
        The spacing of this level's samples.
    """

    pixelResolution: PixelResolution

    _schema_rule = SCHEMA


class Array(ArraySpec[ArrayMetadata], frozen=True, kw_only=True):
    """A scale level: an array spec whose attributes are :class:`ArrayMetadata`."""

    attributes: ArrayMetadata

    def __post_init__(self) -> None:
        if not array_ok(self):
            enforce_rules(self)


Scales = Annotated[tuple[tuple[PositiveInt, ...], ...], msgspec.Meta(min_length=1)]
"""Downsampling factors per level; at least one level (the full-resolution one)."""


class GroupMetadata(Base, frozen=True, kw_only=True, gc=False):
    """Attributes that make Neuroglancer show an N5 group as one multiscale image.

    After `this comment <https://github.com/google/neuroglancer/issues/176#issuecomment-553027775>`_.
    All sequences are in F order.

    Attributes
    ----------
    axes : tuple[str, ...]
        Names of the axes.
    units : tuple[str, ...]
        Unit of each axis; every one must equal ``pixelResolution.unit``.
    scales : tuple[tuple[int, ...], ...]
        Per level, the positive integer downsampling factor of each axis relative to level 0;
        the first entry is all 1s. Three levels of isotropic 2x downsampling of 3D data are
        ``((1, 1, 1), (2, 2, 2), (4, 4, 4))``.
    pixelResolution : PixelResolution
        Spacing of the full-resolution level (redundant with ``units`` for the unit).
    """

    axes: tuple[str, ...]
    units: tuple[str, ...]
    scales: Scales
    pixelResolution: PixelResolution

    _schema_rule = SCHEMA

    def __post_init__(self) -> None:
        # The common case (everything consistent) costs a few C-level calls and no generator.
        n = len(self.axes)
        pixr = self.pixelResolution
        if (
            len(self.units) == n
            and len(pixr.dimensions) == n
            and self.units.count(pixr.unit) == n
            and self.scales[0].count(1) == n
        ):
            for s in self.scales:
                if len(s) != n:
                    break
            else:
                return
        enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        n = len(self.axes)
        if len(self.units) != n:
            yield UNITS_RANK("units", f"has {len(self.units)} entries but axes has {n}")
        for i, s in enumerate(self.scales):
            if len(s) != n:
                yield SCALES_RANK(f"scales[{i}]", f"has {len(s)} entries but axes has {n}")
        if self.scales and any(x != 1 for x in self.scales[0]):
            yield SCALES_FIRST(
                "scales[0]", f"the first level's scale must be all 1s, got {self.scales[0]}"
            )
        pixr = self.pixelResolution
        if len(pixr.dimensions) != n:
            yield PIXR_RANK(
                "pixelResolution.dimensions",
                f"has {len(pixr.dimensions)} entries but axes has {n}",
            )
        for i, u in enumerate(self.units):
            if u != pixr.unit:
                yield UNITS_PIXR(
                    f"units[{i}]", f"{u!r} differs from pixelResolution.unit {pixr.unit!r}"
                )


ArrayOrGroup = either(Array, GroupSpec)
"""A member of a Neuroglancer group: an :class:`Array` or any group."""


class Group(N5GroupSpec, frozen=True, kw_only=True):
    """An N5 group that Neuroglancer displays as a multiscale image.

    Attributes
    ----------
    attributes : GroupMetadata
        The multiscale metadata.
    members : dict[str, Array | GroupSpec]
        The group's members; for each level ``i`` of ``attributes.scales`` an array named
        ``s{i}`` must exist. Other members (arrays or groups) are allowed.
    """

    attributes: GroupMetadata
    members: dict[str, ArrayOrGroup] = {}  # type: ignore[valid-type]

    def __post_init__(self) -> None:
        if not levels_present(self.members, len(self.attributes.scales)):
            enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        yield from _level_problems(self)

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "neuroglancer_n5")  # type: ignore[arg-type]

    @classmethod
    def from_arrays(
        cls,
        *,
        arrays: Sequence[Any],
        paths: Sequence[str],
        scales: Sequence[Sequence[float]],
        axes: Sequence[str],
        units: Sequence[str],
        dimension_order: Literal["C", "F"],
        chunks: Literal["auto"] | Sequence[int] | Sequence[Sequence[int]] = "auto",
        compressor: Literal["auto"] | dict[str, Any] | None = "auto",
        fill_value: FillValue | Literal["auto"] = "auto",
    ) -> Self:
        """A multiscale group from array-likes (NumPy, zarr, ...) and their spatial metadata.

        Parameters
        ----------
        arrays : Sequence[array-like]
            The levels of the image, full resolution first.
        paths : Sequence[str]
            Member name of each level (``s0``, ``s1``, ... for Neuroglancer).
        scales : Sequence[Sequence[float]]
            Sample spacing of each level, per axis.
        axes : Sequence[str]
            Axis names.
        units : Sequence[str]
            Unit of each axis.
        dimension_order : {"C", "F"}
            Order of ``axes``, ``units`` and each ``scales`` entry: "C" is NumPy's order, which
            is reversed here, since N5 metadata is in F order; "F" is kept as is.
        chunks : "auto" or tuple of ints or tuple of tuples of ints
            See :func:`~cellmap_schemas.base.normalize_chunks`.
        compressor : "auto" or dict or None
            A numcodecs-style compressor config; "auto" takes the array's own, if any.
        fill_value : "auto" or scalar
            Fill value of every array; "auto" takes the array's own, or 0.

        Returns
        -------
        Group
            A validated group; ``to_zarr`` writes it.
        """
        chunk_shapes = normalize_chunks(chunks, arrays)
        step = -1 if dimension_order == "C" else 1
        axes_n5 = tuple(axes)[::step]
        units_n5 = tuple(units)[::step]
        scales_n5 = [tuple(float(x) for x in s)[::step] for s in scales]
        for i, s in enumerate(scales_n5):
            if len(s) != len(axes_n5):
                raise ValueError(f"scales[{i}] has {len(s)} entries but axes has {len(axes_n5)}")
        base = scales_n5[0]
        attributes = GroupMetadata(
            axes=axes_n5,
            units=units_n5,
            scales=tuple(
                tuple(scale_ratio(a, b) for a, b in zip(s, base, strict=True)) for s in scales_n5
            ),
            pixelResolution=PixelResolution(dimensions=base, unit=units_n5[0]),
        )
        unit = units_n5[0]
        members = level_arrays(
            Array,
            zip(paths, arrays, chunk_shapes, scales_n5, strict=True),
            lambda scale: ArrayMetadata(
                pixelResolution=PixelResolution(dimensions=scale, unit=unit)
            ),
            compressor,
            fill_value,
        )
        return cls(attributes=attributes, members=members)


def level_arrays(
    array_cls: Any,
    levels: Iterable[tuple[str, Any, tuple[int, ...], Any]],
    attributes_of: Callable[[Any], Any],
    compressor: Literal["auto"] | dict[str, Any] | None,
    fill_value: FillValue | Literal["auto"],
) -> dict[str, Any]:
    """The member arrays ``from_arrays`` builds: for each ``(path, array, chunks, level)``, an
    ``array_cls`` spec of the array whose attributes are ``attributes_of(level)``."""
    return {
        path: array_cls.from_array(
            array,
            chunks=chunk,
            compressor=compressor,
            fill_value=fill_value,
            attributes=attributes_of(level),
        )
        for path, array, chunk, level in levels
    }


_LEVEL_NAMES = tuple(f"s{i}" for i in range(32))


def levels_present(members: Mapping[str, Any], levels: int) -> bool:
    """Whether ``s0`` ... ``s{levels-1}`` are all arrays in ``members`` (the fast check)."""
    names = _LEVEL_NAMES[:levels] if levels <= len(_LEVEL_NAMES) else _level_names(levels)
    for name in names:
        member = members.get(name)
        if member is None or not isinstance(member, ArraySpec):
            return False
    return True


def _level_names(levels: int) -> tuple[str, ...]:
    return tuple(f"s{i}" for i in range(levels))


def _level_problems(group: Group) -> Iterator[Problem]:
    """The Neuroglancer rule: level ``i`` of ``attributes.scales`` is an array named ``s{i}``."""
    members = group.members
    levels = len(group.attributes.scales)
    for i in range(levels):
        name = f"s{i}"
        member = members.get(name)
        if member is None:
            yield LEVEL_MISSING(
                join_loc("members", name),
                f"missing: attributes.scales has {levels} levels, so an array named {name!r} "
                "must exist",
            )
        elif not isinstance(member, ArraySpec):
            yield LEVEL_IS_GROUP(
                join_loc("members", name),
                f"is a group, but level {i} of attributes.scales must be an array",
            )


def scale_ratio(scale: float, base: float) -> int:
    """The integer downsampling factor ``scale / base``.

    Exact ratios of decimal spacings come out a hair off (``20.96 / 5.24``), so a quotient
    within 1e-9 of an integer is rounded to it; any other one is floored, as the original
    (which used ``scale // base``) did.
    """
    q = scale / base
    r = round(q)
    if abs(q - r) <= 1e-9 * max(1.0, abs(q)):
        return int(r)
    return int(scale // base)
