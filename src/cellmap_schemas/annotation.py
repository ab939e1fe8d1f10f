"""Annotation crops: densely labelled sub-volumes, split into one multiscale group per class.

A *crop* is a Zarr v2 group (:class:`CropGroup`) whose attributes list the annotated classes;
each class is a member group (:class:`AnnotationGroup`, an OME-NGFF 0.4 multiscale image whose
``multiscales`` sit beside the ``cellmap`` key) holding the label arrays
(:class:`AnnotationArray`). All Cellmap metadata lives under ``{"cellmap": {"annotation": ...}}``
so it never collides with other conventions in the same attributes.

The names and meanings are those of the original cellmap-schemas ``annotation`` module; the
differences are listed in ``docs/coercion.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from enum import StrEnum
from typing import Any, Generic, Literal, Self, TypeVar, cast

import msgspec

from cellmap_schemas.base import Base, diagnose, enforce_rules, join_loc, validate
from cellmap_schemas.rules import Problem, define
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec

__all__ = [
    "Annotated",
    "AnnotationArray",
    "AnnotationArrayAttrs",
    "AnnotationGroup",
    "AnnotationGroupAttrs",
    "AnnotationState",
    "AnnotationType",
    "AnnotationWrapper",
    "CellmapWrapper",
    "CropGroup",
    "CropGroupAttrs",
    "InstanceName",
    "InstancePossibility",
    "InstanceSegmentation",
    "Label",
    "LabelList",
    "SemanticPossibility",
    "SemanticSegmentation",
    "TName",
    "classNamedict",
    "serialize_date",
    "wrap_attributes",
]

T = TypeVar("T")
TName = TypeVar("TName", bound=str)
"""The type of class names; parametrize with a ``Literal`` to restrict them."""

_CROP = "Cellmap annotation conventions (janelia-cellmap/cellmap-schemas annotation.py)"
SCHEMA = define(
    "CROP001",
    "error",
    "the cellmap.annotation attributes of crops, class groups and class arrays have the "
    "required fields and types",
    _CROP,
)
COUNTS_ENCODING = define(
    "CROP002",
    "error",
    "every complement_counts key of a semantic segmentation is a key of its encoding",
    _CROP,
)
CLASS_MEMBER = define(
    "CROP003",
    "error",
    "every class name of a crop names a member class group",
    _CROP,
    on_missing_member=True,
)
CLASS_IS_GROUP = define("CROP004", "error", "a crop's class names name groups, not arrays", _CROP)

InstancePossibility = Literal["unknown", "absent"]
SemanticPossibility = Literal["unknown", "absent", "present"]


# ---- namespaces ------------------------------------------------------------------------------
class CellmapWrapper(Base, Generic[T], frozen=True, kw_only=True):
    """``T`` under the key ``cellmap``: the namespace of all Cellmap metadata.

    Unknown keys beside ``cellmap`` are ignored, so attributes may also carry other conventions
    (OME-NGFF ``multiscales`` on class groups).
    """

    _schema_rule = SCHEMA

    cellmap: T


class AnnotationWrapper(Base, Generic[T], frozen=True, kw_only=True):
    """``T`` under the key ``annotation``, inside :class:`CellmapWrapper`."""

    _schema_rule = SCHEMA

    annotation: T


def wrap_attributes(attributes: T) -> CellmapWrapper[AnnotationWrapper[T]]:
    """Nest ``attributes`` as ``{"cellmap": {"annotation": attributes}}``.

    Examples
    --------
    >>> wrap_attributes(InstanceName(long="Mitochondria", short="mito")).model_dump()
    {'cellmap': {'annotation': {'long': 'Mitochondria', 'short': 'mito'}}}
    """
    return CellmapWrapper(cellmap=AnnotationWrapper(annotation=attributes))


# ---- label tables ----------------------------------------------------------------------------
class InstanceName(Base, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The long and short display names of a class (extra keys refused, as in the original)."""

    _schema_rule = SCHEMA

    long: str
    short: str


class Annotated(StrEnum):
    """How completely a class was annotated in a crop."""

    dense = "dense"
    sparse = "sparse"
    empty = "empty"


