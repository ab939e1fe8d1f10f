"""OME-NGFF 0.4 / 0.5 models: one passing and one failing document per rule of the spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.base import judge
from cellmap_schemas.errors import ValidationError
from cellmap_schemas.multiscale.ome_ngff import v04, v05
from cellmap_schemas.multiscale.ome_ngff._common import is_integer_dtype, multiscale_ok
from cellmap_schemas.registry import MODELS, get_model, looks_like, signature
from cellmap_schemas.rules import Problem, severity_of
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3

DATA = Path(__file__).parent.parent / "data"
SPEC = DATA / "ome_ngff"
WILD = DATA / "wild"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# ---- builders ----------------------------------------------------------------------------------
def axes3() -> list[dict[str, Any]]:
    return [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"]


def multiscale(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "0.4",
        "name": "raw",
        "axes": axes3(),
        "datasets": [
            {
                "path": "s0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [4.0, 4.0, 4.0]},
                    {"type": "translation", "translation": [0.0, 0.0, 0.0]},
                ],
            },
            {
                "path": "s1",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [8.0, 8.0, 8.0]},
                    {"type": "translation", "translation": [2.0, 2.0, 2.0]},
                ],
            },
        ],
    }
    doc.update(over)
    return doc


def attrs(**over: Any) -> dict[str, Any]:
    return {"multiscales": [multiscale(**over)]}


def problems(tp: Any, doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        tp.model_validate(doc)
    return list(info.value.problems)


def assert_problem(tp: Any, doc: Any, loc: str, *words: str) -> None:
    found = problems(tp, doc)
    assert any(p_loc == loc and all(w in msg for w in words) for p_loc, msg in found), found


def warnings_of(tp: Any, doc: Any) -> list[Problem]:
    """The warnings of a document that validates (a SHOULD broken, nothing more)."""
    value, found = judge(doc, tp)
    assert value is not None, found
    return [p for p in found if severity_of(p.rule) == "warning"]


def assert_warning(tp: Any, doc: Any, rule: str, loc: str, *words: str) -> None:
    found = warnings_of(tp, doc)
    assert any(p.rule == rule and p.loc == loc and all(w in p.msg for w in words) for p in found), (
        found
    )


def axis(name: str, type_: str | None = "space", unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if type_ is not None:
        out["type"] = type_
    if unit is not None:
        out["unit"] = unit
    return out


def with_axes(axes: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid-shaped multiscale whose transforms have one entry per axis."""
    n = len(axes)
    return attrs(
        axes=axes,
        datasets=[
            {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * n}]}
        ],
    )


A = v04.GroupAttrs
LOC_AXES = "multiscales[0].axes"


# ---- axes --------------------------------------------------------------------------------------
def test_axes_between_2_and_5() -> None:
    A.model_validate(with_axes([axis("y"), axis("x")]))
    five = [axis("t", "time"), axis("c", "channel"), axis("z"), axis("y"), axis("x")]
    assert len(A.model_validate(with_axes(five)).multiscales[0].axes) == 5
    six = [axis("t", "time"), axis("c", "channel"), axis("q", "foo")] + [axis(n) for n in "zyx"]
    assert_problem(A, with_axes(six), LOC_AXES, "has 6 entries", "between 2 and 5")
    assert_problem(A, with_axes([axis("x")]), LOC_AXES, "has 1 entries", "between 2 and 5")


def test_axis_names_unique() -> None:
    assert_problem(
        A,
        with_axes([axis("x"), axis("x")]),
        f"{LOC_AXES}[1].name",
        "'x' is used by 2 axes",
        "MUST be unique",
    )


def test_two_or_three_space_axes() -> None:
    A.model_validate(with_axes([axis(n) for n in "zyx"]))
    assert_problem(
        A, with_axes([axis("t", "time"), axis("x")]), LOC_AXES, "1 axes of type 'space'", "2 or 3"
    )
    assert_problem(
        A, with_axes([axis(n) for n in "wzyx"]), LOC_AXES, "4 axes of type 'space'", "2 or 3"
    )


def test_at_most_one_time_axis() -> None:
    A.model_validate(with_axes([axis("t", "time"), axis("y"), axis("x")]))
    doc = with_axes([axis("t", "time"), axis("u", "time"), axis("y"), axis("x")])
    assert_problem(A, doc, LOC_AXES, "2 axes of type 'time'", '"type:time"')


def test_at_most_one_channel_axis() -> None:
    A.model_validate(with_axes([axis("c", "channel"), axis("y"), axis("x")]))
    doc = with_axes([axis("c", "channel"), axis("d", "channel"), axis("y"), axis("x")])
    assert_problem(A, doc, LOC_AXES, "2 axes of type 'channel'", '"type:channel"')


def test_custom_and_untyped_axes() -> None:
    # A custom type and an untyped axis are allowed, one at a time.
    A.model_validate(with_axes([axis("q", "angle"), axis("y"), axis("x")]))
    A.model_validate(with_axes([axis("q", None), axis("y"), axis("x")]))
    doc = with_axes([axis("q", "angle"), axis("r", None), axis("y"), axis("x")])
    assert_problem(A, doc, LOC_AXES, "2 axes of null or custom type", "null / custom type")


