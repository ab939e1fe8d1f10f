"""The Struct base and the spec helpers: pydantic-like surface, error collection, chunking."""

from __future__ import annotations

import json
import math
import pickle
import types
import typing
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas import _diagnose
from cellmap_schemas.base import (
    Base,
    NonNegativeInt,
    PositiveInt,
    RuleViolation,
    auto_chunks,
    enforce_rules,
    join_loc,
    normalize_chunks,
    structure_equal,
    structure_group_equal,
    validate,
    validate_json,
)
from cellmap_schemas.errors import CellmapSchemasError, ValidationError
from cellmap_schemas.spec import ArraySpec, GroupSpec


class Inner(Base, frozen=True, kw_only=True):
    x: float
    n: PositiveInt


class Outer(Base, frozen=True, kw_only=True):
    name: str
    sizes: tuple[NonNegativeInt, ...]
    inner: Inner
    items: list[Inner] = []

    def _problems(self):  # type: ignore[no-untyped-def]
        if len(self.sizes) != len(self.items):
            yield "sizes", f"has {len(self.sizes)} entries but items has {len(self.items)}"

    __post_init__ = enforce_rules


GOOD: dict[str, Any] = {
    "name": "a",
    "sizes": [1, 2],
    "inner": {"x": 1, "n": 2},
    "items": [{"x": 1.5, "n": 1}, {"x": 2, "n": 3}],
}


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return dict(exc.value.problems)


# ---- validation entry points ------------------------------------------------------------------
def test_model_validate_python_and_json_agree() -> None:
    from_python = Outer.model_validate(GOOD)
    from_json = Outer.model_validate_json(json.dumps(GOOD))
    assert from_python == from_json
    assert from_python.sizes == (1, 2)
    assert from_python.inner == Inner(x=1.0, n=2)


def test_model_validate_accepts_an_instance() -> None:
    value = Outer.model_validate(GOOD)
    assert Outer.model_validate(value) is value


def test_model_validate_of_another_model_judges_its_content() -> None:
    # an Inner has no `name`, `sizes` or `inner`: judged as data, not by type
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate(Inner(x=1.0, n=1))
    assert problems(exc) == {
        "name": "field required",
        "sizes": "field required",
        "inner": "field required",
    }


def test_validate_and_validate_json_with_plain_types() -> None:
    assert validate([1, 2], tuple[int, ...]) == (1, 2)
    assert validate_json(b"[1, 2]", list[int]) == [1, 2]
    with pytest.raises(ValidationError) as exc:
        validate([1, "a"], list[int])
    assert problems(exc) == {"[1]": "Expected `int`, got `str`"}


def test_validation_error_collects_every_problem() -> None:
    doc = {
        "name": 1,
        "sizes": [1.0, "2", -1],
        "inner": {"x": "4.0", "n": 0},
        "items": [{"x": 1}],
    }
    expected = [
        ("name", "Expected `str`, got `int`"),
        ("sizes[0]", "Expected `int`, got `float`"),
        ("sizes[1]", "Expected `int`, got `str`"),
        ("sizes[2]", "Expected `int` >= 0"),
        ("inner.x", "Expected `float`, got `str`"),
        ("inner.n", "Expected `int` >= 1"),
        ("items[0].n", "field required"),
    ]
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate(doc)
    assert list(exc.value.problems) == expected
    with pytest.raises(ValidationError) as exc_json:
        Outer.model_validate_json(json.dumps(doc))
    assert list(exc_json.value.problems) == expected


def test_validation_error_str_lists_one_problem_per_line() -> None:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate({"name": 1, "sizes": [], "inner": {"x": 1, "n": 1}, "extra": 0})
    lines = str(exc.value).splitlines()
    assert lines == ["1 validation error for Outer", "  name: Expected `str`, got `int`"]
    assert exc.value.errors() == [
        {"rule": "ZARR001", "loc": "name", "msg": "Expected `str`, got `int`"}
    ]


