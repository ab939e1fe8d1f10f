"""Zarr v2 / v3 specs: generics, subclasses, array-or-group dispatch, from_array, round trips."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.base import Base
from cellmap_schemas.errors import ValidationError
from cellmap_schemas.spec import ArraySpec, ArraySpecV3, GroupSpec, GroupSpecV3, Node, NodeV3
from cellmap_schemas.spec.zarr_v2 import either, spec_dict_from_zarray


class MyAttrs(Base, frozen=True, kw_only=True):
    foo: int
    bar: str = "x"


class MyArray(ArraySpec[Any], frozen=True, kw_only=True):
    attributes: MyAttrs


class MyGroup(GroupSpec[Any], frozen=True, kw_only=True):
    attributes: MyAttrs
    members: dict[str, either(MyArray, GroupSpec)]  # type: ignore[valid-type]


def array(**changes: Any) -> dict[str, Any]:
    return {"shape": [4, 6], "chunks": [2, 3], "dtype": "|u1", **changes}


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return dict(exc.value.problems)


# ---- ArraySpec -----------------------------------------------------------------------------
def test_array_defaults() -> None:
    spec = ArraySpec.model_validate(array())
    assert spec.model_dump() == {
        "zarr_version": 2,
        "attributes": {},
        "shape": (4, 6),
        "chunks": (2, 3),
        "dtype": "|u1",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": None,
    }


def test_array_chunks_need_one_entry_per_dimension() -> None:
    with pytest.raises(ValidationError) as exc:
        ArraySpec.model_validate(array(chunks=[2]))
    assert problems(exc) == {"chunks": "has 1 entries but shape has 2"}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"order": "A"}, "order"),
        ({"dimension_separator": "-"}, "dimension_separator"),
        ({"zarr_version": 3}, "zarr_version"),
        ({"shape": [4, -1]}, "shape[1]"),
        ({"dtype": 5}, "dtype"),
        ({"compressor": "zstd"}, "compressor"),
    ],
)
def test_array_field_rules(changes: dict[str, Any], loc: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ArraySpec.model_validate(array(**changes))
    assert list(problems(exc)) == [loc]


def test_array_structured_dtype_and_fill_values() -> None:
    spec = ArraySpec.model_validate(array(dtype=[["a", "<i4"], ["b", "<f8"]], fill_value="AAAA"))
    assert spec.dtype == [["a", "<i4"], ["b", "<f8"]]
    assert ArraySpec.model_validate(array(fill_value="NaN")).fill_value == "NaN"
    assert ArraySpec.model_validate(array(fill_value=None)).fill_value is None


@pytest.mark.parametrize("codec_id", [["gzip"], {"name": "gzip"}, 3, None])
def test_a_codec_id_that_is_not_a_string_is_an_unknown_codec(codec_id: Any) -> None:
    for where, doc in (
        ("compressor.id", array(compressor={"id": codec_id})),
        ("filters[0].id", array(filters=[{"id": codec_id}])),
    ):
        with pytest.raises(ValidationError) as exc:
            ArraySpec.model_validate(doc)
        assert exc.value.errors() == [
            {"rule": "ZARR003", "loc": where, "msg": f"{codec_id!r} is not a codec numcodecs knows"}
        ]


def test_generic_array_validates_its_attributes() -> None:
    spec = ArraySpec[MyAttrs].model_validate(array(attributes={"foo": 1}))
    assert spec.attributes == MyAttrs(foo=1)
    bad = array(attributes={"foo": "1"}, chunks=[1])
    for call in (
        ArraySpec[MyAttrs].model_validate,
        lambda d: ArraySpec[MyAttrs].model_validate_json(json.dumps(d)),
    ):
        with pytest.raises(ValidationError) as exc:
            call(bad)
        assert problems(exc) == {"attributes.foo": "Expected `int`, got `str`"}


def test_generic_group_validates_its_attributes() -> None:
    with pytest.raises(ValidationError) as exc:
        GroupSpec[MyAttrs].model_validate({"attributes": {}, "members": {}})
    assert problems(exc) == {"attributes.foo": "field required"}
    assert GroupSpec[MyAttrs].model_validate({"attributes": {"foo": 2}}).attributes.foo == 2


def test_subclass_redeclaring_attributes() -> None:
    spec = MyArray.model_validate(array(attributes={"foo": 1, "other": True}))
    assert spec.attributes == MyAttrs(foo=1)
    with pytest.raises(ValidationError) as exc:
        MyArray.model_validate(array(attributes={}))
    assert problems(exc) == {"attributes.foo": "field required"}
    # redeclared without a default: the attributes are required, as in the original
    no_chunks = array()
    del no_chunks["chunks"]
    with pytest.raises(ValidationError) as exc:
        MyArray.model_validate(no_chunks)
    assert problems(exc) == {"attributes": "field required", "chunks": "field required"}


# ---- either(): arrays and groups told apart by `shape` -------------------------------------------
def test_either_dispatches_on_shape() -> None:
    doc = {
        "attributes": {"foo": 1},
        "members": {"s0": array(attributes={"foo": 2}), "labels": {"attributes": {"z": 1}}},
    }
    group = MyGroup.model_validate(doc)
    assert isinstance(group.members["s0"], MyArray)
    assert type(group.members["labels"]) is GroupSpec
    assert MyGroup.model_validate_json(group.model_dump_json()) == group


def test_either_reports_problems_in_each_kind() -> None:
    doc = {
        "attributes": {"foo": "no"},
        "members": {
            "s0": array(attributes={}),
            "s1": array(shape=[4], attributes={"foo": 1}),
            "labels": {"members": {"x": array(chunks=[1])}},
        },
    }
    expected = {
        "attributes.foo": "Expected `int`, got `str`",
        "members.s0.attributes.foo": "field required",
        "members.s1.chunks": "has 2 entries but shape has 1",
        "members.labels.members.x.chunks": "has 1 entries but shape has 2",
    }
    with pytest.raises(ValidationError) as exc:
        MyGroup.model_validate(doc)
    assert problems(exc) == expected
    with pytest.raises(ValidationError) as exc:
        MyGroup.model_validate_json(json.dumps(doc))
    assert problems(exc) == expected


def test_either_types_are_cached_and_check_instances() -> None:
    kind = either(MyArray, GroupSpec)
    assert kind is either(MyArray, GroupSpec)
    assert isinstance(GroupSpec(), kind)
    assert not isinstance(ArraySpec.model_validate(array()), kind)
    assert isinstance(ArraySpec.model_validate(array()), Node)


def test_default_group_members_are_any_node() -> None:
    group = GroupSpec.model_validate({"members": {"a": array(), "g": {"members": {}}}})
    assert isinstance(group.members["a"], ArraySpec)
    assert isinstance(group.members["g"], GroupSpec)
    assert group.to_flat() == {
        "": GroupSpec(),
        "a": group.members["a"],
        "g": GroupSpec(),
    }


def test_group_member_of_the_wrong_type() -> None:
    with pytest.raises(ValidationError) as exc:
        GroupSpec.model_validate({"members": {"a": 3}})
    assert list(problems(exc)) == ["members.a"]


# ---- documents -----------------------------------------------------------------------------
def test_to_and_from_documents() -> None:
    spec = ArraySpec.model_validate(array(attributes={"k": [1, 2]}, compressor={"id": "zstd"}))
    zarray, zattrs = spec.to_documents()
    assert json.loads(json.dumps(zarray)) == {
        "zarr_format": 2,
        "shape": [4, 6],
        "chunks": [2, 3],
        "dtype": "|u1",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": {"id": "zstd"},
    }
    assert zattrs == {"k": [1, 2]}
    assert ArraySpec.from_documents(zarray, zattrs) == spec
    assert spec_dict_from_zarray(zarray, zattrs)["zarr_version"] == 2


def test_from_documents_reports_problems() -> None:
    with pytest.raises(ValidationError) as exc:
        ArraySpec.from_documents({"zarr_format": 2, "shape": [2], "dtype": "|u1"}, {})
    assert problems(exc) == {"chunks": "field required"}


# ---- from_array ----------------------------------------------------------------------------
def test_from_array_numpy() -> None:
    spec = ArraySpec.from_array(np.zeros((4, 6), dtype=">u2"))
    assert (spec.shape, spec.chunks, spec.dtype) == ((4, 6), (4, 6), ">u2")
    assert (spec.fill_value, spec.compressor, spec.order, spec.filters) == (0, None, "C", None)
    assert ArraySpec.from_array(np.zeros(3, dtype=bool)).fill_value is False
    big = ArraySpec.from_array(np.zeros((1024, 1024, 4), dtype="uint8"))
    assert big.chunks == (512, 512, 4)


def test_from_array_overrides() -> None:
    spec = ArraySpec.from_array(
        np.zeros((4, 6), dtype="f4"),
        chunks=(2, 2),
        compressor={"id": "gzip", "level": 1},
        attributes={"a": 1},
        fill_value=-1,
        order="F",
        dimension_separator=".",
    )
    assert spec.chunks == (2, 2) and spec.compressor == {"id": "gzip", "level": 1}
    assert (spec.attributes, spec.fill_value, spec.order) == ({"a": 1}, -1, "F")
    assert spec.dimension_separator == "."


def test_from_array_structured_dtype() -> None:
    data = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
    spec = ArraySpec.from_array(data)
    assert spec.dtype == [("a", "<i4"), ("b", "<f8")]
    assert ArraySpec.model_validate_json(spec.model_dump_json()).dtype == [
        ["a", "<i4"],
        ["b", "<f8"],
    ]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_from_array_zarr_python_3(zarr_format: int) -> None:
    z = zarr.create_array(
        store={},
        shape=(10, 20),
        chunks=(5, 5),
        dtype="int16",
        fill_value=7,
        zarr_format=zarr_format,
        compressors=zarr.codecs.ZstdCodec(level=2) if zarr_format == 3 else None,
    )
    spec = ArraySpec.from_array(z)
    assert (spec.shape, spec.chunks, spec.dtype, spec.fill_value) == ((10, 20), (5, 5), "<i2", 7)
    if zarr_format == 3:
        assert spec.compressor == {"id": "zstd", "level": 2, "checksum": False}
    else:
        assert spec.compressor is None


def test_from_array_zarr_v2_compressor() -> None:
    from numcodecs import GZip

    z = zarr.create_array(
        store={}, shape=(4,), chunks=(2,), dtype="u1", zarr_format=2, compressors=GZip(level=3)
    )
    assert ArraySpec.from_array(z).compressor == {"id": "gzip", "level": 3}


def test_v3_from_array() -> None:
    spec = ArraySpecV3.from_array(np.zeros((3, 4), dtype=">u2"), dimension_names=("y", "x"))
    assert spec.data_type == "uint16"
    assert spec.codecs == ({"name": "bytes", "configuration": {"endian": "big"}},)
    assert spec.chunks == (3, 4)
    assert spec.dimension_names == ("y", "x")


# ---- Zarr v3 ------------------------------------------------------------------------------
V3_ARRAY = {
    "node_type": "array",
    "zarr_format": 3,
    "shape": [4, 4],
    "data_type": "uint8",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
}


def test_v3_tagged_union() -> None:
    doc = {"node_type": "group", "members": {"a": V3_ARRAY, "g": {"node_type": "group"}}}
    group = GroupSpecV3.model_validate(doc)
    assert isinstance(group.members["a"], ArraySpecV3)
    assert isinstance(group.members["g"], GroupSpecV3)
    assert group.to_document() == {"node_type": "group", "zarr_format": 3, "attributes": {}}
    assert group.members["a"].to_document()["node_type"] == "array"


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"node_type": "foo"}, "members.a.node_type", "Invalid value 'foo'"),
        ({"node_type": None}, "members.a.node_type", None),
        (
            {"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}}},
            "members.a.chunk_grid.configuration.chunk_shape",
            "must have one entry per dimension (2)",
        ),
        ({"chunk_grid": {"configuration": {}}}, "members.a.chunk_grid", "must name a chunk grid"),
        (
            {"dimension_names": ["x"]},
            "members.a.dimension_names",
            "has 1 entries but shape has 2",
        ),
        ({"codecs": [{"configuration": {}}]}, "members.a.codecs[0]", "must have a `name`"),
    ],
)
def test_v3_rules(change: dict[str, Any], loc: str, message: str | None) -> None:
    doc = {"node_type": "group", "members": {"a": {**V3_ARRAY, **change}}}
    for call in (
        GroupSpecV3.model_validate,
        lambda d: GroupSpecV3.model_validate_json(json.dumps(d)),
    ):
        with pytest.raises(ValidationError) as exc:
            call(doc)
        assert list(problems(exc)) == [loc]
        if message is not None:
            assert problems(exc)[loc] == message


def test_v3_node_union_alias() -> None:
    from cellmap_schemas.base import validate

    assert isinstance(validate(V3_ARRAY, NodeV3), ArraySpecV3)
    assert isinstance(validate({"node_type": "group"}, NodeV3), GroupSpecV3)


def test_v3_generic_attributes() -> None:
    with pytest.raises(ValidationError) as exc:
        ArraySpecV3[MyAttrs].model_validate({**V3_ARRAY, "attributes": {"foo": 1.5}})
    assert problems(exc) == {"attributes.foo": "Expected `int`, got `float`"}


# ---- round trips ----------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
attrs_st = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
names_st = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6)


@st.composite
def array_v2_st(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.lists(st.integers(0, 10_000), max_size=4))
    chunks = [draw(st.integers(1, max(1, s))) for s in shape]
    return {
        "zarr_version": 2,
        "attributes": draw(attrs_st),
        "shape": shape,
        "chunks": chunks,
        "dtype": draw(st.sampled_from(["|u1", "<i2", ">u4", "<f8", "|b1"])),
        "fill_value": draw(st.none() | st.integers(-5, 5) | st.sampled_from(["NaN", "Infinity"])),
        "order": draw(st.sampled_from(["C", "F"])),
        "filters": draw(st.none() | st.lists(st.just({"id": "delta", "dtype": "<i2"}), max_size=1)),
        "dimension_separator": draw(st.sampled_from(["/", "."])),
        "compressor": draw(
            st.none()
            | st.builds(lambda lv: {"id": "zstd", "level": lv}, st.integers(0, 9))
            | st.just({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0})
        ),
    }


group_v2_st = st.recursive(
    st.builds(lambda a: {"attributes": a, "members": {}}, attrs_st),
    lambda inner: st.builds(
        lambda a, m: {"attributes": a, "members": m},
        attrs_st,
        st.dictionaries(names_st, inner | array_v2_st(), max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def array_v3_st(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.lists(st.integers(0, 10_000), max_size=4))
    chunks = [draw(st.integers(1, max(1, s))) for s in shape]
    names = draw(
        st.none() | st.lists(st.none() | names_st, min_size=len(shape), max_size=len(shape))
    )
    return {
        "node_type": "array",
        "zarr_format": 3,
        "attributes": draw(attrs_st),
        "shape": shape,
        "data_type": draw(st.sampled_from(["uint8", "int16", "float32", "bool"])),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {
            "name": "default",
            "configuration": {"separator": draw(st.sampled_from(["/", "."]))},
        },
        "fill_value": draw(st.integers(0, 3) | st.just("NaN")),
        "codecs": [
            {"name": "bytes", "configuration": {"endian": "little"}},
            *draw(st.lists(st.just({"name": "zstd", "configuration": {"level": 1}}), max_size=1)),
        ],
        "storage_transformers": [],
        "dimension_names": names,
    }


group_v3_st = st.recursive(
    st.builds(lambda a: {"node_type": "group", "attributes": a, "members": {}}, attrs_st),
    lambda inner: st.builds(
        lambda a, m: {"node_type": "group", "attributes": a, "members": m},
        attrs_st,
        st.dictionaries(names_st, inner | array_v3_st(), max_size=3),
    ),
    max_leaves=6,
)


def _round_trip(cls: Any, doc: dict[str, Any]) -> None:
    spec = cls.model_validate(doc)
    assert cls.model_validate_json(spec.model_dump_json()) == spec
    assert cls.model_validate(spec.model_dump()) == spec
    assert cls.model_validate_json(json.dumps(doc)) == spec


@settings(max_examples=60, deadline=None)
@given(array_v2_st())
def test_round_trip_array_v2(doc: dict[str, Any]) -> None:
    _round_trip(ArraySpec, doc)
    spec = ArraySpec.model_validate(doc)
    assert ArraySpec.from_documents(*spec.to_documents()) == spec


@settings(max_examples=40, deadline=None)
@given(group_v2_st)
def test_round_trip_group_v2(doc: dict[str, Any]) -> None:
    _round_trip(GroupSpec, doc)


@settings(max_examples=60, deadline=None)
@given(array_v3_st())
def test_round_trip_array_v3(doc: dict[str, Any]) -> None:
    _round_trip(ArraySpecV3, doc)


@settings(max_examples=40, deadline=None)
@given(group_v3_st)
def test_round_trip_group_v3(doc: dict[str, Any]) -> None:
    _round_trip(GroupSpecV3, doc)
