"""COSEM multiscale models: every rule passing and failing, construction helpers, coordinate
changes, round trips, and the documents in the wild judged as the original judges them."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.errors import ValidationError
from cellmap_schemas.multiscale import neuroglancer_n5
from cellmap_schemas.multiscale.cosem import (
    Array,
    ArrayMetadata,
    Group,
    GroupMetadata,
    MultiscaleMetadata,
    PixelResolution,
    ScaleMetadata,
    STTransform,
    change_coordinates,
    new_groupmetadata,
    new_multiscalemetadata,
    new_sttransform,
)

DATA = Path(__file__).parent.parent / "data"
WILD = DATA / "wild"
MODELS = DATA / "models"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def group_doc() -> dict[str, Any]:
    """A valid full group spec: the cosem-flows group attributes plus six member arrays."""
    return load(MODELS / "cosem_group_spec.json")


def tx_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "axes": ["z", "y", "x"],
        "units": ["nm", "nm", "nm"],
        "translate": [0.0, 0.0, 0.0],
        "scale": [5.24, 4.0, 4.0],
    }
    doc.update(changes)
    return doc


def array_attrs(tx: dict[str, Any] | None = None, dims: list[float] | None = None) -> dict:
    return {
        "pixelResolution": {"dimensions": dims or [4.0, 4.0, 5.24], "unit": "nm"},
        "transform": tx or tx_doc(),
    }


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return dict(exc.value.problems)


def invalid(model: Any, doc: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate_json(json.dumps(doc))
    return problems(exc)


# ---- public names ------------------------------------------------------------------------------
ORIGINAL_NAMES = {
    "multiscale.cosem": [
        "STTransform", "ArrayMetadata", "ScaleMetadata", "MultiscaleMetadata", "GroupMetadata",
        "Array", "Group", "new_sttransform", "new_multiscalemetadata", "new_groupmetadata",
        "change_coordinates", "PixelResolution", "neuroglancer_n5", "normalize_chunks",
        "ArraySpec", "GroupSpec",
    ],
    "multiscale.neuroglancer_n5": [
        "PixelResolution", "ArrayMetadata", "Array", "GroupMetadata", "Group", "N5GroupSpec",
        "normalize_chunks",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(ORIGINAL_NAMES))
def test_original_public_names_importable(module: str) -> None:
    mod = importlib.import_module(f"cellmap_schemas.{module}")
    missing = [n for n in ORIGINAL_NAMES[module] if not hasattr(mod, n)]
    assert missing == []


# ---- STTransform -------------------------------------------------------------------------------
def test_sttransform_valid_and_order_default() -> None:
    t = STTransform.model_validate(tx_doc())
    assert t.order == "C"
    assert STTransform.model_validate(tx_doc(order=None)).order is None
    assert STTransform.model_validate(tx_doc(order="F")).order == "F"
    # field order of a dump, as the original
    assert list(t.model_dump()) == ["order", "axes", "units", "translate", "scale"]


@pytest.mark.parametrize("field", ["units", "translate", "scale"])
def test_sttransform_lengths(field: str) -> None:
    doc = tx_doc()
    doc[field] = doc[field][:2]
    found = invalid(STTransform, doc)
    assert found == {field: "has 2 entries but axes has 3"}


def test_sttransform_all_lengths_reported_and_order_literal() -> None:
    found = invalid(STTransform, tx_doc(axes=["x"], order="G"))
    assert "order" in found
    found = invalid(STTransform, tx_doc(axes=["x"]))
    assert set(found) == {"units", "translate", "scale"}


# ---- ArrayMetadata -----------------------------------------------------------------------------
def test_array_metadata_valid_c_f_and_null_order() -> None:
    ArrayMetadata.model_validate(array_attrs())
    # "F": pixelResolution.dimensions == transform.scale
    f_tx = tx_doc(order="F", axes=["x", "y", "z"], scale=[4.0, 4.0, 5.24])
    ArrayMetadata.model_validate(array_attrs(f_tx))
    # null order counts as "not C": dimensions == scale, as in the original
    n_tx = tx_doc(order=None, scale=[4.0, 4.0, 5.24])
    ArrayMetadata.model_validate(array_attrs(n_tx))


def test_array_metadata_units_rule() -> None:
    found = invalid(ArrayMetadata, array_attrs(tx_doc(units=["nm", "um", "um"])))
    assert set(found) == {"transform.units[1]", "transform.units[2]"}
    assert "'um' differs from pixelResolution.unit 'nm'" in found["transform.units[1]"]


def test_array_metadata_c_order_needs_reversed_scale() -> None:
    found = invalid(ArrayMetadata, array_attrs(dims=[5.24, 4.0, 4.0]))
    assert "reversed" in found["pixelResolution.dimensions"]


def test_array_metadata_f_order_needs_equal_scale() -> None:
    f_tx = tx_doc(order="F", axes=["x", "y", "z"], scale=[4.0, 4.0, 5.24])
    found = invalid(ArrayMetadata, array_attrs(f_tx, dims=[5.24, 4.0, 4.0]))
    assert "transform.order is 'F'" in found["pixelResolution.dimensions"]


def test_array_metadata_null_order_compares_unreversed() -> None:
    found = invalid(ArrayMetadata, array_attrs(tx_doc(order=None)))
    assert "differs from transform.scale" in found["pixelResolution.dimensions"]


def test_array_metadata_compares_floats_exactly() -> None:
    # 7.860000000000001 is not 7.86: the original compared exactly, and so do we.
    found = invalid(
        ArrayMetadata, array_attrs(tx_doc(scale=[7.86, 4.0, 4.0]), [4.0, 4.0, 7.86 + 1e-15])
    )
    assert "pixelResolution.dimensions" in found


@pytest.mark.parametrize(
    ("order", "dims", "unit"),
    [("C", (4.0, 4.0, 5.24), "nm"), ("F", (5.24, 4.0, 4.0), "nm")],
)
def test_array_metadata_from_transform(order: str, dims: tuple[float, ...], unit: str) -> None:
    tx = STTransform(order=order, axes=("z", "y", "x"), units=("nm",) * 3, translate=(0.0,) * 3,
                     scale=(5.24, 4.0, 4.0))  # fmt: skip
    meta = ArrayMetadata.from_transform(tx)
    assert meta.pixelResolution == PixelResolution(dimensions=dims, unit=unit)


# ---- ScaleMetadata / MultiscaleMetadata / GroupMetadata ---------------------------------------
def test_scale_and_multiscale_metadata() -> None:
    ms = MultiscaleMetadata.model_validate({"datasets": [{"path": "s0", "transform": tx_doc()}]})
    assert ms.name is None
    assert ms.datasets[0] == ScaleMetadata(path="s0", transform=STTransform(**{
        k: tuple(v) for k, v in tx_doc().items()}))  # fmt: skip
    assert list(ms.model_dump()) == ["name", "datasets"]
    assert list(ms.datasets[0].model_dump()) == ["transform", "path"]
    assert invalid(MultiscaleMetadata, {"name": "x"}) == {"datasets": "field required"}
    assert "path" in invalid(ScaleMetadata, {"transform": tx_doc()})


def test_group_metadata_valid_real_document() -> None:
    raw = (MODELS / "cosem_group_attributes.json").read_bytes()
    g = GroupMetadata.model_validate_json(raw)
    assert len(g.multiscales[0].datasets) == 6
    assert g.multiscales[0].datasets[2].transform.translate[0] == 7.860000000000001
    assert list(g.model_dump()) == ["axes", "units", "scales", "pixelResolution", "multiscales"]


@pytest.mark.parametrize(("n", "fragment"), [(0, "length >= 1"), (2, "length <= 1")])
def test_group_metadata_exactly_one_multiscale(n: int, fragment: str) -> None:
    doc = load(MODELS / "cosem_group_attributes.json")
    doc["multiscales"] = doc["multiscales"] * 2 if n == 2 else []
    found = invalid(GroupMetadata, doc)
    assert fragment in found["multiscales"]


def test_group_metadata_neuroglancer_rules_apply() -> None:
    doc = load(MODELS / "cosem_group_attributes.json")
    doc["units"] = ["nm", "nm", "um"]
    doc["scales"][0] = [1, 2, 1]
    found = invalid(GroupMetadata, doc)
    assert "differs" in found["units[2]"]
    assert "all 1s" in found["scales[0]"]


def test_group_metadata_from_transforms() -> None:
    txs = {
        f"s{i}": STTransform(axes=("z", "y", "x"), units=("nm",) * 3, translate=(0.0,) * 3,
                             scale=(5.24 * 2**i, 4.0 * 2**i, 4.0 * 2**i))
        for i in range(3)
    }  # fmt: skip
    g = GroupMetadata.from_transforms(txs, name="raw")
    assert g.axes == ("x", "y", "z")
    assert g.scales == ((1, 1, 1), (2, 2, 2), (4, 4, 4))
    assert g.pixelResolution.dimensions == (4.0, 4.0, 5.24)
    assert g.multiscales[0].name == "raw"
    assert [d.path for d in g.multiscales[0].datasets] == ["s0", "s1", "s2"]
    with pytest.raises(ValueError, match="empty"):
        GroupMetadata.from_transforms({})


# ---- Array ------------------------------------------------------------------------------------
def test_array_valid_and_shape_rule() -> None:
    doc = group_doc()["members"]["s0"]
    assert Array.model_validate(doc).shape == (6368, 1600, 12000)
    doc["shape"] = [10, 10]
    doc["chunks"] = [5, 5]
    found = invalid(Array, doc)
    assert found == {"shape": "has 2 entries but attributes.transform.axes has 3"}


def test_array_chunks_rule_inherited() -> None:
    doc = group_doc()["members"]["s0"]
    doc["chunks"] = [64, 64]
    assert "shape has 3" in invalid(Array, doc)["chunks"]


# ---- Group ------------------------------------------------------------------------------------
def test_group_valid_spec() -> None:
    g = Group.model_validate_json((MODELS / "cosem_group_spec.json").read_bytes())
    assert list(g.members) == [f"s{i}" for i in range(6)]
    assert list(g._problems()) == []


def test_group_missing_level_and_dataset() -> None:
    doc = group_doc()
    del doc["members"]["s5"]
    found = invalid(Group, doc)
    assert "missing" in found["members.s5"]
    assert "'s5', which is not a member" in found["attributes.multiscales[0].datasets[5].path"]


def test_group_dataset_path_must_name_a_member() -> None:
    doc = group_doc()
    doc["attributes"]["multiscales"][0]["datasets"][1]["path"] = "nope"
    found = invalid(Group, doc)
    assert found == {
        "attributes.multiscales[0].datasets[1].path": "names 'nope', which is not a member of "
        "this group"
    }


def test_group_transforms_must_match_each_failing_member() -> None:
    doc = group_doc()
    doc["members"]["s2"]["attributes"]["transform"]["translate"] = [7.86, 6.0, 6.0]
    doc["members"]["s4"]["attributes"]["transform"]["translate"] = [0.0, 0.0, 0.0]
    found = invalid(Group, doc)
    assert set(found) == {"members.s2.attributes.transform", "members.s4.attributes.transform"}
    msg = found["members.s2.attributes.transform"]
    assert "differs from attributes.multiscales[0].datasets[2].transform" in msg
    assert "7.860000000000001" in msg


def test_group_axes_must_be_reversed_for_c_order() -> None:
    doc = group_doc()
    doc["attributes"]["axes"] = ["z", "y", "x"]
    found = invalid(Group, doc)
    assert set(found) == {
        f"attributes.multiscales[0].datasets[{i}].transform.axes" for i in range(6)
    }
    assert "reversed" in found["attributes.multiscales[0].datasets[0].transform.axes"]


def f_ordered_group() -> Group:
    data = np.zeros((8, 6, 4), dtype="uint8")
    return Group.from_arrays(
        arrays=[data, data[::2, ::2, ::2]],
        paths=["s0", "s1"],
        scales=[(1.0, 2.0, 3.0), (2.0, 4.0, 6.0)],
        axes=("x", "y", "z"),
        units=("nm",) * 3,
        dimension_order="F",
    )


def test_group_f_order_axes_equal_group_axes() -> None:
    g = f_ordered_group()
    assert g.attributes.axes == ("x", "y", "z")
    assert g.members["s0"].attributes.transform.order == "F"
    doc = g.model_dump()
    doc["attributes"]["axes"] = ("z", "y", "x")
    found = invalid(Group, doc)
    assert 'transform.order is "F"' in found["attributes.multiscales[0].datasets[0].transform.axes"]


def test_group_members_must_be_cosem_arrays() -> None:
    doc = group_doc()
    doc["members"]["extra"] = {"zarr_version": 2, "attributes": {}, "members": {}}
    doc["members"]["s1"]["attributes"].pop("transform")
    found = invalid(Group, doc)
    assert found["members.extra.shape"] == "field required"
    assert found["members.s1.attributes.transform"] == "field required"


def test_group_construction_with_a_non_cosem_member() -> None:
    g = Group.model_validate(group_doc())
    ng_array = neuroglancer_n5.Array(
        attributes=neuroglancer_n5.ArrayMetadata(
            pixelResolution=PixelResolution(dimensions=(1.0, 1.0, 1.0), unit="nm")
        ),
        shape=(1, 1, 1),
        chunks=(1, 1, 1),
        dtype="|u1",
    )
    with pytest.raises(ValueError, match=r"not a COSEM array.*datasets\[3\]\.path"):
        Group(attributes=g.attributes, members={**g.members, "s3": ng_array})


def test_group_reports_problems_of_members_and_group_together() -> None:
    doc = group_doc()
    doc["members"]["s1"]["attributes"]["transform"]["units"] = ["um", "nm", "nm"]
    doc["members"]["s3"]["shape"] = [1, 1]
    found = invalid(Group, doc)
    assert "differs from pixelResolution.unit" in found["members.s1.attributes.transform.units[0]"]
    assert "axes has 3" in found["members.s3.shape"]
    assert "members.s1.attributes.transform" in found  # no longer equals datasets[1].transform


# ---- from_arrays and coordinate changes --------------------------------------------------------
def test_from_arrays_with_transforms() -> None:
    data = np.zeros((4, 8, 8), dtype="uint16")
    txs = [
        STTransform(axes=("z", "y", "x"), units=("nm",) * 3, translate=(0.0,) * 3,
                    scale=(5.24, 4.0, 4.0)),
        STTransform(axes=("z", "y", "x"), units=("nm",) * 3, translate=(2.62, 2.0, 2.0),
                    scale=(10.48, 8.0, 8.0)),
    ]  # fmt: skip
    g = Group.from_arrays(
        arrays=[data, data[::2, ::2, ::2]],
        paths=["s0", "s1"],
        transforms=txs,
        name="em",
        chunks=((2, 4, 4), (2, 2, 2)),
        compressor={"id": "zstd", "level": 3},
    )
    assert g.attributes.multiscales[0].name == "em"
    assert g.attributes.pixelResolution.dimensions == (4.0, 4.0, 5.24)
    assert g.members["s1"].chunks == (2, 2, 2)
    assert g.members["s1"].attributes.transform == txs[1]
    assert g.members["s0"].compressor == {"id": "zstd", "level": 3}
    assert g.members["s0"].dimension_separator == "/"


def test_from_arrays_with_scales_and_default_translation() -> None:
    data = np.zeros((4, 4), dtype="float32")
    g = Group.from_arrays(
        arrays=[data, data[::2, ::2]],
        paths=["s0", "s1"],
        scales=[(2, 3), (4, 6)],
        axes=("y", "x"),
        units=("um", "um"),
    )
    assert g.members["s1"].attributes.transform.translate == (0.0, 0.0)
    assert g.members["s1"].attributes.transform.scale == (4.0, 6.0)
    assert g.attributes.axes == ("x", "y")
    with pytest.raises(ValueError, match="either transforms"):
        Group.from_arrays(arrays=[data], paths=["s0"], scales=[(1, 1)])


def test_new_sttransform_and_friends() -> None:
    tx = STTransform(axes=("z", "y", "x"), units=("nm",) * 3, translate=(0.0,) * 3,
                     scale=(1.0, 2.0, 3.0))  # fmt: skip
    new = new_sttransform(tx, scale=[2, 4, 6], units=("um",) * 3)
    assert new.scale == (2.0, 4.0, 6.0) and new.units == ("um",) * 3 and new.axes == tx.axes
    assert new_sttransform(tx) == tx
    g = Group.model_validate(group_doc())
    ms = new_multiscalemetadata(g.attributes.multiscales[0], translate=(1.0, 1.0, 1.0))
    assert all(d.transform.translate == (1.0, 1.0, 1.0) for d in ms.datasets)
    gm = new_groupmetadata(g.attributes, units=("um",) * 3, scale=(5.0, 4.0, 3.0))
    assert gm.units == ("um",) * 3
    assert gm.pixelResolution == PixelResolution(dimensions=(3.0, 4.0, 5.0), unit="um")


def test_change_coordinates_scales_every_level() -> None:
    g = Group.model_validate(group_doc())
    new = change_coordinates(g, scale=(10.0, 8.0, 8.0), translate=(1.0, 2.0, 3.0))
    s0 = new.members["s0"].attributes.transform
    s1 = new.members["s1"].attributes.transform
    assert s0.scale == (10.0, 8.0, 8.0) and s0.translate == (1.0, 2.0, 3.0)
    assert s1.scale == pytest.approx((20.96 * 10 / 5.24 / 2, 16.0, 16.0))
    assert s1.translate == pytest.approx((2.62 + 1.0, 4.0, 5.0))
    assert new.attributes.pixelResolution.dimensions == (8.0, 8.0, 10.0)
    assert new.attributes.scales == g.attributes.scales
    assert list(new._problems()) == []


def test_change_coordinates_axes_and_units() -> None:
    g = Group.model_validate(group_doc())
    new = change_coordinates(g, axes=("c", "b", "a"), units=("um",) * 3)
    assert new.attributes.axes == ("a", "b", "c")
    assert new.attributes.pixelResolution.unit == "um"
    assert new.members["s5"].attributes.transform.axes == ("c", "b", "a")


# ---- round trips -------------------------------------------------------------------------------
def test_round_trip_every_model() -> None:
    g = Group.model_validate(group_doc())
    models = [
        g,
        g.attributes,
        g.attributes.multiscales[0],
        g.attributes.multiscales[0].datasets[0],
        g.members["s0"],
        g.members["s0"].attributes,
        g.members["s0"].attributes.transform,
        g.members["s0"].attributes.pixelResolution,
    ]
    for m in models:
        cls = type(m)
        assert cls.model_validate_json(m.model_dump_json()) == m
        assert cls.model_validate(m.model_dump()) == m


finite = st.floats(0.01, 1000, allow_nan=False, allow_infinity=False)


@st.composite
def groups(draw: st.DrawFn) -> Group:
    ndim = draw(st.integers(1, 4))
    levels = draw(st.integers(1, 5))
    base_shape = draw(st.lists(st.integers(1, 64), min_size=ndim, max_size=ndim))
    spacing = draw(st.lists(finite, min_size=ndim, max_size=ndim))
    offset = draw(st.lists(st.floats(-1e4, 1e4), min_size=ndim, max_size=ndim))
    order = draw(st.sampled_from(["C", "F"]))
    unit = draw(st.sampled_from(["nm", "um"]))
    arrays = [
        np.broadcast_to(np.zeros((), dtype="uint8"), [max(1, s >> i) for s in base_shape])
        for i in range(levels)
    ]
    return Group.from_arrays(
        arrays=arrays,
        paths=[f"s{i}" for i in range(levels)],
        scales=[[x * 2**i for x in spacing] for i in range(levels)],
        translates=[
            [o + (2**i - 1) * x / 2 for o, x in zip(offset, spacing, strict=True)]
            for i in range(levels)
        ],
        axes=list("zyxtc"[:ndim]),
        units=[unit] * ndim,
        dimension_order=order,
        name=draw(st.none() | st.text(max_size=8)),
    )


@settings(max_examples=40, deadline=None)
@given(groups())
def test_round_trip_generated_groups(g: Group) -> None:
    assert list(g._problems()) == []
    assert Group.model_validate_json(g.model_dump_json()) == g
    assert GroupMetadata.model_validate_json(g.attributes.model_dump_json()) == g.attributes
    for m in g.members.values():
        assert ArrayMetadata.model_validate_json(m.attributes.model_dump_json()) == m.attributes


# ---- the documents in the wild, judged as the original judges them ------------------------------
# Verdicts from running cellmap-schemas 0.8.1 (pydantic) on each document once, by hand; we agree
# on every one. "loc" is one of the locations we report for an invalid document.
WILD_CASES = [
    # (file, key inside the file or "", model, valid, loc, why)
    ("cosem_n5_multiscale_group__cosem-flows2021_emulated.json", "", GroupMetadata, True, None,
     "the COSEM layout; transforms without order mean C"),
    ("cosem_n5_multiscale_group__cosem-flows2021_emulated.json", "", ArrayMetadata, False,
     "transform", "group attributes, not an array's"),
    ("cosem_n5_array_s0__cosem-flows2021_emulated.json", "", ArrayMetadata, False,
     "pixelResolution", "cosem-flows 2021 wrote no pixelResolution in array attributes"),
    ("cosem_n5_array_s2__cosem-flows2021_emulated.json", "", ArrayMetadata, False,
     "pixelResolution", "same, with float noise in translate"),
    ("cellmap-schemas_cosem_Group_model_dump.json", "group_attributes", GroupMetadata, True, None,
     "written by the original's from_arrays"),
    ("cellmap-schemas_cosem_Group_model_dump.json", "s0_attributes", ArrayMetadata, True, None,
     "written by the original's from_arrays"),
    ("cellmap-schemas_cosem_Group_model_dump.json", "s0_attributes", GroupMetadata, False, "axes",
     "array attributes"),
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", "group_attributes", GroupMetadata,
     False, "multiscales", "Neuroglancer-only group: no multiscales"),
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", "s0_attributes", ArrayMetadata,
     False, "transform", "Neuroglancer-only array: no transform"),
    ("reconstructed__jrc_hela-2_n5_em_fibsem-uint16_s0_attributes.json", "", ArrayMetadata, True,
     None, "the s0 the original's docs show passing `check`"),
    ("irregular_n5_array_transform__ordering__cellmap-n5-to-zarr_test.json", "", ArrayMetadata,
     False, "pixelResolution", "transform with `ordering` and no pixelResolution"),
    ("irregular_n5_group__render-style_ordering_translate__cellmap-n5-to-zarr_test.json", "",
     GroupMetadata, False, "multiscales", "render-style group: no multiscales"),
    ("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", "", ArrayMetadata,
     True, None, "merged group/array keys; pixelResolution equals reversed transform.scale"),
    ("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", "", GroupMetadata,
     False, "axes", "no axes/units/multiscales"),
    ("neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json", "attributes.json",
     GroupMetadata, False, "multiscales", "Neuroglancer test data: resolution, no multiscales"),
    ("neuroglancer_n5_viewer_style__jbms_issue176.json", "", ArrayMetadata, False, "transform",
     "pixelResolution only"),
    ("verbatim__fibsem-metadata_source_jrc_hela-2_mito_seg.json", "", ArrayMetadata, False,
     "pixelResolution", "a fibsem-metadata source: transform only"),
    ("verbatim__fibsem-metadata_source_jrc_hela-2_fibsem-uint8_precomputed.json", "",
     ArrayMetadata, False, "pixelResolution", "precomputed source, negative y scale"),
    ("verbatim__fibsem-metadata_source_jrc_mus-liver_mito_seg_trailing_slash_int_translate.json",
     "", ArrayMetadata, False, "pixelResolution", "int translate is fine; no pixelResolution"),
    ("verbatim__fibsem-metadata_index_2021_jrc_hela-2_first_volume.json", "", GroupMetadata, False,
     "multiscales", "an index entry, not N5 attributes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "key", "model", "valid", "loc", "why"),
    WILD_CASES,
    ids=[f"{c[0][:40]}:{c[1]}:{c[2].__name__}" for c in WILD_CASES],
)
def test_wild_documents(
    name: str, key: str, model: Any, valid: bool, loc: str | None, why: str
) -> None:
    doc = load(WILD / name)
    if key:
        doc = doc[key]
    raw = json.dumps(doc).encode()
    if valid:
        model.model_validate_json(raw)
        return
    with pytest.raises(ValidationError) as exc:
        model.model_validate_json(raw)
    assert loc in problems(exc), (why, exc.value.problems)


def test_wild_transforms_of_fibsem_metadata_are_valid_sttransforms() -> None:
    # The transform blocks of the fibsem-metadata sources are COSEM STTransforms (order C).
    for name in (
        "verbatim__fibsem-metadata_source_jrc_hela-2_mito_seg.json",
        "verbatim__fibsem-metadata_source_jrc_mus-liver_mito_seg_trailing_slash_int_translate.json",
        "verbatim__fibsem-metadata_index_2021_jrc_hela-2_first_volume.json",
    ):
        tx = STTransform.model_validate(load(WILD / name)["transform"])
        assert tx.order == "C" and len(tx.axes) == 3


def test_wild_cosem_flows_group_as_full_spec() -> None:
    # The s2 transform in the wild has float noise (7.860000000000001); arrays written by the same
    # tool carry the same bytes, so the exact comparison holds.
    s2 = load(WILD / "cosem_n5_array_s2__cosem-flows2021_emulated.json")
    group = load(WILD / "cosem_n5_multiscale_group__cosem-flows2021_emulated.json")
    assert group["multiscales"][0]["datasets"][2]["transform"] == s2["transform"]
    doc = group_doc()
    doc["members"]["s2"]["attributes"]["transform"] = copy.deepcopy(s2["transform"])
    Group.model_validate(doc)