def test_axis_type_order() -> None:
    ok = [axis("t", "time"), axis("c", "channel"), axis("z"), axis("y"), axis("x")]
    A.model_validate(with_axes(ok))
    space_first = [axis("y"), axis("x"), axis("c", "channel")]
    assert_problem(
        A, with_axes(space_first), LOC_AXES, "['space', 'space', 'channel']", '"time" axis must'
    )
    time_late = [axis("c", "channel"), axis("t", "time"), axis("y"), axis("x")]
    assert_problem(A, with_axes(time_late), LOC_AXES, "'channel', 'time'", "must come first")


def test_space_units() -> None:
    # Units SHOULD be from the specification's list: a warning (OME008), never an error.
    good = with_axes([axis("y", unit="micrometer"), axis("x", unit="angstrom")])
    assert warnings_of(A, good) == []
    doc = with_axes([axis("y", unit="nm"), axis("x", unit="nanometer")])
    A.model_validate(doc)
    assert_warning(
        A, doc, "OME008", f"{LOC_AXES}[0].unit", "'nm' is not a space unit", '"nanometer"?',
        "UDUNITS-2",
    )  # fmt: skip
    # A time unit on a space axis is no space unit.
    doc = with_axes([axis("y", unit="second"), axis("x")])
    assert_warning(A, doc, "OME008", f"{LOC_AXES}[0].unit", "'second' is not a space unit")


def test_time_units() -> None:
    good = with_axes([axis("t", "time", "millisecond"), axis("y"), axis("x")])
    assert warnings_of(A, good) == []
    doc = with_axes([axis("t", "time", "ms"), axis("y"), axis("x")])
    A.model_validate(doc)
    assert_warning(
        A, doc, "OME009", f"{LOC_AXES}[0].unit", "'ms' is not a time unit", '"millisecond"?',
        "time",
    )  # fmt: skip


def test_units_of_other_axes_are_free() -> None:
    doc = with_axes([axis("c", "channel", "wavelength"), axis("y"), axis("x")])
    assert A.model_validate(doc).multiscales[0].axes[0].unit == "wavelength"


def test_axis_name_required() -> None:
    assert_problem(A, with_axes([{"type": "space"}, axis("x")]), f"{LOC_AXES}[0].name", "required")


# ---- coordinate transformations ----------------------------------------------------------------
LOC_T0 = "multiscales[0].datasets[0].coordinateTransformations"


def with_transforms(ts: list[dict[str, Any]]) -> dict[str, Any]:
    return attrs(datasets=[{"path": "s0", "coordinateTransformations": ts}])


S = {"type": "scale", "scale": [1.0, 1.0, 1.0]}
T = {"type": "translation", "translation": [0.0, 0.0, 0.0]}


def test_exactly_one_scale() -> None:
    A.model_validate(with_transforms([S]))
    assert_problem(A, with_transforms([T]), LOC_T0, "0 scale", "exactly one scale")
    assert_problem(A, with_transforms([S, S]), LOC_T0, "2 scale", "exactly one scale")
    assert_problem(A, with_transforms([]), LOC_T0, "0 scale")


def test_at_most_one_translation() -> None:
    A.model_validate(with_transforms([S, T]))
    assert_problem(
        A, with_transforms([S, T, T]), LOC_T0, "2 translation", "exactly one translation"
    )


def test_translation_after_scale() -> None:
    assert_problem(
        A, with_transforms([T, S]), LOC_T0, "translation before scale", "listed after scale"
    )


def test_only_scale_and_translation() -> None:
    assert_problem(
        A,
        with_transforms([S, {"type": "identity"}]),
        f"{LOC_T0}[1]",
        "'identity'",
        "only be of type translation or scale",
    )
    found = problems(A, with_transforms([{"type": "affine", "affine": [1]}]))
    assert any(loc.startswith(LOC_T0) and "affine" in msg for loc, msg in found), found


def test_scale_required_in_scale_transform() -> None:
    assert_problem(A, with_transforms([{"type": "scale"}]), f"{LOC_T0}[0].scale", "required")


def test_transform_lengths_equal_axes() -> None:
    short_scale = {"type": "scale", "scale": [1.0, 1.0]}
    assert_problem(
        A,
        with_transforms([short_scale]),
        f"{LOC_T0}[0].scale",
        "has 2 entries but there are 3 axes",
        "same as the length of",
    )
    short = {"type": "translation", "translation": [0.0, 0.0]}
    assert_problem(
        A, with_transforms([S, short]), f"{LOC_T0}[1].translation", "has 2 entries", "scale has 3"
    )


def test_dataset_alone_checks_its_transforms() -> None:
    ok = v04.Dataset.model_validate({"path": "0", "coordinateTransformations": [S, T]})
    assert ok.scale == (1.0, 1.0, 1.0)
    assert ok.translation == (0.0, 0.0, 0.0)
    assert_problem(
        v04.Dataset,
        {"path": "0", "coordinateTransformations": [T]},
        "coordinateTransformations",
        "exactly one scale",
    )
    assert_problem(v04.Dataset, {"coordinateTransformations": [S]}, "path", "required")


