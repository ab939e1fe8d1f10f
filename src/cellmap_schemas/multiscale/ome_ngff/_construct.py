"""Building OME-NGFF metadata from arrays: what ``from_arrays`` of 0.4 and 0.5 share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cellmap_schemas.multiscale.ome_ngff._common import (
    Axis,
    Dataset,
    Transform,
    build_transforms,
    split_path,
)

__all__ = [
    "build_datasets",
    "build_members",
    "global_transforms",
    "infer_axis_type",
    "insert_member",
    "make_axes",
]


def insert_member(members: dict[str, Any], path: str, node: Any, group: Any) -> None:
    """Put ``node`` at ``path``, creating intermediate groups with the ``group`` factory."""
    parts = split_path(path)
    if not parts:
        raise ValueError(f"empty array path {path!r}")
    current = members
    for part in parts[:-1]:
        sub = current.get(part)
        if sub is None:
            sub = current[part] = {}
        elif not isinstance(sub, dict):
            raise ValueError(f"path {path!r} passes through array {part!r}")
        current = sub
    if parts[-1] in current:
        raise ValueError(f"two arrays at path {path!r}")
    current[parts[-1]] = node


def build_members(tree: dict[str, Any], group: Any) -> dict[str, Any]:
    """Turn the nested dicts of :func:`insert_member` into group specs."""
    return {
        k: group(members=build_members(v, group)) if isinstance(v, dict) else v
        for k, v in tree.items()
    }


def infer_axis_type(name: str) -> str:
    """The axis type that a conventional name implies (``t`` time, ``c`` channel, else space)."""
    lowered = name.lower()
    if lowered in ("t", "time"):
        return "time"
    if lowered in ("c", "ch", "channel", "channels"):
        return "channel"
    return "space"


def make_axes(
    axes: Sequence[str | Axis],
    units: Sequence[str | None] | str | None,
    types: Sequence[str | None] | None,
) -> tuple[Axis, ...]:
    """Axis structs from names (or structs), with units and types given or inferred."""
    n = len(axes)
    if isinstance(units, str) or units is None:
        unit_list: list[str | None] = [None] * n
    else:
        unit_list = list(units)
        if len(unit_list) != n:
            raise ValueError(f"got {len(unit_list)} units for {n} axes")
    if types is not None and len(types) != n:
        raise ValueError(f"got {len(types)} axis types for {n} axes")
    out = []
    for i, a in enumerate(axes):
        if isinstance(a, Axis):
            out.append(a)
            continue
        t = types[i] if types is not None else infer_axis_type(a)
        u = unit_list[i]
        if isinstance(units, str) and t == "space":
            u = units
        out.append(Axis(name=a, type=t, unit=u))
    return tuple(out)


def build_datasets(
    paths: Sequence[str],
    scales: Sequence[Sequence[float]],
    translations: Sequence[Sequence[float] | None] | None,
    n: int,
) -> tuple[Dataset, ...]:
    if not len(paths) == len(scales) == n:
        raise ValueError(
            f"got {n} arrays, {len(paths)} paths and {len(scales)} scales; give one of each per "
            "level"
        )
    trans = list(translations) if translations is not None else [None] * n
    if len(trans) != n:
        raise ValueError(f"got {len(trans)} translations for {n} arrays")
    return tuple(
        Dataset(path=p, coordinateTransformations=build_transforms(s, t))
        for p, s, t in zip(paths, scales, trans, strict=True)
    )


def global_transforms(
    scale: Sequence[float] | None, translation: Sequence[float] | None
) -> tuple[Transform, ...] | None:
    if scale is None and translation is None:
        return None
    if scale is None:
        raise ValueError("global_translation needs global_scale (a scale must come first)")
    return build_transforms(scale, translation)
