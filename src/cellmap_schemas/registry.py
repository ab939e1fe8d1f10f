"""The models users name on the command line, and the markers that say a node follows one.

Names are spelled as in the original (``multiscale.cosem.Group``): the module path below
``cellmap_schemas`` plus the class name. Modules are imported only when a model is used, so the
CLI starts fast. This is the one place a model name is resolved (:func:`resolve`).

Each model declares **markers**: attribute paths that only a node following its convention
carries (``multiscales[].datasets[].transform`` for COSEM; ``[]`` steps into any item of a list).
A node is judged by every model of its kind whose markers it carries, so a COSEM group, which
carries the Neuroglancer keys too, gets a COSEM and a Neuroglancer verdict, and an OME-NGFF 0.4
image is not judged as COSEM although both have ``multiscales``.
"""

from __future__ import annotations

import contextlib
import importlib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Literal

import msgspec

__all__ = [
    "MODELS",
    "ModelInfo",
    "carries_markers",
    "close_matches",
    "get_model",
    "info_of",
    "looks_like",
    "preload",
    "resolve",
    "signature",
]


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its CLI name, the kind of node it describes, and its markers."""

    name: str
    kind: Literal["array", "group"]
    description: str
    markers: tuple[str, ...] = ()
    default: bool = True
    """Whether the model judges the nodes carrying its markers in a scan without ``--model``
    (profiles such as Neuroglancer readability judge only when asked for)."""

    def load(self) -> Any:
        """The model class (imports its module on first use)."""
        return _load(self.name)

    @cached_property
    def marker_paths(self) -> tuple[tuple[str, ...], ...]:
        """The markers split into keys (``"[]"`` for "any item of a list")."""
        return _split_markers(self.markers)


@cache
def _load(name: str) -> Any:
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(f"cellmap_schemas.{module}"), cls)


@cache
def _split_markers(markers: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(m.replace("[]", ".[]").split(".")) for m in markers)


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            "multiscale.neuroglancer_n5.Group",
            "group",
            "Neuroglancer N5 multiscale group: axes, units, scales, pixelResolution",
            ("pixelResolution", "scales", "axes"),
        ),
        ModelInfo(
            "multiscale.neuroglancer_n5.Array",
            "array",
            "Neuroglancer N5 scale level: an array with pixelResolution",
            ("pixelResolution",),
        ),
        ModelInfo(
            "multiscale.cosem.Group",
            "group",
            "COSEM multiscale group: Neuroglancer N5 keys plus `multiscales` transforms",
            ("multiscales[].datasets[].transform",),
        ),
        ModelInfo(
            "multiscale.cosem.Array",
            "array",
            "COSEM scale level: an array with pixelResolution and a `transform`",
            ("transform",),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.Group",
            "group",
            "OME-NGFF 0.4 multiscale image (Zarr v2, `multiscales` in .zattrs)",
            (
                "multiscales[].axes",
                "multiscales[].datasets[].coordinateTransformations",
                "multiscales[].version",
            ),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.Group",
            "group",
            "OME-NGFF 0.5 multiscale image (Zarr v3, `ome.multiscales` in zarr.json)",
            ("ome.multiscales",),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.ImageLabelGroup",
            "group",
            "OME-NGFF 0.4 label image: `image-label` plus `multiscales`, integer arrays",
            ("image-label",),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.LabelsGroup",
            "group",
            "OME-NGFF 0.4 `labels` group: the paths of its label images",
            ("labels",),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.ImageLabelGroup",
            "group",
            "OME-NGFF 0.5 label image: `ome.image-label` plus `ome.multiscales`, integer arrays",
            ("ome.image-label",),
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.LabelsGroup",
            "group",
            "OME-NGFF 0.5 `labels` group: `ome.labels`, the paths of its label images",
            ("ome.labels",),
        ),
        ModelInfo(
            "annotation.CropGroup",
            "group",
            "Annotation crop: a group of class groups listed in `class_names`",
            ("cellmap.annotation.class_names",),
        ),
        ModelInfo(
            "annotation.AnnotationGroup",
            "group",
            "Annotation class group: one class's multiscale label image",
            ("cellmap.annotation.class_name",),
        ),
        ModelInfo(
            "neuroglancer.Multiscale",
            "group",
            "Neuroglancer readability profile: can Neuroglancer open this multiscale image "
            "(N5, OME-Zarr 0.4 / 0.5)? Judged only when asked for",
            (
                "pixelResolution",
                "scales",
                "multiscales[].axes",
                "multiscales[].datasets[].coordinateTransformations",
                "ome.multiscales",
            ),
            default=False,
        ),
        ModelInfo(
            "annotation.AnnotationArray",
            "array",
            "Annotation class array: semantic or instance labels with encoding",
            ("cellmap.annotation.class_name",),
        ),
    )
}


def resolve(name: str) -> ModelInfo:
    """The registered model of a CLI name.

    Raises
    ------
    UnknownModelError
        The name is not registered; the message suggests close matches.
    """
    info = MODELS.get(name)
    if info is None:
        from cellmap_schemas.errors import UnknownModelError

        raise UnknownModelError(name, close_matches(name))
    return info


def get_model(name: str) -> Any:
    """The model class for a CLI name (see :func:`resolve`)."""
    return resolve(name).load()


def preload() -> None:
    """Import every model and have msgspec build its type information now (~20 ms, on first
    use otherwise): processes forked afterwards share it instead of each building their own."""
    from cellmap_schemas.base import may_warn

    for info in MODELS.values():
        model = info.load()
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, model)
        may_warn(model)  # which parts can warn: the warnings walk's question, memoised


def info_of(model: type[Any]) -> ModelInfo | None:
    """The registry entry of a model class, if it is registered."""
    for info in MODELS.values():
        if _load(info.name) is model:
            return info
    return None


def carries_markers(info: ModelInfo, attributes: Any) -> bool:
    """Whether a node's attributes carry any of the model's markers."""
    return any(_reach(attributes, path) for path in info.marker_paths)


def _reach(value: Any, path: tuple[str, ...], start: int = 0) -> bool:
    """Whether ``path`` (keys, ``"[]"`` for any item of a list) leads somewhere in ``value``."""
    for i in range(start, len(path)):
        key = path[i]
        if key == "[]":
            if type(value) is not list and not isinstance(value, list | tuple):
                return False
            for item in value:  # noqa: SIM110 (no generator per list: a scan's hot path)
                if _reach(item, path, i + 1):
                    return True
            return False
        if not (type(value) is dict or isinstance(value, Mapping)) or key not in value:
            return False
        value = value[key]
    return True


def close_matches(name: str, n: int = 3) -> list[str]:
    """Model names close to a misspelled one (case-insensitive, also by class name)."""
    names = list(MODELS)
    lowered = {k.lower(): k for k in names}
    import difflib  # only for a misspelling: not on every start-up

    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    out = [lowered[f] for f in found]
    tail = name.rpartition(".")[2].lower()
    out += [k for k in names if k.lower().endswith("." + tail) and k not in out]
    return out[:n]


# ---- detection: does a node look like a model's convention? -----------------------------------
def _attributes_type(model: type[Any]) -> Any:
    for f in msgspec.structs.fields(model):
        if f.name == "attributes":
            return f.type
    return Any


def _struct(tp: Any) -> Any:
    """The struct type in ``tp`` (generic structs keep their parameters), or None."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp) or tp
    if isinstance(origin, type) and issubclass(origin, msgspec.Struct):
        return tp  # msgspec.structs.fields substitutes the parameters of ``Wrapper[Inner]``
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None  # a list or dict of structs is a value, not a namespace
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return _struct(args[0]) if len(args) == 1 else None


def _paths(tp: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths that identify a struct: its own keys, descending through namespace wrappers
    (a struct whose only field is another struct, like ``{"cellmap": {"annotation": ...}}``)."""
    st = _struct(tp)
    if st is None:
        return
    fields = msgspec.structs.fields(st)
    if len(fields) == 1 and _struct(fields[0].type) is not None:
        yield from _paths(fields[0].type, (*prefix, fields[0].encode_name))
        return
    for f in fields:
        yield (*prefix, f.encode_name)


@cache
def signature(model: Any) -> frozenset[tuple[str, ...]]:  # model: a (hashable) type
    """The attribute key paths of a model's convention (empty: it applies to every node)."""
    return frozenset(_paths(_attributes_type(model)))


def _has(attrs: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(attrs, Mapping) or key not in attrs:
            return False
        attrs = attrs[key]
    return True


def looks_like(model: Any, attributes: Mapping[str, Any]) -> bool:
    """Whether a node's attributes share at least one key (path) with the model's schema."""
    sig = signature(model)
    return not sig or any(_has(attributes, p) for p in sig)
