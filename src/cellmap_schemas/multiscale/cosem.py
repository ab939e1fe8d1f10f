"""COSEM-flavoured multiscale images: Neuroglancer N5 groups plus ``STTransform`` metadata.

COSEM / Cellmap published their N5 multiscale images on OpenOrganelle with the Neuroglancer keys
(see :mod:`cellmap_schemas.multiscale.neuroglancer_n5`) *and* a ``transform`` per array and a
``multiscales`` list on the group, which name each axis and give its scale, translation and unit.
OME-NGFF 0.4 later standardised the same information; prefer it where it is present.

"Equal" means exactly equal throughout, floats included, as in the original: a transform whose
scale is ``7.860000000000001`` does not equal one whose scale is ``7.86``. Tools that write these
documents copy the numbers rather than recompute them, so exact comparison is what tells a
consistent hierarchy from an edited one.

As in :mod:`~cellmap_schemas.multiscale.neuroglancer_n5`, the attribute models are ``gc=False``
structs (acyclic by construction) with a cheap boolean check in ``__post_init__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Self

import msgspec

from cellmap_schemas.base import Base, enforce_rules, join_loc, normalize_chunks
from cellmap_schemas.multiscale import neuroglancer_n5
from cellmap_schemas.multiscale._cosem_coordinates import (
    change_coordinates,
    new_groupmetadata,
    new_multiscalemetadata,
    new_sttransform,
)
from cellmap_schemas.multiscale.neuroglancer_n5 import (
    _LEVEL_NAMES,
    PixelResolution,
    level_arrays,
    levels_present,
    scale_ratio,
)
from cellmap_schemas.multiscale.pyramid import pyramid_problems
from cellmap_schemas.rules import Problem, define
from cellmap_schemas.spec.zarr_v2 import ArraySpec, FillValue, GroupSpec, array_ok

__all__ = [
    "Array",
    "ArrayMetadata",
    "ArraySpec",
    "Group",
    "GroupMetadata",
    "GroupSpec",
    "MultiscaleMetadata",
    "PixelResolution",
    "STTransform",
    "ScaleMetadata",
    "change_coordinates",
    "neuroglancer_n5",
    "new_groupmetadata",
    "new_multiscalemetadata",
    "new_sttransform",
    "normalize_chunks",
]

Order = Literal["C", "F"]

_COSEM = "COSEM multiscale conventions (janelia-cellmap/cellmap-schemas multiscale/cosem.py)"
SCHEMA = define(
    "COSEM001", "error", "the COSEM attributes (transform, multiscales) have the required types",
    _COSEM,
)  # fmt: skip
TRANSFORM_RANK = define(
    "COSEM002", "error", "a transform's units, translate and scale have one entry per axis", _COSEM
)
UNITS_PIXR = define(
    "COSEM003", "error", "every unit of an array's transform equals pixelResolution.unit", _COSEM
)
PIXR_SCALE = define(
    "COSEM004",
    "error",
    "pixelResolution.dimensions equals transform.scale (reversed when transform.order is C)",
    _COSEM,
)
SHAPE_RANK = define(
    "COSEM005", "error", "an array's shape has one entry per axis of its transform", _COSEM
)
DATASET_MEMBER = define(
    "COSEM006",
    "error",
    "every multiscales dataset path names a member of the group",
    _COSEM,
    on_missing_member=True,
)
DATASET_ARRAY = define(
    "COSEM007", "error", "every multiscales dataset names a COSEM array (one with a transform)",
    _COSEM,
)  # fmt: skip
DATASET_TRANSFORM = define(
    "COSEM008", "error", "a member array's transform equals its multiscales dataset transform",
    _COSEM,
)  # fmt: skip
AXES_ORDER = define(
    "COSEM009",
    "error",
    "a dataset transform's axes equal the group's axes (reversed unless its order is F)",
    _COSEM,
)


class STTransform(Base, frozen=True, kw_only=True, gc=False):
    """A scale-then-translate transform of labelled axes with units.

    Made by COSEM before OME-NGFF 0.4 could name axes or translate them. A coordinate is
    ``index * scale + translate``, per axis.

    Attributes
    ----------
    order : {"C", "F"} or None
        The indexing order of ``axes`` (and of the other fields): "C" is NumPy's (lexicographic)
        order, "F" is N5's (colexicographic) order. Missing means "C". The original read a
        null order as C in group rules and as "not C" in :class:`ArrayMetadata`; so do we.
    axes : tuple[str, ...]
        Axis names.
    units : tuple[str, ...]
        Unit of each axis.
    translate : tuple[float, ...]
        Coordinate of the first sample, per axis.
    scale : tuple[float, ...]
        Distance between samples, per axis.
    """

    _schema_rule = SCHEMA

    order: Order | None = "C"
    axes: tuple[str, ...]
    units: tuple[str, ...]
    translate: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.axes)
        if len(self.units) != n or len(self.translate) != n or len(self.scale) != n:
            enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        n = len(self.axes)
        for name in ("units", "translate", "scale"):
            k = len(getattr(self, name))
            if k != n:
                yield TRANSFORM_RANK(name, f"has {k} entries but axes has {n}")


class ArrayMetadata(Base, frozen=True, kw_only=True, gc=False):
    """Attributes of one scale level: its transform and the Neuroglancer ``pixelResolution``.

    ``pixelResolution`` repeats a subset of ``transform`` (in N5 order) for Neuroglancer, so the
    two must agree: every unit equals ``pixelResolution.unit``, and ``pixelResolution.dimensions``
    equals ``transform.scale``, reversed when ``transform.order`` is "C" (exact comparison).
    As in the original, a null order counts as "not C" here (no reversal), while the group-level
    rules and constructors treat it as C: documents with a null order are rare, and agreeing with
    the original's verdicts matters more than tidying that up.

    Attributes
    ----------
    pixelResolution : PixelResolution
        Sample spacing in N5 (F) order, for Neuroglancer.
    transform : STTransform
        Axis names, units, scale and translation.
    """

    _schema_rule = SCHEMA

    pixelResolution: PixelResolution
    transform: STTransform

    def __post_init__(self) -> None:
        pixr = self.pixelResolution
        tx = self.transform
        if tx.units.count(pixr.unit) != len(tx.units) or pixr.dimensions != (
            tx.scale[::-1] if tx.order == "C" else tx.scale
        ):
            enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        pixr = self.pixelResolution
        tx = self.transform
        for i, u in enumerate(tx.units):
            if u != pixr.unit:
                yield UNITS_PIXR(
                    f"transform.units[{i}]",
                    f"{u!r} differs from pixelResolution.unit {pixr.unit!r}",
                )
        if tx.order == "C":
            if pixr.dimensions != tx.scale[::-1]:
                yield PIXR_SCALE(
                    "pixelResolution.dimensions",
                    f"{pixr.dimensions} differs from transform.scale reversed {tx.scale[::-1]} "
                    '(transform.order is "C", so pixelResolution, which is in F order, must be '
                    "the reverse of transform.scale)",
                )
        elif pixr.dimensions != tx.scale:
            yield PIXR_SCALE(
                "pixelResolution.dimensions",
                f"{pixr.dimensions} differs from transform.scale {tx.scale} "
                f"(transform.order is {tx.order!r}, so they must be equal)",
            )

    @classmethod
    def from_transform(cls, transform: STTransform) -> Self:
        """The attributes of an array with this transform (``pixelResolution`` derived)."""
        if transform.order == "C":
            pixr = PixelResolution(dimensions=transform.scale[::-1], unit=transform.units[-1])
        else:
            pixr = PixelResolution(dimensions=transform.scale, unit=transform.units[0])
        return cls(pixelResolution=pixr, transform=transform)


class ScaleMetadata(Base, frozen=True, kw_only=True, gc=False):
    """An entry of ``multiscales[0].datasets``: an array's path in the group and its transform.

    Attributes
    ----------
    transform : STTransform
        The transform of the array at ``path``.
    path : str
        Name of the array, relative to the group.
    """

    _schema_rule = SCHEMA

    transform: STTransform
    path: str


class MultiscaleMetadata(Base, frozen=True, kw_only=True, gc=False):
    """The multiscale image a COSEM group holds: one entry per scale level.

    Attributes
    ----------
    name : str or None
        A name for the image (rarely set).
    datasets : tuple[ScaleMetadata, ...]
        The levels, each naming a member array and repeating its transform.
    """

    _schema_rule = SCHEMA

    name: str | None = None
    datasets: tuple[ScaleMetadata, ...]

    @classmethod
    def from_transforms(
        cls, *, transforms: Mapping[str, STTransform], name: str | None = None
    ) -> Self:
        """The metadata of arrays named by the keys of ``transforms``, in that order."""
        return cls(
            name=name,
            datasets=tuple(ScaleMetadata(path=k, transform=t) for k, t in transforms.items()),
        )


Multiscales = Annotated[tuple[MultiscaleMetadata, ...], msgspec.Meta(min_length=1, max_length=1)]
"""The ``multiscales`` list: COSEM groups hold exactly one image."""


class GroupMetadata(neuroglancer_n5.GroupMetadata, frozen=True, kw_only=True):
    """Attributes of a COSEM multiscale group: the Neuroglancer keys plus ``multiscales``.

    The Neuroglancer keys (``axes``, ``units``, ``scales``, ``pixelResolution``, in N5 order)
    let Neuroglancer display the group; ``multiscales`` repeats each array's transform.

    Attributes
    ----------
    multiscales : tuple[MultiscaleMetadata]
        Exactly one element.
    """

    _schema_rule = SCHEMA

    multiscales: Multiscales

    @classmethod
    def from_transforms(
        cls, transforms: Mapping[str, STTransform], *, name: str | None = None
    ) -> Self:
        """Group attributes for arrays with these transforms, keyed by array name.

        The full-resolution level is ``transforms["s0"]`` (or the first one, if there is no
        ``s0``). ``scales`` are put in N5 order like ``axes``; the original left them in the
        transforms' order, which only differs for anisotropic downsampling.
        """
        if not transforms:
            raise ValueError("transforms is empty: a multiscale group needs at least one level")
        s0 = transforms.get("s0") or next(iter(transforms.values()))
        step = 1 if s0.order == "F" else -1
        scales = tuple(
            tuple(scale_ratio(a, b) for a, b in zip(t.scale, s0.scale, strict=True))[::step]
            for t in transforms.values()
        )
        units = s0.units[::step]
        return cls(
            axes=s0.axes[::step],
            units=units,
            scales=scales,
            pixelResolution=PixelResolution(dimensions=s0.scale[::step], unit=units[0]),
            multiscales=(MultiscaleMetadata.from_transforms(transforms=transforms, name=name),),
        )


class Array(ArraySpec[ArrayMetadata], frozen=True, kw_only=True):
    """A scale level of a COSEM group: an array spec with :class:`ArrayMetadata` attributes.

    ``shape`` has one entry per axis of ``attributes.transform``.
    """

    attributes: ArrayMetadata

    def __post_init__(self) -> None:
        if len(self.attributes.transform.axes) != len(self.shape) or not array_ok(self):
            enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        yield from super()._problems()
        n = len(self.attributes.transform.axes)
        if len(self.shape) != n:
            yield SHAPE_RANK(
                "shape", f"has {len(self.shape)} entries but attributes.transform.axes has {n}"
            )


class Group(neuroglancer_n5.Group, frozen=True, kw_only=True):
    """A COSEM multiscale group, as published on OpenOrganelle.

    Beyond the Neuroglancer rule (an array ``s{i}`` per level), every
    ``attributes.multiscales[0].datasets[i]`` names a member array whose transform equals the
    dataset's transform, and the transform's axes equal ``attributes.axes`` (reversed unless the
    transform's order is "F"). Every member is an :class:`Array`.

    Attributes
    ----------
    attributes : GroupMetadata
        Multiscale metadata.
    members : dict[str, Array]
        The scale levels.
    """

    attributes: GroupMetadata
    members: dict[str, Array] = {}

    def __post_init__(self) -> None:
        # The hot path of a scan: one pass over the datasets, one over the level names, no
        # generator; _problems words the failures only when something is off.
        attrs = self.attributes
        members = self.members
        multiscales = attrs.multiscales
        if multiscales:
            axes = attrs.axes
            raxes = axes[::-1]
            datasets = multiscales[0].datasets
            for ds in datasets:
                tx = ds.transform
                member = members.get(ds.path)
                if (
                    member is None
                    or (type(member) is not Array and not isinstance(member, Array))
                    or member.attributes.transform != tx
                    or tx.axes != (axes if tx.order == "F" else raxes)
                ):
                    break
            else:
                # Usually the datasets are s0, s1, ... in order: then the loop above has already
                # found every level's array, and the Neuroglancer rule needs no second walk.
                levels = len(attrs.scales)
                if levels <= len(datasets) and levels <= len(_LEVEL_NAMES):
                    for ds, name in zip(datasets, _LEVEL_NAMES[:levels], strict=False):
                        if ds.path != name:
                            break
                    else:
                        return
                if levels_present(members, levels):
                    return
        enforce_rules(self)

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "cosem")  # type: ignore[arg-type]

    def _problems(self) -> Iterator[Problem]:
        yield from super()._problems()
        attrs = self.attributes
        if not attrs.multiscales:
            return
        axes = attrs.axes
        for i, ds in enumerate(attrs.multiscales[0].datasets):
            loc = f"attributes.multiscales[0].datasets[{i}]"
            tx = ds.transform
            member = self.members.get(ds.path)
            if member is None:
                yield DATASET_MEMBER(
                    f"{loc}.path", f"names {ds.path!r}, which is not a member of this group"
                )
            elif not isinstance(member, Array):
                kind = "an array" if isinstance(member, ArraySpec) else "a group"
                yield DATASET_ARRAY(
                    f"{loc}.path",
                    f"names {ds.path!r}, which is {kind} but not a COSEM array (no transform)",
                )
            elif member.attributes.transform != tx:
                yield DATASET_TRANSFORM(
                    join_loc(join_loc(join_loc("members", ds.path), "attributes"), "transform"),
                    f"{_show(member.attributes.transform)} differs from {loc}.transform "
                    f"{_show(tx)}",
                )
            if tx.order == "F":
                if tx.axes != axes:
                    yield AXES_ORDER(
                        f"{loc}.transform.axes",
                        f'{tx.axes} differs from attributes.axes {axes} (transform.order is "F", '
                        "so they must be equal)",
                    )
            elif tx.axes != axes[::-1]:
                yield AXES_ORDER(
                    f"{loc}.transform.axes",
                    f"{tx.axes} differs from attributes.axes reversed {axes[::-1]} "
                    f"(transform.order is {tx.order!r}; attributes.axes are in F order)",
                )

    @classmethod
    def from_arrays(
        cls,
        *,
        arrays: Sequence[Any],
        paths: Sequence[str],
        transforms: Sequence[STTransform] | None = None,
        scales: Sequence[Sequence[float]] | None = None,
        translates: Sequence[Sequence[float]] | None = None,
        axes: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        dimension_order: Order = "C",
        name: str | None = None,
        chunks: Literal["auto"] | Sequence[int] | Sequence[Sequence[int]] = "auto",
        compressor: Literal["auto"] | dict[str, Any] | None = "auto",
        fill_value: FillValue | Literal["auto"] = "auto",
    ) -> Self:
        """A COSEM multiscale group from array-likes and their spatial metadata.

        Give either ``transforms`` (one :class:`STTransform` per array), or ``scales`` with
        ``axes`` and ``units`` (and optionally ``translates``, zeros by default) in
        ``dimension_order``, from which the transforms are built.

        Parameters
        ----------
        arrays : Sequence[array-like]
            The levels of the image, full resolution first.
        paths : Sequence[str]
            Member name of each level (``s0``, ``s1``, ...).
        transforms : Sequence[STTransform], optional
            The transform of each level.
        scales, translates : Sequence[Sequence[float]], optional
            Sample spacing and origin of each level, per axis (when ``transforms`` is not
            given).
        axes, units : Sequence[str], optional
            Axis names and units (when ``transforms`` is not given).
        dimension_order : {"C", "F"}
            Order of ``axes``, ``units``, ``scales`` and ``translates``; becomes each built
            transform's ``order``.
        name : str, optional
            Name of the multiscale image.
        chunks, compressor, fill_value
            How the arrays are stored, as in
            :meth:`cellmap_schemas.multiscale.neuroglancer_n5.Group.from_arrays`.

        Returns
        -------
        Group
        """
        if transforms is None:
            if scales is None or axes is None or units is None:
                raise ValueError("give either transforms, or scales with axes and units")
            if translates is None:
                translates = [(0.0,) * len(axes)] * len(scales)
            transforms = [
                STTransform(
                    order=dimension_order,
                    axes=tuple(axes),
                    units=tuple(units),
                    translate=tuple(float(x) for x in t),
                    scale=tuple(float(x) for x in s),
                )
                for s, t in zip(scales, translates, strict=True)
            ]
        chunk_shapes = normalize_chunks(chunks, arrays)
        levels = zip(paths, arrays, transforms, chunk_shapes, strict=True)
        members = level_arrays(
            Array,
            ((path, array, chunk, tx) for path, array, tx, chunk in levels),
            ArrayMetadata.from_transform,
            compressor,
            fill_value,
        )
        metadata = GroupMetadata.from_transforms(
            {k: m.attributes.transform for k, m in members.items()}, name=name
        )
        return cls(attributes=metadata, members=members)


def _show(tx: STTransform) -> str:
    return (
        f"(order={tx.order!r}, axes={tx.axes}, units={tx.units}, translate={tx.translate}, "
        f"scale={tx.scale})"
    )
