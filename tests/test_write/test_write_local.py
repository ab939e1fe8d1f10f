"""Creating hierarchies on local disk: documents, round trips, data, safety rules, errors."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellmap_schemas.errors import NodeExistsError, StoreError, UnsupportedFormatError
from cellmap_schemas.io.write import (
    ArrayHandle,
    GroupHandle,
    storage_format,
    write_pyramid,
    write_spec,
)
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

from . import FORMATS, SUFFIX, read_back, sample_data, sample_spec


def _file_kv(path: Path) -> dict[str, Any]:
    return {"driver": "file", "path": f"{path}/"}


def _fill(group: GroupHandle, spec: Any, fmt: str) -> dict[str, np.ndarray]:
    """Write the sample data through the handle, as users do; return what was written."""
    written = {}
    for name, data in sample_data().items():
        member = spec.members
        for part in name.split("/")[:-1]:
            member = member[part].members
        leaf = member[name.split("/")[-1]]
        dtype = leaf.dtype if fmt != "zarr3" else leaf.data_type
        written[name] = data.astype(dtype)
        group[name][:] = written[name]
    return written


def _json(doc: Any) -> Any:
    return json.loads(json.dumps(doc))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_model_and_data(tmp_path: Path, fmt: str) -> None:
    spec = sample_spec(fmt)
    store = tmp_path / SUFFIX[fmt]
    group = spec.to_zarr(str(store), "image")
    assert isinstance(group, GroupHandle)
    written = _fill(group, spec, fmt)

    assert type(spec).from_url(f"{store}/image") == spec
    for name, data in written.items():
        back = read_back(fmt, _file_kv(store / "image" / name))
        assert back.dtype == data.dtype
        np.testing.assert_array_equal(back, data)
        np.testing.assert_array_equal(np.asarray(group[name]), data)


def test_n5_documents(tmp_path: Path) -> None:
    spec = sample_spec("n5")
    store = tmp_path / "data.n5"
    spec.to_zarr(store, "image")
    assert json.loads((store / "attributes.json").read_text()) == {"n5": "2.0.0"}
    assert json.loads((store / "image" / "attributes.json").read_text()) == {
        "kind": "pyramid",
        "levels": [0, 1],
    }
    assert json.loads((store / "image" / "s0" / "attributes.json").read_text()) == {
        "name": "s0",
        "dimensions": [14, 10, 6],  # F order: x first
        "blockSize": [4, 4, 4],
        "dataType": "uint16",
        "compression": {"type": "gzip", "level": 1, "useZlib": False},
    }
    s1 = json.loads((store / "image" / "s1" / "attributes.json").read_text())
    assert s1["dimensions"] == [7, 5, 3]
    assert s1["compression"] == {"type": "raw"}


def test_zarr2_documents(tmp_path: Path) -> None:
    spec = sample_spec("zarr2")
    store = tmp_path / "data.zarr"
    spec.to_zarr(str(store), "image")
    zarray, zattrs = spec.members["s0"].to_documents()
    assert json.loads((store / "image" / "s0" / ".zarray").read_text()) == _json(zarray)
    assert json.loads((store / "image" / "s0" / ".zattrs").read_text()) == zattrs
    assert json.loads((store / "image" / ".zgroup").read_text()) == {"zarr_format": 2}
    assert json.loads((store / "image" / ".zattrs").read_text()) == spec.attributes
    # the missing root becomes an empty group, so the tree is reachable from the container
    assert json.loads((store / ".zgroup").read_text()) == {"zarr_format": 2}


def test_zarr3_documents(tmp_path: Path) -> None:
    spec = sample_spec("zarr3")
    store = tmp_path / "data.zarr"
    spec.to_zarr(str(store), "image")
    doc = json.loads((store / "image" / "s0" / "zarr.json").read_text())
    expected = spec.members["s0"].to_document()
    expected.pop("dimension_names")  # None: left out, as the v3 spec has no null here
    assert doc == _json(expected)
    assert doc["node_type"] == "array"
    group = json.loads((store / "image" / "zarr.json").read_text())
    assert group == {"zarr_format": 3, "node_type": "group", "attributes": spec.attributes}
    assert storage_format(spec, store) == "zarr3"


def test_n5_root_group_gets_the_version(tmp_path: Path) -> None:
    spec = GroupSpec(attributes={"a": 1}, members={"s0": sample_spec("n5").members["s1"]})
    store = tmp_path / "root.n5"
    spec.to_zarr(str(store))
    assert json.loads((store / "attributes.json").read_text()) == {"a": 1, "n5": "2.0.0"}
    back = GroupSpec.from_url(str(store))
    assert back.attributes == {"a": 1, "n5": "2.0.0"}
    assert back.members == spec.members


def test_array_spec_to_zarr(tmp_path: Path) -> None:
    data = np.arange(24, dtype="int32").reshape(4, 6)
    spec = ArraySpec.from_array(data, chunks=(3, 4), attributes={"unit": "nm"})
    handle = spec.to_zarr(str(tmp_path / "a.zarr"), "x/y")
    assert isinstance(handle, ArrayHandle)
    assert (handle.shape, handle.dtype, handle.ndim, handle.path) == ((4, 6), data.dtype, 2, "x/y")
    handle[1:3, 2:5] = data[1:3, 2:5]
    expected = np.zeros_like(data)
    expected[1:3, 2:5] = data[1:3, 2:5]
    np.testing.assert_array_equal(handle[...].read().result(), expected)
    assert handle.domain.shape == (4, 6)  # other tensorstore attributes pass through
    assert ArraySpec.from_url(str(tmp_path / "a.zarr" / "x" / "y")) == spec
    for parent in ("", "x"):
        zgroup = tmp_path / "a.zarr" / parent / ".zgroup"
        assert json.loads(zgroup.read_text()) == {"zarr_format": 2}


def test_v3_array_spec_to_zarr(tmp_path: Path) -> None:
    data = np.linspace(0, 1, 30, dtype="float32").reshape(5, 6)
    spec = ArraySpecV3.from_array(data, chunks=(2, 2), dimension_names=("y", "x"), fill_value=0.5)
    handle = spec.to_zarr(str(tmp_path / "v3.zarr"), "a")
    handle[:] = data
    assert ArraySpecV3.from_url(str(tmp_path / "v3.zarr" / "a")) == spec
    np.testing.assert_array_equal(read_back("zarr3", _file_kv(tmp_path / "v3.zarr" / "a")), data)


def test_durable_local_writes_on_request(tmp_path: Path) -> None:
    spec = sample_spec("n5")
    data = sample_data()
    data["labels/mask"] = data["labels/mask"].astype("uint8")
    write_pyramid(spec, str(tmp_path / "d.n5"), "image", data, storage_options={"fsync": True})
    np.testing.assert_array_equal(read_back("n5", _file_kv(tmp_path / "d.n5/image/s0")), data["s0"])


def test_nan_fill_value_is_written_as_a_string(tmp_path: Path) -> None:
    spec = ArraySpec(shape=(2,), chunks=(2,), dtype="<f4", fill_value=float("nan"))
    spec.to_zarr(str(tmp_path / "f.zarr"), "a")
    zarray = json.loads((tmp_path / "f.zarr" / "a" / ".zarray").read_text())
    assert zarray["fill_value"] == "NaN"
    assert np.isnan(read_back("zarr2", _file_kv(tmp_path / "f.zarr" / "a"))).all()


# ---- the seed's example -----------------------------------------------------------------------
SEED = """
from cellmap_schemas.multiscale.neuroglancer_n5 import Group, PixelResolution, GroupMetadata
import numpy as np

