"""What the groups of OME-NGFF 0.4 and 0.5 share, on top of the structs of :mod:`._common`.

- The structs both version modules re-export: this module's ``__all__``, which each of them
  takes with ``from ._groups import *`` (and adds to its own ``__all__``).
- The rules on a ``multiscales`` list and on a ``labels`` list, the same in both versions but
  for where the list sits (``.zattrs``, or the ``ome`` namespace of ``zarr.json``).
- :class:`MultiscaleGroup`: the rules across the levels of an image or label image.
- :class:`ImageGroup`: ``from_arrays`` of the image groups; each version supplies the parts
  that differ (its ``Multiscale``, array spec and attributes) as three classmethods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import msgspec

from cellmap_schemas.base import normalize_chunks
from cellmap_schemas.multiscale.ome_ngff._common import (
    Axis,
    Color,
    Dataset,
    Identity,
    ImageLabel,
    Scale,
    Source,
    Transform,
    Translation,
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
    R_LABELS_PATHS,
    R_MULTISCALES,
    UNIQUE_MULTISCALES,
)
from cellmap_schemas.multiscale.pyramid import pyramid_problems
from cellmap_schemas.rules import Problem

__all__ = [
    "Axis",
    "Color",
    "Dataset",
    "Identity",
    "ImageLabel",
    "Scale",
    "Source",
    "Transform",
    "Translation",
]


def multiscales_problems(ms: Sequence[Any]) -> Iterator[Problem]:
    """A ``multiscales`` list holds at least one image, each once (``loc`` ``multiscales``)."""
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


def labels_problems(
    labels: Sequence[str], members: Mapping[str, Any], is_array: Any, loc: str
) -> Iterator[Problem]:
    """Every path of a ``labels`` list (at ``loc``) names a group below the labels group."""
    for k, path in enumerate(labels):
        node = resolve(members, path)
        if node is None:
            yield R_LABELS_PATHS(f"{loc}[{k}]", f"{path!r} names no member {R_LABELS_PATHS}")
        elif is_array(node):
            yield R_LABELS_PATHS(
                f"{loc}[{k}]", f"{path!r} names an array, not a label image group {R_LABELS_PATHS}"
            )


class MultiscaleGroup:
    """Base of the image and label image groups: the rules across their levels."""

    __slots__ = ()

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        return pyramid_problems(spec, fmt, "ome_ngff")  # type: ignore[arg-type]


class ImageGroup(MultiscaleGroup):
    """Base of the image groups: ``from_arrays``."""

    __slots__ = ()

    # What each version supplies (classmethods, but for _subgroup, its group spec class):
    _multiscale: ClassVar[Callable[..., Any]]
    """``_multiscale(**fields)``: the version's ``Multiscale`` with these fields."""
    _level: ClassVar[Callable[..., Any]]
    """``_level(array, chunks, axes, **array_options)``: the spec of one level's array."""
    _image: ClassVar[Callable[..., Any]]
    """``_image(multiscale, members)``: the group of one multiscale image."""
    _subgroup: ClassVar[Any]
    """The group spec of the intermediate groups of a path such as ``a/b``."""

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
        **array_options: Any,
    ) -> Self:
        """An OME-NGFF multiscale group of this version from array-likes and their metadata.

        Parameters
        ----------
        arrays : Sequence[array-like]
            The levels of the image (NumPy, zarr, dask ...), highest resolution first.
        paths : Sequence[str]
            The path of each level's array (``"s0"``, ``"0"``; ``"a/b"`` creates group ``a``).
        axes : Sequence[str or Axis]
            Axis names in array (C) order, or full :class:`Axis` structs. In 0.5 they become
            each array's ``dimension_names``.
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
        **array_options
            How the arrays are stored. 0.4 (Zarr v2): ``compressor``, ``"auto"`` (the
            default: the array's own, if any), a numcodecs-style config or None; and
            ``fill_value``, ``"auto"`` (the default: the array's own, or 0) or a scalar.
            0.5 (Zarr v3): ``fill_value``, a scalar (default 0); and ``codecs``, the codec
            chain (default: ``bytes`` only).

        Returns
        -------
        Group
            A validated group; ``to_zarr`` writes it.

        Raises
        ------
        ValueError
            If the lengths disagree or the metadata breaks a rule of the specification.
        TypeError
            For an array option this version does not have.
        """
        ax = make_axes(axes, units, types)
        multiscale = cls._multiscale(
            axes=ax,
            datasets=build_datasets(paths, scales, translations, len(arrays)),
            coordinateTransformations=global_transforms(global_scale, global_translation),
            name=name,
            type=multiscale_type,
            metadata=metadata,
        )
        tree: dict[str, Any] = {}
        for path, array, chunk in zip(paths, arrays, normalize_chunks(chunks, arrays), strict=True):
            spec = cls._level(array, chunk, ax, **array_options)
            insert_member(tree, path, spec, cls._subgroup)
        return cls._image(multiscale, build_members(tree, cls._subgroup))  # type: ignore[no-any-return]
