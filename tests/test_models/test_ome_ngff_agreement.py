"""Our OME-NGFF verdicts next to those of an independent validator, ome-zarr-models.

Every case is judged by both libraries, live. Where the verdicts differ, the case says why (the
same reasons are listed in docs/ome-ngff.md); every other case must agree.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ome_zarr_models.v04.image import Image as TheirImage04
from ome_zarr_models.v04.image import ImageAttrs as TheirAttrs04
from ome_zarr_models.v04.image_label import ImageLabelAttrs as TheirLabelAttrs04
from ome_zarr_models.v05.image import Image as TheirImage05
from ome_zarr_models.v05.image import ImageAttrs as TheirAttrs05
from pydantic import ValidationError as PydanticValidationError

from cellmap_schemas.errors import ValidationError
from cellmap_schemas.multiscale.ome_ngff import v04, v05

DATA = Path(__file__).parent.parent / "data"
SPEC = DATA / "ome_ngff"
WILD = DATA / "wild"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# ---- how each library is asked -----------------------------------------------------------------
def ours(model: Any, doc: Any) -> bool:
    try:
        model.model_validate(doc)
    except ValidationError:
        return False
    return True


def theirs(model: Any, doc: Any) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. their "swapping transforms" warning
        try:
            model.model_validate(doc)
        except (PydanticValidationError, ValueError):
            return False
    return True


def v2_to_pydantic_zarr(node: dict[str, Any]) -> dict[str, Any]:
    """Our Zarr v2 spec dict in pydantic-zarr's spelling (``zarr_format`` for ``zarr_version``)."""
    out = {k: v for k, v in node.items() if k != "zarr_version"}
    out["zarr_format"] = 2
    if "members" in out:
        out["members"] = {k: v2_to_pydantic_zarr(v) for k, v in out["members"].items()}
    return out


@dataclass(frozen=True)
class Kind:
    """A pair of models that judge the same kind of document, and how each receives it."""

    ours: Any
    theirs: Any
    to_theirs: Callable[[Any], Any] = lambda doc: doc


ATTRS04 = Kind(v04.GroupAttrs, TheirAttrs04)
ATTRS05 = Kind(v05.GroupAttrs, TheirAttrs05, lambda doc: doc.get("ome", {}))
LABEL04 = Kind(v04.ImageLabelAttrs, TheirLabelAttrs04)
GROUP04 = Kind(v04.Group, TheirImage04, v2_to_pydantic_zarr)
GROUP05 = Kind(v05.Group, TheirImage05)


@dataclass(frozen=True)
class Case:
    id: str
    kind: Kind
    doc: Any
    ours_valid: bool
    theirs_valid: bool
    why: str = ""  # required when the verdicts differ


# ---- documents ---------------------------------------------------------------------------------
def ms(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "0.4",
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [
            {
                "path": "s0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 1.0, 1.0]},
                    {"type": "translation", "translation": [0.0, 0.0, 0.0]},
                ],
            },
            {
                "path": "s1",
                "coordinateTransformations": [{"type": "scale", "scale": [2.0, 2.0, 2.0]}],
            },
        ],
    }
    doc.update(over)
    return doc


def attrs(**over: Any) -> dict[str, Any]:
    return {"multiscales": [ms(**over)]}


def axes_of(*spec: tuple[str, str | None, str | None]) -> dict[str, Any]:
    axes = []
    for name, type_, unit in spec:
        a: dict[str, Any] = {"name": name}
        if type_ is not None:
            a["type"] = type_
        if unit is not None:
            a["unit"] = unit
        axes.append(a)
    ones = [1.0] * len(axes)
    return attrs(
        axes=axes,
        datasets=[{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": ones}]}],
    )


def transforms(*ts: dict[str, Any]) -> dict[str, Any]:
    return attrs(datasets=[{"path": "s0", "coordinateTransformations": list(ts)}])


S3 = {"type": "scale", "scale": [1.0, 1.0, 1.0]}
T3 = {"type": "translation", "translation": [0.0, 0.0, 0.0]}


def v2_array(shape: tuple[int, ...], dtype: str = "|u1") -> dict[str, Any]:
    return {
        "zarr_version": 2,
        "attributes": {},
        "shape": list(shape),
        "chunks": list(shape),
        "dtype": dtype,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": None,
    }


def group04(attributes: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    return {"zarr_version": 2, "attributes": attributes, "members": members}


def v3_array(shape: tuple[int, ...], names: str | None) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "attributes": {},
        "shape": list(shape),
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "storage_transformers": [],
        "dimension_names": None if names is None else list(names),
    }


def group05(multiscales: list[dict[str, Any]], members: dict[str, Any]) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "multiscales": multiscales}},
        "members": members,
    }