def test_multiscale_transformations_follow_the_same_rules() -> None:
    doc = attrs(coordinateTransformations=[S, T])
    assert A.model_validate(doc).multiscales[0].coordinateTransformations is not None
    loc = "multiscales[0].coordinateTransformations"
    assert_problem(A, attrs(coordinateTransformations=[T]), loc, "exactly one scale")
    assert_problem(A, attrs(coordinateTransformations=[T, S]), loc, "listed after scale")
    two = {"type": "scale", "scale": [1.0, 1.0]}
    assert_problem(A, attrs(coordinateTransformations=[two]), f"{loc}[0].scale", "3 axes")


# ---- datasets and multiscales ------------------------------------------------------------------
def test_datasets_required_and_not_empty() -> None:
    assert_problem(A, attrs(datasets=[]), "multiscales[0].datasets", "is empty", '"datasets"')
    doc = attrs()
    del doc["multiscales"][0]["datasets"]
    assert_problem(A, doc, "multiscales[0].datasets", "required")


def test_datasets_ordered_from_highest_resolution() -> None:
    doc = attrs()
    doc["multiscales"][0]["datasets"].reverse()
    assert_problem(A, doc, "multiscales[0].datasets[1]", "finer scale", "ordered from largest")


def test_axes_required() -> None:
    doc = attrs()
    del doc["multiscales"][0]["axes"]
    assert_problem(A, doc, "multiscales[0].axes", "required")


def test_version() -> None:
    assert A.model_validate(attrs()).multiscales[0].version == "0.4"
    doc = attrs()
    del doc["multiscales"][0]["version"]
    assert A.model_validate(doc).multiscales[0].version is None  # SHOULD, not MUST
    assert_problem(A, attrs(version="0.5"), "multiscales[0].version", "'0.5'", "0.4")


def test_name_type_metadata_optional_and_nullable() -> None:
    m = A.model_validate(attrs(name=None, type=None, metadata=None)).multiscales[0]
    assert (m.name, m.type, m.metadata) == (None, None, None)
    m = A.model_validate(attrs(type="gaussian", metadata={"method": "x"})).multiscales[0]
    assert (m.type, m.metadata) == ("gaussian", {"method": "x"})
    assert_problem(A, attrs(name=3), "multiscales[0].name", "Expected `str`, got `int`")
    assert_problem(A, attrs(metadata=[1]), "multiscales[0].metadata", "Expected `object`")


def test_multiscales_not_empty_and_unique() -> None:
    assert_problem(A, {"multiscales": []}, "multiscales", "is empty")
    one = multiscale()
    assert_problem(A, {"multiscales": [one, one]}, "multiscales[1]", "repeats multiscales[0]")
    assert_problem(A, {}, "multiscales", "required")


def test_every_problem_is_reported() -> None:
    doc = with_axes([axis("y", unit="nm"), axis("y", unit="um")])
    _, found = judge(doc, A)
    errors = {p.loc for p in found if severity_of(p.rule) == "error"}
    warnings = {p.loc for p in found if severity_of(p.rule) == "warning"}
    assert {f"{LOC_AXES}[0].name", f"{LOC_AXES}[1].name"} <= errors
    assert {f"{LOC_AXES}[0].unit", f"{LOC_AXES}[1].unit"} <= warnings


# ---- spec examples and documents from the wild -------------------------------------------------
def test_spec_example_v04() -> None:
    m = A.model_validate(load(SPEC / "v04_multiscales_example.json")).multiscales[0]
    assert [a.name for a in m.axes] == ["t", "c", "z", "y", "x"]
    assert m.axes[1].unit is None
    assert m.coordinateTransformations == (v04.Scale(scale=(0.1, 1.0, 1.0, 1.0, 1.0)),)
    assert m.type == "gaussian"
    assert m.metadata is not None and m.metadata["method"] == "skimage.transform.pyramid_gaussian"


def test_spec_example_v04_units_typo_is_valid_without_units() -> None:
    # "units" is no key of the spec; the official 0.4 schemas do not forbid extra keys, and the
    # spec's own suite files this example under valid_strict, so it validates: the axes simply
    # have no unit (a SHOULD), and the misspelt key is ignored.
    m = A.model_validate(load(SPEC / "v04_multiscales_transformations.json")).multiscales[0]
    assert [(a.name, a.type, a.unit) for a in m.axes] == [
        ("y", "space", None),
        ("x", "space", None),
    ]
    assert m.type == "foo"


def test_spec_example_v05() -> None:
    doc = load(SPEC / "v05_multiscales_example.zarr.json")
    a = v05.GroupAttrs.model_validate(doc["attributes"])
    assert a.ome.version == "0.5"
    assert len(a.ome.multiscales[0].datasets) == 3


