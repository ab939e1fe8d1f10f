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
    multiscale_ok,
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
from cellmap_schemas.spec.zarr_v2 import ArraySpec, FillValue, GroupSpec, Node

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
    "LabelsAttrs",
    "LabelsGroup",
    "Multiscale",
    "Scale",
    "Source",
    "Transform",
    "Translation",
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


class GroupAttrs(Base, frozen=True, kw_only=True, omit_defaults=True):
    """The ``.zattrs`` of a 0.4 multiscale image group; other keys are ignored."""

    _schema_rule = SCHEMA

    multiscales: tuple[Multiscale, ...]
    omero: Omero | None = None

    def _problems(self) -> Iterator[Problem]:
        yield from _multiscales_problems(self.multiscales)

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


class Group(GroupSpec[GroupAttrs], frozen=True, kw_only=True):
    """A Zarr v2 group holding an OME-NGFF 0.4 multiscale image.

    Members may be arrays or groups (a ``labels`` group sits beside the levels, and a dataset
    path may go through an intermediate group); every dataset path must name an array.
    """

    attributes: GroupAttrs
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "ome_ngff")  # type: ignore[arg-type]

    def _problems(self) -> Iterator[Problem]:
        yield from _group_problems(self.attributes.multiscales, self.members)

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
        compressor: Literal["auto"] | dict[str, Any] | None = "auto",
        fill_value: FillValue | Literal["auto"] = "auto",
    ) -> Self:
        """An OME-NGFF 0.4 multiscale group from array-likes and their spatial metadata.

        Parameters
        ----------
        arrays : Sequence[array-like]
            The levels of the image (NumPy, zarr, dask ...), highest resolution first.
        paths : Sequence[str]
            The path of each level's array (``"s0"``, ``"0"``; ``"a/b"`` creates group ``a``).
        axes : Sequence[str or Axis]
            Axis names in array (C) order, or full :class:`Axis` structs.
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
        compressor : "auto" or dict or None
            A numcodecs-style compressor config; "auto" takes the array's own, if any.
        fill_value : "auto" or scalar
            Fill value of every array; "auto" takes the array's own, or 0.

        Returns
        -------
        Group
            A validated group; ``to_zarr`` writes it.

        Raises
        ------
        ValueError
            If the lengths disagree or the metadata breaks a rule of the specification.
        """
        multiscale = Multiscale(
            axes=make_axes(axes, units, types),
            datasets=build_datasets(paths, scales, translations, len(arrays)),
            coordinateTransformations=global_transforms(global_scale, global_translation),
            name=name,
            type=multiscale_type,
            metadata=metadata,
            version=VERSION,
        )
        tree: dict[str, Any] = {}
        for path, array, chunk in zip(paths, arrays, normalize_chunks(chunks, arrays), strict=True):
            spec: Any = ArraySpec.from_array(
                array,
                chunks=chunk,
                compressor=compressor,
                fill_value=fill_value,
                dimension_separator="/",
            )
            insert_member(tree, path, spec, GroupSpec)
        return cls(
            attributes=GroupAttrs(multiscales=(multiscale,)),
            members=build_members(tree, GroupSpec),
        )


# ---- label images and the labels group --------------------------------------------------------
class ImageLabelAttrs(Base, frozen=True, kw_only=True):
    """The ``.zattrs`` of a 0.4 label image: ``image-label`` plus ``multiscales``."""

    _schema_rule = SCHEMA

    image_label: ImageLabel = msgspec.field(name="image-label")
    multiscales: tuple[Multiscale, ...]

    def _problems(self) -> Iterator[Problem]:
        yield from _multiscales_problems(self.multiscales)

    def __post_init__(self) -> None:
        enforce_rules(self)


class ImageLabelGroup(GroupSpec[ImageLabelAttrs], frozen=True, kw_only=True):
    """A 0.4 label image: a multiscale group whose arrays hold integer label values."""

    attributes: ImageLabelAttrs
    members: dict[str, Node] = {}  # type: ignore[valid-type]

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "ome_ngff")  # type: ignore[arg-type]

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
        for k, path in enumerate(self.attributes.labels):
            node = resolve(self.members, path)
            if node is None:
                yield R_LABELS_PATHS(
                    f"attributes.labels[{k}]", f"{path!r} names no member {R_LABELS_PATHS}"
                )
            elif _is_array(node):
                yield R_LABELS_PATHS(
                    f"attributes.labels[{k}]",
                    f"{path!r} names an array, not a label image group {R_LABELS_PATHS}",
                )

    def __post_init__(self) -> None:
        enforce_rules(self)
