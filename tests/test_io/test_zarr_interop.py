"""``Model.from_zarr``: spec trees from zarr-python 3 arrays and groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from cellmap_schemas.errors import ValidationError
from cellmap_schemas.io.zarr_interop import node_from_zarr
from cellmap_schemas.multiscale.ome_ngff import v04, v05
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3
from cellmap_schemas.synchronous import read


def ome_multiscales(levels: int, version: str | None) -> list[dict[str, object]]:
    ms: dict[str, object] = {
        "axes": [
            {"name": "y", "type": "space", "unit": "nanometer"},
            {"name": "x", "type": "space", "unit": "nanometer"},
        ],
        "datasets": [
            {
                "path": f"s{i}",
                "coordinateTransformations": [{"type": "scale", "scale": [2.0**i, 2.0**i]}],
            }
            for i in range(levels)
        ],
    }
    if version is not None:
        ms["version"] = version
    return [ms]


def test_v2_array_matches_its_documents(tmp_path: Path) -> None:
    a = zarr.create_array(
        str(tmp_path / "a.zarr"), shape=(6, 4), chunks=(3, 2), dtype="<i2", zarr_format=2
    )
    a.attrs["k"] = [1, 2]
    spec = ArraySpec.from_zarr(a)
    assert spec.shape == (6, 4)
    assert spec.chunks == (3, 2)
    assert spec.dtype == "<i2"
    assert spec.attributes == {"k": [1, 2]}
    assert spec == read(str(tmp_path / "a.zarr"))


def test_v3_group_tree_matches_storage_read(tmp_path: Path) -> None:
    path = str(tmp_path / "g.zarr")
    g = zarr.open_group(path, mode="w", zarr_format=3)
    g.attrs["a"] = 1
    g.create_group("sub").create_array("x", shape=(2, 2), dtype="f8", dimension_names=["y", "x"])
    spec = GroupSpecV3.from_zarr(g)
    assert isinstance(spec.members["sub"], GroupSpecV3)
    x = spec.members["sub"].members["x"]
    assert isinstance(x, ArraySpecV3)
    assert x.dimension_names == ("y", "x")
    assert spec == read(path)


def test_numpy_values_become_plain_data() -> None:
    node = node_from_zarr(zarr.create_array({}, shape=(3,), dtype="u2", fill_value=np.uint16(7)))
    assert node.spec["fill_value"] == 7
    assert type(node.spec["fill_value"]) is int
    assert node.spec["shape"] == [3]


def test_depth_limits_members() -> None:
    g = zarr.open_group({}, mode="w", zarr_format=2)
    g.create_group("a").create_group("b")
    assert node_from_zarr(g, depth=0).spec["members"] == {}
    assert node_from_zarr(g, depth=1).spec["members"]["a"]["members"] == {}
    assert "b" in node_from_zarr(g).spec["members"]["a"]["members"]


def test_ome_ngff_v04_group_valid_and_invalid() -> None:
    g = zarr.open_group({}, mode="w", zarr_format=2)
    g.attrs["multiscales"] = ome_multiscales(2, "0.4")
    for i in range(2):
        g.create_array(f"s{i}", shape=(8 >> i, 8 >> i), dtype="u1")
    model = v04.Group.from_zarr(g)
    assert sorted(model.members) == ["s0", "s1"]
    g.attrs["multiscales"] = ome_multiscales(3, "0.4")  # names an s2 that does not exist
    with pytest.raises(ValidationError) as info:
        v04.Group.from_zarr(g)
    assert info.value.url is not None
    assert any("s2" in f"{loc} {msg}" for loc, msg in info.value.problems)


def test_ome_ngff_v05_group_from_zarr_v3() -> None:
    g = zarr.open_group({}, mode="w", zarr_format=3)
    g.attrs["ome"] = {"version": "0.5", "multiscales": ome_multiscales(2, None)}
    for i in range(2):
        g.create_array(f"s{i}", shape=(8 >> i, 8 >> i), dtype="u1", dimension_names=["y", "x"])
    assert sorted(v05.Group.from_zarr(g).members) == ["s0", "s1"]
    # a v2 group is not a v0.5 image whatever its attributes say
    g2 = zarr.open_group({}, mode="w", zarr_format=2)
    g2.attrs.update(dict(g.attrs))
    with pytest.raises(ValidationError, match=r"is a Zarr v2 node"):
        v05.Group.from_zarr(g2)


def test_v3_node_refused_by_v2_model() -> None:
    g = zarr.open_group({}, mode="w", zarr_format=3)
    with pytest.raises(ValidationError, match=r"is a Zarr v3 node"):
        GroupSpec.from_zarr(g)


def test_not_a_zarr_node() -> None:
    with pytest.raises(TypeError, match="expected a zarr-python 3 Array or Group, got ndarray"):
        ArraySpec.from_zarr(np.zeros(3))