def test_validation_error_is_a_value_error_and_pickles() -> None:
    err = ValidationError([("a.b", "bad"), ("", "worse")], title="Model", url="s3://b/k")
    assert isinstance(err, ValueError)
    assert isinstance(err, CellmapSchemasError)
    assert str(err).splitlines() == [
        "2 validation errors for Model at s3://b/k",
        "  a.b: bad",
        "  (root): worse",
    ]
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.problems, copy.title, copy.url) == (err.problems, err.title, err.url)
    assert err.with_url("file:///x").url == "file:///x"


def test_cross_field_rule_reported_at_its_loc() -> None:
    doc = {**GOOD, "sizes": [1]}
    for call in (Outer.model_validate, lambda d: Outer.model_validate_json(json.dumps(d))):
        with pytest.raises(ValidationError) as exc:
            call(doc)
        assert problems(exc) == {"sizes": "has 1 entries but items has 2"}


def test_rule_inside_a_list_gets_the_full_loc() -> None:
    class Holder(Base, frozen=True, kw_only=True):
        outers: list[Outer]

    doc = {"outers": [GOOD, {**GOOD, "sizes": [1]}]}
    with pytest.raises(ValidationError) as exc:
        Holder.model_validate(doc)
    assert problems(exc) == {"outers[1].sizes": "has 1 entries but items has 2"}
    with pytest.raises(ValidationError) as exc:
        Holder.model_validate_json(json.dumps(doc))
    assert problems(exc) == {"outers[1].sizes": "has 1 entries but items has 2"}


class Pair(Base, frozen=True, kw_only=True):
    outer: Outer
    count: int

    def _problems(self):  # type: ignore[no-untyped-def]
        if self.count != len(self.outer.items):
            yield "count", f"is {self.count} but outer has {len(self.outer.items)} items"

    __post_init__ = enforce_rules


def test_rules_broken_at_two_levels_are_all_reported() -> None:
    # the inner rule stops the decode; the outer struct is still built and asked for its rules
    doc = {"outer": {**GOOD, "sizes": [1]}, "count": 5}
    expected = [
        ("outer.sizes", "has 1 entries but items has 2"),
        ("count", "is 5 but outer has 2 items"),
    ]
    for call in (Pair.model_validate, lambda d: Pair.model_validate_json(json.dumps(d))):
        with pytest.raises(ValidationError) as exc:
            call(doc)
        assert list(exc.value.problems) == expected


def test_a_broken_rule_raises_a_rule_violation_carrying_the_struct() -> None:
    with pytest.raises(RuleViolation) as exc:
        Outer(name="a", sizes=(1,), inner=Inner(x=1.0, n=1), items=[])
    assert isinstance(exc.value, ValueError)
    assert str(exc.value) == "has 1 entries but items has 0 (at `sizes`)"
    assert exc.value.problem == ("ZARR001", "sizes", "has 1 entries but items has 0")
    assert isinstance(exc.value.instance, Outer) and exc.value.instance.sizes == (1,)
    # msgspec keeps it as the cause of its own error: how the slow path tells rules from types
    with pytest.raises(msgspec.ValidationError) as decode:
        msgspec.convert({**GOOD, "sizes": [1]}, Outer)
    assert isinstance(decode.value.__cause__, RuleViolation)


@pytest.mark.parametrize(
    ("doc", "tp", "loc", "expected"),
    [
        ({**GOOD, "inner": {"x": "1", "n": 1}}, Outer, "",
         ("inner.x", "Expected `float`, got `str`")),
        ({**GOOD, "inner": {"x": 1}}, Outer, "", ("inner.n", "field required")),
        ({"x": 1}, Inner, "at", ("at.n", "field required")),
        ({"k": {"x": 1}}, dict[str, Inner], "m.k", ("m.k.n", "field required")),
        ([{"x": 1, "n": 0}], list[Inner], "items", ("items[0].n", "Expected `int` >= 1")),
    ],
)  # fmt: skip
def test_msgspec_errors_are_read_into_loc_and_msg(
    doc: Any, tp: Any, loc: str, expected: tuple[str, str]
) -> None:
    # msgspec words errors only as text ("... - at `$.path`"): this pins the form we read
    with pytest.raises(msgspec.ValidationError) as exc:
        msgspec.convert(doc, tp)
    assert _diagnose._split_msgspec(exc.value, loc) == expected


