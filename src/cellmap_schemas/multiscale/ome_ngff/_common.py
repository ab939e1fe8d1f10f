"""Pieces of OME-NGFF ``multiscales`` metadata that 0.4 and 0.5 share.

The "axes", "coordinateTransformations", "multiscales" and "image-label" rules read the same in
both versions of the specification, so the structs and their rules live here once; the version
modules add the container (Zarr v2 ``.zattrs`` for 0.4, the ``ome`` namespace of a Zarr v3
``zarr.json`` for 0.5) and the group-level checks.

Every rule's message ends with the words of the specification it enforces and the section they
come from (``#axes-md``, ``#trafo-md``, ``#multiscale-md``, ``#labels-md``, ``#label-md``), so a
user can look it up at https://ngff.openmicroscopy.org/0.4/ or /0.5/.

Structs use ``omit_defaults=True``: an unset optional key (``name``, ``unit``, a top-level
``coordinateTransformations``) is left out of the JSON instead of written as ``null``, which the
official JSON schemas would reject for string-typed keys.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import msgspec

from cellmap_schemas.base import Base, enforce_rules
from cellmap_schemas.multiscale.ome_ngff._spec import (
    KNOWN_AXIS_TYPES,
    OMERO,
    OMERO_COLOR,
    R_AXES_CHANNEL,
    R_AXES_LEN,
    R_AXES_NAMES,
    R_AXES_ORDER,
    R_AXES_SPACE,
    R_AXES_TIME,
    R_DATASETS,
    R_DATASETS_ORDER,
    R_LABEL_VALUES_UNIQUE,
    R_NDIM,
    R_PATH_EXISTS,
    R_PROPERTY_LABEL_VALUE,
    R_RGBA,
    R_SPACE_UNIT,
    R_TIME_UNIT,
    R_TRAFO_LEN,
    R_TRAFO_ORDER,
    R_TRAFO_SCALE,
    R_TRAFO_TRANSLATION,
    R_TRAFO_TYPES,
    SCHEMA,
    SPACE_UNITS,
    TIME_UNITS,
    UNIQUE_MULTISCALES,
    SpecRule,
    unit_hint,
)
from cellmap_schemas.rules import Problem

__all__ = [
    "SCHEMA",
    "SPACE_UNITS",
    "TIME_UNITS",
    "UNIQUE_MULTISCALES",
    "Axis",
    "Channel",
    "Color",
    "Dataset",
    "Identity",
    "ImageLabel",
    "MultiscaleBase",
    "Omero",
    "Scale",
    "Source",
    "SpecRule",
    "Transform",
    "Translation",
    "Window",
]

Number = float


# ---- axes ------------------------------------------------------------------------------------
class Axis(Base, frozen=True, kw_only=True, omit_defaults=True):
    """One dimension of the image (spec #axes-md).

    Attributes
    ----------
    name : str
        Unique among the axes of a multiscale.
    type : str, optional
        "space", "time", "channel", or a custom type; absent (or null) for an untyped axis.
    unit : str, optional
        For "space" and "time" axes, a UDUNITS-2 name from the specification's lists (checked by
        :class:`Multiscale`, which knows the axis type); free for other axes.
    """

    _schema_rule = SCHEMA

    name: str
    type: str | None = None
    unit: str | None = None


def axes_problems(axes: Sequence[Axis], loc: str = "axes") -> Iterator[Problem]:
    """The rules on a multiscale's axes: count, names, types, their order, and units."""
    n = len(axes)
    if not 2 <= n <= 5:
        yield R_AXES_LEN(loc, f"has {n} entries {R_AXES_LEN}")
    counts = Counter(a.name for a in axes)
    for i, a in enumerate(axes):
        if counts[a.name] > 1:
            yield R_AXES_NAMES(
                f"{loc}[{i}].name", f"{a.name!r} is used by {counts[a.name]} axes {R_AXES_NAMES}"
            )
    types = [a.type for a in axes]
    n_space = types.count("space")
    if n_space not in (2, 3):
        yield R_AXES_SPACE(loc, f"has {n_space} axes of type 'space' {R_AXES_SPACE}")
    if types.count("time") > 1:
        yield R_AXES_TIME(loc, f"has {types.count('time')} axes of type 'time' {R_AXES_TIME}")
    if types.count("channel") > 1:
        yield R_AXES_CHANNEL(
            loc, f"has {types.count('channel')} axes of type 'channel' {R_AXES_CHANNEL}"
        )
    custom = [t for t in types if t not in KNOWN_AXIS_TYPES]
    if len(custom) > 1:
        yield R_AXES_CHANNEL(
            loc, f"has {len(custom)} axes of null or custom type {custom!r} {R_AXES_CHANNEL}"
        )
    ranks = [0 if t == "time" else 2 if t == "space" else 1 for t in types]
    if ranks != sorted(ranks):
        yield R_AXES_ORDER(loc, f"types are in the order {types!r} {R_AXES_ORDER}")
    for i, a in enumerate(axes):
        if a.unit is None:
            continue
        if a.type == "space" and a.unit not in SPACE_UNITS:
            hint = unit_hint(a.unit, SPACE_UNITS)
            yield R_SPACE_UNIT(
                f"{loc}[{i}].unit", f"{a.unit!r} is not a space unit{hint} {R_SPACE_UNIT}"
            )
        elif a.type == "time" and a.unit not in TIME_UNITS:
            hint = unit_hint(a.unit, TIME_UNITS)
            yield R_TIME_UNIT(
                f"{loc}[{i}].unit", f"{a.unit!r} is not a time unit{hint} {R_TIME_UNIT}"
            )