@pytest.mark.parametrize(
    "name",
    [
        "reconstructed__zarr_em_group_zattrs__ome-only.json",
        "reconstructed__zarr_em_group_zattrs__cellmap-n5-to-zarr_with_legacy_n5_keys.json",
        "reconstructed__crop_class_group_zattrs_instance.json",
        "reconstructed__crop_class_group_zattrs_semantic.json",
    ],
)
def test_cellmap_zattrs_are_valid_v04(name: str) -> None:
    a = A.model_validate(load(WILD / name))
    m = a.multiscales[0]
    assert [x.unit for x in m.axes] == ["nanometer"] * 3
    assert m.datasets[0].path == "s0"
    assert A.model_validate_json(a.model_dump_json()) == a


def test_cellmap_zarr3_ome_is_valid_v05() -> None:
    doc = load(WILD / "reconstructed__zarr3_group_zarr.json__zarrify_ome0.5.json")
    a = v05.GroupAttrs.model_validate(doc["attributes"])
    assert [d.path for d in a.ome.multiscales[0].datasets] == ["s0", "s1"]


def test_zarr3_multiscales_without_ome_namespace() -> None:
    # 0.4 content in a Zarr v3 group: not 0.5 (no `ome`), and 0.4 is defined on Zarr v2 only.
    doc = load(WILD / "irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json")
    assert_problem(v05.GroupAttrs, doc["attributes"], "ome", "required")
    group = {"node_type": "group", "zarr_format": 3, "attributes": doc["attributes"]}
    assert_problem(v05.Group, group, "attributes.ome", "required")
    # The multiscales object itself is well-formed 0.4 metadata.
    assert A.model_validate(doc["attributes"]).multiscales[0].version == "0.4"


def test_cosem_group_looks_like_v04_but_is_invalid() -> None:
    doc = load(WILD / "cosem_n5_multiscale_group__cosem-flows2021_emulated.json")
    attributes = doc.get("attributes", doc)
    assert looks_like(v04.Group, attributes)
    found = problems(A, attributes)
    assert ("multiscales[0].axes", "field required") in found
    assert any(loc.endswith("coordinateTransformations") for loc, _ in found)


# ---- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "doc",
    [
        attrs(),
        attrs(coordinateTransformations=[S], name=None, type="mean", metadata={"k": [1, 2]}),
        load(SPEC / "v04_multiscales_example.json"),
        load(SPEC / "v04_multiscales_transformations.json"),
    ],
)
def test_round_trip_v04(doc: dict[str, Any]) -> None:
    m = A.model_validate(doc)
    assert A.model_validate_json(m.model_dump_json()) == m
    dumped = json.loads(m.model_dump_json())
    # Unset optional keys are left out, not written as null.
    assert "coordinateTransformations" in dumped["multiscales"][0] or (
        m.multiscales[0].coordinateTransformations is None
    )
    assert all(v is not None for v in dumped["multiscales"][0].values())


def test_round_trip_v05() -> None:
    doc = load(SPEC / "v05_multiscales_example.zarr.json")
    g = v05.Group.model_validate(
        {**doc, "members": {p: v3_array((1, 2, 8, 8, 8), "tczyx") for p in "012"}}
    )
    assert v05.Group.model_validate_json(g.model_dump_json()) == g


# ---- groups: Zarr v2 (0.4) ---------------------------------------------------------------------
def v2_array(shape: tuple[int, ...], dtype: str = "|u1") -> dict[str, Any]:
    return {"shape": list(shape), "chunks": list(shape), "dtype": dtype}


def v2_group(attributes: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": attributes, "members": members}


def test_group_valid_with_labels_member_and_nested_path() -> None:
    ms = multiscale()
    ms["datasets"][1]["path"] = "sub/s1"
    doc = v2_group(
        {"multiscales": [ms]},
        {
            "s0": v2_array((8, 8, 8)),
            "sub": v2_group({}, {"s1": v2_array((4, 4, 4))}),
            "labels": v2_group({"labels": []}, {}),
        },
    )
    g = v04.Group.model_validate(doc)
    assert set(g.members) == {"s0", "sub", "labels"}
    assert v04.Group.model_validate_json(g.model_dump_json()) == g


def test_group_dataset_path_must_exist() -> None:
    doc = v2_group(attrs(), {"s0": v2_array((8, 8, 8))})
    assert_problem(
        v04.Group,
        doc,
        "attributes.multiscales[0].datasets[1].path",
        "'s1' names no member",
        "path to the array",
    )


def test_group_dataset_path_must_be_an_array() -> None:
    doc = v2_group(attrs(), {"s0": v2_array((8, 8, 8)), "s1": v2_group({}, {})})
    assert_problem(
        v04.Group, doc, "attributes.multiscales[0].datasets[1].path", "names a group, not an array"
    )


def test_group_array_dimensionality_equals_axes() -> None:
    doc = v2_group(attrs(), {"s0": v2_array((8, 8, 8)), "s1": v2_array((4, 4))})
    assert_problem(
        v04.Group,
        doc,
        "attributes.multiscales[0].datasets[1].path",
        "2 dimensions but the multiscale has 3 axes",
        "MUST be equal to the number of dimensions",
    )


def test_group_reports_attribute_problems_with_full_loc() -> None:
    doc = v2_group(attrs(axes=[axis("z"), axis("y"), axis("x", unit="nm")]), {})
    _, found = judge(doc, v04.Group)
    assert any(
        p.rule == "OME008"
        and p.loc == "attributes.multiscales[0].axes[2].unit"
        and "'nm' is not a space unit" in p.msg
        for p in found
    ), found


# ---- groups: Zarr v3 (0.5) ---------------------------------------------------------------------
def v3_array(shape: tuple[int, ...], names: str | None, data_type: str = "uint8") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "node_type": "array",
        "shape": list(shape),
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
    }
    if names is not None:
        doc["dimension_names"] = list(names)
    return doc


