"""Every rule by its ID: a document that breaks it (the rule is cited) and its clean twin (no
finding at all), through the verdicts engine.

Each case starts from a valid spec (read from the example hierarchy, or built by a model's
constructor), breaks one thing, and judges it with :func:`judge_node`. The rules across levels and
the Neuroglancer profile have their own tables (``tests/test_pyramid.py``,
``tests/test_neuroglancer_profile.py``); a last test checks that every declared rule is covered
by one of the three.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from cellmap_schemas.annotation import AnnotationArray, CropGroup
from cellmap_schemas.base import Base
from cellmap_schemas.formats import Format, Kind
from cellmap_schemas.io.read import read_tree, run_sync
from cellmap_schemas.io.store import open_store
from cellmap_schemas.multiscale import cosem, neuroglancer_n5
from cellmap_schemas.multiscale.ome_ngff import v04, v05
from cellmap_schemas.rules import Problem, all_rules
from cellmap_schemas.spec.zarr_v2 import ArraySpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3
from cellmap_schemas.validation import judge_node

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "examples" / "cellmap-bucket"
HELA = "jrc_hela-2"


def _read(rel: str, depth: int = 2) -> dict[str, Any]:
    async def read() -> Any:
        async with open_store(str(EXAMPLE / rel)) as store:
            return await read_tree(store, "", depth)

    spec: dict[str, Any] = json.loads(json.dumps(run_sync(read).spec))
    return spec


COSEM_GROUP = _read(f"{HELA}/{HELA}.n5/em/fibsem-uint8")
COSEM_ARRAY = _read(f"{HELA}/{HELA}.n5/em/fibsem-uint8/s0")
OME04 = _read(f"{HELA}/{HELA}.zarr/recon-1/em/fibsem-uint8")
CROP = _read(f"{HELA}/{HELA}.zarr/recon-1/labels/groundtruth/crop1")
CLASS_GROUP = CROP["members"]["mito_mem"]
CLASS_ARRAY = CLASS_GROUP["members"]["s0"]


def _ome05() -> dict[str, Any]:
    data = np.zeros((8, 8, 8), dtype="uint8")
    g = v05.Group.from_arrays(
        [data, data[::2, ::2, ::2]],
        ["s0", "s1"],
        "zyx",
        [(4.0,) * 3, (8.0,) * 3],
        translations=[(0.0,) * 3, (2.0,) * 3],
        units="nanometer",
    )
    doc: dict[str, Any] = json.loads(g.model_dump_json())
    return doc


OME05 = _ome05()


def _labels04() -> dict[str, Any]:
    image = copy.deepcopy(OME04)
    image["attributes"]["image-label"] = {"version": "0.4", "colors": [{"label-value": 1}]}
    for member in image["members"].values():
        member["dtype"] = "|u1"
    return {"zarr_version": 2, "attributes": {"labels": ["cells"]}, "members": {"cells": image}}


LABELS04 = _labels04()
IMAGE_LABEL04 = LABELS04["members"]["cells"]


def _labels05() -> dict[str, Any]:
    image = copy.deepcopy(OME05)
    image["attributes"]["ome"]["image-label"] = {"colors": [{"label-value": 1}]}
    return {
        "node_type": "group",
        "zarr_format": 3,
        "attributes": {"ome": {"version": "0.5", "labels": ["cells"]}},
        "members": {"cells": image},
    }


LABELS05 = _labels05()


def _omero() -> dict[str, Any]:
    doc = copy.deepcopy(OME04)
    doc["attributes"]["omero"] = {
        "channels": [{"color": "FF0000", "window": {"start": 0, "end": 255, "min": 0, "max": 255}}]
    }
    return doc


OMERO04 = _omero()


# ---- mutations ---------------------------------------------------------------------------------
def at(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at a path (``del`` with value ``DELETE``)."""

    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


DELETE = object()
A = "attributes"
MS0 = (A, "multiscales", 0)
DS = (*MS0, "datasets")
OME05_MS0 = (A, "ome", "multiscales", 0)


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for c in changes:
            c(doc)

    return change