# ---- coordinate transformations ----------------------------------------------------------------
class Scale(Base, frozen=True, kw_only=True, tag_field="type", tag="scale"):
    """``{"type": "scale", "scale": [...]}``: the sample spacing of each axis (spec #trafo-md).

    The binary ``"path"`` form of the table in #trafo-md is not supported: the official JSON
    schema of the multiscales metadata requires the ``scale`` list.
    """

    _schema_rule = SCHEMA

    scale: tuple[Number, ...]


class Translation(Base, frozen=True, kw_only=True, tag_field="type", tag="translation"):
    """``{"type": "translation", "translation": [...]}``: the offset of the first sample."""

    _schema_rule = SCHEMA

    translation: tuple[Number, ...]


class Identity(Base, frozen=True, kw_only=True, tag_field="type", tag="identity"):
    """``{"type": "identity"}``: defined by #trafo-md but never allowed in multiscales.

    It is decoded (rather than refused as an unknown type) so that the message can cite the rule.
    """

    _schema_rule = SCHEMA


Transform = Scale | Translation | Identity
"""An entry of a ``coordinateTransformations`` list, told apart by ``type``."""

Transforms = tuple[Transform, ...]


def transforms_problems(ts: Sequence[Transform], loc: str) -> Iterator[Problem]:
    """The rules every ``coordinateTransformations`` list of a multiscale obeys."""
    for i, t in enumerate(ts):
        if isinstance(t, Identity):
            yield R_TRAFO_TYPES(f"{loc}[{i}]", f"is of type 'identity' {R_TRAFO_TYPES}")
    kinds = [type(t).__name__.lower() for t in ts if not isinstance(t, Identity)]
    n_scale = kinds.count("scale")
    n_trans = kinds.count("translation")
    if n_scale != 1:
        yield R_TRAFO_SCALE(loc, f"has {n_scale} scale transformations {R_TRAFO_SCALE}")
    if n_trans > 1:
        yield R_TRAFO_TRANSLATION(
            loc, f"has {n_trans} translation transformations {R_TRAFO_TRANSLATION}"
        )
    if n_scale == 1 and n_trans == 1 and kinds.index("translation") < kinds.index("scale"):
        yield R_TRAFO_ORDER(loc, f"lists translation before scale {R_TRAFO_ORDER}")


def transforms_length_problems(ts: Sequence[Transform], ndim: int, loc: str) -> Iterator[Problem]:
    for i, t in enumerate(ts):
        if isinstance(t, Scale) and len(t.scale) != ndim:
            yield R_TRAFO_LEN(
                f"{loc}[{i}].scale",
                f"has {len(t.scale)} entries but there are {ndim} axes {R_TRAFO_LEN}",
            )
        elif isinstance(t, Translation) and len(t.translation) != ndim:
            yield R_TRAFO_LEN(
                f"{loc}[{i}].translation",
                f"has {len(t.translation)} entries but there are {ndim} axes {R_TRAFO_LEN}",
            )


