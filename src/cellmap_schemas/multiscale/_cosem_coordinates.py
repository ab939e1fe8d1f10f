"""Changing the coordinates of COSEM metadata: new transforms, and a group rescaled as a whole.

The functions are re-exported by :mod:`cellmap_schemas.multiscale.cosem`, where the original
defined them; they import it when called, since it imports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellmap_schemas.multiscale.cosem import (
        Group,
        GroupMetadata,
        MultiscaleMetadata,
        Order,
        STTransform,
    )

__all__ = ["change_coordinates", "new_groupmetadata", "new_multiscalemetadata", "new_sttransform"]


def new_sttransform(
    meta: STTransform,
    *,
    scale: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    order: Order | None = None,
    translate: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
) -> STTransform:
    """``meta`` with the given fields replaced (None keeps the old value)."""
    from cellmap_schemas.multiscale.cosem import STTransform

    return STTransform(
        order=meta.order if order is None else order,
        axes=meta.axes if axes is None else tuple(axes),
        units=meta.units if units is None else tuple(units),
        translate=meta.translate if translate is None else tuple(float(x) for x in translate),
        scale=meta.scale if scale is None else tuple(float(x) for x in scale),
    )


def new_multiscalemetadata(
    meta: MultiscaleMetadata,
    *,
    scale: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    order: Order | None = None,
    translate: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
) -> MultiscaleMetadata:
    """``meta`` with the same replacement applied to every dataset's transform."""
    from cellmap_schemas.multiscale.cosem import MultiscaleMetadata, ScaleMetadata

    return MultiscaleMetadata(
        name=meta.name,
        datasets=tuple(
            ScaleMetadata(
                path=ds.path,
                transform=new_sttransform(
                    ds.transform,
                    scale=scale,
                    axes=axes,
                    order=order,
                    translate=translate,
                    units=units,
                ),
            )
            for ds in meta.datasets
        ),
    )


def new_groupmetadata(
    meta: GroupMetadata,
    *,
    scale: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    order: Order | None = None,
    translate: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
) -> GroupMetadata:
    """``meta`` with the replacement applied to its transforms and its Neuroglancer keys.

    ``axes``, ``units`` and ``scale`` are given in ``order`` (C when None) and stored in N5
    order at the group level.
    """
    from cellmap_schemas.multiscale.cosem import GroupMetadata, PixelResolution

    c = order != "F"
    new_axes = meta.axes if axes is None else (tuple(axes)[::-1] if c else tuple(axes))
    new_units = meta.units if units is None else (tuple(units)[::-1] if c else tuple(units))
    if scale is None:
        pixr = meta.pixelResolution
    else:
        dims = tuple(float(x) for x in scale)
        pixr = PixelResolution(dimensions=dims[::-1] if c else dims, unit=new_units[0])
    return GroupMetadata(
        axes=new_axes,
        units=new_units,
        scales=meta.scales,
        pixelResolution=pixr,
        multiscales=tuple(
            new_multiscalemetadata(
                m, scale=scale, axes=axes, order=order, translate=translate, units=units
            )
            for m in meta.multiscales
        ),
    )


def change_coordinates(
    group: Group,
    *,
    scale: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    order: Order | None = None,
    translate: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
) -> Group:
    """``group`` with new coordinates; None keeps the old value.

    ``axes``, ``units`` and ``order`` are replaced in every transform. ``scale`` and
    ``translate`` are the new values for the largest array; every other array's scale is
    multiplied, and its translation shifted, by the same amount, so the pyramid keeps its
    geometry. Members come back ordered from largest to smallest, as in the original.
    """
    from cellmap_schemas.multiscale.cosem import ArrayMetadata, Group, GroupMetadata

    members = sorted(group.members.items(), key=lambda kv: -math.prod(kv[1].shape))
    if not members:
        raise ValueError("the group has no members to change")
    base_tx = members[0][1].attributes.transform
    new_base = new_sttransform(
        base_tx, scale=scale, axes=axes, order=order, translate=translate, units=units
    )
    factor = [a / b for a, b in zip(new_base.scale, base_tx.scale, strict=True)]
    shift = [a - b for a, b in zip(new_base.translate, base_tx.translate, strict=True)]
    transforms: dict[str, STTransform] = {}
    for key, member in members:
        old = member.attributes.transform
        transforms[key] = new_sttransform(
            old,
            scale=[a * b for a, b in zip(old.scale, factor, strict=True)],
            translate=[a + b for a, b in zip(old.translate, shift, strict=True)],
            order=order,
            units=units,
            axes=axes,
        )
    attrs = GroupMetadata.from_transforms(transforms, name=group.attributes.multiscales[0].name)
    return Group(
        attributes=attrs,
        members={
            key: member.model_copy(
                update={"attributes": ArrayMetadata.from_transform(transforms[key])}
            )
            for key, member in members
        },
    )