def ms05(**over: Any) -> dict[str, Any]:
    out = ms(**over)
    out.pop("version")
    return out


def label(**over: Any) -> dict[str, Any]:
    doc = load(SPEC / "v04_image_label_colors_properties.json")
    doc["image-label"].update(over)
    doc["multiscales"] = [ms()]
    return doc


def wild(name: str) -> Any:
    return load(WILD / name)


IRREGULAR = "irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json"

CASES = [
    # Published examples of the specification.
    Case(
        "spec 0.4 multiscales_example",
        ATTRS04,
        load(SPEC / "v04_multiscales_example.json"),
        True,
        True,
    ),
    Case(
        "spec 0.4 multiscales_transformations (units typo)",
        ATTRS04,
        load(SPEC / "v04_multiscales_transformations.json"),
        True,
        True,
    ),
    Case(
        "spec 0.5 multiscales_example",
        ATTRS05,
        load(SPEC / "v05_multiscales_example.zarr.json")["attributes"],
        True,
        True,
    ),
    Case("spec 0.4 image-label colors_properties", LABEL04, label(), True, True),
    # Cellmap documents from the wild.
    Case(
        "cellmap zattrs ome-only",
        ATTRS04,
        wild("reconstructed__zarr_em_group_zattrs__ome-only.json"),
        True,
        True,
    ),
    Case(
        "cellmap zattrs with legacy n5 keys",
        ATTRS04,
        wild("reconstructed__zarr_em_group_zattrs__cellmap-n5-to-zarr_with_legacy_n5_keys.json"),
        True,
        True,
    ),
    Case(
        "cellmap crop class group (instance, null name/type/metadata)",
        ATTRS04,
        wild("reconstructed__crop_class_group_zattrs_instance.json"),
        True,
        True,
    ),
    Case(
        "cellmap crop class group (semantic)",
        ATTRS04,
        wild("reconstructed__crop_class_group_zattrs_semantic.json"),
        True,
        True,
    ),
    Case(
        "cellmap zarrify 0.5",
        ATTRS05,
        wild("reconstructed__zarr3_group_zarr.json__zarrify_ome0.5.json")["attributes"],
        True,
        True,
    ),
    Case(
        "zarr3 multiscales without ome namespace, as 0.5",
        ATTRS05,
        wild(IRREGULAR)["attributes"],
        False,
        False,
    ),
    Case(
        "zarr3 multiscales without ome namespace, attributes as 0.4",
        ATTRS04,
        wild(IRREGULAR)["attributes"],
        True,
        True,
    ),
    Case(
        "cosem group (multiscales in COSEM shape)",
        ATTRS04,
        wild("cosem_n5_multiscale_group__cosem-flows2021_emulated.json").get("attributes")
        or wild("cosem_n5_multiscale_group__cosem-flows2021_emulated.json"),
        False,
        False,
    ),
    # One case per rule.
    Case("one axis", ATTRS04, axes_of(("x", "space", None)), False, False),
    Case(
        "six axes",
        ATTRS04,
        axes_of(
            ("t", "time", None),
            ("c", "channel", None),
            ("q", "foo", None),
            ("z", "space", None),
            ("y", "space", None),
            ("x", "space", None),
        ),
        False,
        False,
    ),
    Case(
        "duplicate axis names",
        ATTRS04,
        axes_of(("x", "space", None), ("x", "space", None)),
        False,
        False,
    ),
    Case(
        "one space axis", ATTRS04, axes_of(("t", "time", None), ("x", "space", None)), False, False
    ),
    Case("four space axes", ATTRS04, axes_of(*((n, "space", None) for n in "wzyx")), False, False),
    Case(
        "two time axes",
        ATTRS04,
        axes_of(
            ("t", "time", None), ("u", "time", None), ("y", "space", None), ("x", "space", None)
        ),
        False,
        False,
    ),
    Case(
        "two channel axes",
        ATTRS04,
        axes_of(
            ("c", "channel", None),
            ("d", "channel", None),
            ("y", "space", None),
            ("x", "space", None),
        ),
        False,
        False,
    ),
    Case(
        "custom axis type",
        ATTRS04,
        axes_of(("q", "angle", None), ("y", "space", None), ("x", "space", None)),
        True,
        True,
    ),
    Case(
        "untyped axis",
        ATTRS04,
        axes_of(("q", None, None), ("y", "space", None), ("x", "space", None)),
        True,
        True,
    ),
    Case(
        "two custom axes",
        ATTRS04,
        axes_of(
            ("q", "angle", None), ("r", "angle", None), ("y", "space", None), ("x", "space", None)
        ),
        False,
        False,
    ),
    Case(
        "channel after space",
        ATTRS04,
        axes_of(("y", "space", None), ("x", "space", None), ("c", "channel", None)),
        False,
        False,
    ),
    Case(
        "time after channel",
        ATTRS04,
        axes_of(
            ("c", "channel", None), ("t", "time", None), ("y", "space", None), ("x", "space", None)
        ),
        False,
        False,
    ),
    Case(
        "space unit abbreviation nm",
        ATTRS04,
        axes_of(("y", "space", "nm"), ("x", "space", "nm")),
        True,  # a SHOULD: valid, with warning OME008
        True,
    ),
    Case(
        "time unit abbreviation ms",
        ATTRS04,
        axes_of(("t", "time", "ms"), ("y", "space", None), ("x", "space", None)),
        True,  # a SHOULD: valid, with warning OME009
        True,
    ),
    Case(
        "free unit on a channel axis",
        ATTRS04,
        axes_of(("c", "channel", "nm"), ("y", "space", None), ("x", "space", None)),
        True,
        True,
    ),
    Case(
        "axis name not a string",
        ATTRS04,
        axes_of((7, "space", None), ("x", "space", None)),  # type: ignore[arg-type]
        False,
        True,
        'the 0.4 JSON schema declares axis "name" a string; ome-zarr-models 0.4 accepts any JSON',
    ),
    Case("scale only", ATTRS04, transforms(S3), True, True),
    Case("scale then translation", ATTRS04, transforms(S3, T3), True, True),
    Case("no scale", ATTRS04, transforms(T3), False, False),
    Case("two scales", ATTRS04, transforms(S3, S3), False, False),
    Case("two translations", ATTRS04, transforms(S3, T3, T3), False, False),
    Case("no transformations", ATTRS04, transforms(), False, False),
    Case(
        "translation before scale",
        ATTRS04,
        transforms(T3, S3),
        False,
        False,
    ),
    Case("identity transformation", ATTRS04, transforms(S3, {"type": "identity"}), False, False),
    Case(
        "scale length differs from axes",
        ATTRS04,
        transforms({"type": "scale", "scale": [1.0, 1.0]}),
        False,
        False,
    ),
    Case(
        "translation length differs",
        ATTRS04,
        transforms(S3, {"type": "translation", "translation": [0.0]}),
        False,
        False,
    ),
    Case(
        "scale given by path",
        ATTRS04,
        transforms({"type": "scale", "path": "scale.bin"}),
        False,
        True,
        'the 0.4 JSON schema requires the "scale" list; ome-zarr-models also accepts the binary '
        '"path" form of the #trafo-md table',
    ),
    Case(
        "multiscale-level transformations",
        ATTRS04,
        attrs(coordinateTransformations=[S3, T3]),
        True,
        True,
    ),
    Case(
        "multiscale-level translation only",
        ATTRS04,
        attrs(coordinateTransformations=[T3]),
        False,
        False,
    ),
    Case("empty datasets", ATTRS04, attrs(datasets=[]), False, False),
    Case(
        "datasets coarse to fine",
        ATTRS04,
        attrs(datasets=list(reversed(ms()["datasets"]))),
        False,
        False,
    ),
    Case(
        "no version (SHOULD)",
        ATTRS04,
        {"multiscales": [{k: v for k, v in ms().items() if k != "version"}]},
        True,
        True,
    ),
    Case("version 0.5 in a 0.4 multiscale", ATTRS04, attrs(version="0.5"), False, False),
    Case(
        "metadata not an object",
        ATTRS04,
        attrs(metadata=["gaussian"]),
        False,
        True,
        'the spec says "metadata" contains a dictionary; ome-zarr-models accepts any JSON',
    ),
    Case("empty multiscales", ATTRS04, {"multiscales": []}, False, False),
    Case(
        "duplicated multiscales",
        ATTRS04,
        {"multiscales": [ms(), ms()]},
        False,
        True,
        'the 0.4 JSON schema sets "uniqueItems" on multiscales; ome-zarr-models does not check it',
    ),
    # image-label.
    Case(
        "colour without rgba",
        LABEL04,
        label(colors=[{"label-value": 1}, {"label-value": 4}]),
        True,
        False,
        'the spec says the "rgba" key MAY be present; ome-zarr-models requires the key',
    ),
    Case(
        "rgba of three",
        LABEL04,
        label(colors=[{"label-value": 1, "rgba": [0, 0, 0]}], properties=None),
        False,
        False,
    ),
    Case(
        "rgba out of range",
        LABEL04,
        label(colors=[{"label-value": 1, "rgba": [0, 0, 0, 300]}], properties=None),
        False,
        False,
    ),
    Case(
        "duplicate label-value",
        LABEL04,
        label(
            colors=[
                {"label-value": 1, "rgba": [0, 0, 0, 0]},
                {"label-value": 1, "rgba": [0, 0, 0, 0]},
            ],
            properties=None,
        ),
        False,
        False,
    ),
    Case(
        "colors and properties for different values",
        LABEL04,
        label(properties=[{"label-value": 9}]),
        True,
        False,
        "the spec asks no agreement between the label-values of colors and properties; "
        "ome-zarr-models requires the same set",
    ),
    # Groups.
    Case(
        "0.4 group valid",
        GROUP04,
        group04(attrs(), {"s0": v2_array((8, 8, 8)), "s1": v2_array((4, 4, 4))}),
        True,
        True,
    ),
    Case(
        "0.4 group missing array",
        GROUP04,
        group04(attrs(), {"s0": v2_array((8, 8, 8))}),
        False,
        False,
    ),
    Case(
        "0.4 group dataset is a group",
        GROUP04,
        group04(attrs(), {"s0": v2_array((8, 8, 8)), "s1": group04({}, {})}),
        False,
        False,
    ),
    Case(
        "0.4 group wrong dimensionality",
        GROUP04,
        group04(attrs(), {"s0": v2_array((8, 8, 8)), "s1": v2_array((4, 4))}),
        False,
        False,
    ),
    Case(
        "0.5 group valid",
        GROUP05,
        group05([ms05()], {"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), "zyx")}),
        True,
        True,
    ),
    Case(
        "0.5 group missing array",
        GROUP05,
        group05([ms05()], {"s0": v3_array((8, 8, 8), "zyx")}),
        False,
        False,
    ),
    Case(
        "0.5 group wrong dimensionality",
        GROUP05,
        group05([ms05()], {"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4), "yx")}),
        False,
        False,
    ),
    Case(
        "0.5 group without dimension_names",
        GROUP05,
        group05([ms05()], {"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), None)}),
        False,
        False,
    ),
    Case(
        "0.5 group dimension_names differ",
        GROUP05,
        group05([ms05()], {"s0": v3_array((8, 8, 8), "zyx"), "s1": v3_array((4, 4, 4), "xyz")}),
        False,
        False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_agreement_with_ome_zarr_models(case: Case) -> None:
    doc = copy.deepcopy(case.doc)
    got_ours = ours(case.kind.ours, doc)
    got_theirs = theirs(case.kind.theirs, case.kind.to_theirs(copy.deepcopy(case.doc)))
    assert (got_ours, got_theirs) == (case.ours_valid, case.theirs_valid)
    assert (got_ours == got_theirs) == (not case.why), "a disagreement needs a reason, and only one"


def test_every_spec_example_and_wild_ome_document_is_judged() -> None:
    judged = {c.id for c in CASES}
    assert {
        "spec 0.4 multiscales_example",
        "spec 0.4 multiscales_transformations (units typo)",
        "spec 0.5 multiscales_example",
        "cellmap zattrs ome-only",
        "cellmap zattrs with legacy n5 keys",
        "cellmap crop class group (instance, null name/type/metadata)",
        "cellmap crop class group (semantic)",
        "cellmap zarrify 0.5",
        "zarr3 multiscales without ome namespace, as 0.5",
    } <= judged


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_what_we_write_is_read_by_ome_zarr_models(version: str, tmp_path: Path) -> None:
    import numpy as np
    import zarr

    module, their_image = (v04, TheirImage04) if version == "0.4" else (v05, TheirImage05)
    base = np.arange(2 * 8 * 8, dtype="uint8").reshape(2, 8, 8)
    arrays = [base, base[:, ::2, ::2]]
    group = module.Group.from_arrays(
        arrays,
        ["0", "1"],
        ["c", "y", "x"],
        [(1.0, 0.5, 0.5), (1.0, 1.0, 1.0)],
        units=[None, "micrometer", "micrometer"],
    )
    url = str(tmp_path / "image.zarr")
    handle = group.to_zarr(url)
    for path, data in zip(["0", "1"], arrays, strict=True):
        handle[path][...] = data
    image = their_image.from_zarr(zarr.open_group(url, mode="r"))
    their_ms = image.ome_attributes.multiscales[0]
    assert [a.name for a in their_ms.axes] == ["c", "y", "x"]
    assert [a.type for a in their_ms.axes] == ["channel", "space", "space"]
    assert [d.path for d in their_ms.datasets] == ["0", "1"]
    assert np.array_equal(zarr.open_array(f"{url}/1", mode="r")[...], arrays[1])
