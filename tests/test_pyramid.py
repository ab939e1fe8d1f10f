"""Cross-level pyramid rules (PYR001-PYR006) and the crop grid rule (CROP101).

Every rule gets a hierarchy that breaks only it and the clean twin that does not. The N5 (COSEM),
Zarr v2 (OME-NGFF 0.4) and Zarr v3 (OME-NGFF 0.5) cases are written to disk and read back with
``read_tree``, so the spec dicts are the ones the validation engine will pass in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from cellmap_schemas.io.read import read_tree
from cellmap_schemas.io.store import open_store
from cellmap_schemas.multiscale.pyramid import crop_grid_problems, pyramid_problems
from cellmap_schemas.rules import severity_of

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples" / "cellmap-bucket"

SHAPES = [(100, 200, 300), (50, 100, 150), (25, 50, 75)]  # z, y, x
SCALE0 = (5.24, 4.0, 4.0)


def read(path: Path) -> tuple[dict[str, Any], str]:
    async def main() -> tuple[dict[str, Any], str]:
        async with open_store(str(path)) as store:
            node = await read_tree(store, "")
            return node.spec, node.format

    return anyio.run(main)


def put(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def ids(problems: Any) -> list[str]:
    return [p.rule for p in problems]


def transforms(levels: int = 3) -> list[tuple[list[float], list[float]]]:
    """(scale, translate) per level in z, y, x order, with the half-voxel offsets."""
    out = []
    for i in range(levels):
        scale = [s * 2**i for s in SCALE0]
        out.append((scale, [(s - s0) / 2 for s, s0 in zip(scale, SCALE0, strict=True)]))
    return out


# ---- writers: one per storage format ---------------------------------------------------------
def write_cosem_n5(root: Path, edit: Callable[[dict[str, Any]], None] = lambda d: None) -> Path:
    """A COSEM N5 group (s0..s2) in ``root``; ``edit`` changes the documents before writing."""
    tx = transforms()
    docs: dict[str, Any] = {
        "attributes.json": {
            "n5": "2.0.0",
            "axes": ["x", "y", "z"],
            "units": ["nm"] * 3,
            "scales": [[2**i] * 3 for i in range(3)],
            "pixelResolution": {"dimensions": list(SCALE0[::-1]), "unit": "nm"},
            "multiscales": [
                {
                    "name": "em",
                    "datasets": [
                        {
                            "path": f"s{i}",
                            "transform": {
                                "axes": ["z", "y", "x"],
                                "units": ["nm"] * 3,
                                "scale": s,
                                "translate": t,
                            },
                        }
                        for i, (s, t) in enumerate(tx)
                    ],
                }
            ],
        }
    }
    for i, (shape, (s, t)) in enumerate(zip(SHAPES, tx, strict=True)):
        docs[f"s{i}/attributes.json"] = {
            "dimensions": list(shape[::-1]),
            "blockSize": [64, 64, 64],
            "dataType": "uint8",
            "compression": {"type": "gzip", "level": -1, "useZlib": False},
            "pixelResolution": {"dimensions": s[::-1], "unit": "nm"},
            "transform": {"axes": ["z", "y", "x"], "units": ["nm"] * 3, "scale": s, "translate": t},
        }
    edit(docs)
    for name, doc in docs.items():
        put(root / name, doc)
    return root


def _ome_multiscale(version: str | None) -> dict[str, Any]:
    ms: dict[str, Any] = {
        "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "datasets": [
            {
                "path": f"s{i}",
                "coordinateTransformations": [
                    {"type": "scale", "scale": s},
                    {"type": "translation", "translation": t},
                ],
            }
            for i, (s, t) in enumerate(transforms())
        ],
    }
    if version is not None:
        ms["version"] = version
    return ms


def write_ome_zarr2(root: Path, edit: Callable[[dict[str, Any]], None] = lambda d: None) -> Path:
    """An OME-NGFF 0.4 image on Zarr v2 (s0..s2)."""
    docs: dict[str, Any] = {
        ".zgroup": {"zarr_format": 2},
        ".zattrs": {"multiscales": [_ome_multiscale("0.4")]},
    }
    for i, shape in enumerate(SHAPES):
        docs[f"s{i}/.zarray"] = {
            "zarr_format": 2,
            "shape": list(shape),
            "chunks": [64, 64, 64],
            "dtype": "|u1",
            "compressor": {"id": "zstd", "level": 3},
            "fill_value": 0,
            "filters": None,
            "order": "C",
            "dimension_separator": "/",
        }
    edit(docs)
    for name, doc in docs.items():
        put(root / name, doc)
    return root


def write_ome_zarr3(root: Path, edit: Callable[[dict[str, Any]], None] = lambda d: None) -> Path:
    """An OME-NGFF 0.5 image on Zarr v3 (s0..s2)."""
    docs: dict[str, Any] = {
        "zarr.json": {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "multiscales": [_ome_multiscale(None)]}},
        }
    }
    for i, shape in enumerate(SHAPES):
        docs[f"s{i}/zarr.json"] = {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(shape),
            "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [64, 64, 64]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "zstd", "configuration": {"level": 3, "checksum": False}},
            ],
            "attributes": {},
            "dimension_names": ["z", "y", "x"],
        }
    edit(docs)
    for name, doc in docs.items():
        put(root / name, doc)
    return root


# ---- edits that break exactly one rule -------------------------------------------------------
def _n5_shape(d: dict[str, Any]) -> None:  # s2 is 30 z-planes, not 25
    d["s2/attributes.json"]["dimensions"] = [75, 50, 30]


def _n5_dtype(d: dict[str, Any]) -> None:
    d["s1/attributes.json"]["dataType"] = "uint16"


def _set_cosem(d: dict[str, Any], i: int, key: str, axis: int, value: float) -> None:
    d["attributes.json"]["multiscales"][0]["datasets"][i]["transform"][key][axis] = value
    d[f"s{i}/attributes.json"]["transform"][key][axis] = value


def _n5_factor(d: dict[str, Any]) -> None:  # s1's x spacing is 3x s0's, but scales says 2x
    _set_cosem(d, 1, "scale", 2, 12.0)
    _set_cosem(d, 1, "translate", 2, 4.0)  # keep the half-voxel offset of the (wrong) scale
    d["s1/attributes.json"]["pixelResolution"]["dimensions"][0] = 12.0


def _n5_half_voxel(d: dict[str, Any]) -> None:
    _set_cosem(d, 2, "translate", 1, 0.0)


def _ome_datasets(d: dict[str, Any]) -> list[dict[str, Any]]:
    if "zarr.json" in d:
        return d["zarr.json"]["attributes"]["ome"]["multiscales"][0]["datasets"]
    return d[".zattrs"]["multiscales"][0]["datasets"]


def _z2_shape(d: dict[str, Any]) -> None:
    d["s1/.zarray"]["shape"] = [50, 100, 120]


def _z2_order(d: dict[str, Any]) -> None:
    """s1 at 4x, s2 at 2x: consistent with their scales, but s2 is larger than s1."""
    ds = _ome_datasets(d)
    ds[1], ds[2] = ds[2], ds[1]
    ds[1]["path"], ds[2]["path"] = "s1", "s2"
    d["s1/.zarray"]["shape"], d["s2/.zarray"]["shape"] = list(SHAPES[2]), list(SHAPES[1])


def _z2_half_voxel(d: dict[str, Any]) -> None:
    _ome_datasets(d)[1]["coordinateTransformations"][1]["translation"] = [0.0, 0.0, 0.0]


def _z3_rank(d: dict[str, Any]) -> None:
    d["s2/zarr.json"]["shape"] = [50, 75]
    d["s2/zarr.json"]["chunk_grid"]["configuration"]["chunk_shape"] = [64, 64]
    d["s2/zarr.json"]["dimension_names"] = ["y", "x"]


def _z3_dtype(d: dict[str, Any]) -> None:
    d["s2/zarr.json"]["data_type"] = "uint16"


CASES = [
    ("PYR001", write_cosem_n5, "n5", "cosem", _n5_shape, ["s2", "s0"]),
    ("PYR004", write_cosem_n5, "n5", "cosem", _n5_dtype, ["s1", "s0"]),
    ("PYR005", write_cosem_n5, "n5", "cosem", _n5_factor, ["s1", "s0"]),
    ("PYR006", write_cosem_n5, "n5", "cosem", _n5_half_voxel, ["s2", "s0"]),
    ("PYR001", write_ome_zarr2, "zarr2", "ome_ngff", _z2_shape, ["s1", "s0"]),
    ("PYR002", write_ome_zarr2, "zarr2", "ome_ngff", _z2_order, ["s2", "s1"]),
    ("PYR006", write_ome_zarr2, "zarr2", "ome_ngff", _z2_half_voxel, ["s1", "s0"]),
    ("PYR003", write_ome_zarr3, "zarr3", "ome_ngff", _z3_rank, ["s2", "s0"]),
    ("PYR004", write_ome_zarr3, "zarr3", "ome_ngff", _z3_dtype, ["s2", "s0"]),
]


@pytest.mark.parametrize(
    ("rule", "writer", "fmt", "convention", "edit", "names"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CASES],
)
def test_rule_on_disk(
    tmp_path: Path,
    rule: str,
    writer: Callable[..., Path],
    fmt: str,
    convention: str,
    edit: Callable[[dict[str, Any]], None],
    names: list[str],
) -> None:
    clean, clean_fmt = read(writer(tmp_path / "clean"))
    assert clean_fmt == fmt
    assert list(pyramid_problems(clean, fmt, convention)) == []  # type: ignore[arg-type]
    broken, _ = read(writer(tmp_path / "broken", edit))
    problems = list(pyramid_problems(broken, fmt, convention))  # type: ignore[arg-type]
    assert ids(problems) == [rule], problems
    for name in names:
        assert name in problems[0].msg
    assert problems[0].loc.startswith(("members.", "attributes."))
    if rule == "PYR004":
        assert problems[0].loc.endswith("data_type" if fmt == "zarr3" else "dtype")


def test_cosem_group_also_reads_as_neuroglancer(tmp_path: Path) -> None:
    spec, _ = read(write_cosem_n5(tmp_path / "g"))
    assert list(pyramid_problems(spec, "n5", "neuroglancer_n5")) == []
    spec, _ = read(write_cosem_n5(tmp_path / "b", _n5_shape))
    assert ids(pyramid_problems(spec, "n5", "neuroglancer_n5")) == ["PYR001"]


# ---- dict cases ------------------------------------------------------------------------------
def ng_group(
    shapes: list[tuple[int, ...]], scales: list[list[int]], pixr: list[list[float]] | None = None
) -> dict[str, Any]:
    """A Neuroglancer N5 group spec dict (arrays in the Zarr v2 view: C-order shapes)."""
    members = {}
    for i, shape in enumerate(shapes):
        attrs = {} if pixr is None else {"pixelResolution": {"dimensions": pixr[i], "unit": "nm"}}
        members[f"s{i}"] = {"shape": list(shape), "dtype": "|u1", "attributes": attrs}
    return {
        "attributes": {"axes": ["x", "y"], "scales": scales, "units": ["nm", "nm"]},
        "members": members,
    }


def test_neuroglancer_factors_are_in_f_order() -> None:
    # x (F first) is downsampled by 4, y by 2: C-order shape (y, x) goes (100, 400) -> (50, 100)
    clean = ng_group([(100, 400), (50, 100)], [[1, 1], [4, 2]])
    assert list(pyramid_problems(clean, "n5", "neuroglancer_n5")) == []
    swapped = ng_group([(100, 400), (25, 200)], [[1, 1], [4, 2]])
    problems = list(pyramid_problems(swapped, "n5", "neuroglancer_n5"))
    assert ids(problems) == ["PYR001"]
    assert "s1" in problems[0].msg and "s0" in problems[0].msg
    assert problems[0].loc == "members.s1.shape"


def test_neuroglancer_pixel_resolution_follows_factors() -> None:
    shapes = [(100, 400), (50, 100)]
    clean = ng_group(shapes, [[1, 1], [4, 2]], [[4.0, 4.0], [16.0, 8.0]])
    assert list(pyramid_problems(clean, "n5", "neuroglancer_n5")) == []
    broken = ng_group(shapes, [[1, 1], [4, 2]], [[4.0, 4.0], [8.0, 8.0]])
    problems = list(pyramid_problems(broken, "n5", "neuroglancer_n5"))
    assert ids(problems) == ["PYR005"]
    assert problems[0].loc == "members.s1.attributes.pixelResolution.dimensions"
    assert "s1" in problems[0].msg and "s0" in problems[0].msg


def test_order_with_declared_factors() -> None:
    # The brief's example: factors out of order make s2 larger than s1 while following them.
    spec = ng_group([(1000,) * 3, (250,) * 3, (500,) * 3], [[1] * 3, [4] * 3, [2] * 3])
    spec["attributes"]["axes"] = ["x", "y", "z"]
    problems = list(pyramid_problems(spec, "n5", "neuroglancer_n5"))
    assert ids(problems) == ["PYR002"]
    assert problems[0].msg.startswith("s2: shape (500, 500, 500) is larger than s1 (250, 250, 250)")


def test_rounding_up_or_down_is_accepted() -> None:
    # Neuroglancer's own test data: 10 / 4 = 2.5 is stored as 3 (ceil); floor would be fine too.
    for last in (2, 3):
        spec = ng_group([(20, 10), (10, 5), (5, last)], [[1, 1], [2, 2], [4, 4]])
        assert list(pyramid_problems(spec, "n5", "neuroglancer_n5")) == []
    spec = ng_group([(20, 10), (10, 5), (5, 4)], [[1, 1], [2, 2], [4, 4]])
    assert ids(pyramid_problems(spec, "n5", "neuroglancer_n5")) == ["PYR001"]


def test_modern_neuroglancer_layout_uses_downsampling_factors() -> None:
    spec = ng_group([(20, 10), (10, 5)], [[1, 1], [2, 2]])
    del spec["attributes"]["scales"]
    spec["members"]["s1"]["attributes"]["downsamplingFactors"] = [2, 2]
    assert list(pyramid_problems(spec, "n5", "neuroglancer_n5")) == []
    spec["members"]["s1"]["attributes"]["downsamplingFactors"] = [2, 4]
    problems = list(pyramid_problems(spec, "n5", "neuroglancer_n5"))
    assert ids(problems) == ["PYR001"]
    assert "downsamplingFactors" in problems[0].msg


def test_half_voxel_is_a_warning_and_errors_are_errors() -> None:
    from cellmap_schemas.multiscale import pyramid

    assert severity_of(pyramid.PYR_HALF_VOXEL.id) == "warning"
    for rule in ("PYR001", "PYR002", "PYR003", "PYR004", "PYR005", "CROP101"):
        assert severity_of(rule) == "error"


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"attributes": None, "members": None},
        {"attributes": {"scales": "x"}, "members": {"s0": {"shape": "?"}}},
        {"attributes": {"scales": [[1, 1], None, [2]]}, "members": {"s0": [], "s1": {}}},
        {"attributes": {"multiscales": [{"datasets": [None, {"path": 3}]}]}, "members": {}},
        {
            "attributes": {"multiscales": [{"datasets": [{"path": "s0", "transform": 5}]}]},
            "members": {"s0": {"shape": [1, 2]}},
        },
        {
            "attributes": {
                "multiscales": [
                    {
                        "datasets": [
                            {"path": "s0", "coordinateTransformations": [{"type": "scale"}]},
                            {"path": "s1", "coordinateTransformations": "x"},
                        ]
                    }
                ]
            },
            "members": {"s0": {"shape": [4]}, "s1": {"shape": [True]}},
        },
    ],
)
def test_malformed_specs_never_raise(spec: dict[str, Any]) -> None:
    for fmt in ("n5", "zarr2", "zarr3"):
        for convention in ("neuroglancer_n5", "cosem", "ome_ngff"):
            list(pyramid_problems(spec, fmt, convention))  # type: ignore[arg-type]


def test_zero_scale_and_missing_levels_are_skipped() -> None:
    spec = ng_group([(10, 10)], [[1, 1], [2, 2], [0, 2]])
    assert list(pyramid_problems(spec, "n5", "neuroglancer_n5")) == []


# ---- crops -----------------------------------------------------------------------------------
def test_crop_on_the_image_grid() -> None:
    # jrc_hela-2 crop1 (examples/cellmap-bucket): annotated at half the image's spacing.
    image_scale, image_translate = [5.24, 4.0, 4.0], [0.0, 0.0, 0.0]
    crop = [3132.21, 899.0, 25863.0]
    assert list(crop_grid_problems(crop, [2.62, 2.0, 2.0], image_scale, image_translate)) == []
    # the same crop's s1 is at the image's spacing: then the translate is a multiple of it
    s1 = [3133.52, 900.0, 25864.0]
    assert list(crop_grid_problems(s1, image_scale, image_scale, image_translate)) == []
    off = list(crop_grid_problems([3132.21, 899.0, 25864.0], [2.62, 2, 2], image_scale, [0, 0, 0]))
    assert ids(off) == ["CROP101"]
    assert "crop" in off[0].msg and "image's s0" in off[0].msg and "axis 2" in off[0].msg


def test_crop_grid_tolerates_bad_input() -> None:
    assert list(crop_grid_problems(None, None, None, None)) == []
    assert list(crop_grid_problems([1.0], [1.0, 2.0], [1.0], [0.0])) == []
    assert list(crop_grid_problems([1.0], [1.0], [0.0], [0.0])) == []
    assert list(crop_grid_problems(["a"], [1.0], [1.0], [0.0])) == []  # type: ignore[list-item]


# ---- real documents ----------------------------------------------------------------------------
def _errors(problems: Any) -> list[Any]:
    return [p for p in problems if p.rule.startswith("PYR") and severity_of(p.rule) == "error"]


def _convention(attrs: dict[str, Any]) -> str | None:
    ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    if isinstance(ms, list) and ms:
        first = (ms[0].get("datasets") or [{}])[0]
        return "cosem" if "transform" in first else "ome_ngff"
    return "neuroglancer_n5" if "scales" in attrs else None


def _groups(spec: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if "members" not in spec:
        return []
    found = [(path, spec)] if _convention(spec.get("attributes") or {}) else []
    for name, member in spec["members"].items():
        found += _groups(member, f"{path}/{name}")
    return found


VALID_EXAMPLES = [
    "jrc_hela-2/jrc_hela-2.n5",
    "jrc_hela-2/jrc_hela-2.zarr",
    "jrc_macrophage-2/jrc_macrophage-2.n5/em",
    "jrc_macrophage-2/jrc_macrophage-2.n5/labels/mito_seg",
    "jrc_macrophage-2/jrc_macrophage-2.n5/labels/nucleus_seg",
    "jrc_macrophage-2/jrc_macrophage-2.n5/labels/ld_seg",
    "jrc_macrophage-2/jrc_macrophage-2.zarr",
    "jrc_cos7-1a/jrc_cos7-1a.zarr",
]


@pytest.mark.parametrize("where", VALID_EXAMPLES)
def test_example_bucket_pyramids_are_clean(where: str) -> None:
    spec, fmt = read(EXAMPLES / where)
    groups = _groups(spec)
    assert groups
    for path, group in groups:
        convention = _convention(group["attributes"])
        problems = list(pyramid_problems(group, fmt, convention))  # type: ignore[arg-type]
        assert problems == [], (path, problems)
        if convention == "cosem":  # COSEM groups carry the Neuroglancer keys too
            assert list(pyramid_problems(group, fmt, "neuroglancer_n5")) == [], path


def test_example_crop_lies_on_its_image_grid() -> None:
    spec, _ = read(EXAMPLES / "jrc_hela-2/jrc_hela-2.zarr")
    em = spec["members"]["recon-1"]["members"]["em"]["members"]["fibsem-uint8"]
    em_ct = em["attributes"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    crop = spec["members"]["recon-1"]["members"]["labels"]["members"]["groundtruth"]["members"]
    for name, cls in crop["crop1"]["members"].items():
        ct = cls["attributes"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
        problems = crop_grid_problems(
            ct[1]["translation"], ct[0]["scale"], em_ct[0]["scale"], em_ct[1]["translation"]
        )
        assert list(problems) == [], name


WILD = DATA / "wild"


def _wild_spec(tmp_path: Path, name: str) -> tuple[dict[str, Any], str] | None:
    """A wild group document as a spec dict: multi-file N5 test data is written and read."""
    doc = json.loads((WILD / name).read_text())
    if "attributes.json" in doc:  # Neuroglancer's test data: a whole N5 group
        for key, value in doc.items():
            put(tmp_path / "g.n5" / key, value)
        return read(tmp_path / "g.n5")
    if "group_attributes" in doc:  # cellmap-schemas model dumps
        return {"attributes": doc["group_attributes"], "members": {}}, "n5"
    if doc.get("node_type") == "group":
        return {**doc, "members": {}}, "zarr3"
    if _convention(doc):
        return {
            "attributes": doc,
            "members": {},
        }, "n5" if "n5" in doc or "scales" in doc else "zarr2"
    return None


def test_wild_group_documents(tmp_path: Path) -> None:
    seen = 0
    for i, path in enumerate(sorted(WILD.glob("*.json"))):
        got = _wild_spec(tmp_path / str(i), path.name)
        if got is None:
            continue
        spec, fmt = got
        convention = _convention(spec.get("attributes") or {})
        if convention is None:
            continue
        seen += 1
        problems = list(pyramid_problems(spec, fmt, convention))  # type: ignore[arg-type]
        assert _errors(problems) == [], (path.name, problems)
    assert seen >= 8


def test_wild_cosem_levels_with_their_arrays(tmp_path: Path) -> None:
    """The cosem-flows group with its s0 and s2 arrays (float noise 7.860000000000001)."""
    root = tmp_path / "mito_seg"
    put(
        root / "attributes.json",
        json.loads((WILD / "cosem_n5_multiscale_group__cosem-flows2021_emulated.json").read_text()),
    )
    for level in ("s0", "s2"):
        doc = (WILD / f"cosem_n5_array_{level}__cosem-flows2021_emulated.json").read_text()
        put(root / level / "attributes.json", json.loads(doc))
    spec, fmt = read(root)
    assert set(spec["members"]) == {"s0", "s2"}
    assert list(pyramid_problems(spec, fmt, "cosem")) == []  # type: ignore[arg-type]
    assert list(pyramid_problems(spec, fmt, "neuroglancer_n5")) == []  # type: ignore[arg-type]


def test_spec_dicts_are_not_modified(tmp_path: Path) -> None:
    spec, _ = read(write_cosem_n5(tmp_path / "g", _n5_shape))
    before = copy.deepcopy(spec)
    list(pyramid_problems(spec, "n5", "cosem"))
    assert spec == before