T = TypeVar("T")


class Box(Base, Generic[T], frozen=True, kw_only=True):
    item: T


def test_a_parametrised_model_is_a_public_generic_alias() -> None:
    alias = GroupSpec[Inner]
    assert isinstance(alias, types.GenericAlias)
    assert typing.get_origin(alias) is GroupSpec and typing.get_args(alias) == (Inner,)
    assert alias == GroupSpec[Inner] and hash(alias) == hash(GroupSpec[Inner])
    assert alias.__qualname__ == "GroupSpec"
    assert pickle.loads(pickle.dumps(alias)) == alias
    with pytest.raises(TypeError):
        GroupSpec[Inner, Inner]


def test_a_parametrised_model_validates_with_its_parameters() -> None:
    for alias in (Box[Inner], Box[T][Inner], pickle.loads(pickle.dumps(Box[Inner]))):
        assert alias.model_validate({"item": {"x": 1, "n": 2}}) == Box(item=Inner(x=1.0, n=2))
        assert alias.model_validate_json(b'{"item": {"x": 1, "n": 2}}').item == Inner(x=1, n=2)
        with pytest.raises(ValidationError) as exc:
            alias.model_validate({"item": {"x": 1}})
        assert problems(exc) == {"item.n": "field required"}
        assert alias.model_json_schema()["$defs"]["Inner"]["required"] == ["x", "n"]
    # the bare class validates the parameter as Any
    assert Box.model_validate({"item": {"x": 1}}).item == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "invalid JSON: Input data was truncated"),
        (b"", "invalid JSON: Input data was truncated"),
        (b'{"name": }', "invalid JSON: JSON is malformed"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_invalid_json(raw: bytes, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate_json(raw)
    [(loc, msg)] = exc.value.problems
    assert loc == ""
    assert msg.startswith(fragment)


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"[1]", "Expected `object`, got `array`"), (b"null", "Expected `object`, got `null`")],
)
def test_json_of_the_wrong_shape(raw: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate_json(raw)
    assert exc.value.problems == (("", message),)


def test_unknown_keys_are_ignored_by_default() -> None:
    value = Outer.model_validate({**GOOD, "colour": "red"})
    assert "colour" not in value.model_dump()


def test_join_loc() -> None:
    assert join_loc("", "a") == "a"
    assert join_loc("a", "s0") == "a.s0"
    assert join_loc("a", 0) == "a[0]"
    assert join_loc("members", "er.lumen") == 'members["er.lumen"]'
    assert join_loc("", "1x") == '["1x"]'


# ---- coercion: strict on purpose (docs/coercion.md) ---------------------------------------------
def test_ints_are_accepted_for_floats() -> None:
    value = Inner.model_validate({"x": 2, "n": 1})
    assert value.x == 2.0 and isinstance(value.x, float)
    value = Inner.model_validate_json(b'{"x": 2, "n": 1}')
    assert value.x == 2.0 and isinstance(value.x, float)


@pytest.mark.parametrize("call", ["python", "json"])
def test_integral_floats_are_refused_for_ints(call: str) -> None:
    doc = {"x": 1.0, "n": 2.0}
    with pytest.raises(ValidationError) as exc:
        if call == "python":
            Inner.model_validate(doc)
        else:
            Inner.model_validate_json(json.dumps(doc))
    assert problems(exc) == {"n": "Expected `int`, got `float`"}


@pytest.mark.parametrize("call", ["python", "json"])
def test_numbers_written_as_strings_are_refused(call: str) -> None:
    doc = {"x": "4.0", "n": "2"}
    with pytest.raises(ValidationError) as exc:
        if call == "python":
            Inner.model_validate(doc)
        else:
            Inner.model_validate_json(json.dumps(doc))
    assert problems(exc) == {
        "x": "Expected `float`, got `str`",
        "n": "Expected `int`, got `str`",
    }


def test_bools_are_not_numbers() -> None:
    with pytest.raises(ValidationError) as exc:
        Inner.model_validate({"x": True, "n": True})
    assert set(problems(exc)) == {"x", "n"}


# ---- dumping ---------------------------------------------------------------------------------
def test_model_dump_keeps_tuples_and_lists() -> None:
    dumped = Outer.model_validate(GOOD).model_dump()
    assert dumped == {
        "name": "a",
        "sizes": (1, 2),
        "inner": {"x": 1.0, "n": 2},
        "items": [{"x": 1.5, "n": 1}, {"x": 2.0, "n": 3}],
    }
    assert type(dumped["sizes"]) is tuple
    assert type(dumped["items"]) is list


@pytest.mark.parametrize(
    ("exclude", "keys"),
    [
        ("inner", {"name", "sizes", "items"}),
        ({"name", "sizes"}, {"inner", "items"}),
        (["items"], {"name", "sizes", "inner"}),
        ({"inner": True}, {"name", "sizes", "items"}),
        ({"inner": False}, {"name", "sizes", "inner", "items"}),
        (None, {"name", "sizes", "inner", "items"}),
    ],
)
def test_model_dump_exclude_forms(exclude: Any, keys: set[str]) -> None:
    assert set(Outer.model_validate(GOOD).model_dump(exclude=exclude)) == keys


@pytest.mark.parametrize("nested", [{"x"}, {"x": True}])
def test_model_dump_nested_exclude(nested: Any) -> None:
    dumped = Outer.model_validate(GOOD).model_dump(exclude={"inner": nested})
    assert dumped["inner"] == {"n": 2}
    assert dumped["items"][0] == {"x": 1.5, "n": 1}


def test_model_dump_json_round_trips_and_indents() -> None:
    value = Outer.model_validate(GOOD)
    text = value.model_dump_json()
    assert json.loads(text) == {**GOOD, "inner": {"x": 1.0, "n": 2}, "items": GOOD["items"]}
    assert Outer.model_validate_json(text) == value
    pretty = value.model_dump_json(indent=2)
    assert pretty.startswith('{\n  "name": "a"')
    assert json.loads(pretty) == json.loads(text)


def test_model_copy_update_replaces_fields_only() -> None:
    value = Outer.model_validate(GOOD)
    copy = value.model_copy(update={"name": "b"})
    assert copy.name == "b" and copy.inner is value.inner and value.name == "a"
    assert value.model_copy() == value and value.model_copy() is not value


def test_equality_and_hash() -> None:
    a = Inner.model_validate({"x": 1, "n": 1})
    b = Inner(x=1.0, n=1)
    assert a == b and hash(a) == hash(b)
    assert a != Inner(x=1.0, n=2)
    with pytest.raises(AttributeError):
        a.x = 3.0  # type: ignore[misc]


def test_model_json_schema() -> None:
    schema = Outer.model_json_schema()
    assert schema["$defs"]["Outer"]["required"] == ["name", "sizes", "inner"]
    assert schema["$defs"]["Inner"]["properties"]["n"] == {"type": "integer", "exclusiveMinimum": 0}


# ---- structure_equal ---------------------------------------------------------------------------
def _array(**changes: Any) -> ArraySpec[Any]:
    return ArraySpec.from_array(np.zeros((4, 6), dtype="uint8"), **changes)


def test_structure_equal_ignores_attributes() -> None:
    a = _array(attributes={"a": 1})
    assert structure_equal(a, _array(attributes={"b": 2}))
    assert not structure_equal(a, _array(chunks=(2, 2)))
    assert not structure_equal(a, ArraySpec.from_array(np.zeros((4, 6), dtype="uint16")))


def test_structure_equal_recurses_through_members() -> None:
    g1 = GroupSpec(attributes={"x": 1}, members={"s0": _array(), "sub": GroupSpec(members={})})
    g2 = GroupSpec(
        attributes={"y": 2},
        members={"s0": _array(attributes={"z": 3}), "sub": GroupSpec(attributes={"q": 1})},
    )
    assert structure_equal(g1, g2)
    assert structure_group_equal(g1, g2)
    assert not structure_equal(g1, GroupSpec(members={"s0": _array()}))
    changed = GroupSpec(members={"s0": _array(chunks=(1, 1)), "sub": GroupSpec()})
    assert not structure_equal(g1, changed)
    assert not structure_equal(g1, GroupSpec(members={"s0": GroupSpec(), "sub": GroupSpec()}))


def test_structure_equal_array_vs_group() -> None:
    assert not structure_equal(_array(), GroupSpec())
    assert not structure_equal(GroupSpec(), _array())
    assert not structure_equal(_array(), (4, 6))


# ---- chunks --------------------------------------------------------------------------------
BIG = np.zeros((1000, 1000, 100), dtype="uint16")
SMALL = np.zeros((500, 500, 50), dtype="uint16")


def test_normalize_chunks_auto_uses_the_largest_array_for_all() -> None:
    expected = auto_chunks(BIG.shape, BIG.dtype.itemsize)
    assert normalize_chunks("auto", [BIG, SMALL]) == (expected, expected)
    # the original took the first array; ours the largest, wherever it is (docs/coercion.md)
    assert normalize_chunks("auto", [SMALL, BIG]) == (expected, expected)
    assert math.prod(expected) * 2 <= 1 << 20


def test_normalize_chunks_tuple_of_ints_for_all() -> None:
    assert normalize_chunks((64, 64, 64), [BIG, SMALL, SMALL]) == ((64, 64, 64),) * 3


def test_normalize_chunks_one_tuple_per_array() -> None:
    assert normalize_chunks(((1, 2, 3), [4, 5, 6]), [BIG, SMALL]) == ((1, 2, 3), (4, 5, 6))


@pytest.mark.parametrize("chunks", [((1, 2, 3),), ((1, 2), (3, 4), (5, 6))])
def test_normalize_chunks_wrong_count(chunks: Any) -> None:
    with pytest.raises(ValueError, match=f"got {len(chunks)} chunk shapes for 2 arrays"):
        normalize_chunks(chunks, [BIG, SMALL])


def test_normalize_chunks_unknown_string() -> None:
    with pytest.raises(ValueError, match='chunks must be "auto"'):
        normalize_chunks("big", [BIG])  # type: ignore[arg-type]


def test_auto_chunks_small_arrays_are_one_chunk() -> None:
    assert auto_chunks((4, 4), 8) == (4, 4)
    assert auto_chunks((), 8) == ()
    assert auto_chunks((0, 10), 1) == (1, 10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=4),
    st.sampled_from([1, 2, 4, 8]),
)
def test_auto_chunks_fit_the_target(shape: list[int], itemsize: int) -> None:
    chunks = auto_chunks(shape, itemsize)
    assert len(chunks) == len(shape)
    assert all(1 <= c <= s for c, s in zip(chunks, shape, strict=True))
    assert math.prod(chunks) * itemsize <= 1 << 20 or max(chunks) == 1
    if math.prod(shape) * itemsize <= 1 << 20:
        assert chunks == tuple(shape)


def test_msgspec_struct_is_the_base() -> None:
    assert issubclass(Outer, msgspec.Struct)
    assert Outer.__struct_config__.frozen