def v05_ms() -> dict[str, Any]:
    ms = multiscale()
    del ms["version"]
    return ms


def v3_group(ome: dict[str, Any] | None, members: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_type": "group",
        "attributes": {} if ome is None else {"ome": ome},
        "members": members,
    }


def v05_image(members: dict[str, Any], version: str = "0.5") -> dict[str, Any]:
    return v3_group({"version": version, "multiscales": [v05_ms()]}, members)


def test_v05_group_valid() -> None:
    g = v05.Group.model_validate(
        v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), "zyx")})
    )
    assert g.attributes.ome.multiscales[0].ndim == 3


def test_v05_version_must_be_05() -> None:
    doc = v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), "zyx")}, "0.4")
    assert_problem(v05.Group, doc, "attributes.ome.version", "'0.4'", "ome namespace")
    doc = v05_image({})
    del doc["attributes"]["ome"]["version"]
    assert_problem(v05.Group, doc, "attributes.ome.version", "required")


def test_v05_dataset_rules() -> None:
    loc = "attributes.ome.multiscales[0].datasets[1].path"
    assert_problem(v05.Group, v05_image({"s0": v3_array((8, 8, 8), "zyx")}), loc, "no member")
    doc = v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4), "yx")})
    assert_problem(v05.Group, doc, loc, "2 dimensions but the multiscale has 3 axes")
    doc = v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_group(None, {})})
    assert_problem(v05.Group, doc, loc, "names a group")


