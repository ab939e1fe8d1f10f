"""What we write, read by others: the original (zarr-python 2), tensorstore, zarr-python 3."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellmap_schemas.io.write import write_pyramid

from . import sample_data, sample_spec

ROOT = Path(__file__).resolve().parents[2]

# Runs in the original's environment: opens each array with zarr-python 2's N5 store and prints
# what a user of the original sees.
ORIGINAL_READER = """
import hashlib, json, sys, warnings
warnings.simplefilter("ignore")
import zarr
from zarr.n5 import N5FSStore
store, group_path = sys.argv[1], sys.argv[2]
group = zarr.open_group(N5FSStore(store), path=group_path, mode="r")
out = {"attrs": dict(group.attrs), "arrays": {}}
for name in sys.argv[3:]:
    a = group[name]
    data = a[:]
    out["arrays"][name] = {
        "shape": list(a.shape), "chunks": list(a.chunks), "dtype": a.dtype.str,
        "attrs": dict(a.attrs), "compressor": a.compressor.compressor_config,
        "sha256": hashlib.sha256(data.tobytes(order="C")).hexdigest(),
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def original_python() -> str:
    """The original implementation's interpreter, from its cached environment."""
    script = ROOT / "scripts" / "setup-original-env.sh"
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=True, timeout=900
    )
    return done.stdout.strip().splitlines()[-1]


def _sha(data: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(data).tobytes(order="C")).hexdigest()


def _n5_data(spec: Any) -> dict[str, np.ndarray]:
    data = sample_data()
    data["labels/mask"] = data["labels/mask"].astype("uint8")
    assert spec.members["labels"].members["mask"].dtype == "|u1"
    return data


def test_original_reads_our_n5(tmp_path: Path, original_python: str) -> None:
    spec = sample_spec("n5")
    store = tmp_path / "data.n5"
    data = _n5_data(spec)
    write_pyramid(spec, str(store), "image", data)

    names = list(data)
    done = subprocess.run(
        [original_python, "-c", ORIGINAL_READER, str(store), "image", *names],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(done.stdout)
    assert seen["attrs"] == spec.attributes
    leaves = {"s0": spec.members["s0"], "s1": spec.members["s1"]}
    leaves["labels/mask"] = spec.members["labels"].members["mask"]
    for name in names:
        leaf = leaves[name]
        assert seen["arrays"][name] == {
            "shape": list(leaf.shape),
            "chunks": list(leaf.chunks),
            "dtype": np.dtype(leaf.dtype).str,
            "attrs": leaf.attributes,
            "compressor": leaf.compressor,
            "sha256": _sha(data[name]),
        }


def test_original_validates_the_seed_group(tmp_path: Path, original_python: str) -> None:
    from cellmap_schemas.multiscale.neuroglancer_n5 import Group

    data = np.arange(16).reshape(4, 4)
    arrays = data, data[::2, ::2]
    model = Group.from_arrays(
        arrays=arrays,
        paths=("s0", "s1"),
        scales=((4.0, 5.0), (8.0, 10.0)),
        axes=("y", "x"),
        units=("nm", "nm"),
        dimension_order="C",
    )
    store = tmp_path / "data.n5"
    write_pyramid(model, str(store), "image", arrays)
    check = (
        "import sys, warnings, json; warnings.simplefilter('ignore');"
        "import zarr; from zarr.n5 import N5FSStore;"
        "from cellmap_schemas.multiscale.neuroglancer_n5 import Group;"
        "g = zarr.open_group(N5FSStore(sys.argv[1]), path='image', mode='r');"
        "m = Group.from_zarr(g);"
        "print(json.dumps([m.attributes.model_dump(), g['s1'][:].tolist()]))"
    )
    done = subprocess.run(
        [original_python, "-c", check, str(store)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    attrs, s1 = json.loads(done.stdout)
    assert attrs == {
        "axes": ["x", "y"],
        "units": ["nm", "nm"],
        "scales": [[1, 1], [2, 2]],
        "pixelResolution": {"dimensions": [5.0, 4.0], "unit": "nm"},
    }
    assert s1 == arrays[1].tolist()


def test_tensorstore_n5_driver_sees_x_first(tmp_path: Path) -> None:
    import tensorstore as ts

    spec = sample_spec("n5")
    store = tmp_path / "data.n5"
    data = _n5_data(spec)
    write_pyramid(spec, str(store), "image", data)
    raw = ts.open(
        {"driver": "n5", "kvstore": {"driver": "file", "path": f"{store}/image/s0/"}, "open": True}
    ).result()
    assert raw.shape == tuple(reversed(data["s0"].shape))  # N5's own order: x, y, z
    assert raw.chunk_layout.read_chunk.shape == (4, 4, 4)
    np.testing.assert_array_equal(raw.read().result(), data["s0"].T)


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3"])
def test_zarr_python_3_reads_our_zarr(tmp_path: Path, fmt: str) -> None:
    import zarr

    spec = sample_spec(fmt)
    store = tmp_path / "data.zarr"
    data = sample_data()
    write_pyramid(spec, str(store), "image", data)

    version = 2 if fmt == "zarr2" else 3
    group = zarr.open_group(str(store), path="image", mode="r", zarr_format=version)
    assert dict(group.attrs) == spec.attributes
    assert sorted(group.group_keys()) == ["labels"]
    assert sorted(group.array_keys()) == ["s0", "s1"]
    assert dict(group["labels"].attrs) == {"kind": "labels"}
    for name, expected in data.items():
        array = zarr.open_array(str(store), path=f"image/{name}", mode="r", zarr_format=version)
        assert array.shape == expected.shape
        assert array.chunks == (4, 4, 4)
        assert array.dtype == expected.dtype
        assert dict(array.attrs) == {"name": name.split("/")[-1]}
        np.testing.assert_array_equal(array[...], expected)
    root = zarr.open_group(str(store), mode="r", zarr_format=version)
    assert list(root.group_keys()) == ["image"]  # the container root became a group
