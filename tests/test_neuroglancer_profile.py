"""Neuroglancer readability (NGL001-NGL014): a broken hierarchy and its clean twin per rule.

The hierarchies are those of ``test_pyramid`` (COSEM N5, OME-NGFF 0.4 on Zarr v2, OME-NGFF 0.5
on Zarr v3), written to disk and read back with ``read_tree``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cellmap_schemas.neuroglancer import neuroglancer_problems
from cellmap_schemas.rules import RULES, severity_of
from test_pyramid import (
    EXAMPLES,
    VALID_EXAMPLES,
    WILD,
    _groups,
    put,
    read,
    write_cosem_n5,
    write_ome_zarr2,
    write_ome_zarr3,
)

LEVELS = ("s0", "s1", "s2")


def _n5_all(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        for s in LEVELS:
            d[f"{s}/attributes.json"][key] = value

    return edit


def _n5_one(level: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d[f"{level}/attributes.json"][key] = value

    return edit


def _n5_long_units(d: dict[str, Any]) -> None:
    d["attributes.json"]["units"] = ["nanometer"] * 3
    d["attributes.json"]["pixelResolution"]["unit"] = "nanometer"


def _n5_rank(d: dict[str, Any]) -> None:
    d["attributes.json"]["axes"] = ["x", "y"]


def _n5_no_scales(factors: bool) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        del d["attributes.json"]["scales"]
        if factors:
            for i in (1, 2):
                d[f"s{i}/attributes.json"]["downsamplingFactors"] = [2**i] * 3

    return edit


def _n5_empty(d: dict[str, Any]) -> None:
    d["s2/attributes.json"]["dimensions"] = [75, 0, 25]


def _z2_all(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        for s in LEVELS:
            d[f"{s}/.zarray"][key] = value

    return edit


def _z2_one(level: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d[f"{level}/.zarray"][key] = value

    return edit


def _z2_units(d: dict[str, Any]) -> None:
    d[".zattrs"]["multiscales"][0]["axes"][2]["unit"] = "nm"


def _z2_version(d: dict[str, Any]) -> None:
    d[".zattrs"]["multiscales"][0]["version"] = "0.5"


def _z2_rank(d: dict[str, Any]) -> None:
    d[".zattrs"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["scale"] = [2, 2]


def _z3_all(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        for s in LEVELS:
            d[f"{s}/zarr.json"][key] = value

    return edit


def _z3_sharded_lz4(d: dict[str, Any]) -> None:
    d["s1/zarr.json"]["codecs"] = [
        {
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": [32, 32, 32],
                "codecs": [{"name": "bytes"}, {"name": "numcodecs.lz4"}],
                "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}],
            },
        }
    ]


def _z3_version(d: dict[str, Any]) -> None:
    d["zarr.json"]["attributes"]["ome"]["version"] = "0.3"


N5, Z2, Z3 = write_cosem_n5, write_ome_zarr2, write_ome_zarr3
CASES: list[tuple[str, Callable[..., Path], str, Callable[[dict[str, Any]], None], set[str]]] = [
    ("NGL001", N5, "n5", _n5_all("dataType", "int64"), set()),
    ("NGL003", N5, "n5", _n5_one("s1", "compression", {"type": "bzip2", "blockSize": 9}), set()),
    ("NGL008", N5, "n5", _n5_long_units, set()),
    ("NGL010", N5, "n5", _n5_rank, set()),
    ("NGL011", N5, "n5", _n5_one("s1", "dataType", "uint16"), set()),
    ("NGL012", N5, "n5", _n5_no_scales(factors=True), set()),
    ("NGL013", N5, "n5", _n5_no_scales(factors=False), {"NGL012"}),  # 013 needs listing
    ("NGL014", N5, "n5", _n5_empty, set()),
    ("NGL001", Z2, "zarr2", _z2_all("dtype", "<f8"), set()),
    ("NGL002", Z2, "zarr2", _z2_all("dtype", "<i8"), set()),
    ("NGL004", Z2, "zarr2", _z2_one("s1", "compressor", {"id": "lz4", "acceleration": 1}), set()),
    ("NGL006", Z2, "zarr2", _z2_one("s1", "filters", [{"id": "delta", "dtype": "|u1"}]), set()),
    ("NGL007", Z2, "zarr2", _z2_units, set()),
    ("NGL009", Z2, "zarr2", _z2_version, set()),
    ("NGL010", Z2, "zarr2", _z2_rank, set()),
    ("NGL011", Z2, "zarr2", _z2_one("s1", "dtype", "<u2"), set()),
    ("NGL001", Z3, "zarr3", _z3_all("data_type", "float64"), set()),
    ("NGL005", Z3, "zarr3", _z3_sharded_lz4, set()),
    ("NGL009", Z3, "zarr3", _z3_version, set()),
]


@pytest.mark.parametrize(
    ("rule", "writer", "fmt", "edit", "also"),
    CASES,
    ids=[f"{c[0]}-{c[2]}" for c in CASES],
)
def test_rule(
    tmp_path: Path,
    rule: str,
    writer: Callable[..., Path],
    fmt: str,
    edit: Callable[[dict[str, Any]], None],
    also: set[str],
) -> None:
    clean, clean_fmt = read(writer(tmp_path / "clean"))
    assert clean_fmt == fmt
    assert list(neuroglancer_problems(clean, fmt)) == []  # type: ignore[arg-type]
    broken, _ = read(writer(tmp_path / "broken", edit))
    problems = list(neuroglancer_problems(broken, fmt))  # type: ignore[arg-type]
    assert {p.rule for p in problems} == {rule} | also, problems
    mine = [p for p in problems if p.rule == rule]
    assert mine[0].loc.startswith(("members.", "attributes."))
    assert "neuroglancer" in RULES[rule].source


def test_messages_name_both_levels(tmp_path: Path) -> None:
    spec, _ = read(write_cosem_n5(tmp_path / "g", _n5_one("s1", "dataType", "uint16")))
    (p,) = neuroglancer_problems(spec, "n5")
    assert p.loc == "members.s1.dtype"
    assert p.msg.startswith("s1: data type uint16 differs from s0's uint8")


def test_unit_hints(tmp_path: Path) -> None:
    spec, _ = read(write_ome_zarr2(tmp_path / "z", _z2_units))
    (p,) = neuroglancer_problems(spec, "zarr2")
    assert "'nanometer'" in p.msg and p.loc == "attributes.multiscales[0].axes[2].unit"
    spec, _ = read(write_cosem_n5(tmp_path / "n", _n5_long_units))
    assert all("'nm'" in p.msg for p in neuroglancer_problems(spec, "n5"))


def test_severities() -> None:
    warnings = {"NGL002", "NGL012"}
    for rule in (f"NGL{i:03d}" for i in range(1, 15)):
        assert severity_of(rule) == ("warning" if rule in warnings else "error"), rule


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"attributes": 3},
        {"attributes": {"multiscales": [None]}},
        {"attributes": {"ome": {"multiscales": [{"axes": 1, "datasets": [1, {"path": []}]}]}}},
        {"attributes": {"scales": [[1], "x"], "units": [1], "downsamplingFactors": []}},
        {"attributes": {}, "members": {"s0": {"shape": [0], "compressor": 7}, "s1": []}},
    ],
)
def test_malformed_specs_never_raise(spec: dict[str, Any]) -> None:
    for fmt in ("n5", "zarr2", "zarr3"):
        list(neuroglancer_problems(spec, fmt))  # type: ignore[arg-type]


@pytest.mark.parametrize("where", VALID_EXAMPLES)
def test_example_bucket_is_readable(where: str) -> None:
    spec, fmt = read(EXAMPLES / where)
    for path, group in _groups(spec):
        assert list(neuroglancer_problems(group, fmt)) == [], path  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("neuroglancer_n5_multiscale_deprecated__neuroglancer_testdata.json", []),
        # no `scales`: Neuroglancer lists s0, s1, s2 and reads their downsamplingFactors
        ("neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json", ["NGL012"]),
    ],
)
def test_neuroglancer_own_test_data(tmp_path: Path, name: str, expected: list[str]) -> None:
    doc = json.loads((WILD / name).read_text())
    for key, value in doc.items():
        put(tmp_path / "g.n5" / key, value)
    spec, fmt = read(tmp_path / "g.n5")
    assert [p.rule for p in neuroglancer_problems(spec, fmt)] == expected  # type: ignore[arg-type]
