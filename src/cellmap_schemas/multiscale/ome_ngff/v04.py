"""OME-NGFF 0.4 (https://ngff.openmicroscopy.org/0.4/): ``multiscales`` in a Zarr v2 ``.zattrs``.

Models
------
- :class:`Multiscale`: one entry of ``multiscales`` (its ``version``, when present, is "0.4").
- :class:`GroupAttrs` / :class:`Group`: a multiscale image group; every dataset path must name an
  array member whose dimensionality equals the number of axes.
- :class:`ImageLabelAttrs` / :class:`ImageLabelGroup`: a label image (``image-label`` beside
  ``multiscales``; integer arrays).
- :class:`LabelsAttrs` / :class:`LabelsGroup`: the ``labels`` group listing label images.

A COSEM group also has a ``multiscales`` key, so it *looks like* a 0.4 group to
:func:`cellmap_schemas.registry.looks_like`; it is then judged invalid here (its multiscales lack
``axes`` and use ``transform`` instead of ``coordinateTransformations``), which is correct: COSEM
metadata is not OME-NGFF.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Self

import msgspec

from cellmap_schemas.base import Base, enforce_rules
from cellmap_schemas.multiscale.ome_ngff import _groups
from cellmap_schemas.multiscale.ome_ngff._common import (
    ImageLabel,
    MultiscaleBase,
    Omero,
    dataset_problems,
    is_integer_dtype,
    multiscale_ok,
)
from cellmap_schemas.multiscale.ome_ngff._groups import *  # noqa: F403 (the shared structs)
from cellmap_schemas.multiscale.ome_ngff._spec import R_LABEL_DTYPE, SCHEMA, rule
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v2 import ArraySpec, FillValue, GroupSpec, Node

__all__ = [
    "Group",
    "GroupAttrs",
    "ImageLabelAttrs",
    "ImageLabelGroup",
    "LabelsAttrs",
    "LabelsGroup",
    "Multiscale",
    *_groups.__all__,
]

VERSION = "0.4"
R_VERSION = rule(
    "OME024",
    "error",
    "a 0.4 multiscale's version, when present, is 0.4",
    "0.4",
    "multiscale-md",
    "current version is 0.4",
)


class Multiscale(MultiscaleBase, frozen=True, kw_only=True, omit_defaults=True):
    """One multiscale image of a 0.4 group (spec #multiscale-md).

    ``version`` SHOULD be present; when it is, it must be "0.4" (other versions have other rules:
    0.3 axes are strings, 0.5 moves ``version`` to the ``ome`` namespace).
    """

    version: str | None = None

    def _problems(self) -> Iterator[Problem]:
        if self.version is not None and self.version != VERSION:
            yield R_VERSION("version", f"is {self.version!r}, expected {VERSION!r} {R_VERSION}")
        yield from super()._problems()

    def __post_init__(self) -> None:
        if (self.version is None or self.version == VERSION) and multiscale_ok(self):
            return
        enforce_rules(self)


class GroupAttrs(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The ``.zattrs`` of a 0.4 multiscale image group; other keys are ignored."""

    _schema_rule = SCHEMA

    multiscales: tuple[Multiscale, ...]
    omero: Omero | None = None

    def _problems(self) -> Iterator[Problem]:
        yield from _groups.multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        if len(self.multiscales) != 1:  # a single multiscale is neither missing nor repeated
            enforce_rules(self)


def _is_array(node: Any) -> bool:
    return isinstance(node, ArraySpec)


def _group_problems(
    multiscales: Sequence[Multiscale], members: dict[str, Any]
) -> Iterator[Problem]:
    for problem, *_ in dataset_problems(multiscales, members, _is_array, "attributes.multiscales"):
        if problem is not None:
            yield problem


class Group(_groups.ImageGroup, GroupSpec[GroupAttrs], frozen=True, kw_only=True):
    """A Zarr v2 group holding an OME-NGFF 0.4 multiscale image.

    Members may be arrays or groups (a ``labels`` group sits beside the levels, and a dataset
    path may go through an intermediate group); every dataset path must name an array.
    """

    attributes: GroupAttrs
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    def _problems(self) -> Iterator[Problem]:
        yield from _group_problems(self.attributes.multiscales, self.members)

    def __post_init__(self) -> None:
        enforce_rules(self)

    # from_arrays (in ImageGroup) with the parts of 0.4
    _subgroup = GroupSpec

    @classmethod
    def _multiscale(cls, **fields: Any) -> Multiscale:
        return Multiscale(**fields, version=VERSION)

    @classmethod
    def _level(
        cls,
        array: Any,
        chunks: tuple[int, ...],
        axes: Any,
        *,
        compressor: Literal["auto"] | dict[str, Any] | None = "auto",
        fill_value: FillValue | Literal["auto"] = "auto",
    ) -> ArraySpec[Any]:
        return ArraySpec.from_array(
            array,
            chunks=chunks,
            compressor=compressor,
            fill_value=fill_value,
            dimension_separator="/",
        )

    @classmethod
    def _image(cls, multiscale: Multiscale, members: dict[str, Any]) -> Self:
        return cls(attributes=GroupAttrs(multiscales=(multiscale,)), members=members)


# ---- label images and the labels group --------------------------------------------------------
class ImageLabelAttrs(Base, frozen=True, kw_only=True):
    """The ``.zattrs`` of a 0.4 label image: ``image-label`` plus ``multiscales``."""

    _schema_rule = SCHEMA

    image_label: ImageLabel = msgspec.field(name="image-label")
    multiscales: tuple[Multiscale, ...]

    def _problems(self) -> Iterator[Problem]:
        yield from _groups.multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        enforce_rules(self)


class ImageLabelGroup(
    _groups.MultiscaleGroup, GroupSpec[ImageLabelAttrs], frozen=True, kw_only=True
):
    """A 0.4 label image: a multiscale group whose arrays hold integer label values."""

    attributes: ImageLabelAttrs
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    def _problems(self) -> Iterator[Problem]:
        for problem, node, i, j in dataset_problems(
            self.attributes.multiscales, self.members, _is_array, "attributes.multiscales"
        ):
            if problem is not None:
                yield problem
            elif not is_integer_dtype(node.dtype):
                path = self.attributes.multiscales[i].datasets[j].path
                yield R_LABEL_DTYPE(
                    f"attributes.multiscales[{i}].datasets[{j}].path",
                    f"{path!r} has dtype {node.dtype!r} {R_LABEL_DTYPE}",
                )

    def __post_init__(self) -> None:
        enforce_rules(self)


class LabelsAttrs(Base, frozen=True, kw_only=True):
    """The ``.zattrs`` of a 0.4 ``labels`` group: the paths of its label images."""

    _schema_rule = SCHEMA

    labels: tuple[str, ...]


class LabelsGroup(GroupSpec[LabelsAttrs], frozen=True, kw_only=True):
    """A 0.4 ``labels`` group: every listed path names a group below it."""

    attributes: LabelsAttrs
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    def _problems(self) -> Iterator[Problem]:
        yield from _groups.labels_problems(
            self.attributes.labels, self.members, _is_array, "attributes.labels"
        )

    def __post_init__(self) -> None:
        enforce_rules(self)
