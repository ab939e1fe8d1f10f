"""The verdicts engine: which models judge a node, each model's verdict, and the node's status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.errors import UnknownModelError
from cellmap_schemas.multiscale import cosem, neuroglancer_n5
from cellmap_schemas.multiscale.ome_ngff import v04
from cellmap_schemas.registry import MODELS
from cellmap_schemas.rules import RULES
from cellmap_schemas.validation import Options, Verdicts, family_problems, judge_node

EXAMPLE = Path(__file__).parent.parent / "examples" / "cellmap-bucket"
HELA = EXAMPLE / "jrc_hela-2"

COSEM = "multiscale.cosem.Group"
NG = "multiscale.neuroglancer_n5.Group"
OME04 = "multiscale.ome_ngff.v04.Group"
OME05 = "multiscale.ome_ngff.v05.Group"
CROP = "annotation.CropGroup"
CLASS = "annotation.AnnotationGroup"


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
    return sorted(name for name, _ in pairs)


# ---- applicability ----------------------------------------------------------------------------
def test_a_cosem_group_is_judged_as_cosem_and_as_neuroglancer_not_as_ome() -> None:
    assert names(Verdicts().applicable("group", COSEM_ATTRS)) == [COSEM, NG]


def test_an_ome_image_is_judged_as_ome_only() -> None:
    assert names(Verdicts().applicable("group", OME04_ATTRS)) == [OME04]


def test_a_crop_class_group_is_a_class_group_and_an_ome_image() -> None:
    assert names(Verdicts().applicable("group", CLASS_ATTRS)) == [CLASS, OME04]
    assert names(Verdicts().applicable("group", CROP_ATTRS)) == [CROP]


def test_nothing_without_markers() -> None:
    assert Verdicts().applicable("group", {"n5": "2.0.0"}) == ()
    assert Verdicts().applicable("group", {"multiscales": {}}) == ()  # no list: no marker
    assert Verdicts().applicable("group", ["not", "a", "mapping"]) == ()


_MARKER_KEYS = sorted({k for i in MODELS.values() for p in i.marker_paths for k in p} - {"[]"})
_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_MARKER_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_MARKER_KEYS), _values, max_size=6))
def test_applicable_is_carrying_a_marker(attributes: dict[str, Any]) -> None:
    """The shortcuts of ``Verdicts.applicable`` (first keys, one-key markers) decide as walking
    every marker path would."""
    for kind in ("array", "group"):
        expected = sorted(
            i.name
            for i in MODELS.values()
            if i.default and i.kind == kind and _carries(attributes, i.marker_paths)
        )
        assert names(Verdicts().applicable(kind, attributes)) == expected


def _carries(value: Any, paths: Any) -> bool:
    def reach(v: Any, path: tuple[str, ...]) -> bool:
        if not path:
            return True
        head, *rest = path
        if head == "[]":
            return isinstance(v, list) and any(reach(x, tuple(rest)) for x in v)
        return isinstance(v, dict) and head in v and reach(v[head], tuple(rest))

    return any(reach(value, p) for p in paths)


def test_a_model_asked_for_judges_every_node_sharing_a_key_with_it() -> None:
    # the case: Neuroglancer asked for, every COSEM group is judged by it
    assert names(Verdicts([NG]).applicable("group", COSEM_ATTRS)) == [NG]
    # COSEM asked for: an OME-NGFF image shares `multiscales`, so COSEM judges (and fails) it
    assert names(Verdicts([COSEM]).applicable("group", OME04_ATTRS)) == [COSEM]
    # ... but a node that shares nothing with it is not judged
    assert Verdicts([COSEM]).applicable("group", CROP_ATTRS) == ()
    # only the models asked for judge
    assert names(Verdicts([OME04]).applicable("group", COSEM_ATTRS)) == [OME04]


def test_force_judges_whatever_the_node_carries() -> None:
    v = Verdicts([COSEM], force=True)
    assert names(v.applicable("group", {})) == [COSEM]
    assert names(v.applicable("array", {})) == [COSEM]  # the kind rule then fails it
    assert not Verdicts(force=True).force  # nothing asked for: markers decide


def test_unknown_model_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownModelError) as info:
        Verdicts(["multiscale.cosem.group"])
    assert "did you mean multiscale.cosem.Group" in str(info.value)
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownModelError, match=r"^unknown model 'zzz'$"):
        Verdicts(["zzz"])


def test_names_are_deduplicated_and_default_to_every_model() -> None:
    assert Verdicts([COSEM, COSEM]).names == (COSEM,)
    assert len(Verdicts().names) >= 13


# ---- one model, one node ----------------------------------------------------------------------
def _group(attrs: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    return {"zarr_version": 2, "attributes": attrs, "members": members}


def _cosem_group() -> dict[str, Any]:
    import numpy as np

    data = np.zeros((8, 8), dtype="uint8")
    g = cosem.Group.from_arrays(
        arrays=[data, data[::2, ::2]],
        paths=["s0", "s1"],
        scales=[[4.0, 4.0], [8.0, 8.0]],
        axes=["y", "x"],
        units=["nm", "nm"],
    )
    return g.model_dump()


def test_format_and_kind_rules() -> None:
    assert [p.rule for p in family_problems(cosem.Group, "zarr2", "group")] == ["FMT001"]
    assert family_problems(cosem.Group, "n5", "group") == []
    assert [p.rule for p in family_problems(cosem.Group, "n5", "array")] == ["FMT002"]
    assert family_problems(v04.Group, "zarr2", "group") == []
    assert family_problems(v04.Group, "n5", "group") == []  # N5 read as Zarr v2
    assert [p.rule for p in family_problems(v04.Group, "zarr3", "group")] == ["FMT001"]


def test_a_cosem_group_stored_as_zarr_is_invalid_with_every_other_problem_too() -> None:
    spec = _cosem_group()
    assert judge_node(cosem.Group, spec, "n5", "group").valid
    result = judge_node(cosem.Group, spec, "zarr2", "group")
    assert not result.valid and [e.rule for e in result.errors] == ["FMT001"]
    del spec["members"]["s1"]["attributes"]["transform"]
    result = judge_node(cosem.Group, spec, "zarr2", "group")
    assert result.errors[0].rule == "FMT001" and len(result.errors) > 1


def test_an_unreadable_member_is_reported_once_and_hides_nothing_else() -> None:
    spec = _cosem_group()
    del spec["members"]["s1"]
    spec["members"]["s0"]["attributes"]["transform"]["units"] = ["nm", "um"]
    result = judge_node(cosem.Group, spec, "n5", "group", failures={"s1": "invalid JSON"})
    rules = [e.rule for e in result.errors]
    # s1: its read failure, not "missing" (NG007) nor "names no member" (COSEM006)
    assert rules.count("MEM001") == 1 and "NG007" not in rules and "COSEM006" not in rules
    assert result.errors[rules.index("MEM001")].loc == "members.s1"
    # s0's own problems are still reported
    assert "COSEM003" in rules
    # the same group without the failure: s1 is really missing, and says so
    rules = [e.rule for e in judge_node(cosem.Group, spec, "n5", "group").errors]
    assert "NG007" in rules and "MEM001" not in rules


def test_warnings_do_not_fail_unless_strict() -> None:
    doc = json.loads(json.dumps(OME04_ATTRS))
    for axis in doc["multiscales"][0]["axes"]:
        if axis.get("type") == "space":
            axis["unit"] = "nm"
    datasets = doc["multiscales"][0]["datasets"]
    s0 = datasets[0]["coordinateTransformations"][0]["scale"]
    members = {}
    for ds in datasets:
        scale = ds["coordinateTransformations"][0]["scale"]
        shape = [round(64 * a / b) for a, b in zip(s0, scale, strict=True)]
        members[ds["path"]] = {"zarr_version": 2, "shape": shape, "chunks": shape, "dtype": "|u1"}
    spec = _group(doc, members)
    result = judge_node(v04.Group, spec, "zarr2", "group")
    assert result.valid and result.errors == ()
    assert {w.rule for w in result.warnings} == {"OME008"}
    assert all(w.severity == "warning" for w in result.warnings)
    assert not judge_node(v04.Group, spec, "zarr2", "group", options=Options(strict=True)).valid
    ignored = judge_node(v04.Group, spec, "zarr2", "group", options=Options(ignore=("OME008",)))
    assert ignored.valid and ignored.warnings == ()


def test_select_keeps_only_the_rules_asked_for() -> None:
    spec = _cosem_group()
    spec["members"]["s0"]["attributes"]["transform"]["units"] = ["nm", "um"]
    bad = judge_node(cosem.Group, spec, "zarr2", "group")
    assert {e.rule for e in bad.errors} >= {"FMT001", "COSEM003"}
    only = judge_node(cosem.Group, spec, "zarr2", "group", options=Options(select=("COSEM",)))
    assert "COSEM003" in {e.rule for e in only.errors}
    assert all(e.rule.startswith("COSEM") for e in only.errors)
    assert judge_node(cosem.Group, spec, "zarr2", "group", options=Options(select=("NG",))).valid


def test_every_finding_names_a_declared_rule() -> None:
    spec = _cosem_group()
    spec["attributes"]["scales"] = [[2, 2], [4]]
    spec["members"]["s1"]["shape"] = [1, 2, 3]
    result = judge_node(neuroglancer_n5.Group, spec, "zarr3", "group", failures={"x": "gone"})
    assert result.errors and all(e.rule in RULES for e in result.errors)
    assert all(RULES[e.rule].severity == e.severity for e in result.errors)


def test_status_is_valid_only_when_every_model_agrees() -> None:
    spec = _cosem_group()
    v = Verdicts()
    models = v.applicable("group", spec["attributes"])
    assert v.judge(models, spec, "n5", "group")[0] == "valid"
    status, results = v.judge(models, spec, "zarr2", "group")
    assert status == "invalid" and not any(r.valid for r in results.values())
    assert v.judge((), spec, "n5", "group") == ("not_applicable", {})


def test_a_warning_is_found_through_a_generic_spec_too() -> None:
    """``collect_warnings`` skips structs that cannot hold a warning; a generic spec's class
    does not show its parameters, so it is walked (here: an axis unit off the lists)."""
    import copy

    from cellmap_schemas import base
    from cellmap_schemas.rules import severity_of
    from cellmap_schemas.spec.zarr_v2 import GroupSpec

    attrs = copy.deepcopy(OME04_ATTRS)
    attrs["multiscales"][0]["axes"][0]["unit"] = "furlong"
    spec = {"zarr_version": 2, "attributes": attrs, "members": {}}
    value, found = base.judge(attrs, v04.GroupAttrs)
    plain = [(p.rule, f"attributes.{p.loc}") for p in found if severity_of(p.rule) == "warning"]
    value, found = base.judge(spec, GroupSpec[v04.GroupAttrs])
    assert value is not None
    assert plain and [(p.rule, p.loc) for p in found if severity_of(p.rule) == "warning"] == plain


def test_the_typed_warnings_walk_finds_what_the_value_walk_finds() -> None:
    """Warnings of a document built from plain data are found by following the model's types
    (parts typed ``Any`` are never entered); they must be those a walk of every struct in the
    converted value finds, in the same order, members and attributes alike."""
    import copy

    from cellmap_schemas import base
    from cellmap_schemas._diagnose import collect_warnings
    from cellmap_schemas.formats import parse_node

    image = HELA / "jrc_hela-2.zarr/recon-1/em/fibsem-uint8"
    attrs = copy.deepcopy(OME04_ATTRS)
    attrs["multiscales"][0]["axes"][0]["unit"] = "furlong"
    attrs["multiscales"][0]["axes"][1]["unit"] = "league"
    members: dict[str, Any] = {}
    for level in sorted(p.name for p in image.iterdir() if (p / ".zarray").exists()):
        docs = {k: (image / level / k).read_bytes() for k in (".zarray",)}
        members[level] = parse_node(docs, level).spec
        members[level]["attributes"] = {"any": {"thing": [1, {"x": 2}]}}
    spec = {"zarr_version": 2, "attributes": attrs, "members": members}
    value, found = base.judge(spec, v04.Group)
    assert value is not None
    walked: list[Any] = []
    collect_warnings(value, "", walked)
    assert [p.rule for p in found] == ["OME008", "OME008"]
    assert found == walked
    # an instance passed in is walked by value (its fields may hold anything)
    again, found_again = base.judge(value, v04.Group)
    assert again is value and found_again == walked


def test_a_refused_document_still_reports_the_warnings_of_its_sound_parts() -> None:
    """The diagnosis of an invalid document finds the warnings of the parts that converted
    whole (they are walked by their types), next to the errors of the broken part."""
    import copy

    from cellmap_schemas import base
    from cellmap_schemas.rules import severity_of

    attrs = copy.deepcopy(OME04_ATTRS)
    attrs["multiscales"][0]["axes"][0]["unit"] = "furlong"
    spec = {"zarr_version": 2, "attributes": attrs, "members": {}}  # no level arrays: errors
    value, found = base.judge(spec, v04.Group)
    assert value is None
    assert [p.rule for p in found if severity_of(p.rule) == "warning"] == ["OME008"]
    assert any(severity_of(p.rule) == "error" for p in found)