def scale_of(ts: Sequence[Transform]) -> tuple[float, ...] | None:
    """The scale vector of a transformation list (None when it has none)."""
    for t in ts:
        if isinstance(t, Scale):
            return t.scale
    return None


def translation_of(ts: Sequence[Transform]) -> tuple[float, ...] | None:
    """The translation vector of a transformation list (None when it has none)."""
    for t in ts:
        if isinstance(t, Translation):
            return t.translation
    return None


def build_transforms(
    scale: Sequence[float], translation: Sequence[float] | None
) -> tuple[Scale] | tuple[Scale, Translation]:
    """The ``[scale]`` or ``[scale, translation]`` list the specification asks for."""
    s = Scale(scale=tuple(float(x) for x in scale))
    if translation is None:
        return (s,)
    return s, Translation(translation=tuple(float(x) for x in translation))


class Dataset(Base, frozen=True, kw_only=True):
    """One resolution level of a multiscale (spec #multiscale-md, "datasets").

    Attributes
    ----------
    path : str
        Path of the level's array, relative to the multiscale group.
    coordinateTransformations : tuple of Scale and Translation
        Exactly one scale, optionally followed by one translation.
    """

    _schema_rule = SCHEMA

    path: str
    coordinateTransformations: Transforms

    def _problems(self) -> Iterator[Problem]:
        yield from transforms_problems(self.coordinateTransformations, "coordinateTransformations")
        scale = scale_of(self.coordinateTransformations)
        trans = translation_of(self.coordinateTransformations)
        if scale is not None and trans is not None and len(scale) != len(trans):
            i = next(
                i
                for i, t in enumerate(self.coordinateTransformations)
                if isinstance(t, Translation)
            )
            yield R_TRAFO_LEN(
                f"coordinateTransformations[{i}].translation",
                f"has {len(trans)} entries but the scale has {len(scale)} {R_TRAFO_LEN}",
            )

    def __post_init__(self) -> None:
        ts = self.coordinateTransformations
        if len(ts) == 1 and type(ts[0]) is Scale:
            return
        if (
            len(ts) == 2
            and type(ts[0]) is Scale
            and type(ts[1]) is Translation
            and len(ts[0].scale) == len(ts[1].translation)
        ):
            return
        enforce_rules(self)

    @property
    def scale(self) -> tuple[float, ...]:
        """The level's scale vector."""
        return scale_of(self.coordinateTransformations) or ()

    @property
    def translation(self) -> tuple[float, ...] | None:
        """The level's translation vector, if it has one."""
        return translation_of(self.coordinateTransformations)


