"""``CROP101`` across nodes: a crop's class groups against the image they annotate.

A crop and its image are different nodes: Cellmap keeps crops at
``<recon>/labels/groundtruth/<crop>`` and the EM images they annotate at ``<recon>/em/<image>``.
The walker records the s0 grid of every image it meets and, once the walk is over, hands each
crop the images of its reconstruction; a crop whose image the walk cannot reach (not in the
bucket, or above a ``check``'s node and not readable) is not judged by this rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from cellmap_schemas.formats import Format
from cellmap_schemas.multiscale.pyramid import _cosem_levels, _ome_levels, crop_grid_problems
from cellmap_schemas.rules import Problem

__all__ = [
    "CropLevel",
    "ImageGrid",
    "crop_levels",
    "crop_problems",
    "crop_scope",
    "image_grid",
    "image_scope",
]

CROP_MODEL = "annotation.CropGroup"
"""The model whose verdict carries the rule (a crop, judged with its class groups)."""


class ImageGrid(NamedTuple):
    """The s0 grid of an image: where it is, its voxel size and offset (array order)."""

    where: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]


def image_scope(path: str) -> str | None:
    """The reconstruction an image belongs to (``a/recon-1`` for ``a/recon-1/em/fibsem-uint8``),
    or ``None`` when ``path`` is not an image's place."""
    head, _, name = path.rpartition("/")
    parent, _, em = head.rpartition("/") if "/" in head else ("", "", head)
    return parent if em == "em" and name else None


def crop_scope(path: str) -> str | None:
    """The reconstruction a crop belongs to: the path before its last ``labels`` component
    (``a/recon-1`` for ``a/recon-1/labels/groundtruth/crop1``); ``None`` without one."""
    parts = path.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "labels":
            return "/".join(parts[:i])
    return None


def image_grid(spec: Mapping[str, Any], fmt: Format, where: str) -> ImageGrid | None:
    """The s0 grid a multiscale group declares (OME-NGFF or COSEM), or ``None``."""
    for levels in (_ome_levels(spec, fmt), _cosem_levels(spec, fmt)):
        if levels and levels[0].scale:
            scale = levels[0].scale
            translate = levels[0].translate or (0.0,) * len(scale)
            return ImageGrid(where, scale, translate)
    return None


def _finest(images: Sequence[ImageGrid]) -> ImageGrid | None:
    """The image a crop is judged against: the finest (raw EM), by name on a tie."""

    def size(g: ImageGrid) -> tuple[float, str]:
        product = 1.0
        for s in g.scale:
            product *= s
        return product, g.where

    return min(images, key=size) if images else None


class CropLevel(NamedTuple):
    """A class group's s0 as the rule needs it (array order), and where its offset is."""

    name: str
    loc: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]


def crop_levels(spec: Mapping[str, Any], fmt: Format) -> list[CropLevel]:
    """The s0 of every class group the crop ``spec`` (members filled) lists in ``class_names``:
    all the rule keeps of a crop while the walk goes on."""
    members = spec.get("members")
    names = _get(spec, "attributes", "cellmap", "annotation", "class_names")
    if not isinstance(members, Mapping) or not isinstance(names, list):
        return []
    out: list[CropLevel] = []
    for name in names:
        member = members.get(name) if isinstance(name, str) else None
        if not isinstance(member, Mapping) or "members" not in member:
            continue
        levels = _ome_levels(member, fmt)
        scale = levels[0].scale if levels else None
        if scale is None:
            continue
        s0 = levels[0]
        loc = f"members.{name}.{s0.translate_loc or s0.scale_loc}"
        out.append(CropLevel(name, loc, scale, s0.translate or (0.0,) * len(scale)))
    return out


def crop_problems(levels: Sequence[CropLevel], images: Sequence[ImageGrid]) -> list[Problem]:
    """``CROP101`` for every class group of a crop against the finest of ``images``;
    messages name the class group and the image."""
    image = _finest(images)
    if image is None:
        return []
    out: list[Problem] = []
    for lv in levels:
        for p in crop_grid_problems(
            lv.translate, lv.scale, image.scale, image.translate, loc=lv.loc
        ):
            out.append(p._replace(msg=f"{lv.name}: {p.msg} (image {image.where})"))
    return out


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d