def test_v05_dimension_names_match_axes() -> None:
    loc = "attributes.ome.multiscales[0].datasets[1].path"
    doc = v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), "xyz")})
    assert_problem(v05.Group, doc, loc, "dimension_names ['x', 'y', 'z']", "MUST match")
    doc = v05_image({"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), None)})
    assert_problem(v05.Group, doc, loc, "has no dimension_names")


def test_v05_multiscale_rules_are_the_04_rules() -> None:
    ms = v05_ms()
    ms["axes"][0]["unit"] = "um"
    doc = v3_group({"version": "0.5", "multiscales": [ms]}, {})
    _, found = judge(doc, v05.Group)
    assert any(
        p.rule == "OME008"
        and p.loc == "attributes.ome.multiscales[0].axes[0].unit"
        and '"micrometer"?' in p.msg
        for p in found
    ), found


# ---- image-label and labels --------------------------------------------------------------------
def label_attrs(**over: Any) -> dict[str, Any]:
    doc = load(SPEC / "v04_image_label_colors_properties.json")
    doc["image-label"].update(over)
    doc["multiscales"] = [multiscale()]
    return doc


IL = v04.ImageLabelAttrs


def test_image_label_spec_example() -> None:
    a = IL.model_validate(label_attrs())
    label = a.image_label
    assert [c.label_value for c in label.colors or ()] == [1, 4]
    assert label.properties is not None and label.properties[0]["area (pixels)"] == 1200
    assert label.source == v04.Source(image="../../")
    assert IL.model_validate_json(a.model_dump_json()) == a
    assert '"label-value":1' in a.model_dump_json()


def test_image_label_rgba() -> None:
    IL.model_validate(label_attrs(colors=[{"label-value": 1}]))  # rgba MAY be absent
    assert_problem(
        IL,
        label_attrs(colors=[{"label-value": 1, "rgba": [0, 0, 0]}]),
        "image-label.colors[0].rgba",
        "has 3 entries",
        "4-tuple",
    )
    assert_problem(
        IL,
        label_attrs(colors=[{"label-value": 1, "rgba": [0, 0, 0, 256]}]),
        "image-label.colors[0].rgba[3]",
        "<= 255",
    )
    assert_problem(
        IL,
        label_attrs(colors=[{"label-value": 1, "rgba": [0, -1, 0, 0]}]),
        "image-label.colors[0].rgba[1]",
        ">= 0",
    )


def test_image_label_values_unique() -> None:
    colors = [{"label-value": 1, "rgba": [0, 0, 0, 0]}, {"label-value": 1}]
    assert_problem(
        IL,
        label_attrs(colors=colors),
        "image-label.colors[1].label-value",
        "1 appears 2 times",
        "must be unique",
    )


def test_image_label_label_value_required() -> None:
    assert_problem(
        IL,
        label_attrs(colors=[{"rgba": [0, 0, 0, 0]}]),
        "image-label.colors[0].label-value",
        "required",
    )
    assert_problem(
        IL,
        label_attrs(properties=[{"class": "foo"}]),
        "image-label.properties[0]",
        'has no "label-value"',
    )
    assert_problem(
        IL,
        label_attrs(properties=[{"label-value": "1"}]),
        'image-label.properties[0]["label-value"]',
        "must be an integer",
    )


def test_image_label_group_needs_integer_arrays() -> None:
    ok = {"s0": v2_array((8, 8, 8), "<u8"), "s1": v2_array((4, 4, 4), "<i4")}
    v04.ImageLabelGroup.model_validate(v2_group(label_attrs(), ok))
    bad = {"s0": v2_array((8, 8, 8), "<u8"), "s1": v2_array((4, 4, 4), "<f4")}
    assert_problem(
        v04.ImageLabelGroup,
        v2_group(label_attrs(), bad),
        "attributes.multiscales[0].datasets[1].path",
        "'<f4'",
        "integer data types",
    )


def test_labels_group() -> None:
    image_label = v2_group(label_attrs(), {"s0": v2_array((8, 8, 8)), "s1": v2_array((4, 4, 4))})
    members = {"original": v2_group({}, {"0": image_label}), "x": v2_array((2, 2))}
    g = v04.LabelsGroup.model_validate(v2_group({"labels": ["original/0"]}, members))
    assert g.attributes.labels == ("original/0",)
    assert_problem(
        v04.LabelsGroup,
        v2_group({"labels": ["missing"]}, members),
        "attributes.labels[0]",
        "'missing' names no member",
        "paths to label objects",
    )
    assert_problem(
        v04.LabelsGroup,
        v2_group({"labels": ["x"]}, members),
        "attributes.labels[0]",
        "names an array",
    )


def test_v05_image_label_and_labels_groups() -> None:
    label = load(SPEC / "v04_image_label_colors_properties.json")["image-label"]
    label["version"] = "0.5"
    ome = {"version": "0.5", "multiscales": [v05_ms()], "image-label": label}
    arrays = {"s0": v3_array((8, 8, 8), "zyx", "uint16"), "s1": v3_array((4, 4, 4), "zyx")}
    g = v05.ImageLabelGroup.model_validate(v3_group(ome, arrays))
    assert g.attributes.ome.image_label.version == "0.5"
    floats = {**arrays, "s1": v3_array((4, 4, 4), "zyx", "float32")}
    assert_problem(
        v05.ImageLabelGroup,
        v3_group(ome, floats),
        "attributes.ome.multiscales[0].datasets[1].path",
        "'float32'",
        "integer",
    )
    labels = v3_group({"version": "0.5", "labels": ["cells"]}, {"cells": v3_group(ome, arrays)})
    v05.LabelsGroup.model_validate(labels)
    labels["attributes"]["ome"]["labels"] = ["nuclei"]
    assert_problem(v05.LabelsGroup, labels, "attributes.ome.labels[0]", "'nuclei' names no member")


# ---- from_arrays -------------------------------------------------------------------------------
def pyramid() -> list[np.ndarray]:
    base = np.arange(8 * 8 * 8, dtype="uint16").reshape(8, 8, 8)
    return [base, base[::2, ::2, ::2]]


def test_from_arrays_v04() -> None:
    g = v04.Group.from_arrays(
        pyramid(),
        ["s0", "s1"],
        ["z", "y", "x"],
        [(4.0, 4.0, 4.0), (8.0, 8.0, 8.0)],
        [(0.0, 0.0, 0.0), (2.0, 2.0, 2.0)],
        units="nanometer",
        name="raw",
        chunks=(4, 4, 4),
    )
    m = g.attributes.multiscales[0]
    assert m.version == "0.4" and m.name == "raw"
    assert [(a.name, a.type, a.unit) for a in m.axes] == [(n, "space", "nanometer") for n in "zyx"]
    assert m.datasets[1].scale == (8.0, 8.0, 8.0)
    assert m.datasets[1].translation == (2.0, 2.0, 2.0)
    s1 = g.members["s1"]
    assert isinstance(s1, ArraySpec)
    assert (s1.shape, s1.chunks, s1.dtype, s1.dimension_separator) == (
        (4, 4, 4),
        (4, 4, 4),
        "<u2",
        "/",
    )
    assert v04.Group.model_validate_json(g.model_dump_json()) == g


def test_from_arrays_v04_axis_types_nested_paths_and_global_transform() -> None:
    data = np.zeros((2, 3, 8, 8), dtype="uint8")
    g = v04.Group.from_arrays(
        [data, data[:, :, ::2, ::2]],
        ["0", "lower/1"],
        ["t", "c", "y", "x"],
        [(1, 1, 1, 1), (1, 1, 2, 2)],
        units=["second", None, "micrometer", "micrometer"],
        global_scale=(0.5, 1, 1, 1),
    )
    m = g.attributes.multiscales[0]
    assert [a.type for a in m.axes] == ["time", "channel", "space", "space"]
    assert m.datasets[0].translation is None
    assert m.coordinateTransformations == (v04.Scale(scale=(0.5, 1.0, 1.0, 1.0)),)
    assert isinstance(g.members["lower"], GroupSpec)


def test_from_arrays_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 arrays, 1 paths"):
        v04.Group.from_arrays(pyramid(), ["s0"], "zyx", [(1, 1, 1), (2, 2, 2)])
    # a unit outside the specification's list is a SHOULD: written, and warned about
    g = v04.Group.from_arrays(pyramid(), ["s0", "s1"], "zyx", [(1, 1, 1), (2, 2, 2)], units="nm")
    assert {p.rule for p in judge(g.model_dump(), v04.Group)[1]} == {"OME008"}
    with pytest.raises(ValueError, match="3 axes"):
        v05.Group.from_arrays(pyramid(), ["s0", "s1"], "zyx", [(1, 1), (2, 2)])


def test_from_arrays_passes_the_array_options_of_its_version() -> None:
    args = (pyramid(), ["s0", "s1"], "zyx", [(1, 1, 1), (2, 2, 2)])
    g4 = v04.Group.from_arrays(*args, compressor=None, fill_value=7)
    assert all(m.compressor is None and m.fill_value == 7 for m in g4.members.values())
    g5 = v05.Group.from_arrays(*args, fill_value=7, codecs=({"name": "bytes"},))
    assert all(m.fill_value == 7 for m in g5.members.values())
    assert v05.Group.from_arrays(*args).members["s0"].fill_value == 0
    with pytest.raises(TypeError, match="codecs"):
        v04.Group.from_arrays(*args, codecs=({"name": "bytes"},))
    with pytest.raises(TypeError, match="compressor"):
        v05.Group.from_arrays(*args, compressor=None)


def test_from_arrays_v05() -> None:
    g = v05.Group.from_arrays(
        pyramid(),
        ["s0", "s1"],
        ["z", "y", "x"],
        [(4.0, 4.0, 4.0), (8.0, 8.0, 8.0)],
        units="nanometer",
    )
    assert g.attributes.ome.version == "0.5"
    s0 = g.members["s0"]
    assert isinstance(s0, ArraySpecV3)
    assert s0.dimension_names == ("z", "y", "x")
    assert s0.data_type == "uint16"
    assert v05.Group.model_validate_json(g.model_dump_json()) == g
    doc = json.loads(g.model_dump_json())
    assert doc["node_type"] == "group"
    assert "version" not in doc["attributes"]["ome"]["multiscales"][0]


# ---- registry ----------------------------------------------------------------------------------
def test_registry_names_and_signatures() -> None:
    for name in (
        "multiscale.ome_ngff.v04.Group",
        "multiscale.ome_ngff.v05.Group",
        "multiscale.ome_ngff.v04.ImageLabelGroup",
        "multiscale.ome_ngff.v04.LabelsGroup",
        "multiscale.ome_ngff.v05.ImageLabelGroup",
        "multiscale.ome_ngff.v05.LabelsGroup",
    ):
        assert name in MODELS and MODELS[name].kind == "group"
        assert get_model(name).__name__ == name.rpartition(".")[2]
    assert signature(v04.Group) == frozenset({("multiscales",), ("omero",)})
    assert ("ome", "multiscales") in signature(v05.Group)
    assert looks_like(v04.Group, load(WILD / "reconstructed__zarr_em_group_zattrs__ome-only.json"))
    v05_doc = load(SPEC / "v05_multiscales_example.zarr.json")
    assert looks_like(v05.Group, v05_doc["attributes"])
    assert not looks_like(v04.Group, v05_doc["attributes"])
    irregular = load(
        WILD / "irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json"
    )
    assert not looks_like(v05.Group, irregular["attributes"])


# ---- storage round trip (to_zarr with tensorstore, from_url) -----------------------------------
@pytest.mark.parametrize("module", [v04, v05], ids=["0.4", "0.5"])
def test_write_and_read_back(module: Any, tmp_path: Path) -> None:
    arrays = pyramid()
    group = module.Group.from_arrays(
        arrays,
        ["s0", "lower/s1"],
        ["z", "y", "x"],
        [(4.0, 4.0, 4.0), (8.0, 8.0, 8.0)],
        [(0.0, 0.0, 0.0), (2.0, 2.0, 2.0)],
        units="nanometer",
        name="raw",
    )
    url = str(tmp_path / "image.zarr")
    handle = group.to_zarr(url)
    handle["s0"][...] = arrays[0]
    handle["lower/s1"][...] = arrays[1]
    back = module.Group.from_url(url)
    assert back == group
    assert np.array_equal(np.asarray(handle["lower/s1"]), arrays[1])
    key = "zarr.json" if module is v05 else ".zattrs"
    written = load(tmp_path / "image.zarr" / key)
    multiscales = written["attributes"]["ome"] if module is v05 else written
    assert multiscales["multiscales"][0]["name"] == "raw"


def test_read_back_rejects_the_other_zarr_format(tmp_path: Path) -> None:
    url = str(tmp_path / "image.zarr")
    v05.Group.from_arrays(pyramid(), ["s0", "s1"], "zyx", [(1, 1, 1), (2, 2, 2)]).to_zarr(url)
    with pytest.raises(ValidationError, match="Zarr v3"):
        v04.Group.from_url(url)


# ---- the fast path agrees with the rules -------------------------------------------------------

_axis = st.fixed_dictionaries(
    {"name": st.sampled_from("tczyx")},
    optional={
        "type": st.sampled_from(["space", "time", "channel", "angle"]),
        "unit": st.sampled_from(["nanometer", "nm", "second", "ms", "wavelength"]),
    },
)


def _vector(n: int) -> st.SearchStrategy[list[float]]:
    return st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=max(n - 1, 0), max_size=n + 1)


@st.composite
def _transforms(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(["scale", "translation", "identity"]), max_size=3))
    out: list[dict[str, Any]] = []
    for k in kinds:
        if k == "identity":
            out.append({"type": "identity"})
        else:
            out.append({"type": k, k: draw(_vector(n))})
    return out