class AnnotationState(Base, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whether a class occurs in a crop, and how completely it was annotated."""

    _schema_rule = SCHEMA

    present: bool
    annotated: Annotated


class Label(Base, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One label value of a dense crop: its class names, state and voxel count (nullable)."""

    _schema_rule = SCHEMA

    value: int
    name: InstanceName
    annotationState: AnnotationState
    count: int | None


class SemanticSegmentation(
    Base,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="semantic_segmentation",
):
    """A segmentation whose values stand for the classes' states (unknown, absent, present).

    ``type`` is the tag of the :data:`AnnotationType` union: it is written on output, checked
    on input, and required where the union is decoded (inside :class:`AnnotationArrayAttrs`).

    Parameters
    ----------
    encoding
        The array value of each state; keys are from ``{"unknown", "absent", "present"}``.
    """

    encoding: dict[SemanticPossibility, int]

    @property
    def type(self) -> Literal["semantic_segmentation"]:
        """The tag, ``"semantic_segmentation"``, as the original exposed it."""
        return "semantic_segmentation"


class InstanceSegmentation(
    Base,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="instance_segmentation",
):
    """A segmentation whose other values are distinct instances of one class.

    Parameters
    ----------
    encoding
        The array value of each state; keys are from ``{"unknown", "absent"}`` (instances
        are every value not named here).
    """

    encoding: dict[InstancePossibility, int]

    @property
    def type(self) -> Literal["instance_segmentation"]:
        """The tag, ``"instance_segmentation"``, as the original exposed it."""
        return "instance_segmentation"


AnnotationType = SemanticSegmentation | InstanceSegmentation
"""A semantic or an instance segmentation, told apart by the ``type`` key."""


class LabelList(Base, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The labels of a dense crop.

    ``annotation_type`` defaults to the string ``"semantic"``, the original's (unvalidated)
    default, so that defaulted lists dump as they did.
    """

    _schema_rule = SCHEMA

    labels: list[Label]
    annotation_type: SemanticSegmentation | InstanceSegmentation | Literal["semantic"] = "semantic"


# ---- per-class and per-crop attributes --------------------------------------------------------
class AnnotationArrayAttrs(Base, Generic[TName], frozen=True, kw_only=True):
    """The annotation metadata of one label array.

    Parameters
    ----------
    class_name
        The class annotated in the array.
    complement_counts
        How many samples are ``unknown`` / ``absent`` (and, for semantic segmentations,
        ``present``); the positive count is the array size minus their sum. Nullable but
        required. For semantic segmentations its keys must be keys of the encoding.
    annotation_type
        A :class:`SemanticSegmentation` or an :class:`InstanceSegmentation`.
    """

    _schema_rule = SCHEMA

    class_name: TName
    complement_counts: dict[SemanticPossibility, int] | None
    annotation_type: AnnotationType

    def _problems(self) -> Iterator[Problem]:
        counts = self.complement_counts
        if counts is None or not isinstance(self.annotation_type, SemanticSegmentation):
            return
        encoding = self.annotation_type.encoding
        stray = [k for k in counts if k not in encoding]
        if stray:
            yield COUNTS_ENCODING(
                "complement_counts",
                f"keys {stray} are not keys of annotation_type.encoding {sorted(encoding)}; "
                "every counted state must have an encoding value",
            )

    def __post_init__(self) -> None:
        enforce_rules(self)

    @classmethod
    def from_array(
        cls,
        array: Any,
        class_name: str,
        annotation_type: AnnotationType | Mapping[str, Any],
        complement_counts: Literal["auto"] | Mapping[str, int] | None = "auto",
    ) -> Self:
        """The attributes of ``array``, counting its states when ``complement_counts="auto"``.

        ``unknown`` and ``absent`` count the samples equal to their encoding value; ``present``
        (semantic only) counts every other sample, as the original did.

        Parameters
        ----------
        array
            Any array-like NumPy can read (NumPy, zarr, dask...).
        class_name
            The class annotated in ``array``.
        annotation_type
            The segmentation type, as a model or its dict.
        complement_counts
            ``"auto"`` to count, or the counts (or ``None``) to store as given.

        Raises
        ------
        cellmap_schemas.errors.ValidationError
            When the result breaks a rule (for example counts keyed outside the encoding).
        """
        import numpy as np

        kind: AnnotationType = validate(
            msgspec.to_builtins(annotation_type)
            if isinstance(annotation_type, msgspec.Struct)
            else annotation_type,
            AnnotationType,
        )
        if isinstance(complement_counts, str):
            if complement_counts != "auto":
                msg = f'complement_counts must be "auto", a mapping or None: {complement_counts!r}'
                raise ValueError(msg)
            data = np.asarray(array)
            encoding = cast(Mapping[str, int], kind.encoding)
            found = {
                state: int(np.count_nonzero(data == encoding[state]))
                for state in ("unknown", "absent")
                if state in encoding
            }
            if isinstance(kind, SemanticSegmentation) and "present" in encoding:
                found["present"] = int(data.size) - sum(found.values())
            counts: Mapping[str, int] | None = found
        else:
            counts = complement_counts
        return validate(
            {
                "class_name": class_name,
                "complement_counts": None if counts is None else dict(counts),
                "annotation_type": msgspec.to_builtins(kind),
            },
            cls,
        )


class AnnotationGroupAttrs(Base, Generic[TName], frozen=True, kw_only=True):
    """The annotation metadata of a class group: the class and its segmentation type."""

    _schema_rule = SCHEMA

    class_name: TName
    annotation_type: AnnotationType


def serialize_date(value: date) -> str:
    """A date as ISO 8601 (``2024-01-31``), the form crop metadata stores."""
    return value.isoformat()


class CropGroupAttrs(Base, Generic[TName], frozen=True, kw_only=True):
    """The annotation metadata of a crop.

    Parameters
    ----------
    version
        The convention's version, ``"0.1.1"``.
    name, description, protocol_uri
        Optional text; ``null`` or absent when unknown.
    created_by, created_with
        The people and tools that made the crop (empty lists when unknown).
    start_date, end_date
        Optional ISO dates (``YYYY-MM-DD``).
    duration_days
        Optional number of days spent annotating.
    class_names
        The annotated classes; each names a member group of the crop.
    """

    _schema_rule = SCHEMA

    version: Literal["0.1.1"] = "0.1.1"
    name: str | None = None
    description: str | None = None
    created_by: list[str]
    created_with: list[str]
    start_date: date | None = None
    end_date: date | None = None
    duration_days: int | None = None
    protocol_uri: str | None = None
    class_names: list[TName]


# ---- specs -----------------------------------------------------------------------------------
class AnnotationArray(ArraySpec[Any], frozen=True, kw_only=True):
    """A label array: a Zarr v2 array whose attributes are wrapped :class:`AnnotationArrayAttrs`."""

    attributes: CellmapWrapper[AnnotationWrapper[AnnotationArrayAttrs[str]]]

    @classmethod
    def from_array_infer_attrs(
        cls,
        array: Any,
        class_name: str,
        annotation_type: AnnotationType | Mapping[str, Any],
        complement_counts: Literal["auto"] | Mapping[str, int] | None = "auto",
        **kwargs: Any,
    ) -> Self:
        """The spec of ``array`` with attributes from :meth:`AnnotationArrayAttrs.from_array`.

        ``kwargs`` go to :meth:`ArraySpec.from_array` (chunks, compressor, ...).
        """
        attrs: AnnotationArrayAttrs[str] = AnnotationArrayAttrs.from_array(
            array, class_name, annotation_type, complement_counts
        )
        return cls.from_array(array, attributes=wrap_attributes(attrs), **kwargs)


class AnnotationGroup(GroupSpec[Any], frozen=True, kw_only=True):
    """A class group: wrapped :class:`AnnotationGroupAttrs` and its label arrays (the scales).

    Other attribute keys (the OME-NGFF ``multiscales`` of the class image) are ignored.
    """

    attributes: CellmapWrapper[AnnotationWrapper[AnnotationGroupAttrs[str]]]
    members: dict[str, AnnotationArray]


def _strict_group(raw: Any) -> Any:
    """``raw`` as an :class:`AnnotationGroup` if it is one, with every rule enforced; else
    ``raw`` as a :class:`_Refused` member (an array stays raw: it is no class group at all).

    A member breaking a rule stays refused, also while the slow path builds a crop leniently,
    so :meth:`CropGroup._problems` diagnoses it.
    """
    try:
        return msgspec.convert(raw, AnnotationGroup)
    except msgspec.ValidationError:
        return raw if isinstance(raw, Mapping) and "shape" in raw else _Refused(raw)


class _Refused:
    """A class member that is no valid :class:`AnnotationGroup`, diagnosed once: the crop's
    rules are asked when the fast path refuses it and again by the diagnosis, with the same
    crop."""

    __slots__ = ("_problems", "raw")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._problems: list[Problem] | None = None

    def problems(self) -> list[Problem]:
        if self._problems is None:
            self._problems = diagnose(self.raw, AnnotationGroup)
        return self._problems


class CropGroup(GroupSpec[Any], frozen=True, kw_only=True):
    """A crop: wrapped :class:`CropGroupAttrs` and one :class:`AnnotationGroup` per class.

    Only the members named in ``class_names`` are validated and kept (a crop may hold other
    nodes, such as the dense ``all`` image); a class name without a member group is an error at
    ``members.<name>``. After validation ``members`` maps each class name to its
    :class:`AnnotationGroup`, in ``class_names`` order.
    """

    attributes: CellmapWrapper[AnnotationWrapper[CropGroupAttrs[str]]]
    members: dict[str, Any]

    def _class_names(self) -> list[str] | None:
        try:
            names = self.attributes.cellmap.annotation.class_names
        except AttributeError:  # built in Python from unvalidated parts: leave members alone
            return None
        return list(names) if isinstance(names, list | tuple) else None

    def __post_init__(self) -> None:
        names = self._class_names()
        if names is None:  # no class names to hold the members to: nothing to check
            return
        kept: dict[str, Any] = {}
        whole = True  # every class has its group, and each is valid
        for name in names:
            if name not in self.members:
                whole = False
                continue
            member = self.members[name]
            if not isinstance(member, AnnotationGroup):
                member = _strict_group(member)
                whole = whole and isinstance(member, AnnotationGroup)
            kept[name] = member
        msgspec.structs.force_setattr(self, "members", kept)
        if not whole:
            enforce_rules(self)

    def _problems(self) -> Iterator[Problem]:
        for name in self._class_names() or ():
            loc = join_loc("members", name)
            member = self.members.get(name)
            if member is None:
                yield CLASS_MEMBER(
                    loc,
                    f"no group named {name!r}: every entry of "
                    "attributes.cellmap.annotation.class_names must name a member group",
                )
            elif isinstance(member, AnnotationGroup):
                continue
            elif isinstance(member, Mapping) and "shape" in member:
                yield CLASS_IS_GROUP(loc, f"{name!r} is an array; class names must name groups")
            else:
                found = member.problems() if isinstance(member, _Refused) else None
                for rule, sub, msg in found or diagnose(member, AnnotationGroup):
                    where = f"{loc}.{sub}" if sub and not sub.startswith("[") else loc + sub
                    yield Problem(rule, where, msg)


classNamedict: dict[int, InstanceName] = {
    value: InstanceName(short=short, long=long)
    for value, short, long in (
        # Spelling kept exactly as published ("Ribsoomes", duplicated "membrane" long names):
        # existing label tables were written with these strings.
        (1, "ECS", "Extracellular Space"),
        (2, "Plasma membrane", "Plasma membrane"),
        (3, "Mito membrane", "Mitochondrial membrane"),
        (4, "Mito lumen", "Mitochondrial lumen"),
        (5, "Mito DNA", "Mitochondrial DNA"),
        (6, "Golgi Membrane", "Golgi apparatus membrane"),
        (7, "Golgi lumen", "Golgi apparatus lumen"),
        (8, "Vesicle membrane", "Vesicle membrane"),
        (9, "Vesicle lumen", "VesicleLumen"),
        (10, "MVB membrane", "Multivesicular body membrane"),
        (11, "MVB lumen", "Multivesicular body lumen"),
        (12, "Lysosome membrane", "Lysosome membrane"),
        (13, "Lysosome lumen", "Lysosome membrane"),
        (14, "LD membrane", "Lipid droplet membrane"),
        (15, "LD lumen", "Lipid droplet lumen"),
        (16, "ER membrane", "Endoplasmic reticulum membrane"),
        (17, "ER lumen", "Endoplasmic reticulum membrane"),
        (18, "ERES membrane", "Endoplasmic reticulum exit site membrane"),
        (19, "ERES lumen", "Endoplasmic reticulum exit site lumen"),
        (20, "NE membrane", "Nuclear envelope membrane"),
        (21, "NE lumen", "Nuclear envelope lumen"),
        (22, "Nuclear pore out", "Nuclear pore out"),
        (23, "Nuclear pore in", "Nuclear pore in"),
        (24, "HChrom", "Heterochromatin"),
        (25, "NHChrom", "Nuclear heterochromatin"),
        (26, "EChrom", "Euchromatin"),
        (27, "NEChrom", "Nuclear euchromatin"),
        (28, "Nucleoplasm", "Nucleoplasm"),
        (29, "Nucleolus", "Nucleolus"),
        (30, "Microtubules out", "Microtubules out"),
        (31, "Centrosome", "Centrosome"),
        (32, "Distal appendages", "Distal appendages"),
        (33, "Subdistal appendages", "Subdistal appendages"),
        (34, "Ribosomes", "Ribsoomes"),
        (35, "Cytosol", "Cytosol"),
        (36, "Microtubules in", "Microtubules in"),
        (37, "Nucleus combined", "Nucleus combined"),
        (38, "Vimentin", "Vimentin"),
        (39, "Glycogen", "Glycogen"),
        (40, "Cardiac neurons", "Cardiac neurons"),
        (41, "Endothelial cells", "Endothelial cells"),
        (42, "Cardiomyocytes", "Cardiomyocytes"),
        (43, "Epicardial cells", "Epicardial cells"),
        (44, "Parietal pericardial cells", "Parietal pericardial cells"),
        (45, "Red blood cells", "Red blood cells"),
        (46, "White blood cells", "White blood cells"),
        (47, "Peroxisome membrane", "Peroxisome membrane"),
        (48, "Peroxisome lumen", "Peroxisome lumen"),
    )
}
"""The 48 classes of Cellmap's dense label tables, by label value."""
