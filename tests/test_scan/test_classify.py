"""Which models judge a node, and the node's status from their verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cellmap_schemas.scan.classify import Classifier, UnknownModelError, match

from .conftest import EXAMPLE

COSEM = "multiscale.cosem.Group"
NG = "multiscale.neuroglancer_n5.Group"
OME04 = "multiscale.ome_ngff.v04.Group"
OME05 = "multiscale.ome_ngff.v05.Group"
OME05_LABELS = "multiscale.ome_ngff.v05.LabelsGroup"
CROP = "annotation.CropGroup"
CLASS = "annotation.AnnotationGroup"

HELA = EXAMPLE / "jrc_hela-2"


def _attrs(path: Path) -> dict[str, Any]:
    for name in ("attributes.json", ".zattrs"):
        if (path / name).exists():
            return json.loads((path / name).read_text())
    return json.loads((path / "zarr.json").read_text())["attributes"]


COSEM_ATTRS = _attrs(HELA / "jrc_hela-2.n5/em/fibsem-uint8")
OME04_ATTRS = _attrs(HELA / "jrc_hela-2.zarr/recon-1/em/fibsem-uint8")
CROP_ATTRS = _attrs(HELA / "jrc_hela-2.zarr/recon-1/labels/groundtruth/crop1")
CLASS_ATTRS = _attrs(HELA / "jrc_hela-2.zarr/recon-1/labels/groundtruth/crop1/mito")


def names(pairs: Any) -> list[str]:
    return [name for name, _ in pairs]


def test_a_cosem_group_is_judged_as_cosem_only() -> None:
    c = Classifier()
    assert names(c.applicable("group", COSEM_ATTRS)) == [COSEM]
    assert COSEM not in names(c.applicable("array", COSEM_ATTRS))  # only the node's kind


def test_an_ome_image_is_not_judged_as_cosem_even_when_cosem_is_asked_for() -> None:
    assert names(Classifier().applicable("group", OME04_ATTRS)) == [OME04]
    assert names(Classifier([COSEM]).applicable("group", OME04_ATTRS)) == []
    assert names(Classifier([COSEM, OME04]).applicable("group", OME04_ATTRS)) == [OME04]


def test_a_neuroglancer_group_without_multiscales_is_judged_as_neuroglancer() -> None:
    attrs = {k: v for k, v in COSEM_ATTRS.items() if k != "multiscales"}
    assert names(Classifier().applicable("group", attrs)) == [NG]
    assert match(Classifier()._all["group"][0][1], attrs) == (4, 1.0, 4)


def test_crop_and_class_groups_are_told_apart() -> None:
    c = Classifier()
    assert names(c.applicable("group", CROP_ATTRS)) == [CROP]
    assert names(c.applicable("group", CLASS_ATTRS)) == [CLASS]


def test_nodes_without_a_convention_are_not_applicable() -> None:
    c = Classifier()
    assert c.applicable("group", {"n5": "2.0.0"}) == ()
    assert c.applicable("group", {}) == ()
    assert c.applicable("group", ["not", "a", "mapping"]) == ()  # type: ignore[arg-type]
    assert c.judge((), {"attributes": {}}) == ("not_applicable", {})


def test_equal_matches_are_all_judged_and_one_pass_is_enough() -> None:
    c = Classifier()
    attrs = {"ome": {"version": "0.5"}}  # as much OME-NGFF 0.5 image as labels group
    models = c.applicable("group", attrs)
    assert names(models) == [OME05, OME05_LABELS]
    spec = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "labels": ["cells"]}},
        "members": {
            "cells": {"zarr_format": 3, "node_type": "group", "attributes": {}, "members": {}}
        },
    }
    status, results = c.judge(models, spec)
    assert results[OME05].valid is False and results[OME05_LABELS].valid is True
    assert status == "valid"
    spec["attributes"] = {"ome": {"version": "0.5"}}
    status, results = c.judge(models, spec)
    assert status == "invalid" and not any(r.valid for r in results.values())


def test_judge_reports_every_problem_with_its_location() -> None:
    c = Classifier([COSEM])
    models = c.applicable("group", COSEM_ATTRS)
    attrs = dict(COSEM_ATTRS, units=["nm", "nm"])  # one unit short
    status, results = c.judge(models, {"zarr_version": 2, "attributes": attrs, "members": {}})
    assert status == "invalid"
    locs = [e.loc for e in results[COSEM].errors]
    assert any(loc.startswith("attributes.units") for loc in locs), locs
    assert any(loc.startswith("members") for loc in locs), locs  # s0.. are missing too


def test_unreadable_members_fail_the_group_with_their_reasons() -> None:
    c = Classifier()
    models = c.applicable("group", CROP_ATTRS)
    status, results = c.judge_failed_members(
        models, {"mito/s0": "s3://b/mito/s0/.zarray: access denied (403)", "all": "timed out"}
    )
    assert status == "invalid"
    errors = [(e.loc, e.msg) for e in results[CROP].errors]
    denied = "member unreadable: s3://b/mito/s0/.zarray: access denied (403)"
    assert errors == [
        ("members.all", "member unreadable: timed out"),
        ("members.mito.members.s0", denied),
    ]


def test_unknown_model_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownModelError) as info:
        Classifier(["multiscale.cosem.group"])
    assert isinstance(info.value, KeyError)
    assert info.value.suggestions[0] == COSEM
    assert str(info.value).startswith(
        f"unknown model 'multiscale.cosem.group'; did you mean {COSEM} or "
    )
    with pytest.raises(UnknownModelError, match=r"^unknown model 'zzz'$"):
        Classifier(["zzz"])


def test_models_of_the_scan() -> None:
    assert Classifier([COSEM, COSEM]).names == (COSEM,)
    c = Classifier([COSEM])
    assert c.has_models("group") and not c.has_models("array")
    assert len(Classifier().names) >= 9
