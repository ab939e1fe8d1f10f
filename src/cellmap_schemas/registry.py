"""The models users name on the command line, and how to tell whether a node looks like one.

Names are spelled as in the original (``multiscale.cosem.Group``): the module path below
``cellmap_schemas`` plus the class name. Modules are imported only when a model is used, so the
CLI starts fast.
"""

from __future__ import annotations

import difflib
import importlib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import msgspec

__all__ = ["MODELS", "ModelInfo", "close_matches", "get_model", "looks_like", "signature"]


@dataclass(frozen=True)
class ModelInfo:
    """A model as the CLI knows it."""

    name: str
    kind: Literal["array", "group"]
    description: str

    def load(self) -> type[Any]:
        module, _, cls = self.name.rpartition(".")
        return getattr(importlib.import_module(f"cellmap_schemas.{module}"), cls)


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            "multiscale.neuroglancer_n5.Group",
            "group",
            "Neuroglancer N5 multiscale group: axes, units, scales, pixelResolution",
        ),
        ModelInfo(
            "multiscale.neuroglancer_n5.Array",
            "array",
            "Neuroglancer N5 scale level: an array with pixelResolution",
        ),
        ModelInfo(
            "multiscale.cosem.Group",
            "group",
            "COSEM multiscale group: Neuroglancer N5 keys plus `multiscales` transforms",
        ),
        ModelInfo(
            "multiscale.cosem.Array",
            "array",
            "COSEM scale level: an array with pixelResolution and a `transform`",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.Group",
            "group",
            "OME-NGFF 0.4 multiscale image (Zarr v2, `multiscales` in .zattrs)",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.Group",
            "group",
            "OME-NGFF 0.5 multiscale image (Zarr v3, `ome.multiscales` in zarr.json)",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.ImageLabelGroup",
            "group",
            "OME-NGFF 0.4 label image: `image-label` plus `multiscales`, integer arrays",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v04.LabelsGroup",
            "group",
            "OME-NGFF 0.4 `labels` group: the paths of its label images",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.ImageLabelGroup",
            "group",
            "OME-NGFF 0.5 label image: `ome.image-label` plus `ome.multiscales`, integer arrays",
        ),
        ModelInfo(
            "multiscale.ome_ngff.v05.LabelsGroup",
            "group",
            "OME-NGFF 0.5 `labels` group: `ome.labels`, the paths of its label images",
        ),
        ModelInfo(
            "annotation.CropGroup",
            "group",
            "Annotation crop: a group of class groups listed in `class_names`",
        ),
        ModelInfo(
            "annotation.AnnotationGroup",
            "group",
            "Annotation class group: one class's multiscale label image",
        ),
        ModelInfo(
            "annotation.AnnotationArray",
            "array",
            "Annotation class array: semantic or instance labels with encoding",
        ),
    )
}


def get_model(name: str) -> type[Any]:
    """The model class for a CLI name; ``KeyError`` lists close matches."""
    info = MODELS.get(name)
    if info is None:
        hint = close_matches(name)
        more = f"; did you mean {' or '.join(hint)}?" if hint else ""
        raise KeyError(f"unknown model {name!r}{more}")
    return info.load()


def close_matches(name: str, n: int = 3) -> list[str]:
    """Model names close to a misspelled one (case-insensitive, also by class name)."""
    names = list(MODELS)
    lowered = {k.lower(): k for k in names}
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
def signature(model: type[Any]) -> frozenset[tuple[str, ...]]:
    """The attribute key paths of a model's convention (empty: it applies to every node)."""
    return frozenset(_paths(_attributes_type(model)))


def _has(attrs: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(attrs, Mapping) or key not in attrs:
            return False
        attrs = attrs[key]
    return True


def looks_like(model: type[Any], attributes: Mapping[str, Any]) -> bool:
    """Whether a node's attributes share at least one key (path) with the model's schema."""
    sig = signature(model)
    return not sig or any(_has(attributes, p) for p in sig)