data = np.arange(16).reshape(4,4)
data_ds = data[::2, ::2]
arrays = data, data_ds
scales = (4.0, 5.0), (8.0, 10.0)
units = 'nm', 'nm'
axes = 'y','x'
units = 'nm','nm'
paths = 's0', 's1'
group_model = Group.from_arrays(
    arrays=arrays,
    paths = paths,
    scales=scales,
    axes=axes,
    units=units,
    dimension_order="C")

group = group_model.to_zarr(store='path/to/n5/data.n5', path='image')
group['s0'][:] = arrays[0]
group['s1'][:] = arrays[1]
"""


def test_seed_example_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cellmap_schemas.multiscale.neuroglancer_n5 import Group

    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(SEED, "seed", "exec"), scope)
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")

    store = tmp_path / "path/to/n5/data.n5"
    assert Group.from_url(f"{store}/image") == scope["group_model"]
    assert json.loads((store / "attributes.json").read_text()) == {"n5": "2.0.0"}
    assert json.loads((store / "image" / "s0" / "attributes.json").read_text()) == {
        "blockSize": [4, 4],
        "compression": {"type": "raw"},
        "dataType": "int64",
        "dimensions": [4, 4],
        "pixelResolution": {"dimensions": [5.0, 4.0], "unit": "nm"},
    }
    for name, data in zip(("s0", "s1"), scope["arrays"], strict=True):
        np.testing.assert_array_equal(read_back("n5", _file_kv(store / "image" / name)), data)


# ---- safety -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_node_is_refused_and_left_alone(tmp_path: Path, fmt: str) -> None:
    spec = sample_spec(fmt)
    store = tmp_path / SUFFIX[fmt]
    _fill(spec.to_zarr(str(store), "image"), spec, fmt)
    before = _tree(store)
    with pytest.raises(NodeExistsError, match=r"node 'image' already exists .*overwrite=True"):
        spec.to_zarr(str(store), "image")
    assert _tree(store) == before


def test_existing_member_is_refused(tmp_path: Path) -> None:
    spec = sample_spec("zarr2")
    store = tmp_path / "data.zarr"
    # a node below the target, with no node at the target itself
    (store / "image" / "labels").mkdir(parents=True)
    (store / "image" / "labels" / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(NodeExistsError, match=r"node 'image/labels' already exists"):
        spec.to_zarr(str(store), "image")
    assert not (store / "image" / "s0").exists()


def test_existing_node_of_another_format_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "data.zarr"
    sample_spec("zarr3").to_zarr(str(store), "image")
    with pytest.raises(NodeExistsError, match=r"image/zarr.json"):
        sample_spec("zarr2").to_zarr(str(store), "image")


def test_overwrite_replaces_only_the_target(tmp_path: Path) -> None:
    spec = sample_spec("n5")
    store = tmp_path / "data.n5"
    _fill(spec.to_zarr(str(store), "image"), spec, "n5")
    _fill(spec.to_zarr(str(store), "other"), spec, "n5")
    (store / "notes.txt").write_text("keep me")
    outside = {k: v for k, v in _tree(store).items() if not k.startswith("image/")}

    smaller = GroupSpec(attributes={"v": 2}, members={"s0": spec.members["s1"]})
    group = smaller.to_zarr(str(store), "image", overwrite=True)
    assert GroupSpec.from_url(f"{store}/image") == smaller
    assert not (store / "image" / "s1").exists()  # old members are gone with the old node
    assert list((store / "image" / "s0").rglob("*")) == [store / "image/s0/attributes.json"]
    np.testing.assert_array_equal(np.asarray(group["s0"]), 0)  # no stale chunks
    assert {k: v for k, v in _tree(store).items() if not k.startswith("image/")} == outside


def test_overwrite_turns_a_group_into_an_array(tmp_path: Path) -> None:
    store = tmp_path / "data.n5"
    sample_spec("n5").to_zarr(str(store), "image")
    array = ArraySpec.from_array(np.zeros((3, 4), dtype="uint8"), attributes={"a": 1})
    with pytest.raises(NodeExistsError):
        array.to_zarr(str(store), "image")
    handle = array.to_zarr(str(store), "image", overwrite=True)
    handle[:] = np.full((3, 4), 9, dtype="uint8")
    assert ArraySpec.from_url(f"{store}/image") == array
    assert sorted(p.name for p in (store / "image").iterdir()) == ["0", "attributes.json"]


def test_existing_parent_group_is_not_rewritten(tmp_path: Path) -> None:
    store = tmp_path / "data.n5"
    store.mkdir()
    (store / "attributes.json").write_text('{"n5": "2.0.0", "owner": "someone"}')
    before = (store / "attributes.json").stat().st_mtime_ns
    sample_spec("n5").to_zarr(str(store), "image")
    assert (store / "attributes.json").read_text() == '{"n5": "2.0.0", "owner": "someone"}'
    assert (store / "attributes.json").stat().st_mtime_ns == before


def test_parent_that_is_an_array_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "data.n5"
    spec = sample_spec("n5")
    spec.members["s1"].to_zarr(str(store), "raw")
    with pytest.raises(NodeExistsError, match=r"cannot create node 'raw/image': node 'raw' is an"):
        spec.to_zarr(str(store), "raw/image")
    assert not (store / "raw" / "image").exists()


def test_path_must_stay_inside_the_container(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must stay inside the container"):
        sample_spec("zarr2").to_zarr(str(tmp_path / "c.zarr"), "../escape")
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "c.zarr").exists()


def test_unstorable_array_fails_before_anything_is_written(tmp_path: Path) -> None:
    # N5 has no boolean data type: tensorstore refuses the document, nothing reaches the disk
    spec = GroupSpec(members={"mask": ArraySpec.from_array(np.zeros((2, 2), dtype=bool))})
    with pytest.raises(UnsupportedFormatError, match=r"array 'image/mask' cannot be stored"):
        spec.to_zarr(str(tmp_path / "data.n5"), "image")
    assert not (tmp_path / "data.n5").exists()


def test_v3_spec_into_n5_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Zarr v3 spec cannot be written to an N5 container"):
        sample_spec("zarr3").to_zarr(str(tmp_path / "data.n5"))
    assert storage_format(sample_spec("zarr2"), "x.N5/") == "n5"
    assert storage_format(sample_spec("zarr2"), "x.zarr") == "zarr2"


def test_store_inside_a_container_is_split_at_the_container(tmp_path: Path) -> None:
    spec = sample_spec("n5")
    data = sample_data()
    data["labels/mask"] = data["labels/mask"].astype("uint8")
    group = write_pyramid(spec, str(tmp_path / "data.n5" / "image"), "", data)
    assert (group.url, group.path) == (str(tmp_path / "data.n5"), "image")
    assert json.loads((tmp_path / "data.n5" / "attributes.json").read_text()) == {"n5": "2.0.0"}
    assert GroupSpec.from_url(str(tmp_path / "data.n5" / "image")) == spec
    assert storage_format(spec, "s3://bucket/data.n5/image/s0") == "n5"
    # a bucket (or a local directory above the container) named like a container is no container
    assert storage_format(spec, "s3://bucket.zarr/data.n5") == "n5"
    arr = spec.members["s1"].to_zarr(str(tmp_path / "data.zarr" / "a"), "b")
    assert (arr.url, arr.path) == (str(tmp_path / "data.zarr"), "a/b")
    assert (tmp_path / "data.zarr" / ".zgroup").exists()


def test_read_only_protocol_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot write to https:// storage"):
        write_spec(sample_spec("zarr2"), "https://example.org/data.zarr")


def test_empty_group_in_each_format(tmp_path: Path) -> None:
    for fmt, spec in (("zarr2", GroupSpec()), ("zarr3", GroupSpecV3()), ("n5", GroupSpec())):
        store = tmp_path / f"{fmt}-{SUFFIX[fmt]}"
        group = spec.to_zarr(str(store), "g")
        assert isinstance(group, GroupHandle) and len(group) == 0
        assert type(spec).from_url(f"{store}/g") == spec


# ---- failed writes ----------------------------------------------------------------------------
def test_failed_write_names_array_and_region(tmp_path: Path) -> None:
    store = tmp_path / "data.n5"
    spec = sample_spec("n5")
    group = spec.to_zarr(str(store), "image")
    # N5 chunk keys are x/y/z: a file where the chunk directory x=0 belongs makes writes fail
    (store / "image" / "s0" / "0").write_text("in the way")
    message = rf"{store}: writing image/s0 \[0:2, 3:9, 0:14\] failed: .*Not a directory"
    with pytest.raises(StoreError, match=message) as info:
        group["s0"][0:2, 3:9] = np.ones((2, 6, 14), dtype="uint16")
    assert isinstance(info.value, OSError)
    with pytest.raises(StoreError, match=r"writing image/s0 \[1:2, 0:10, 2:3\] failed"):
        group["s0"][1, :, 2] = 7
    with pytest.raises(StoreError, match=r"writing image/s0 \[0:6, 0:10, 0:14\] failed"):
        group["s0"][:] = 1
    assert "tensorstore_spec" not in str(info.value)


def test_bad_source_shape_is_a_value_error(tmp_path: Path) -> None:
    group = sample_spec("zarr2").to_zarr(str(tmp_path / "data.zarr"), "image")
    with pytest.raises(ValueError, match=r"writing image/s1 \[0:3, 0:5, 0:7\]: .*align") as info:
        group["s1"][:] = np.zeros((2, 2, 2), dtype="uint16")
    assert not isinstance(info.value, StoreError)


# ---- write_pyramid ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_write_pyramid_by_name(tmp_path: Path, fmt: str) -> None:
    spec = sample_spec(fmt)
    store = tmp_path / SUFFIX[fmt]
    leaves = {"s0": spec.members["s0"], "s1": spec.members["s1"]}
    leaves["labels/mask"] = spec.members["labels"].members["mask"]
    data = {
        name: a.astype(leaves[name].dtype if fmt != "zarr3" else leaves[name].data_type)
        for name, a in sample_data().items()
    }
    group = write_pyramid(spec, str(store), "image", data)
    assert type(spec).from_url(f"{store}/image") == spec
    for name, expected in data.items():
        np.testing.assert_array_equal(read_back(fmt, _file_kv(store / "image" / name)), expected)
    assert set(group.arrays()) == set(data)


def test_write_pyramid_in_order_with_overwrite(tmp_path: Path) -> None:
    spec = sample_spec("zarr2")
    store = tmp_path / "data.zarr"
    spec.to_zarr(str(store), "image")
    data = list(sample_data().values())
    with pytest.raises(NodeExistsError):
        write_pyramid(spec, str(store), "image", data)
    write_pyramid(spec, str(store), "image", data, overwrite=True)
    np.testing.assert_array_equal(read_back("zarr2", _file_kv(store / "image/s1")), data[1])
    np.testing.assert_array_equal(
        read_back("zarr2", _file_kv(store / "image/labels/mask")), data[2]
    )


def test_write_pyramid_checks_before_writing(tmp_path: Path) -> None:
    spec = sample_spec("n5")
    store = tmp_path / "data.n5"
    data = sample_data()
    with pytest.raises(ValueError, match=r"2 arrays given for the 3 arrays of the group"):
        write_pyramid(spec, str(store), "image", [data["s0"], data["s1"]])
    with pytest.raises(
        ValueError, match=r"array 's1' has shape \(6, 10, 14\), the spec says \(3, 5, 7\)"
    ):
        write_pyramid(spec, str(store), "image", {"s1": data["s0"]})
    with pytest.raises(ValueError, match=r"'s9': not arrays of the group \(s0, s1, labels/mask\)"):
        write_pyramid(spec, str(store), "image", {"s9": data["s0"]})
    with pytest.raises(TypeError, match=r"array 's0': cannot write float64 data into a uint16"):
        write_pyramid(spec, str(store), "image", {"s0": data["s0"].astype("float64")})
    with pytest.raises(TypeError, match=r"needs a group spec"):
        write_pyramid(spec.members["s0"], str(store), "image", {})  # type: ignore[arg-type]
    assert not store.exists()


def test_write_pyramid_reports_failed_array(tmp_path: Path) -> None:
    spec = sample_spec("zarr2")
    store = tmp_path / "data.zarr"
    # in the way, yet no key (a leftover chunk would be refused before anything is written):
    # an empty directory where the chunk file of s1 goes
    (store / "image" / "s1" / "0" / "0" / "0").mkdir(parents=True)
    data = sample_data()
    with pytest.raises(StoreError, match=r"writing image/s1 \[0:3, 0:5, 0:7\] failed"):
        write_pyramid(spec, str(store), "image", data)
    # every other write was awaited and landed
    np.testing.assert_array_equal(read_back("zarr2", _file_kv(store / "image/s0")), data["s0"])


def test_handles_navigate_nested_paths(tmp_path: Path) -> None:
    group = sample_spec("zarr2").to_zarr(str(tmp_path / "data.zarr"), "image")
    assert isinstance(group["labels"], GroupHandle)
    assert group["labels/mask"] is group["labels"]["mask"]
    assert list(group) == ["s0", "s1", "labels"]
    with pytest.raises(KeyError):
        group["s0/deeper"]
    assert "s0" in repr(group) and "shape=(6, 10, 14)" in repr(group["s0"])
    assert os.fspath(tmp_path / "data.zarr") == group.url
