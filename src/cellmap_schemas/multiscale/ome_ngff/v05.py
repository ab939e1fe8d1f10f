"""OME-NGFF 0.5 (https://ngff.openmicroscopy.org/0.5/): ``attributes["ome"]`` of a Zarr v3 group.

0.5 keeps the 0.4 ``multiscales`` rules, moves them under the ``ome`` namespace of ``zarr.json``
attributes with ``version: "0.5"`` at that level (not in each multiscale), and adds one array
rule: each level's ``dimension_names`` must match the axis names.

Models
------
- :class:`Multiscale`: one entry of ``ome.multiscales``.
- :class:`ImageMetadata` / :class:`GroupAttrs` / :class:`Group`: a multiscale image group.
- :class:`ImageLabelMetadata` / :class:`ImageLabelAttrs` / :class:`ImageLabelGroup`: a label image.
- :class:`LabelsMetadata` / :class:`LabelsAttrs` / :class:`LabelsGroup`: the ``labels`` group.

A Zarr v3 group with ``multiscales`` directly in its attributes (no ``ome`` namespace, as some
converters wrote while 0.5 was a draft) is not 0.5: :class:`Group` reports
``attributes.ome: field required``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self

import msgspec

from cellmap_schemas.base import Base, enforce_rules
from cellmap_schemas.multiscale.ome_ngff import _groups
from cellmap_schemas.multiscale.ome_ngff._common import (
    ImageLabel,
    MultiscaleBase,
    Omero,
    dataset_problems,
    is_integer_dtype,
)
from cellmap_schemas.multiscale.ome_ngff._groups import *  # noqa: F403 (the shared structs)
from cellmap_schemas.multiscale.ome_ngff._spec import R_LABEL_DTYPE, SCHEMA, rule
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3, NamedConfig, NodeV3

__all__ = [
    "Group",
    "GroupAttrs",
    "ImageLabelAttrs",
    "ImageLabelGroup",
    "ImageLabelMetadata",
    "ImageMetadata",
    "LabelsAttrs",
    "LabelsGroup",
    "LabelsMetadata",
    "Multiscale",
    *_groups.__all__,
]

VERSION = "0.5"
R_VERSION = rule(
    "OME026",
    "error",
    "a 0.5 image's ome.version is 0.5",
    "0.5",
    "metadata",
    "The version of the OME-Zarr Metadata is denoted as a string in the version attribute "
    "within the ome namespace",
)
R_DIMENSION_NAMES = rule(
    "OME027",
    "error",
    "every level's dimension_names match the axes names",
    "0.5",
    "axes-md",
    'The "dimension_names" attribute in the zarr.json of the Zarr array of a multiscale level '
    'MUST match the names in the "axes" metadata',
)


class Multiscale(MultiscaleBase, frozen=True, kw_only=True, omit_defaults=True):
    """One multiscale image of a 0.5 group (spec #multiscale-md); no per-entry ``version``."""


class _Metadata(Base, frozen=True, kw_only=True):
    """An ``ome`` object: its ``version`` is 0.5."""

    _schema_rule = SCHEMA

    version: str

    def _problems(self) -> Iterator[Problem]:
        if self.version != VERSION:
            yield R_VERSION("version", f"is {self.version!r}, expected {VERSION!r} {R_VERSION}")

    def __post_init__(self) -> None:
        enforce_rules(self)


class _MultiscalesMetadata(_Metadata, frozen=True, kw_only=True):
    """The ``ome`` object of an image or label image: its version and its multiscales."""

    multiscales: tuple[Multiscale, ...]

    def _problems(self) -> Iterator[Problem]:
        yield from super()._problems()
        yield from _groups.multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        if self.version != VERSION or len(self.multiscales) != 1:
            enforce_rules(self)


class ImageMetadata(_MultiscalesMetadata, frozen=True, kw_only=True, omit_defaults=True):
    """The ``ome`` object of a 0.5 image group."""

    omero: Omero | None = None


class GroupAttrs(Base, frozen=True, kw_only=True):
    """The attributes of a 0.5 image group's ``zarr.json``; keys beside ``ome`` are ignored."""

    _schema_rule = SCHEMA

    ome: ImageMetadata


def _is_array(node: Any) -> bool:
    return isinstance(node, ArraySpecV3)


def _array_problems(
    multiscales: Sequence[Multiscale],
    members: dict[str, Any],
    *,
    labels: bool = False,
) -> Iterator[Problem]:
    loc0 = "attributes.ome.multiscales"
    for problem, node, i, j in dataset_problems(multiscales, members, _is_array, loc0):
        if problem is not None:
            yield problem
            continue
        ms = multiscales[i]
        path = ms.datasets[j].path
        sub = f"{loc0}[{i}].datasets[{j}].path"
        names = tuple(a.name for a in ms.axes)
        if node.dimension_names is None:
            yield R_DIMENSION_NAMES(
                sub,
                f"{path!r} has no dimension_names; expected {list(names)} {R_DIMENSION_NAMES}",
            )
        elif tuple(node.dimension_names) != names:
            yield R_DIMENSION_NAMES(
                sub,
                f"{path!r} has dimension_names {list(node.dimension_names)}, axes are "
                f"{list(names)} {R_DIMENSION_NAMES}",
            )
        if labels and not is_integer_dtype(node.data_type):
            yield R_LABEL_DTYPE(sub, f"{path!r} has data type {node.data_type!r} {R_LABEL_DTYPE}")


class Group(_groups.ImageGroup, GroupSpecV3[GroupAttrs], frozen=True, kw_only=True):
    """A Zarr v3 group holding an OME-NGFF 0.5 multiscale image.

    Every dataset path names an array member with one dimension per axis and ``dimension_names``
    equal to the axis names.
    """

    attributes: GroupAttrs
    members: dict[str, NodeV3] = {}

    def _problems(self) -> Iterator[Problem]:
        yield from _array_problems(self.attributes.ome.multiscales, self.members)

    def __post_init__(self) -> None:
        enforce_rules(self)

    # from_arrays (in ImageGroup) with the parts of 0.5
    _subgroup = GroupSpecV3

    @classmethod
    def _multiscale(cls, **fields: Any) -> Multiscale:
        return Multiscale(**fields)

    @classmethod
    def _level(
        cls,
        array: Any,
        chunks: tuple[int, ...],
        axes: tuple[Axis, ...],  # noqa: F405
        *,
        fill_value: Any = 0,
        codecs: tuple[NamedConfig, ...] | None = None,
    ) -> ArraySpecV3[Any]:
        names = tuple(a.name for a in axes)
        return ArraySpecV3.from_array(
            array, chunks=chunks, fill_value=fill_value, codecs=codecs, dimension_names=names
        )

    @classmethod
    def _image(cls, multiscale: Multiscale, members: dict[str, Any]) -> Self:
        ome = ImageMetadata(version=VERSION, multiscales=(multiscale,))
        return cls(attributes=GroupAttrs(ome=ome), members=members)


# ---- label images and the labels group --------------------------------------------------------
class ImageLabelMetadata(_MultiscalesMetadata, frozen=True, kw_only=True):
    """The ``ome`` object of a 0.5 label image: ``multiscales`` and ``image-label``."""

    image_label: ImageLabel = msgspec.field(name="image-label")


class ImageLabelAttrs(Base, frozen=True, kw_only=True):
    """The attributes of a 0.5 label image's ``zarr.json``."""

    _schema_rule = SCHEMA

    ome: ImageLabelMetadata


class ImageLabelGroup(
    _groups.MultiscaleGroup,
    GroupSpecV3[ImageLabelAttrs],
    frozen=True,
    kw_only=True,
):
    """A 0.5 label image: a multiscale group whose arrays hold integer label values."""

    attributes: ImageLabelAttrs
    members: dict[str, NodeV3] = {}

    def _problems(self) -> Iterator[Problem]:
        yield from _array_problems(self.attributes.ome.multiscales, self.members, labels=True)

    def __post_init__(self) -> None:
        enforce_rules(self)


class LabelsMetadata(_Metadata, frozen=True, kw_only=True):
    """The ``ome`` object of a 0.5 ``labels`` group."""

    labels: tuple[str, ...]


class LabelsAttrs(Base, frozen=True, kw_only=True):
    """The attributes of a 0.5 ``labels`` group's ``zarr.json``."""

    _schema_rule = SCHEMA

    ome: LabelsMetadata


class LabelsGroup(GroupSpecV3[LabelsAttrs], frozen=True, kw_only=True):
    """A 0.5 ``labels`` group: every listed path names a group below it."""

    attributes: LabelsAttrs
    members: dict[str, NodeV3] = {}

    def _problems(self) -> Iterator[Problem]:
        yield from _groups.labels_problems(
            self.attributes.ome.labels, self.members, _is_array, "attributes.ome.labels"
        )

    def __post_init__(self) -> None:
        enforce_rules(self)
