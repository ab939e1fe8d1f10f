"""Neuroglancer N5 multiscale models: every rule passing and failing, construction, round trips,
and the documents in the wild judged as the original judges them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.errors import ValidationError
from cellmap_schemas.multiscale.neuroglancer_n5 import (
    Array,
    ArrayMetadata,
    Group,
    GroupMetadata,
    PixelResolution,
    scale_ratio,
)
from cellmap_schemas.spec.zarr_v2 import GroupSpec

WILD = Path(__file__).parent.parent / "data" / "wild"


def attrs_doc(**changes: Any) -> dict[str, Any]:
    """Valid 2D group attributes (F order), with some keys replaced."""
    doc: dict[str, Any] = {
        "axes": ["x", "y"],
        "units": ["nm", "nm"],
        "scales": [[1, 1], [2, 2], [4, 4]],
        "pixelResolution": {"dimensions": [4.0, 5.0], "unit": "nm"},
    }
    doc.update(changes)
    return doc


def array_doc(dims: list[float], shape: list[int] | None = None) -> dict[str, Any]:
    shape = shape or [8, 8]
    return {
        "zarr_version": 2,
        "attributes": {"pixelResolution": {"dimensions": dims, "unit": "nm"}},
        "shape": shape,
        "chunks": [4] * len(shape),
        "dtype": "<u2",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": None,
    }


def group_doc() -> dict[str, Any]:
    return {
        "zarr_version": 2,
        "attributes": attrs_doc(),
        "members": {
            "s0": array_doc([4.0, 5.0], [8, 8]),
            "s1": array_doc([8.0, 10.0], [4, 4]),
            "s2": array_doc([16.0, 20.0], [2, 2]),
        },
    }


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return dict(exc.value.problems)


# ---- PixelResolution / ArrayMetadata / Array --------------------------------------------------
def test_pixel_resolution_valid() -> None:
    p = PixelResolution.model_validate({"dimensions": [1, 2.5], "unit": "um"})
    assert p == PixelResolution(dimensions=(1.0, 2.5), unit="um")
    assert isinstance(p.dimensions[0], float)


@pytest.mark.parametrize(
    ("doc", "loc", "fragment"),
    [
        ({"dimensions": "4", "unit": "nm"}, "dimensions", "Expected `array`"),
        ({"dimensions": [1.0, "a"], "unit": "nm"}, "dimensions[1]", "Expected `float`"),
        ({"dimensions": [1.0]}, "unit", "field required"),
        ({"dimensions": [1.0], "unit": 3}, "unit", "Expected `str`"),
    ],
)
def test_pixel_resolution_invalid(doc: dict[str, Any], loc: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PixelResolution.model_validate(doc)
    assert fragment in problems(exc)[loc]


def test_array_metadata_valid_and_missing_pixel_resolution() -> None:
    ok = ArrayMetadata.model_validate_json(
        b'{"pixelResolution": {"dimensions": [1], "unit": "nm"}}'
    )
    assert ok.pixelResolution.dimensions == (1.0,)
    with pytest.raises(ValidationError) as exc:
        ArrayMetadata.model_validate_json(b'{"resolution": [1, 2]}')
    assert problems(exc) == {"pixelResolution": "field required"}


def test_array_valid_and_chunks_rule() -> None:
    doc = array_doc([4.0, 5.0])
    assert Array.model_validate(doc).shape == (8, 8)
    doc["chunks"] = [4, 4, 4]
    with pytest.raises(ValidationError) as exc:
        Array.model_validate(doc)
    assert "shape has 2" in problems(exc)["chunks"]


# ---- GroupMetadata: each rule passes and fails ------------------------------------------------
def test_group_metadata_valid() -> None:
    g = GroupMetadata.model_validate_json(json.dumps(attrs_doc()))
    assert g.scales == ((1, 1), (2, 2), (4, 4))
    assert g.axes == ("x", "y")
    assert list(g._problems()) == []


@pytest.mark.parametrize(
    ("changes", "loc", "fragment"),
    [
        # len(axes) == len(units)
        ({"units": ["nm"]}, "units", "has 1 entries but axes has 2"),
        # every scales entry has len(axes) entries
        ({"scales": [[1, 1], [2, 2, 2]]}, "scales[1]", "has 3 entries but axes has 2"),
        # scales are positive ints
        ({"scales": [[1, 1], [0, 2]]}, "scales[1][0]", "Expected `int` >= 1"),
        ({"scales": [[1, 1], [2.5, 2]]}, "scales[1][0]", "Expected `int`"),
        # scales[0] is all 1s
        ({"scales": [[2, 1], [4, 2]]}, "scales[0]", "must be all 1s"),
        # at least one level (the original crashed with IndexError on an empty list)
        ({"scales": []}, "scales", "length >= 1"),
        # len(pixelResolution.dimensions) == len(axes)
        (
            {"pixelResolution": {"dimensions": [4.0], "unit": "nm"}},
            "pixelResolution.dimensions",
            "has 1 entries but axes has 2",
        ),
        # every unit equals pixelResolution.unit
        ({"units": ["nm", "um"]}, "units[1]", "'um' differs from pixelResolution.unit 'nm'"),
    ],
)
def test_group_metadata_rules(changes: dict[str, Any], loc: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        GroupMetadata.model_validate_json(json.dumps(attrs_doc(**changes)))
    found = problems(exc)
    assert loc in found, found
    assert fragment in found[loc]


def test_group_metadata_reports_every_problem() -> None:
    doc = attrs_doc(
        units=["um", "nm", "nm"],
        scales=[[2, 1], [2, 2, 2]],
        pixelResolution={"dimensions": [1.0], "unit": "nm"},
    )
    with pytest.raises(ValidationError) as exc:
        GroupMetadata.model_validate(doc)
    assert set(problems(exc)) == {
        "units",
        "units[0]",
        "scales[0]",
        "scales[1]",
        "pixelResolution.dimensions",
    }


def test_group_metadata_construction_runs_rules() -> None:
    with pytest.raises(ValueError, match=r"differs from pixelResolution\.unit"):
        GroupMetadata(
            axes=("x",),
            units=("um",),
            scales=((1,),),
            pixelResolution=PixelResolution(dimensions=(1.0,), unit="nm"),
        )


def test_group_metadata_ignores_extra_keys() -> None:
    # As in the original: N5 group attributes carry other keys ("n5", "name", ...).
    g = GroupMetadata.model_validate(attrs_doc(n5="2.0.0", name="raw"))
    assert "n5" not in g.model_dump()


# ---- Group -----------------------------------------------------------------------------------
def test_group_valid_with_extra_members() -> None:
    doc = group_doc()
    doc["members"]["labels"] = {"zarr_version": 2, "attributes": {}, "members": {}}
    doc["members"]["s9"] = array_doc([1.0, 1.0])
    g = Group.model_validate(doc)
    assert isinstance(g.members["s0"], Array)
    assert isinstance(g.members["labels"], GroupSpec)
    assert list(g._problems()) == []


def test_group_missing_levels_reports_each() -> None:
    doc = group_doc()
    del doc["members"]["s1"]
    del doc["members"]["s2"]
    with pytest.raises(ValidationError) as exc:
        Group.model_validate(doc)
    found = problems(exc)
    assert set(found) == {"members.s1", "members.s2"}
    assert "missing" in found["members.s2"] and "'s2'" in found["members.s2"]


def test_group_level_that_is_a_group() -> None:
    doc = group_doc()
    doc["members"]["s1"] = {"zarr_version": 2, "attributes": {}, "members": {}}
    with pytest.raises(ValidationError) as exc:
        Group.model_validate_json(json.dumps(doc))
    assert problems(exc) == {
        "members.s1": "is a group, but level 1 of attributes.scales must be an array"
    }


def test_group_invalid_members_reported_with_their_locations() -> None:
    doc = group_doc()
    del doc["members"]["s0"]["attributes"]["pixelResolution"]
    doc["members"]["s2"]["attributes"]["pixelResolution"]["unit"] = 1
    with pytest.raises(ValidationError) as exc:
        Group.model_validate_json(json.dumps(doc))
    found = problems(exc)
    assert found["members.s0.attributes.pixelResolution"] == "field required"
    assert "Expected `str`" in found["members.s2.attributes.pixelResolution.unit"]


def test_group_attributes_and_members_problems_together() -> None:
    doc = group_doc()
    doc["attributes"]["units"] = ["nm", "um"]
    del doc["members"]["s2"]
    with pytest.raises(ValidationError) as exc:
        Group.model_validate(doc)
    found = problems(exc)
    assert "differs" in found["attributes.units[1]"]
    assert "missing" in found["members.s2"]


# ---- from_arrays -----------------------------------------------------------------------------
def test_from_arrays_c_order_reverses_metadata() -> None:
    data = np.zeros((6, 8), dtype="uint8")
    g = Group.from_arrays(
        arrays=(data, data[::2, ::2]),
        paths=("s0", "s1"),
        scales=((3.0, 4.0), (6.0, 8.0)),
        axes=("y", "x"),
        units=("nm", "nm"),
        dimension_order="C",
    )
    assert g.attributes.axes == ("x", "y")
    assert g.attributes.pixelResolution == PixelResolution(dimensions=(4.0, 3.0), unit="nm")
    assert g.members["s1"].attributes.pixelResolution.dimensions == (8.0, 6.0)
    assert g.members["s0"].dtype == "|u1"


def test_from_arrays_f_order_keeps_metadata_and_takes_options() -> None:
    data = np.zeros((4, 6, 8), dtype="float32")
    g = Group.from_arrays(
        arrays=(data, data[::2, ::2, ::2], data[::4, ::4, ::4]),
        paths=("s0", "s1", "s2"),
        scales=((1, 2, 3), (2, 4, 6), (4, 8, 12)),
        axes=("x", "y", "z"),
        units=("um",) * 3,
        dimension_order="F",
        chunks=(2, 2, 2),
        compressor={"id": "gzip", "level": 1},
        fill_value=0.5,
    )
    assert g.attributes.axes == ("x", "y", "z")
    assert g.attributes.scales == ((1, 1, 1), (2, 2, 2), (4, 4, 4))
    assert g.attributes.pixelResolution.dimensions == (1.0, 2.0, 3.0)
    for m in g.members.values():
        assert m.chunks == (2, 2, 2)
        assert m.compressor == {"id": "gzip", "level": 1}
        assert m.fill_value == 0.5


def test_from_arrays_anisotropic_scales_in_n5_order() -> None:
    data = np.zeros((4, 8), dtype="uint8")
    g = Group.from_arrays(
        arrays=(data, data[:, ::2]),
        paths=("s0", "s1"),
        scales=((5.0, 4.0), (5.0, 8.0)),
        axes=("z", "x"),
        units=("nm", "nm"),
        dimension_order="C",
    )
    assert g.attributes.scales == ((1, 1), (2, 1))


def test_from_arrays_rejects_mismatched_scales() -> None:
    data = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"scales\[1\] has 3 entries"):
        Group.from_arrays(
            arrays=(data, data),
            paths=("s0", "s1"),
            scales=((1.0, 1.0), (2.0, 2.0, 2.0)),
            axes=("y", "x"),
            units=("nm", "nm"),
            dimension_order="C",
        )


@pytest.mark.parametrize(
    ("scale", "base", "expected"),
    [(20.96, 5.24, 4), (10.48, 5.24, 2), (8.0, 4.0, 2), (7.0, 2.0, 3), (4.0, 4.0, 1)],
)
def test_scale_ratio(scale: float, base: float, expected: int) -> None:
    assert scale_ratio(scale, base) == expected


# ---- round trips -----------------------------------------------------------------------------
def test_round_trip_every_model() -> None:
    g = Group.model_validate(group_doc())
    for model in (g, g.attributes, g.attributes.pixelResolution, g.members["s0"]):
        cls = type(model)
        assert cls.model_validate_json(model.model_dump_json()) == model
        assert cls.model_validate(model.model_dump()) == model


AXES = "zyxtc"


@st.composite
def groups(draw: st.DrawFn) -> Group:
    ndim = draw(st.integers(1, 4))
    levels = draw(st.integers(1, 4))
    base_shape = draw(st.lists(st.integers(1, 32), min_size=ndim, max_size=ndim))
    spacing = draw(
        st.lists(
            st.floats(0.01, 1000, allow_nan=False, allow_infinity=False),
            min_size=ndim,
            max_size=ndim,
        )
    )
    dtype = draw(st.sampled_from(["uint8", "int16", "float32", "uint64"]))
    unit = draw(st.sampled_from(["nm", "um", "mm"]))
    order = draw(st.sampled_from(["C", "F"]))
    arrays = [
        np.broadcast_to(np.zeros((), dtype=dtype), [max(1, s >> i) for s in base_shape])
        for i in range(levels)
    ]
    return Group.from_arrays(
        arrays=arrays,
        paths=[f"s{i}" for i in range(levels)],
        scales=[[x * 2**i for x in spacing] for i in range(levels)],
        axes=list(AXES[:ndim]),
        units=[unit] * ndim,
        dimension_order=order,
    )


@settings(max_examples=40, deadline=None)
@given(groups())
def test_round_trip_generated_groups(g: Group) -> None:
    assert list(g._problems()) == []
    assert Group.model_validate_json(g.model_dump_json()) == g
    assert GroupMetadata.model_validate_json(g.attributes.model_dump_json()) == g.attributes
    for m in g.members.values():
        assert Array.model_validate_json(m.model_dump_json()) == m


# ---- the documents in the wild, judged as the original judges them ----------------------------
# Verdicts from running cellmap-schemas 0.8.1 (pydantic) on each document once, by hand; we agree
# on every one. "loc" is one of the locations we report for an invalid document.
WILD_CASES = [
    # (file, key inside the file or "", model, valid, loc, why)
    ("cosem_n5_multiscale_group__cosem-flows2021_emulated.json", "", GroupMetadata, True, None,
     "COSEM groups carry the Neuroglancer keys"),
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", "group_attributes", GroupMetadata,
     True, None, "written by the original's from_arrays"),
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", "s0_attributes", ArrayMetadata,
     True, None, "written by the original's from_arrays"),
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", "s1_attributes", ArrayMetadata,
     True, None, "written by the original's from_arrays"),
    ("cellmap-schemas_cosem_Group_model_dump.json", "group_attributes", GroupMetadata, True, None,
     "extra multiscales key ignored"),
    ("irregular_n5_group__render-style_ordering_translate__cellmap-n5-to-zarr_test.json", "",
     GroupMetadata, True, None, "extra ordering/translate keys ignored; 11 levels"),
    ("reconstructed__jrc_hela-2_n5_em_fibsem-uint16_s0_attributes.json", "", ArrayMetadata, True,
     None, "array attributes with pixelResolution"),
    ("neuroglancer_n5_viewer_style__jbms_issue176.json", "", ArrayMetadata, True, None,
     "has pixelResolution"),
    ("neuroglancer_n5_viewer_style__jbms_issue176.json", "", GroupMetadata, False, "axes",
     "no axes or units (the n5-viewer style)"),
    ("neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json", "attributes.json",
     GroupMetadata, False, "pixelResolution", "resolution instead of pixelResolution; no scales"),
    ("neuroglancer_n5_multiscale_deprecated__neuroglancer_testdata.json", "attributes.json",
     GroupMetadata, False, "pixelResolution", "resolution instead of pixelResolution"),
    ("neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json", "s1/attributes.json",
     ArrayMetadata, False, "pixelResolution", "downsamplingFactors only"),
    ("neuroglancer_n5_resolution_units__ng_docs.json", "", GroupMetadata, False, "axes",
     "resolution/units only"),
    ("neuroglancer_n5_coordinateArrays__ng_docs.json", "", GroupMetadata, False, "scales",
     "an array's attributes, no multiscale keys"),
    ("neuroglancer_n5_downsamplingFactors_array__ng_docs.json", "", ArrayMetadata, False,
     "pixelResolution", "no pixelResolution"),
    ("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", "", ArrayMetadata,
     True, None, "array attributes merged with group keys: pixelResolution is there"),
    ("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", "", GroupMetadata,
     False, "axes", "no axes/units; scales are floats and not 1s first"),
    ("irregular_n5_array_transform__ordering__cellmap-n5-to-zarr_test.json", "", ArrayMetadata,
     False, "pixelResolution", "transform only"),
    ("cosem_n5_array_s0__cosem-flows2021_emulated.json", "", ArrayMetadata, False,
     "pixelResolution", "cosem-flows 2021 wrote no pixelResolution in arrays"),
    ("verbatim__fibsem-metadata_source_jrc_hela-2_mito_seg.json", "", GroupMetadata, False,
     "pixelResolution", "fibsem-metadata source, not N5 attributes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "key", "model", "valid", "loc", "why"),
    WILD_CASES,
    ids=[f"{c[0][:40]}:{c[1]}:{c[2].__name__}" for c in WILD_CASES],
)
def test_wild_documents(
    name: str, key: str, model: Any, valid: bool, loc: str | None, why: str
) -> None:
    doc = json.loads((WILD / name).read_text())
    if key:
        doc = doc[key]
    raw = json.dumps(doc).encode()
    if valid:
        model.model_validate_json(raw)
        return
    with pytest.raises(ValidationError) as exc:
        model.model_validate_json(raw)
    assert loc in problems(exc), (why, exc.value.problems)


def test_wild_group_tree_from_the_original() -> None:
    # The original's neuroglancer Group.from_arrays output, as a full spec, validates here.
    dump = json.loads((WILD / "cellmap-schemas_neuroglancer_n5_Group_model_dump.json").read_text())
    members = {
        name: array_doc(dump[f"{name}_attributes"]["pixelResolution"]["dimensions"], [8, 8, 8])
        for name in ("s0", "s1")
    }
    for name, m in members.items():
        m["attributes"] = copy.deepcopy(dump[f"{name}_attributes"])
    g = Group.model_validate({"attributes": dump["group_attributes"], "members": members})
    assert g.attributes.scales == ((1, 1, 1), (2, 2, 2))