@st.composite
def _valid_multiscale(draw: st.DrawFn) -> dict[str, Any]:
    layout = ["time"] * draw(st.integers(0, 1))
    layout += [draw(st.sampled_from(["channel", "angle", None]))] * draw(st.integers(0, 1))
    layout += ["space"] * draw(st.integers(2, 3))
    axes = []
    for name, type_ in zip("tcqzyx"[-len(layout) :], layout, strict=True):
        unit = {"space": "nanometer", "time": "second"}.get(type_ or "", "wavelength")
        axes.append(axis(name, type_, draw(st.sampled_from([unit, None]))))
    n = len(axes)
    datasets = []
    for i in range(draw(st.integers(1, 3))):
        ts: list[dict[str, Any]] = [{"type": "scale", "scale": [2.0**i] * n}]
        if draw(st.booleans()):
            ts.append({"type": "translation", "translation": [0.0] * n})
        datasets.append({"path": f"s{i}", "coordinateTransformations": ts})
    doc: dict[str, Any] = {"axes": axes, "datasets": datasets, "version": "0.4"}
    if draw(st.booleans()):
        doc["coordinateTransformations"] = [{"type": "scale", "scale": [1.0] * n}]
    return doc


@st.composite
def _multiscales(draw: st.DrawFn) -> dict[str, Any]:
    """Valid multiscales, half of them broken by one mutation of an axis or a transform."""
    doc = draw(_valid_multiscale())
    n = len(doc["axes"])
    if not draw(st.booleans()):
        return doc
    what = draw(st.sampled_from(["axis", "transforms", "version", "drop", "swap"]))
    if what == "axis":
        k = draw(st.integers(0, n - 1))
        doc["axes"][k] = draw(_axis)
    elif what == "transforms":
        k = draw(st.integers(0, len(doc["datasets"]) - 1))
        doc["datasets"][k]["coordinateTransformations"] = draw(_transforms(n))
    elif what == "version":
        doc["version"] = "0.5"
    elif what == "drop":
        doc["axes"].pop(draw(st.integers(0, n - 1)))
    else:
        doc["datasets"].reverse()
    return doc