def _every_level(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for member in doc["members"].values():
            member[key] = value

    return change


# rule -> (model, spec, format, kind, how to break it)
CASES: dict[str, tuple[Any, dict[str, Any], Format, Kind, Callable[[dict[str, Any]], None]]] = {
    "FMT001": (cosem.Group, COSEM_GROUP, "zarr2", "group", lambda d: None),
    "FMT002": (cosem.Array, COSEM_GROUP, "n5", "group", lambda d: None),
    "MEM001": (cosem.Group, COSEM_GROUP, "n5", "group", at("members", "s1", value=DELETE)),
    "ZARR001": (ArraySpec, COSEM_ARRAY, "n5", "array", at("shape", value="big")),
    "ZARR002": (ArraySpec, COSEM_ARRAY, "n5", "array", at("chunks", value=[64])),
    "ZARR003": (ArraySpec, COSEM_ARRAY, "n5", "array", at("compressor", value={"id": "zip9"})),
    "ZARR010": (ArraySpecV3, OME05["members"]["s0"], "zarr3", "array",
                at("chunk_grid", value={"configuration": {}})),
    "ZARR011": (ArraySpecV3, OME05["members"]["s0"], "zarr3", "array",
                at("chunk_grid", "configuration", "chunk_shape", value=[8])),
    "ZARR012": (ArraySpecV3, OME05["members"]["s0"], "zarr3", "array",
                at("dimension_names", value=["z"])),
    "ZARR013": (ArraySpecV3, OME05["members"]["s0"], "zarr3", "array",
                at("codecs", value=[{"configuration": {}}])),
    "ZARR014": (ArraySpecV3, OME05["members"]["s0"], "zarr3", "array",
                at("codecs", value=[{"name": "bytes"}, {"name": "zip9"}])),
    "NG001": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group", at(A, "units", value="nm")),
    "NG002": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group", at(A, "units", value=["nm"])),
    "NG003": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at(A, "scales", 1, value=[2, 2])),
    "NG004": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at(A, "scales", 0, value=[2, 1, 1])),
    "NG005": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at(A, "pixelResolution", "dimensions", value=[4.0])),
    "NG006": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at(A, "pixelResolution", "unit", value="um")),
    "NG007": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at("members", "s5", value=DELETE)),
    "NG008": (neuroglancer_n5.Group, COSEM_GROUP, "n5", "group",
              at("members", "s5", value={"zarr_version": 2, "attributes": {}, "members": {}})),
    "COSEM001": (cosem.Group, COSEM_GROUP, "n5", "group", at(*DS, 0, "transform", value=3)),
    "COSEM002": (cosem.Array, COSEM_ARRAY, "n5", "array",
                 at(A, "transform", "units", value=["nm"])),
    "COSEM003": (cosem.Array, COSEM_ARRAY, "n5", "array",
                 at(A, "transform", "units", value=["nm", "nm", "um"])),
    "COSEM004": (cosem.Array, COSEM_ARRAY, "n5", "array",
                 at(A, "pixelResolution", "dimensions", value=[1.0, 1.0, 1.0])),
    "COSEM005": (cosem.Array, COSEM_ARRAY, "n5", "array", at("shape", value=[1, 1])),
    "COSEM006": (cosem.Group, COSEM_GROUP, "n5", "group", at(*DS, 1, "path", value="t1")),
    "COSEM008": (cosem.Group, COSEM_GROUP, "n5", "group",
                 at("members", "s1", A, "transform", "translate", value=[9.0, 9.0, 9.0])),
    "COSEM009": (cosem.Group, COSEM_GROUP, "n5", "group", at(A, "axes", value=["z", "y", "x"])),
    "OME001": (v04.Group, OME04, "zarr2", "group", at(*MS0, "axes", value="zyx")),
    "OME002": (v04.Group, OME04, "zarr2", "group",
               at(*MS0, "axes", value=[{"name": "x", "type": "space"}])),
    "OME003": (v04.Group, OME04, "zarr2", "group", at(*MS0, "axes", 0, "name", value="y")),
    "OME004": (v04.Group, OME04, "zarr2", "group", _both(
        at(*MS0, "axes", 0, "type", value="foo"), at(*MS0, "axes", 1, "type", value="bar"))),
    "OME005": (v05.Group, OME05, "zarr3", "group", _both(
        at(*OME05_MS0, "axes", 0, "type", value="time"),
        at(*OME05_MS0, "axes", 1, "type", value="time"),
        at(*OME05_MS0, "axes", 0, "unit", value="second"),
        at(*OME05_MS0, "axes", 1, "unit", value="second"))),
    "OME006": (v05.Group, OME05, "zarr3", "group", _both(
        at(*OME05_MS0, "axes", 0, "type", value="channel"),
        at(*OME05_MS0, "axes", 0, "unit", value=DELETE),
        at(*OME05_MS0, "axes", value=[
            {"name": "c", "type": "channel"}, {"name": "d", "type": "channel"},
            {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]))),
    "OME007": (v04.Group, OME04, "zarr2", "group", at(*MS0, "axes", value=[
        {"name": "z", "type": "space", "unit": "nanometer"},
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "x", "type": "space", "unit": "nanometer"}])),
    "OME008": (v04.Group, OME04, "zarr2", "group", at(*MS0, "axes", 0, "unit", value="nm")),
    "OME009": (v04.Group, OME04, "zarr2", "group", _both(
        at(*MS0, "axes", 0, "type", value="time"), at(*MS0, "axes", 0, "name", value="t"),
        at(*MS0, "axes", 0, "unit", value="ms"))),
    "OME010": (v04.Group, OME04, "zarr2", "group", at(*DS, 0, "coordinateTransformations", value=[
        {"type": "scale", "scale": [5.24, 4.0, 4.0]}, {"type": "identity"}])),
    "OME011": (v04.Group, OME04, "zarr2", "group", at(*DS, 0, "coordinateTransformations", value=[
        {"type": "translation", "translation": [0.0, 0.0, 0.0]}])),
    "OME012": (v04.Group, OME04, "zarr2", "group", at(*DS, 0, "coordinateTransformations", value=[
        {"type": "scale", "scale": [5.24, 4.0, 4.0]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0]}])),
    "OME013": (v04.Group, OME04, "zarr2", "group", at(*DS, 0, "coordinateTransformations", value=[
        {"type": "translation", "translation": [0.0, 0.0, 0.0]},
        {"type": "scale", "scale": [5.24, 4.0, 4.0]}])),
    "OME014": (v04.Group, OME04, "zarr2", "group",
               at(*DS, 0, "coordinateTransformations", 0, "scale", value=[5.24, 4.0])),
    "OME015": (v04.Group, OME04, "zarr2", "group", at(*DS[:-1], "datasets", value=[])),
    "OME016": (v04.Group, OME04, "zarr2", "group", lambda d: d[A]["multiscales"][0][
        "datasets"].reverse()),
    "OME017": (v04.Group, OME04, "zarr2", "group", at("members", "s2", value=DELETE)),
    "OME018": (v04.Group, OME04, "zarr2", "group", at("members", "s2", "shape", value=[4, 4])),
    "OME019": (v04.ImageLabelGroup, IMAGE_LABEL04, "zarr2", "group",
               at(A, "image-label", "colors", 0, "rgba", value=[255, 0, 0])),
    "OME020": (v04.ImageLabelGroup, IMAGE_LABEL04, "zarr2", "group",
               at(A, "image-label", "colors", value=[{"label-value": 1}, {"label-value": 1}])),
    "OME021": (v04.ImageLabelGroup, IMAGE_LABEL04, "zarr2", "group",
               at(A, "image-label", "properties", value=[{"area": 3}])),
    "OME022": (v04.LabelsGroup, LABELS04, "zarr2", "group", at(A, "labels", value=["nuclei"])),
    "OME023": (v04.ImageLabelGroup, IMAGE_LABEL04, "zarr2", "group",
               _every_level("dtype", "<f4")),
    "OME024": (v04.Group, OME04, "zarr2", "group", at(*MS0, "version", value="0.3")),
    "OME025": (v04.Group, OME04, "zarr2", "group", at(A, "multiscales", value=[])),
    "OME026": (v05.Group, OME05, "zarr3", "group", at(A, "ome", "version", value="0.4")),
    "OME027": (v05.Group, OME05, "zarr3", "group",
               at("members", "s1", "dimension_names", value=["a", "b", "c"])),
    "OME028": (v04.Group, OME04, "zarr2", "group", lambda d: d[A]["multiscales"].append(
        copy.deepcopy(d[A]["multiscales"][0]))),
    "OME029": (v04.Group, OMERO04, "zarr2", "group",
               at(A, "omero", "channels", 0, "window", "max", value=DELETE)),
    "OME030": (v04.Group, OMERO04, "zarr2", "group",
               at(A, "omero", "channels", 0, "color", value="red")),
    "CROP001": (CropGroup, CROP, "zarr2", "group",
                at(A, "cellmap", "annotation", "class_names", value="mito")),
    "CROP002": (AnnotationArray, CLASS_ARRAY, "zarr2", "array", _both(
        at(A, "cellmap", "annotation", "complement_counts", "present", value=4),
        at(A, "cellmap", "annotation", "annotation_type", "encoding", "present", value=DELETE))),
    "CROP003": (CropGroup, CROP, "zarr2", "group",
                at(A, "cellmap", "annotation", "class_names", value=["mito", "mito_mem", "er"])),
    "CROP004": (CropGroup, CROP, "zarr2", "group", at("members", "mito", value=CLASS_ARRAY)),
}  # fmt: skip
# Rules that may come with others when the one thing is broken (the first is the case's own)
ALSO: dict[str, set[str]] = {
    "MEM001": set(),
    "COSEM005": {"ZARR002"},
    "NG004": {"PYR001", "PYR005"},
    "OME002": {"OME004", "OME014", "OME018"},
    "OME004": {"OME006"},
    "OME006": {"OME014", "OME018", "PYR001", "PYR003"},
    "NG007": {"PYR004", "PYR001", "PYR002", "PYR003"},
    "NG008": {"ZARR001"},
    "COSEM006": {"PYR001", "PYR003", "PYR004"},
    "COSEM009": {"COSEM009"},
    "OME005": {"OME004", "OME006"},
    "OME007": {"OME003", "OME014", "OME018", "PYR001", "PYR003"},
    "OME010": {"OME011"},
    "OME016": {"PYR001", "PYR002", "PYR006"},
    "OME017": {"PYR001", "PYR003", "PYR004"},
    "OME018": {"PYR001", "PYR003", "ZARR002"},
    "OME022": set(),
    "CROP004": {"CROP001"},
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_clean_twin_has_no_finding(rule: str) -> None:
    model, spec, fmt, kind, _ = CASES[rule]
    if rule == "FMT001":
        fmt = "n5"
    if rule == "FMT002":
        model = cosem.Group
    result = judge_node(model, spec, fmt, kind)
    assert result.valid and result.errors == () and result.warnings == (), result


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_broken_document_cites_the_rule(rule: str) -> None:
    model, spec, fmt, kind, change = CASES[rule]
    doc = copy.deepcopy(spec)
    change(doc)
    failures = {"s1": "invalid JSON"} if rule == "MEM001" else None
    result = judge_node(model, doc, fmt, kind, failures=failures)
    cited = {f.rule for f in (*result.errors, *result.warnings)}
    assert rule in cited, (rule, [(f.rule, f.loc, f.msg) for f in result.errors])
    severity = next(f.severity for f in (*result.errors, *result.warnings) if f.rule == rule)
    assert result.valid is (severity == "warning")
    assert cited - {rule} <= ALSO.get(rule, set()) | {rule}, (rule, cited)


def test_cosem007_a_member_built_in_python_without_a_transform() -> None:
    # Documents cannot reach it (members decode as COSEM arrays, or fail COSEM001): a group
    # built in Python with a plain array as a level can.
    group = cosem.Group.model_validate(COSEM_GROUP)
    plain = ArraySpec.model_validate({**COSEM_GROUP["members"]["s1"], "attributes": {}})
    with pytest.raises(ValueError, match="is an array but not a COSEM array") as info:
        msgspec.structs.replace(group, members={**group.members, "s1": plain})
    assert "attributes.multiscales[0].datasets[1].path" in str(info.value)
    assert "COSEM007" not in {p.rule for p in group._problems()}


class _Crashing(Base, frozen=True, kw_only=True):
    """A model whose rules across levels raise: the engine must report it, not crash."""

    attributes: dict[str, Any] = {}

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        raise ValueError("a bug in a rule")


def test_mem002_a_model_that_fails_is_reported_not_raised() -> None:
    result = judge_node(_Crashing, {"attributes": {}}, "n5", "group")
    assert not result.valid and [e.rule for e in result.errors] == ["MEM002"]
    assert "ValueError: a bug in a rule" in result.errors[0].msg


def test_every_declared_rule_has_its_cases() -> None:
    here = (TESTS / "test_rules.py").read_text()
    elsewhere = (TESTS / "test_pyramid.py").read_text() + (
        TESTS / "test_neuroglancer_profile.py"
    ).read_text()
    missing = [
        r.id
        for r in all_rules()
        if r.id not in CASES and f'"{r.id}"' not in elsewhere and f'"{r.id}"' not in here
    ]
    assert not missing, missing
