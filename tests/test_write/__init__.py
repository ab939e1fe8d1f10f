"""Tests of creating hierarchies and writing arrays (``cellmap_schemas.io.write``).

Shared pieces: the spec trees written in every format, and reading data back with tensorstore
alone (independently of the handles under test).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

FORMATS = ("n5", "zarr2", "zarr3")
SUFFIX = {"n5": "data.n5", "zarr2": "data.zarr", "zarr3": "data.zarr"}


def sample_data() -> dict[str, np.ndarray]:
    """A small 3-D pyramid with a nested group: distinct values everywhere, odd chunk edges."""
    s0 = np.arange(6 * 10 * 14, dtype="uint16").reshape(6, 10, 14)
    return {"s0": s0, "s1": np.ascontiguousarray(s0[::2, ::2, ::2]), "labels/mask": s0 % 3 == 0}


def sample_spec(fmt: str) -> GroupSpec[Any] | GroupSpecV3[Any]:
    """A group with attributes, two compressed arrays and a subgroup holding a boolean array."""
    data = sample_data()
    if fmt == "zarr3":
        gzip = (
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "gzip", "configuration": {"level": 1}},
        )

        def array3(a: np.ndarray, name: str) -> ArraySpecV3[Any]:
            fill = False if a.dtype == bool else 0  # v3 wants a fill value of the data type
            return ArraySpecV3.from_array(
                a, chunks=(4, 4, 4), attributes={"name": name}, codecs=gzip, fill_value=fill
            )

        return GroupSpecV3(
            attributes={"kind": "pyramid", "levels": [0, 1]},
            members={
                "s0": array3(data["s0"], "s0"),
                "s1": array3(data["s1"], "s1"),
                "labels": GroupSpecV3(
                    attributes={"kind": "labels"},
                    members={"mask": array3(data["labels/mask"], "mask")},
                ),
            },
        )
    gzip = {"id": "gzip", "level": 1}

    def array2(a: np.ndarray, name: str, compressor: Any = gzip) -> ArraySpec[Any]:
        return ArraySpec.from_array(
            a, chunks=(4, 4, 4), attributes={"name": name}, compressor=compressor
        )

    mask = data["labels/mask"]
    if fmt == "n5":  # N5 has no boolean type
        mask = mask.astype("uint8")
    return GroupSpec(
        attributes={"kind": "pyramid", "levels": [0, 1]},
        members={
            "s0": array2(data["s0"], "s0"),
            "s1": array2(data["s1"], "s1", None),
            "labels": GroupSpec(
                attributes={"kind": "labels"}, members={"mask": array2(mask, "mask")}
            ),
        },
    )


def node_spec(fmt: str, kvstore: dict[str, Any]) -> dict[str, Any]:
    """A tensorstore spec opening an existing array written in ``fmt``."""
    driver = {"n5": "n5", "zarr2": "zarr", "zarr3": "zarr3"}[fmt]
    return {"driver": driver, "kvstore": kvstore, "open": True}


def read_back(fmt: str, kvstore: dict[str, Any], context: dict[str, Any] | None = None) -> Any:
    """The array at ``kvstore`` as numpy, C order (N5's x-first axes reversed)."""
    import tensorstore as ts

    array = ts.open(node_spec(fmt, kvstore), context=ts.Context(context or {})).result()
    data = array.read().result()
    return data.T if fmt == "n5" else data