@settings(max_examples=300, deadline=None)
@given(_multiscales())
def test_fast_path_accepts_exactly_what_the_rules_accept(doc: dict[str, Any]) -> None:
    try:
        m = v04.Multiscale.model_validate(doc)
    except ValidationError as exc:
        # Refused: the slow path names real problems, never the "no reason found" fallback.
        assert all(msg != "document does not match the model" for _, msg in exc.problems)
    else:
        # Accepted: the full rules find nothing either, and the one-pass check said yes itself.
        assert [p for p in m._problems() if severity_of(p.rule) == "error"] == []
        assert multiscale_ok(m)


_DTYPE_CANDIDATES = sorted(
    {
        prefix + body
        for prefix in ("", "<", ">", "|", "=")
        for body in (
            *"iubBhHIlLqQpPfcdeSUVO?",
            *(f"{k}{n}" for k in "iufcmM" for n in (1, 2, 3, 4, 8, 16)),
            *(f"{u}int{b}" for u in ("", "u") for b in (0, 1, 8, 16, 32, 64, 128)),
            *("int", "uint", "intp", "uintp", "intc", "uintc", "byte", "ubyte", "short"),
            *("ushort", "long", "ulong", "longlong", "ulonglong", "bool", "float32", "i4x"),
            *("", "<i4", "int 8", "INT8", "uint8 "),
        )
    }
)


@pytest.mark.parametrize("dtype", _DTYPE_CANDIDATES)
def test_integer_dtypes_are_the_ones_numpy_reads_as_integers(dtype: str) -> None:
    """The label rules tell integer types without NumPy; NumPy decides what they mean."""
    try:
        expected = np.dtype(dtype).kind in "iu"
    except TypeError:
        expected = False
    assert is_integer_dtype(dtype) is expected


def test_integer_dtype_of_a_structured_or_missing_type_is_false() -> None:
    assert not is_integer_dtype([["a", "<i4"]])
    assert not is_integer_dtype(None)