# ---- multiscale --------------------------------------------------------------------------------
class MultiscaleBase(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The fields and rules of one entry of ``multiscales`` shared by 0.4 and 0.5.

    Attributes
    ----------
    axes : tuple[Axis, ...]
        2 to 5 axes: at most one "time" first, at most one "channel" (or custom) next, then 2 or
        3 "space" axes.
    datasets : tuple[Dataset, ...]
        The levels, highest resolution first (at least one).
    coordinateTransformations : tuple, optional
        Transformations applied to every level after its own, with the same rules.
    name : str, optional
        Name of the multiscale image (SHOULD be present).
    type : str, optional
        The downscaling method (SHOULD be present).
    metadata : dict, optional
        Parameters of the downscaling method (SHOULD be present).
    """

    _schema_rule = SCHEMA
    _warns = True  # axis units: SHOULD be from the specification's lists

    axes: tuple[Axis, ...]
    datasets: tuple[Dataset, ...]
    coordinateTransformations: Transforms | None = None
    name: str | None = None
    type: str | None = None
    metadata: dict[str, Any] | None = None

    def _problems(self) -> Iterator[Problem]:
        yield from axes_problems(self.axes)
        ndim = len(self.axes)
        if not self.datasets:
            yield R_DATASETS("datasets", f"is empty {R_DATASETS}")
        for j, ds in enumerate(self.datasets):
            yield from transforms_length_problems(
                ds.coordinateTransformations, ndim, f"datasets[{j}].coordinateTransformations"
            )
        if self.coordinateTransformations is not None:
            yield from transforms_problems(
                self.coordinateTransformations, "coordinateTransformations"
            )
            yield from transforms_length_problems(
                self.coordinateTransformations, ndim, "coordinateTransformations"
            )
        scales = [ds.scale for ds in self.datasets]
        for j in range(1, len(scales)):
            prev, cur = scales[j - 1], scales[j]
            if len(prev) == len(cur) == ndim and any(c < p for p, c in zip(prev, cur, strict=True)):
                yield R_DATASETS_ORDER(
                    f"datasets[{j}]",
                    f"has a finer scale {list(cur)} than datasets[{j - 1}] {list(prev)} "
                    f"{R_DATASETS_ORDER}",
                )

    def __post_init__(self) -> None:
        if not multiscale_ok(self):
            enforce_rules(self)

    @property
    def ndim(self) -> int:
        """The number of axes, which every level's array must have as dimensions."""
        return len(self.axes)


_RANK = {"time": 0, "channel": 1, "space": 2}


def _transforms_ok(ts: Sequence[Transform], ndim: int) -> bool:
    if not ts or type(ts[0]) is not Scale or len(ts[0].scale) != ndim:
        return False
    if len(ts) == 1:
        return True
    return len(ts) == 2 and type(ts[1]) is Translation and len(ts[1].translation) == ndim


def multiscale_ok(m: MultiscaleBase) -> bool:
    """Whether a multiscale obeys every rule, in one pass (``False`` may also mean "unsure").

    The fast path of decoding: valid documents (nearly all of them) skip the generators of
    :meth:`MultiscaleBase._problems`, which run only when this says no.
    """
    axes = m.axes
    n = len(axes)
    if n < 2 or n > 5 or len({a.name for a in axes}) != n:
        return False
    rank = 0
    counts = {"space": 0, "time": 0, "channel": 0}
    custom = 0
    for a in axes:
        t = a.type
        r = _RANK.get(t, 1)  # type: ignore[arg-type]
        if r < rank:
            return False
        rank = r
        if t in counts:
            counts[t] += 1
        else:
            custom += 1
    if counts["space"] not in (2, 3) or counts["time"] > 1 or counts["channel"] > 1 or custom > 1:
        return False
    if not m.datasets:
        return False
    prev: tuple[float, ...] | None = None
    for d in m.datasets:
        ts = d.coordinateTransformations
        if not _transforms_ok(ts, n):
            return False
        scale = ts[0].scale  # type: ignore[union-attr]
        if prev is not None and not all(map(operator.le, prev, scale)):
            return False
        prev = scale
    top = m.coordinateTransformations
    return top is None or _transforms_ok(top, n)


# ---- image-label -------------------------------------------------------------------------------
Uint8 = Annotated[int, msgspec.Meta(ge=0, le=255)]


class Color(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The display colour of one label value (spec #label-md, "colors")."""

    _schema_rule = SCHEMA

    label_value: int = msgspec.field(name="label-value")
    rgba: tuple[Uint8, ...] | None = None

    def _problems(self) -> Iterator[Problem]:
        if self.rgba is not None and len(self.rgba) != 4:
            yield R_RGBA("rgba", f"has {len(self.rgba)} entries {R_RGBA}")

    def __post_init__(self) -> None:
        enforce_rules(self)


class Source(Base, frozen=True, kw_only=True, omit_defaults=True):
    """Where the labelled image is: ``image`` is a relative path (default ``../../``)."""

    _schema_rule = SCHEMA

    image: str | None = None


class ImageLabel(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The ``image-label`` object of a label image (spec #label-md).

    ``properties`` entries are kept as plain objects: beside the required integer
    ``label-value`` they carry arbitrary keys that a struct would drop.
    """

    _schema_rule = SCHEMA

    version: str | None = None
    colors: tuple[Color, ...] | None = None
    properties: tuple[dict[str, Any], ...] | None = None
    source: Source | None = None

    def _problems(self) -> Iterator[Problem]:
        if self.colors is not None:
            counts = Counter(c.label_value for c in self.colors)
            for i, c in enumerate(self.colors):
                if counts[c.label_value] > 1:
                    yield R_LABEL_VALUES_UNIQUE(
                        f"colors[{i}].label-value",
                        f"{c.label_value} appears {counts[c.label_value]} times "
                        f"{R_LABEL_VALUES_UNIQUE}",
                    )
        for i, p in enumerate(self.properties or ()):
            value = p.get("label-value")
            if "label-value" not in p:
                yield R_PROPERTY_LABEL_VALUE(
                    f"properties[{i}]", f'has no "label-value" {R_PROPERTY_LABEL_VALUE}'
                )
            elif not isinstance(value, int) or isinstance(value, bool):
                yield R_PROPERTY_LABEL_VALUE(
                    f'properties[{i}]["label-value"]',
                    f"must be an integer, got {value!r} {R_PROPERTY_LABEL_VALUE}",
                )

    def __post_init__(self) -> None:
        enforce_rules(self)


# ---- omero -------------------------------------------------------------------------------------
_HEX = frozenset("0123456789abcdefABCDEF")


class Window(Base, frozen=True, kw_only=True, gc=False):
    """The display window of a channel: every key is required by the specification's schema."""

    start: float
    end: float
    min: float
    max: float

    _schema_rule = OMERO


class Channel(Base, frozen=True, kw_only=True):
    """One rendered channel; keys beside ``color`` and ``window`` are kept free."""

    color: str
    window: Window

    _schema_rule = OMERO

    def _problems(self) -> Iterator[Problem]:
        if len(self.color) != 6 or not _HEX.issuperset(self.color):
            yield OMERO_COLOR("color", f"{self.color!r} is not a colour of the form RRGGBB")

    def __post_init__(self) -> None:
        if len(self.color) != 6 or not _HEX.issuperset(self.color):
            enforce_rules(self)


class Omero(Base, frozen=True, kw_only=True):
    """The transitional ``omero`` block: how each channel is rendered (spec #omero-md)."""

    channels: tuple[Channel, ...]

    _schema_rule = OMERO


# ---- group helpers -----------------------------------------------------------------------------
def split_path(path: str) -> list[str]:
    """The member names along a dataset path (``"./a//b/"`` -> ``["a", "b"]``)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(members: Mapping[str, Any], path: str) -> Any:
    """The node at ``path`` below a group's members, or None."""
    parts = split_path(path)
    if not parts:
        return None
    node: Any = None
    current: Mapping[str, Any] | None = members
    for part in parts:
        if current is None or part not in current:
            return None
        node = current[part]
        current = getattr(node, "members", None)
    return node


def dataset_problems(
    multiscales: Sequence[MultiscaleBase],
    members: Mapping[str, Any],
    is_array: Any,
    loc: str,
) -> Iterator[tuple[Problem | None, Any, int, int]]:
    """Existence and dimensionality of every level's array.

    Yields ``(problem, None, i, j)`` for a level that breaks a rule and ``(None, array, i, j)``
    for the others; callers that add per-array rules (Zarr v3 ``dimension_names``) use the array.
    """
    for i, ms in enumerate(multiscales):
        for j, ds in enumerate(ms.datasets):
            sub = f"{loc}[{i}].datasets[{j}].path"
            node = resolve(members, ds.path)
            if node is None:
                msg = f"{ds.path!r} names no member of this group {R_PATH_EXISTS}"
                yield R_PATH_EXISTS(sub, msg), None, i, j
            elif not is_array(node):
                msg = f"{ds.path!r} names a group, not an array {R_PATH_EXISTS}"
                yield R_PATH_EXISTS(sub, msg), None, i, j
            elif len(node.shape) != ms.ndim:
                msg = (
                    f"{ds.path!r} is an array with {len(node.shape)} dimensions but the "
                    f"multiscale has {ms.ndim} axes {R_NDIM}"
                )
                yield R_NDIM(sub, msg), None, i, j
            else:
                yield None, node, i, j


_INTEGER_TYPESTR = re.compile(r"[<>|=]?(?:[bBhHiIlLqQpP]|[iu][1248])")
_INTEGER_NAMES = frozenset(
    (
        *(f"{u}int{bits}" for u in ("", "u") for bits in (8, 16, 32, 64)),
        *("int", "uint", "intp", "uintp", "intc", "uintc", "byte", "ubyte", "short", "ushort"),
        *("long", "ulong", "longlong", "ulonglong"),
    )
)


def is_integer_dtype(dtype: Any) -> bool:
    """Whether a Zarr v2 ``dtype`` or v3 ``data_type`` is a (u)int type.

    The strings NumPy reads as a signed or unsigned integer, told without importing NumPy (its
    import costs a scan ~0.1 s); ``tests`` hold the two equal.
    """
    if not isinstance(dtype, str):
        return False
    return dtype in _INTEGER_NAMES or _INTEGER_TYPESTR.fullmatch(dtype) is not None
