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

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Self

import msgspec

from cellmap_schemas.base import Base, enforce_rules, normalize_chunks
from cellmap_schemas.multiscale.ome_ngff._common import (
    Axis,
    Color,
    Dataset,
    Identity,
    ImageLabel,
    MultiscaleBase,
    Omero,
    Scale,
    Source,
    Transform,
    Translation,
    dataset_problems,
    is_integer_dtype,
    resolve,
)
from cellmap_schemas.multiscale.ome_ngff._construct import (
    build_datasets,
    build_members,
    global_transforms,
    insert_member,
    make_axes,
)
from cellmap_schemas.multiscale.ome_ngff._spec import (
    R_LABEL_DTYPE,
    R_LABELS_PATHS,
    R_MULTISCALES,
    SCHEMA,
    UNIQUE_MULTISCALES,
    rule,
)
from cellmap_schemas.multiscale.pyramid import pyramid_problems
from cellmap_schemas.rules import Problem
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3, NamedConfig, NodeV3

__all__ = [
    "Axis",
    "Color",
    "Dataset",
    "Group",
    "GroupAttrs",
    "Identity",
    "ImageLabel",
    "ImageLabelAttrs",
    "ImageLabelGroup",
    "ImageLabelMetadata",
    "ImageMetadata",
    "LabelsAttrs",
    "LabelsGroup",
    "LabelsMetadata",
    "Multiscale",
    "Scale",
    "Source",
    "Transform",
    "Translation",
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


def _version_problems(version: str) -> Iterator[Problem]:
    if version != VERSION:
        yield R_VERSION("version", f"is {version!r}, expected {VERSION!r} {R_VERSION}")


def _multiscales_problems(ms: Sequence[Multiscale]) -> Iterator[Problem]:
    if not ms:
        yield R_MULTISCALES("multiscales", f"is empty {R_MULTISCALES}")
    seen: dict[bytes, int] = {}
    for i, m in enumerate(ms):
        key = msgspec.json.encode(m)
        if key in seen:
            yield UNIQUE_MULTISCALES(
                f"multiscales[{i}]", f"repeats multiscales[{seen[key]}] (items must be unique)"
            )
        seen.setdefault(key, i)


class ImageMetadata(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The ``ome`` object of a 0.5 image group."""

    _schema_rule = SCHEMA

    version: str
    multiscales: tuple[Multiscale, ...]
    omero: Omero | None = None

    def _problems(self) -> Iterator[Problem]:
        yield from _version_problems(self.version)
        yield from _multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        if self.version != VERSION or len(self.multiscales) != 1:
            enforce_rules(self)


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


class Group(GroupSpecV3[GroupAttrs], frozen=True, kw_only=True, tag_field="node_type", tag="group"):
    """A Zarr v3 group holding an OME-NGFF 0.5 multiscale image.

    Every dataset path names an array member with one dimension per axis and ``dimension_names``
    equal to the axis names.
    """

    attributes: GroupAttrs
    members: dict[str, NodeV3] = {}

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "ome_ngff")  # type: ignore[arg-type]

    def _problems(self) -> Iterator[Problem]:
        yield from _array_problems(self.attributes.ome.multiscales, self.members)

    def __post_init__(self) -> None:
        enforce_rules(self)

    @classmethod
    def from_arrays(
        cls,
        arrays: Sequence[Any],
        paths: Sequence[str],
        axes: Sequence[str | Axis],
        scales: Sequence[Sequence[float]],
        translations: Sequence[Sequence[float] | None] | None = None,
        *,
        units: Sequence[str | None] | str | None = None,
        types: Sequence[str | None] | None = None,
        name: str | None = None,
        multiscale_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        global_scale: Sequence[float] | None = None,
        global_translation: Sequence[float] | None = None,
        chunks: Literal["auto"] | Sequence[int] | Sequence[Sequence[int]] = "auto",
        fill_value: Any = 0,
        codecs: tuple[NamedConfig, ...] | None = None,
    ) -> Self:
        """An OME-NGFF 0.5 multiscale group from array-likes and their spatial metadata.

        Parameters
        ----------
        arrays : Sequence[array-like]
            The levels of the image (NumPy, zarr, dask ...), highest resolution first.
        paths : Sequence[str]
            The path of each level's array (``"s0"``, ``"0"``; ``"a/b"`` creates group ``a``).
        axes : Sequence[str or Axis]
            Axis names in array order (they become each array's ``dimension_names``), or full
            :class:`Axis` structs.
        scales : Sequence[Sequence[float]]
            Sample spacing of each level, per axis.
        translations : Sequence[Sequence[float] or None], optional
            Position of each level's first sample, per axis (None: no translation).
        units : Sequence[str or None] or str, optional
            Unit of each axis, or one unit for every space axis (e.g. ``"nanometer"``).
        types : Sequence[str or None], optional
            Type of each axis; by default ``t`` is time, ``c`` is channel, others are space.
        name, multiscale_type, metadata : optional
            The multiscale's ``name``, ``type`` and ``metadata``.
        global_scale, global_translation : Sequence[float], optional
            The multiscale-level ``coordinateTransformations``.
        chunks : "auto" or tuple of ints or tuple of tuples of ints
            See :func:`~cellmap_schemas.base.normalize_chunks`.
        fill_value : scalar
            Fill value of every array.
        codecs : tuple of dict, optional
            The arrays' codec chain (default: ``bytes`` only).

        Returns
        -------
        Group
            A validated group; ``to_zarr`` writes it.

        Raises
        ------
        ValueError
            If the lengths disagree or the metadata breaks a rule of the specification.
        """
        ax = make_axes(axes, units, types)
        multiscale = Multiscale(
            axes=ax,
            datasets=build_datasets(paths, scales, translations, len(arrays)),
            coordinateTransformations=global_transforms(global_scale, global_translation),
            name=name,
            type=multiscale_type,
            metadata=metadata,
        )
        names = tuple(a.name for a in ax)
        tree: dict[str, Any] = {}
        for path, array, chunk in zip(paths, arrays, normalize_chunks(chunks, arrays), strict=True):
            spec: Any = ArraySpecV3.from_array(
                array, chunks=chunk, fill_value=fill_value, codecs=codecs, dimension_names=names
            )
            insert_member(tree, path, spec, GroupSpecV3)
        return cls(
            attributes=GroupAttrs(ome=ImageMetadata(version=VERSION, multiscales=(multiscale,))),
            members=build_members(tree, GroupSpecV3),
        )


# ---- label images and the labels group --------------------------------------------------------
class ImageLabelMetadata(Base, frozen=True, kw_only=True):
    """The ``ome`` object of a 0.5 label image: ``multiscales`` and ``image-label``."""

    _schema_rule = SCHEMA

    version: str
    multiscales: tuple[Multiscale, ...]
    image_label: ImageLabel = msgspec.field(name="image-label")

    def _problems(self) -> Iterator[Problem]:
        yield from _version_problems(self.version)
        yield from _multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        if self.version != VERSION or len(self.multiscales) != 1:
            enforce_rules(self)


class ImageLabelAttrs(Base, frozen=True, kw_only=True):
    """The attributes of a 0.5 label image's ``zarr.json``."""

    _schema_rule = SCHEMA

    ome: ImageLabelMetadata


class ImageLabelGroup(
    GroupSpecV3[ImageLabelAttrs], frozen=True, kw_only=True, tag_field="node_type", tag="group"
):
    """A 0.5 label image: a multiscale group whose arrays hold integer label values."""

    attributes: ImageLabelAttrs
    members: dict[str, NodeV3] = {}

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "ome_ngff")  # type: ignore[arg-type]

    def _problems(self) -> Iterator[Problem]:
        yield from _array_problems(self.attributes.ome.multiscales, self.members, labels=True)

    def __post_init__(self) -> None:
        enforce_rules(self)


class LabelsMetadata(Base, frozen=True, kw_only=True):
    """The ``ome`` object of a 0.5 ``labels`` group."""

    _schema_rule = SCHEMA

    version: str
    labels: tuple[str, ...]

    def _problems(self) -> Iterator[Problem]:
        yield from _version_problems(self.version)

    def __post_init__(self) -> None:
        enforce_rules(self)


class LabelsAttrs(Base, frozen=True, kw_only=True):
    """The attributes of a 0.5 ``labels`` group's ``zarr.json``."""

    _schema_rule = SCHEMA

    ome: LabelsMetadata


class LabelsGroup(
    GroupSpecV3[LabelsAttrs], frozen=True, kw_only=True, tag_field="node_type", tag="group"
):
    """A 0.5 ``labels`` group: every listed path names a group below it."""

    attributes: LabelsAttrs
    members: dict[str, NodeV3] = {}

    def _problems(self) -> Iterator[Problem]:
        for k, path in enumerate(self.attributes.ome.labels):
            node = resolve(self.members, path)
            if node is None:
                yield R_LABELS_PATHS(
                    f"attributes.ome.labels[{k}]", f"{path!r} names no member {R_LABELS_PATHS}"
                )
            elif _is_array(node):
                yield R_LABELS_PATHS(
                    f"attributes.ome.labels[{k}]",
                    f"{path!r} names an array, not a label image group {R_LABELS_PATHS}",
                )

    def __post_init__(self) -> None:
        enforce_rules(self)
