"""Every rule has a fast form (``__post_init__``, a boolean check) and a worded form
(``_problems``, a generator of findings): they must agree on every document, for every convention.

Documents are valid specs of each model, mutated at random leaves (hypothesis): the fast path
accepts a document exactly when the worded rules find no error in it, and when it refuses one,
the worded rules name a real problem (never the "no reason found" fallback).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellmap_schemas import _diagnose, base
from cellmap_schemas._diagnose import collect_rules
from cellmap_schemas.io.read import read_tree, run_sync
from cellmap_schemas.io.store import open_store
from cellmap_schemas.multiscale import cosem, neuroglancer_n5
from cellmap_schemas.multiscale.ome_ngff import v04, v05
from cellmap_schemas.multiscale.pyramid import (
    pyramid_ok,
    pyramid_problems,
    worded_pyramid_problems,
)
from cellmap_schemas.rules import severity_of

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cellmap-bucket"


def _tree(rel: str) -> dict[str, Any]:
    async def read() -> Any:
        async with open_store(str(EXAMPLE / rel)) as store:
            return await read_tree(store, "", 2)

    return json.loads(json.dumps(run_sync(read).spec))


def _pyramid() -> list[np.ndarray]:
    data = np.zeros((8, 8, 8), dtype="uint8")
    return [data, data[::2, ::2, ::2]]


SPECS: dict[str, tuple[Any, dict[str, Any]]] = {
    "cosem.Group": (cosem.Group, _tree("jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8")),
    "neuroglancer_n5.Group": (
        neuroglancer_n5.Group,
        _tree("jrc_hela-2/jrc_hela-2.n5/labels/mito_seg"),
    ),
    "cosem.Array": (cosem.Array, _tree("jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/s0")),
    "ome_ngff.v04.Group": (v04.Group, _tree("jrc_hela-2/jrc_hela-2.zarr/recon-1/em/fibsem-uint8")),
    "ome_ngff.v05.Group": (
        v05.Group,
        json.loads(
            v05.Group.from_arrays(
                _pyramid(), ["s0", "s1"], "zyx", [(4.0,) * 3, (8.0,) * 3], units="nanometer"
            ).model_dump_json()
        ),
    ),
}

VALUES = st.one_of(
    st.sampled_from([0, 1, 2, -1, 3.5, 1e9, "nm", "um", "x", "C", "F", None, True, [], {}]),
    st.lists(st.integers(0, 4), min_size=0, max_size=4),
    st.lists(st.floats(0.5, 16, allow_nan=False), min_size=1, max_size=4),
    st.lists(st.sampled_from(["x", "y", "z", "nm", "um"]), min_size=1, max_size=4),
)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _leaves(v, (*path, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if isinstance(doc, dict) and value is _DELETE:
        del doc[path[-1]]
    elif value is not _DELETE:
        doc[path[-1]] = value


_DELETE = object()


@st.composite
def _mutated(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(spec)
    for _ in range(draw(st.integers(1, 3))):
        leaves = _leaves(doc)
        if not leaves:
            break
        path = draw(st.sampled_from(leaves))
        value = draw(st.one_of(VALUES, st.just(_DELETE)))
        _set(doc, path, value)
    return doc


def _errors(found: list[Any]) -> list[Any]:
    return [p for p in found if severity_of(p.rule) == "error"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_unmutated_spec_is_valid(name: str) -> None:
    model, spec = SPECS[name]
    value, found = base.judge(spec, model)
    assert value is not None and _errors(found) == [], found


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_agrees_with_the_worded_rules(name: str, data: st.DataObject) -> None:
    model, spec = SPECS[name]
    doc = data.draw(_mutated(spec))
    value, found = base.judge(doc, model)
    if value is None:
        # refused: the worded rules name at least one real error
        errors = _errors(found)
        assert errors, found
        assert all(e.msg != "document does not match the model" for e in errors), errors
    else:
        # accepted: the worded rules, run over the whole converted tree, find no error either,
        # and the warnings judge found by asking only the structs that can warn are all of them
        collected: list[Any] = []
        collect_rules(value, "", collected)
        assert _errors(collected) == [], collected
        assert sorted(found) == sorted(collected), (found, collected)


# ---- the diagnosis: a node refused only by rules is built past them in one conversion ---------
# (``_built_leniently``); the field-by-field walk it replaces is the reference: the same problems,
# in the same order, for any document.
def _field_by_field(doc: Any, model: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    with monkeypatch.context() as m:
        m.setattr(_diagnose, "_built_leniently", lambda obj, tp: _diagnose._INVALID)
        return base.judge(doc, model)[1]


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_one_pass_diagnosis_finds_what_the_field_by_field_walk_finds(
    name: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, spec = SPECS[name]
    doc = data.draw(_mutated(spec))
    assert base.judge(doc, model)[1] == _field_by_field(doc, model, monkeypatch)


def test_rules_broken_deep_in_two_members_and_above_them_are_all_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = copy.deepcopy(SPECS["cosem.Group"][1])
    s0 = doc["members"]["s0"]["attributes"]
    s0["pixelResolution"]["unit"] = "um"  # COSEM003, inside s0's attributes
    doc["members"]["s1"]["attributes"]["transform"]["scale"].append(1.0)  # COSEM002, in s1
    doc["attributes"]["multiscales"][0]["datasets"][0]["transform"]["scale"][0] = 99.0  # COSEM008
    value, found = base.judge(doc, cosem.Group)
    assert value is None
    where = [(p.rule, p.loc) for p in found]
    assert ("COSEM003", "members.s0.attributes.transform.units[0]") in where, where
    assert ("COSEM002", "members.s1.attributes.transform.scale") in where, where
    assert any(rule == "COSEM008" for rule, _ in where), where
    assert found == _field_by_field(doc, cosem.Group, monkeypatch)
    # a type error beyond the broken rules: the parts are walked one by one, and the members'
    # rules are still reported beside it (the group's own need the group built: not judged)
    doc["members"]["s2"]["shape"] = "big"
    _, with_type_error = base.judge(doc, cosem.Group)
    where = [(p.rule, p.loc) for p in with_type_error]
    assert ("ZARR001", "members.s2.shape") in where, where
    assert ("COSEM003", "members.s0.attributes.transform.units[0]") in where, where
    assert ("COSEM002", "members.s1.attributes.transform.scale") in where, where
    assert with_type_error == _field_by_field(doc, cosem.Group, monkeypatch)
    # the lenient conversion leaves nothing behind: outside it, a broken rule still refuses
    with pytest.raises(base.RuleViolation):
        cosem.STTransform(axes=("z",), units=("nm", "nm"), translate=(0.0,), scale=(1.0,))


def test_a_warning_in_a_part_does_not_hide_the_error_of_the_node_itself() -> None:
    model, spec = SPECS["ome_ngff.v05.Group"]
    doc = copy.deepcopy(spec)
    doc["node_type"] = 0  # the group's own tag: refused
    doc["attributes"]["ome"]["multiscales"][0]["axes"][1]["unit"] = "nm"  # a SHOULD (OME008)
    value, found = base.judge(doc, model)
    assert value is None
    assert [(p.rule, p.loc) for p in found] == [
        ("OME008", "attributes.ome.multiscales[0].axes[1].unit"),
        ("ZARR001", "node_type"),
    ]


# ---- cross-level pyramid rules: pyramid_ok (fast) and worded_pyramid_problems (worded) --------
# The fast form may only say "clean" when the worded form finds nothing; on a fully populated
# pyramid (every level an array with factor, scale and offset) it says "clean" exactly then.
PYRAMID_CONVENTIONS = {"cosem.Group": "cosem", "neuroglancer_n5.Group": "neuroglancer_n5"}
PYRAMID_FORMATS = {"cosem.Group": "n5", "neuroglancer_n5.Group": "n5"}
# OME-NGFF declares no factors: both forms derive them from the scales.
PYRAMID_CONVENTIONS |= {"ome_ngff.v04.Group": "ome_ngff", "ome_ngff.v05.Group": "ome_ngff"}
PYRAMID_FORMATS |= {"ome_ngff.v04.Group": "zarr2", "ome_ngff.v05.Group": "zarr3"}


def _pyramid(
    convention: str,
    shape0: list[int],
    factors: list[list[int]],
    scale0: list[float],
    round_up: list[bool],
    order: str,
) -> dict[str, Any]:
    """A consistent pyramid spec dict (vectors in array order in, stored as the convention
    stores them)."""
    datasets = []
    members: dict[str, Any] = {}
    for i, f in enumerate(factors):
        shape = [
            math.ceil(n / k) if up else n // k for n, k, up in zip(shape0, f, round_up, strict=True)
        ]
        scale = [s * k for s, k in zip(scale0, f, strict=True)]
        translate = [(s - s0) / 2 for s, s0 in zip(scale, scale0, strict=True)]
        flip = order == "F"
        tx = {
            "axes": ["x", "y", "z"][: len(shape0)],
            "order": order,
            "scale": scale[::-1] if flip else scale,
            "translate": translate[::-1] if flip else translate,
            "units": ["nm"] * len(shape0),
        }
        datasets.append({"path": f"s{i}", "transform": tx})
        members[f"s{i}"] = {
            "shape": shape,
            "dtype": "|u1",
            "attributes": {"pixelResolution": {"dimensions": scale[::-1], "unit": "nm"}},
        }
    attrs: dict[str, Any] = {"scales": [f[::-1] for f in factors]}
    if convention == "cosem":
        attrs["multiscales"] = [{"datasets": datasets}]
    return {"attributes": attrs, "members": members}


@st.composite
def _pyramids(draw: st.DrawFn, convention: str) -> dict[str, Any]:
    rank = draw(st.integers(1, 4))
    levels = draw(st.integers(1, 5))
    shape0 = draw(st.lists(st.integers(1, 5000), min_size=rank, max_size=rank))
    steps = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    factors = [[s**i for s in steps] for i in range(levels)]
    scale0 = draw(
        st.lists(st.sampled_from([1.0, 4.0, 5.24, 3.1, 0.5]), min_size=rank, max_size=rank)
    )
    round_up = draw(st.lists(st.booleans(), min_size=rank, max_size=rank))
    return _pyramid(
        convention, shape0, factors, scale0, round_up, draw(st.sampled_from(["C", "F"]))
    )


_NUMBERS = st.one_of(
    st.integers(0, 6000), st.floats(0.01, 100, allow_nan=False), st.just(-1), st.just(0)
)


def _numeric_leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _numeric_leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _numeric_leaves(v, (*path, i))]
    return (
        [path] if isinstance(doc, int | float) or path[-1:] in (("dtype",), ("data_type",)) else []
    )


def _perturb(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(spec)
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(_numeric_leaves(doc)))
        target = doc
        for key in path[:-1]:
            target = target[key]
        if path[-1] == "dtype":
            target[path[-1]] = draw(st.sampled_from(["|u1", "<u2", "|i1"]))
        elif path[-1] == "data_type":
            target[path[-1]] = draw(st.sampled_from(["uint8", "uint16", "int8"]))
        elif "shape" in path:  # a negative length is no shape: the level would be skipped
            target[path[-1]] = draw(st.integers(0, 6000))
        else:
            target[path[-1]] = draw(_NUMBERS)
    return doc


@pytest.mark.parametrize("name", sorted(PYRAMID_CONVENTIONS))
def test_the_example_pyramids_take_the_fast_form(name: str) -> None:
    _, spec = SPECS[name]
    fmt: Any = PYRAMID_FORMATS[name]
    assert pyramid_ok(spec, fmt, PYRAMID_CONVENTIONS[name])  # type: ignore[arg-type]
    assert list(worded_pyramid_problems(spec, fmt, PYRAMID_CONVENTIONS[name])) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("convention", ["cosem", "neuroglancer_n5"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_form_agrees_on_populated_pyramids(convention: Any, data: st.DataObject) -> None:
    spec = _perturb(data.draw, data.draw(_pyramids(convention)))
    worded = list(worded_pyramid_problems(spec, "n5", convention))
    ok = pyramid_ok(spec, "n5", convention)
    positive = all(
        v > 0 for f in spec["attributes"]["scales"] for v in f
    )  # a non-positive factor makes the worded form skip a check the fast form refuses
    if positive:
        assert ok == (worded == []), worded
    elif ok:
        assert worded == []
    assert list(pyramid_problems(spec, "n5", convention)) == worded


@pytest.mark.parametrize("name", sorted(PYRAMID_CONVENTIONS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_form_never_hides_a_problem(name: str, data: st.DataObject) -> None:
    _, spec = SPECS[name]
    doc = data.draw(_mutated(spec))
    convention: Any = PYRAMID_CONVENTIONS[name]
    fmt: Any = PYRAMID_FORMATS[name]
    worded = list(worded_pyramid_problems(doc, fmt, convention))
    if pyramid_ok(doc, fmt, convention):
        assert worded == []
    assert list(pyramid_problems(doc, fmt, convention)) == worded


def _ome_pyramid(
    version: str,
    shape0: list[int],
    factors: list[list[int]],
    scale0: list[float],
    round_up: list[bool],
    offsets: bool,
    extra: bool = False,
) -> dict[str, Any]:
    """A consistent OME-NGFF 0.4 or 0.5 pyramid spec dict (with or without translations; with
    ``extra``, a second scale and translation after the first, which are the ones that count)."""
    datasets = []
    members: dict[str, Any] = {}
    for i, f in enumerate(factors):
        shape = [
            math.ceil(n / k) if up else n // k for n, k, up in zip(shape0, f, round_up, strict=True)
        ]
        scale = [s * k for s, k in zip(scale0, f, strict=True)]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if offsets:
            translation = [(s - s0) / 2 for s, s0 in zip(scale, scale0, strict=True)]
            transforms.append({"type": "translation", "translation": translation})
        if extra:
            transforms.append({"type": "scale", "scale": [v * 3 for v in scale]})
            transforms.append({"type": "translation", "translation": [1.5] * len(scale)})
        datasets.append({"path": f"s{i}", "coordinateTransformations": transforms})
        members[f"s{i}"] = (
            {"shape": shape, "dtype": "|u1"}
            if version == "0.4"
            else {"node_type": "array", "shape": shape, "data_type": "uint8"}
        )
    axes = [{"name": name, "type": "space"} for name in "zyxw"[: len(shape0)]]
    multiscales = [{"axes": axes, "datasets": datasets}]
    if version == "0.4":
        return {"attributes": {"multiscales": multiscales}, "members": members}
    ome = {"version": "0.5", "multiscales": multiscales}
    return {"node_type": "group", "attributes": {"ome": ome}, "members": members}


@st.composite
def _ome_pyramids(draw: st.DrawFn, version: str) -> dict[str, Any]:
    rank = draw(st.integers(1, 4))
    levels = draw(st.integers(1, 5))
    shape0 = draw(st.lists(st.integers(1, 5000), min_size=rank, max_size=rank))
    steps = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    scale0 = draw(
        st.lists(st.sampled_from([1.0, 4.0, 5.24, 3.1, 0.5]), min_size=rank, max_size=rank)
    )
    round_up = draw(st.lists(st.booleans(), min_size=rank, max_size=rank))
    factors = [[s**i for s in steps] for i in range(levels)]
    offsets, extra = draw(st.booleans()), draw(st.booleans())
    return _ome_pyramid(version, shape0, factors, scale0, round_up, offsets, extra)


@pytest.mark.parametrize(("version", "fmt"), [("0.4", "zarr2"), ("0.5", "zarr3")])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_form_agrees_on_populated_ome_pyramids(
    version: str, fmt: Any, data: st.DataObject
) -> None:
    spec = _perturb(data.draw, data.draw(_ome_pyramids(version)))
    worded = list(worded_pyramid_problems(spec, fmt, "ome_ngff"))
    ok = pyramid_ok(spec, fmt, "ome_ngff")
    multiscale = _get_multiscale(spec)
    positive = all(
        v > 0
        for ds in multiscale["datasets"]
        for t in ds["coordinateTransformations"]
        if t["type"] == "scale"
        for v in t["scale"]
    )  # a non-positive scale makes the worded form skip a check the fast form refuses
    if positive:
        assert ok == (worded == []), worded
    elif ok:
        assert worded == []
    assert list(pyramid_problems(spec, fmt, "ome_ngff")) == worded


def _get_multiscale(spec: dict[str, Any]) -> dict[str, Any]:
    attrs = spec["attributes"]
    return attrs.get("ome", attrs)["multiscales"][0]  # type: ignore[no-any-return]


# ---- which models may warn --------------------------------------------------------------------
def _warns_by_type_info(info: Any, seen: set[int]) -> bool:
    """The reference: msgspec's own view of the type tree (slow: ~25 ms for the registry)."""
    import msgspec

    if id(info) in seen:
        return False
    seen.add(id(info))
    mi = msgspec.inspect
    if isinstance(info, mi.StructType):
        return bool(getattr(info.cls, "_warns", False)) or any(
            _warns_by_type_info(f.type, seen) for f in info.fields
        )
    if isinstance(info, mi.CustomType):
        members = getattr(info.cls, "__cellmap_members__", ())
        return any(_warns_by_type_info(mi.type_info(m), seen) for m in members)
    subs: list[Any] = []
    for attr in ("item_type", "value_type", "types", "item_types"):
        sub = getattr(info, attr, None)
        if sub is not None:
            subs.extend(sub if isinstance(sub, tuple) else (sub,))
    return any(_warns_by_type_info(t, seen) for t in subs)


def test_may_warn_agrees_with_msgspecs_view_of_every_model() -> None:
    import msgspec

    from cellmap_schemas.multiscale.ome_ngff._common import Axis, Dataset
    from cellmap_schemas.registry import MODELS
    from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec

    models = [i.load() for i in MODELS.values()]
    models += [ArraySpec, GroupSpec, ArraySpec[Axis], GroupSpec[v04.GroupAttrs], Axis, Dataset]
    flags = {m: base.may_warn(m) for m in models}
    assert flags == {m: _warns_by_type_info(msgspec.inspect.type_info(m), set()) for m in models}
    assert any(flags.values()) and not all(flags.values())  # both answers occur


@pytest.mark.parametrize("convention", ["cosem", "neuroglancer_n5"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_remembered_pyramids_are_told_apart_as_the_fast_form_tells_them(
    convention: Any, data: st.DataObject
) -> None:
    """The fast form remembers pyramids by what it reads of them: a pyramid remembered must
    never answer for one that differs in anything the fast form reads (``1`` / ``1.0`` /
    ``true``, a level's order, data type or shape)."""
    from cellmap_schemas.multiscale import _pyramid_fast

    spec = data.draw(_pyramids(convention))
    other = _perturb(data.draw, spec)
    if data.draw(st.booleans()):  # numbers of another JSON type, same value
        level = data.draw(st.sampled_from(sorted(other["members"])))
        shape = other["members"][level]["shape"]
        other["members"][level]["shape"] = [
            data.draw(st.sampled_from([float(n), True])) for n in shape
        ]
    if data.draw(st.booleans()):
        level = data.draw(st.sampled_from(sorted(other["members"])))
        other["members"][level]["dtype"] = data.draw(st.sampled_from([None, math.nan, "<u2"]))

    def alone(doc: dict[str, Any]) -> bool:
        _pyramid_fast._KNOWN.clear()
        return pyramid_ok(doc, "n5", convention)

    expected = alone(spec), alone(other)
    pyramid_ok(spec, "n5", convention)  # remembered, then asked about the other
    assert pyramid_ok(other, "n5", convention) == expected[1]
    _pyramid_fast._KNOWN.clear()
    pyramid_ok(other, "n5", convention)
    assert pyramid_ok(spec, "n5", convention) == expected[0]


def test_a_remembered_pyramid_with_a_null_data_type_does_not_answer_for_nan() -> None:
    """JSON writes NaN as null: a data type that is NaN (bare ``NaN`` in a document) must not
    be taken for a missing one, which the fast form skips."""
    from cellmap_schemas.multiscale import _pyramid_fast

    missing = _pyramid("cosem", [64, 64], [[1, 1], [2, 2]], [4.0, 4.0], [False, False], "C")
    missing["members"]["s1"]["dtype"] = None
    nan = copy.deepcopy(missing)
    nan["members"]["s1"]["dtype"] = math.nan
    _pyramid_fast._KNOWN.clear()
    assert pyramid_ok(missing, "n5", "cosem")
    assert not pyramid_ok(nan, "n5", "cosem")
    assert list(worded_pyramid_problems(nan, "n5", "cosem"))
