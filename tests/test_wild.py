"""Metadata from the wild: every document in tests/data/wild/ is read and judged.

Each document is placed in a real hierarchy on disk the way its source stores it (INDEX.md):
``attributes.json`` for N5, ``.zattrs`` / ``.zarray`` for Zarr v2, ``zarr.json`` for Zarr v3. Group
documents get the member arrays their ``scales`` / ``multiscales`` describe, so that group models
judge a whole, plausible node. Then ``cellmap-schemas inspect`` must read the node and
``cellmap-schemas check`` must give the verdict written below for each model the document claims
(or is commonly taken) to follow; irregular verdicts carry their reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cellmap_schemas.cli import app

WILD = Path(__file__).parent / "data" / "wild"

COSEM_G = "multiscale.cosem.Group"
COSEM_A = "multiscale.cosem.Array"
NG_G = "multiscale.neuroglancer_n5.Group"
NG_A = "multiscale.neuroglancer_n5.Array"
OME04 = "multiscale.ome_ngff.v04.Group"
OME05 = "multiscale.ome_ngff.v05.Group"
CROP = "annotation.CropGroup"
CLASS_G = "annotation.AnnotationGroup"
CLASS_A = "annotation.AnnotationArray"


def load(name: str) -> Any:
    return json.loads((WILD / name).read_text())


def put(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


# ---- N5 --------------------------------------------------------------------------------------
def n5_array(shape_f: list[int], dtype: str = "uint8", **attrs: Any) -> dict[str, Any]:
    """An N5 array's attributes.json (F-order dimensions, as stored)."""
    return {
        "dimensions": shape_f,
        "blockSize": [min(64, max(s, 1)) for s in shape_f],
        "dataType": dtype,
        "compression": {"type": "gzip", "level": -1, "useZlib": False},
        **attrs,
    }


def n5_container(root: Path) -> None:
    put(root / "attributes.json", {"n5": "2.0.0"})


def n5_node(root: Path, rel: str, doc: Mapping[str, Any]) -> str:
    n5_container(root)
    put(root / rel / "attributes.json", doc)
    return rel


def n5_scale_arrays(group: Path, attrs: Mapping[str, Any], base_f: list[int]) -> None:
    """The arrays s0..sN of a Neuroglancer / COSEM multiscale N5 group, from its metadata."""
    scales = attrs.get("scales") or [[1] * len(base_f)]
    res = attrs.get("pixelResolution")
    datasets = {}
    for ms in attrs.get("multiscales") or []:
        datasets = {d["path"]: d for d in ms.get("datasets", [])}
    for i, factors in enumerate(scales):
        name = f"s{i}"
        shape_f = [max(1, s // int(f)) for s, f in zip(base_f, factors, strict=False)]
        member: dict[str, Any] = {}
        if isinstance(res, Mapping):
            dims = [d * f for d, f in zip(res["dimensions"], factors, strict=False)]
            member["pixelResolution"] = {"dimensions": dims, "unit": res["unit"]}
        if name in datasets:
            member["transform"] = datasets[name]["transform"]
        put(group / name / "attributes.json", n5_array(shape_f, **member))


# ---- Zarr v2 / v3 ----------------------------------------------------------------------------
def zarray(shape: list[int], dtype: str = "|u1", **extra: Any) -> dict[str, Any]:
    return {
        "zarr_format": 2,
        "shape": shape,
        "chunks": [min(64, max(s, 1)) for s in shape],
        "dtype": dtype,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
        "compressor": {"id": "zstd", "level": 3},
        **extra,
    }


def v3_array(shape: list[int], names: list[str] | None = None, **attrs: Any) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": "uint8",
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": [min(64, max(s, 1)) for s in shape]},
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 3}}],
        "attributes": attrs,
        **({"dimension_names": names} if names else {}),
    }


def ome_paths(multiscales: list[Mapping[str, Any]]) -> list[str]:
    return [d["path"] for d in multiscales[0]["datasets"]]


def level_shapes(multiscales: list[Mapping[str, Any]], base: int = 64) -> list[list[int]]:
    """A shape per level that follows the levels' scales (a consistent pyramid), base on s0."""
    ndim = len(multiscales[0]["axes"])
    scales = []
    for ds in multiscales[0]["datasets"]:
        scale = next(
            (t["scale"] for t in ds.get("coordinateTransformations", []) if "scale" in t),
            [1.0] * ndim,
        )
        scales.append(scale)
    return [[max(1, round(base * s0 / s)) for s0, s in zip(scales[0], sc, strict=False)]
            for sc in scales]  # fmt: skip


def ome_v2_arrays(group: Path, multiscales: list[Mapping[str, Any]], base: int = 64) -> None:
    for path, shape in zip(ome_paths(multiscales), level_shapes(multiscales, base), strict=False):
        put(group / path / ".zarray", zarray(shape))


def zgroup(group: Path, attrs: Mapping[str, Any] | None = None) -> None:
    put(group / ".zgroup", {"zarr_format": 2})
    if attrs is not None:
        put(group / ".zattrs", attrs)


def zarr_files(root: Path, files: Mapping[str, Any]) -> None:
    for key, doc in files.items():
        put(root / key, doc)


# ---- the cases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """Where a document goes and what each model must say about the node holding it."""

    build: Callable[[Path], str]  # writes the hierarchy under tmp_path, returns the node's path
    verdicts: dict[str, bool] = field(default_factory=dict)  # model -> valid?
    why: dict[str, str] = field(default_factory=dict)  # model -> reason, for irregular verdicts


def _cosem_model_dump(tmp: Path) -> str:
    doc = load("cellmap-schemas_cosem_Group_model_dump.json")
    root = tmp / "data.n5"
    n5_node(root, "em", doc["group_attributes"])
    n5_scale_arrays(root / "em", doc["group_attributes"], [8, 8, 8])
    # s0 exactly as dumped: the spec (C order) in N5 form, plus its attributes
    spec = doc["s0_arrayspec_without_attrs"]
    s0 = n5_array(list(reversed(spec["shape"])), **doc["s0_attributes"])
    s0["blockSize"] = list(reversed(spec["chunks"]))
    s0["compression"] = {"type": "raw"}
    put(root / "em" / "s0" / "attributes.json", s0)
    return str(root / "em")


def _ng_model_dump(tmp: Path) -> str:
    doc = load("cellmap-schemas_neuroglancer_n5_Group_model_dump.json")
    root = tmp / "data.n5"
    n5_node(root, "em", doc["group_attributes"])
    for i in range(2):
        put(
            root / "em" / f"s{i}" / "attributes.json",
            n5_array([8 >> i] * 3, **doc[f"s{i}_attributes"]),
        )
    return str(root / "em")


def _crop(tmp: Path, crop_attrs: Mapping[str, Any]) -> str:
    """A crop as fibsem-tools writes it: class groups with OME multiscales and label arrays."""
    crop = tmp / "groundtruth.zarr" / "crop1"
    zgroup(tmp / "groundtruth.zarr", {})
    zgroup(crop, crop_attrs)
    array_attrs = load("reconstructed__crop_class_array_zattrs_semantic.json")
    semantic = load("reconstructed__crop_class_group_zattrs_semantic.json")
    instance = load("reconstructed__crop_class_group_zattrs_instance.json")
    instance_array = load("verbatim__crop_array_zattrs_instance__csc_issue132.json")
    instance_array["cellmap"]["annotation"]["class_name"] = "mito"
    for name in crop_attrs["cellmap"]["annotation"]["class_names"]:
        is_instance = name == "mito"
        group_attrs = instance if is_instance else semantic
        group_attrs = json.loads(json.dumps(group_attrs))
        group_attrs["cellmap"]["annotation"]["class_name"] = name
        zgroup(crop / name, group_attrs)
        for i, path in enumerate(ome_paths(group_attrs["multiscales"])):
            put(crop / name / path / ".zarray", zarray([8 >> i] * 3))
            attrs = json.loads(json.dumps(instance_array if is_instance else array_attrs))
            attrs["cellmap"]["annotation"]["class_name"] = name
            put(crop / name / path / ".zattrs", attrs)
    all_attrs = load("reconstructed__crop_all_group_zattrs.json")
    zgroup(crop / "all", all_attrs)
    ome_v2_arrays(crop / "all", all_attrs["multiscales"], base=8)
    return str(crop)


def _class_array(tmp: Path, attrs: Mapping[str, Any]) -> str:
    node = tmp / "crop.zarr" / "mito" / "s0"
    zgroup(tmp / "crop.zarr", {})
    put(node / ".zarray", load("reconstructed__crop_class_array_zarray.json"))
    put(node / ".zattrs", attrs)
    return str(node)


def _class_group(tmp: Path, name: str, array_doc: str) -> str:
    attrs = load(name)
    group = tmp / "crop.zarr" / "mito_mem"
    zgroup(tmp / "crop.zarr", {})
    zgroup(group, attrs)
    array_attrs = load(array_doc)
    array_attrs["cellmap"]["annotation"]["class_name"] = attrs["cellmap"]["annotation"][
        "class_name"
    ]
    paths = ome_paths(attrs["multiscales"]) if "multiscales" in attrs else ["s0"]
    for i, path in enumerate(paths):
        put(group / path / ".zarray", zarray([8 >> i] * 3))
        put(group / path / ".zattrs", array_attrs)
    return str(group)


def _n5_multiscale_from_files(tmp: Path, name: str) -> str:
    root = tmp / "ng.n5"
    n5_container(root)
    for key, doc in load(name).items():
        put(root / "image" / key, doc)
    return str(root / "image")


def _cosem_flows(tmp: Path) -> str:
    attrs = load("cosem_n5_multiscale_group__cosem-flows2021_emulated.json")
    root = tmp / "jrc_hela-2.n5"
    n5_node(root, "labels/mito_seg", attrs)
    n5_scale_arrays(root / "labels" / "mito_seg", attrs, [12000, 1600, 6368])
    put(
        root / "labels" / "mito_seg" / "s0" / "attributes.json",
        load("cosem_n5_array_s0__cosem-flows2021_emulated.json"),
    )
    put(
        root / "labels" / "mito_seg" / "s2" / "attributes.json",
        load("cosem_n5_array_s2__cosem-flows2021_emulated.json"),
    )
    return str(root / "labels" / "mito_seg")


def _n5_array_doc(tmp: Path, name: str, rel: str = "em/s0") -> str:
    root = tmp / "data.n5"
    n5_node(root, rel, load(name))
    return str(root / rel)


def _n5_group_doc(tmp: Path, name: str, base_f: list[int] | None = None) -> str:
    root = tmp / "data.n5"
    attrs = load(name)
    n5_node(root, "volume", attrs)
    if base_f is not None:
        n5_scale_arrays(root / "volume", attrs, base_f)
    return str(root / "volume")


def _n5_array_with(tmp: Path, name: str, shape_f: list[int]) -> str:
    root = tmp / "data.n5"
    n5_node(root, "em/s0", n5_array(shape_f, **load(name)))
    return str(root / "em" / "s0")


def _compression_variants(tmp: Path) -> str:
    root = tmp / "variants.n5"
    n5_container(root)
    for codec, doc in load("n5_dataset_compression_variants__zarr-python_N5Store.json").items():
        put(root / codec / "attributes.json", doc)
    return str(root)


def _observed_inspect(tmp: Path) -> str:
    """The original's inspect output of an N5 array, stored back as the N5 it came from."""
    from cellmap_schemas.n5_wrap import spec_to_n5_array, unwrap
    from cellmap_schemas.spec.zarr_v2 import ArraySpec

    spec = unwrap(
        ArraySpec.model_validate(
            load("observed__jrc_hela-2_n5_em_fibsem-uint16_s0__cellmap-schemas-inspect.json")
        )
    )
    root = tmp / "jrc_hela-2.n5"
    n5_node(root, "em/fibsem-uint16/s0", spec_to_n5_array(spec))
    return str(root / "em" / "fibsem-uint16" / "s0")


def _ome04(tmp: Path, name: str, base: int = 64) -> str:
    attrs = load(name)
    group = tmp / "image.zarr"
    zgroup(group, attrs)
    ome_v2_arrays(group, attrs["multiscales"], base)
    return str(group)


def _ome04_with_s0(tmp: Path, name: str) -> str:
    """An EM group converted to Zarr, its s0 as observed on the bucket, the rest scaled down."""
    attrs = load(name)
    group = tmp / "jrc_mus-liver-zon-1.zarr" / "recon-1" / "em" / "fibsem-uint8"
    zgroup(tmp / "jrc_mus-liver-zon-1.zarr", {})
    zgroup(group.parent.parent, {})
    zgroup(group.parent, {})
    zgroup(group, attrs)
    s0 = load("reconstructed__zarr_em_s0_zarray__jrc_mus-liver-zon-1_like.json")
    for i, path in enumerate(ome_paths(attrs["multiscales"])):
        put(group / path / ".zarray", {**s0, "shape": [max(1, s >> i) for s in s0["shape"]]})
    return str(group)


def _v3_group(tmp: Path, name: str) -> str:
    doc = load(name)
    group = tmp / "image.zarr"
    put(group / "zarr.json", doc)
    attrs = doc["attributes"]
    ms = (attrs.get("ome") or attrs)["multiscales"]
    axes = [a["name"] for a in ms[0]["axes"]]
    for path, shape in zip(ome_paths(ms), level_shapes(ms), strict=False):
        put(group / path / "zarr.json", v3_array(shape, axes))
    return str(group)


def _zarr_view(tmp: Path) -> str:
    root = tmp / "jrc_hela-2.n5-as-zarr"
    zarr_files(root, load("zarr_view_of_n5__zarr-python_N5FSStore.json"))
    # N5FSStore presents every N5 group with a `.zgroup`; the capture lists the group's `.zattrs`
    put(root / "labels" / "mito_seg" / ".zgroup", {"zarr_format": 2})
    return str(root / "labels" / "mito_seg")


def _catalog(tmp: Path, name: str) -> str:
    # fibsem-metadata catalog entries describe N5 sources; stored as a group's attributes.
    return str(tmp / "catalog.n5" / n5_node(tmp / "catalog.n5", "source", load(name)))


def _crop_0_1_1(tmp: Path) -> str:
    return _crop(tmp, load("reconstructed__crop_group_zattrs__cellmap-schemas-0.1.1.json"))


NO_PIXEL_RESOLUTION = "no pixelResolution: both conventions require it on every scale level"
ZARR_NOT_N5 = (
    "a Zarr v2 node: the COSEM and Neuroglancer N5 models describe N5 storage only (the original"
    " refused non-N5 stores for them too), whatever keys the attributes carry"
)
NOT_MULTISCALE = "a plain N5 group: no axes / units / scales / pixelResolution"
CATALOG = (
    "a fibsem-metadata catalog entry (where a source lives, how to display it), not multiscale"
    " metadata; only its `transform` resembles COSEM"
)

CASES: dict[str, Case] = {
    # ---- generated by the original cellmap-schemas: the reference valid cases
    "cellmap-schemas_cosem_Group_model_dump.json": Case(
        _cosem_model_dump, {COSEM_G: True, NG_G: True}
    ),
    "cellmap-schemas_neuroglancer_n5_Group_model_dump.json": Case(
        _ng_model_dump,
        {NG_G: True, COSEM_G: False},
        {COSEM_G: "Neuroglancer-only: no `multiscales`, arrays have no `transform`"},
    ),
    # ---- COSEM as published (cosem-flows 2021) and as observed on the bucket
    "cosem_n5_multiscale_group__cosem-flows2021_emulated.json": Case(
        _cosem_flows,
        {COSEM_G: False, NG_G: False},
        {
            COSEM_G: "its s0 and s2 as cosem-flows wrote them carry only `transform`: "
            + NO_PIXEL_RESOLUTION,
            NG_G: "same: s0 and s2 have " + NO_PIXEL_RESOLUTION,
        },
    ),
    "cosem_n5_array_s0__cosem-flows2021_emulated.json": Case(
        lambda t: _cosem_flows(t) + "/s0",
        {COSEM_A: False, NG_A: False},
        {COSEM_A: NO_PIXEL_RESOLUTION, NG_A: NO_PIXEL_RESOLUTION},
    ),
    "cosem_n5_array_s2__cosem-flows2021_emulated.json": Case(
        lambda t: _cosem_flows(t) + "/s2",
        {COSEM_A: False, NG_A: False},
        {COSEM_A: NO_PIXEL_RESOLUTION, NG_A: NO_PIXEL_RESOLUTION},
    ),
    "observed__jrc_hela-2_n5_em_fibsem-uint16_s0__cellmap-schemas-inspect.json": Case(
        _observed_inspect, {COSEM_A: True, NG_A: True}
    ),
    "reconstructed__jrc_hela-2_n5_em_fibsem-uint16_s0_attributes.json": Case(
        lambda t: _n5_array_doc(
            t,
            "reconstructed__jrc_hela-2_n5_em_fibsem-uint16_s0_attributes.json",
            "em/fibsem-uint16/s0",
        ),
        {COSEM_A: True, NG_A: True},
    ),
    "zarr_view_of_n5__zarr-python_N5FSStore.json": Case(
        _zarr_view,
        {COSEM_G: False, NG_G: False},
        {COSEM_G: ZARR_NOT_N5, NG_G: ZARR_NOT_N5},
    ),
    # ---- irregular N5 from other Cellmap tools and users
    "irregular_n5_array_transform__ordering__cellmap-n5-to-zarr_test.json": Case(
        lambda t: _n5_array_with(
            t, "irregular_n5_array_transform__ordering__cellmap-n5-to-zarr_test.json", [64] * 3
        ),
        {COSEM_A: False, NG_A: False},
        {
            COSEM_A: NO_PIXEL_RESOLUTION + " (`ordering` is an unknown key; `order` defaults to C)",
            NG_A: NO_PIXEL_RESOLUTION,
        },
    ),
    "irregular_n5_group__render-style_ordering_translate__cellmap-n5-to-zarr_test.json": Case(
        lambda t: _n5_group_doc(
            t,
            "irregular_n5_group__render-style_ordering_translate__cellmap-n5-to-zarr_test.json",
            [4096] * 3,
        ),
        {NG_G: True, COSEM_G: False},
        {
            NG_G: "z,y,x axes and extra `ordering`/`translate` keys break no Neuroglancer rule",
            COSEM_G: "render-style: no `multiscales` and no per-array `transform`",
        },
    ),
    "irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json": Case(
        lambda t: _n5_array_doc(
            t, "irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", "volume"
        ),
        {COSEM_A: True, NG_A: True, NG_G: False},
        {
            COSEM_A: "an array (dimensions + dataType) whose extra group keys are ignored",
            NG_A: "as for COSEM: the array rules hold",
            NG_G: "it is an array, not a group, despite its `scales` key",
        },
    ),
    "constructed__n5_gt_subvolumes_attrs__guess.json": Case(
        lambda t: _n5_group_doc(t, "constructed__n5_gt_subvolumes_attrs__guess.json"),
        {COSEM_G: False, NG_G: False},
        {COSEM_G: "ground-truth bookkeeping, not multiscale metadata", NG_G: NOT_MULTISCALE},
    ),
    # ---- plain N5 written by n5-java and zarr-python
    "n5_dataset__n5java_1.5.0_legacy_compressionType.json": Case(
        lambda t: _n5_array_doc(t, "n5_dataset__n5java_1.5.0_legacy_compressionType.json", "raw"),
        {NG_A: False},
        {NG_A: "a plain N5 dataset: " + NO_PIXEL_RESOLUTION},
    ),
    "n5_dataset__n5java_2.5.1_raw.json": Case(
        lambda t: _n5_array_doc(t, "n5_dataset__n5java_2.5.1_raw.json", "raw"),
        {NG_A: False},
        {NG_A: "a plain N5 dataset: " + NO_PIXEL_RESOLUTION},
    ),
    "n5_dataset_compression_variants__zarr-python_N5Store.json": Case(
        _compression_variants,
        {NG_G: False},
        {NG_G: NOT_MULTISCALE + "; its arrays have " + NO_PIXEL_RESOLUTION},
    ),
    **{
        name: Case(
            lambda t, name=name: _n5_group_doc(t, name), {NG_G: False}, {NG_G: NOT_MULTISCALE}
        )
        for name in (
            "n5_intermediate_group__zarr-python_N5Store.json",
            "n5_root__n5java_1.5.0.json",
            "n5_root__n5java_2.5.1.json",
            "n5_root__n5java_4.0.0.json",
            "n5_root__zarr-python_N5Store.json",
        )
    },
    # ---- Neuroglancer's own documentation and test data
    "neuroglancer_n5_coordinateArrays__ng_docs.json": Case(
        lambda t: _n5_array_doc(t, "neuroglancer_n5_coordinateArrays__ng_docs.json", "image"),
        {NG_A: False},
        {NG_A: "Neuroglancer reads axes/coordinateArrays here; " + NO_PIXEL_RESOLUTION},
    ),
    "neuroglancer_n5_downsamplingFactors_array__ng_docs.json": Case(
        lambda t: _n5_array_doc(
            t, "neuroglancer_n5_downsamplingFactors_array__ng_docs.json", "image/s1"
        ),
        {NG_A: False},
        {NG_A: "modern Neuroglancer style (downsamplingFactors): " + NO_PIXEL_RESOLUTION},
    ),
    "neuroglancer_n5_multiscale_deprecated__neuroglancer_testdata.json": Case(
        lambda t: _n5_multiscale_from_files(
            t, "neuroglancer_n5_multiscale_deprecated__neuroglancer_testdata.json"
        ),
        {NG_G: False},
        {NG_G: "`resolution` instead of pixelResolution: Neuroglancer reads it, the model not"},
    ),
    "neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json": Case(
        lambda t: _n5_multiscale_from_files(
            t, "neuroglancer_n5_multiscale_modern__neuroglancer_testdata.json"
        ),
        {NG_G: False},
        {NG_G: "per-array downsamplingFactors instead of group `scales`, and no pixelResolution"},
    ),
    "neuroglancer_n5_resolution_units__ng_docs.json": Case(
        lambda t: _n5_group_doc(t, "neuroglancer_n5_resolution_units__ng_docs.json", [64] * 3),
        {NG_G: False},
        {NG_G: "`resolution` + `units` only: no axes, scales or pixelResolution"},
    ),
    "neuroglancer_n5_viewer_style__jbms_issue176.json": Case(
        lambda t: _n5_group_doc(t, "neuroglancer_n5_viewer_style__jbms_issue176.json", [64] * 3),
        {NG_G: False},
        {NG_G: "n5-viewer style: scales + pixelResolution without `axes` and `units`"},
    ),
    # ---- OME-NGFF
    "ome-ngff_0.4_multiscales_example__ome-ngff.json": Case(
        lambda t: _ome04(t, "ome-ngff_0.4_multiscales_example__ome-ngff.json"),
        {OME04: True, OME05: False},
        {OME05: "a Zarr v2 group: OME-NGFF 0.5 lives in zarr.json"},
    ),
    "ome-ngff_0.4_multiscales_transformations_units_typo__ome-ngff.json": Case(
        lambda t: _ome04(t, "ome-ngff_0.4_multiscales_transformations_units_typo__ome-ngff.json"),
        {OME04: True},
        {OME04: "the spec's own example: `units` (typo) is an unknown key, `unit` is optional"},
    ),
    "ome-ngff_0.5_zarr.json_multiscales_example__ome-ngff.json": Case(
        lambda t: _v3_group(t, "ome-ngff_0.5_zarr.json_multiscales_example__ome-ngff.json"),
        {OME05: True, OME04: False},
        {OME04: "a Zarr v3 group: OME-NGFF 0.4 lives in .zattrs"},
    ),
    "reconstructed__zarr3_group_zarr.json__zarrify_ome0.5.json": Case(
        lambda t: _v3_group(t, "reconstructed__zarr3_group_zarr.json__zarrify_ome0.5.json"),
        {OME05: True, OME04: False},
        {OME04: "a Zarr v3 group"},
    ),
    "irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json": Case(
        lambda t: _v3_group(
            t, "irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json"
        ),
        {OME05: False, OME04: False},
        {
            OME05: "0.4-style `multiscales` at the top of zarr.json attributes, not under `ome`",
            OME04: "0.4 metadata, but in a Zarr v3 group, which 0.4 does not allow",
        },
    ),
    "reconstructed__zarr_em_group_zattrs__cellmap-n5-to-zarr_with_legacy_n5_keys.json": Case(
        lambda t: _ome04_with_s0(
            t, "reconstructed__zarr_em_group_zattrs__cellmap-n5-to-zarr_with_legacy_n5_keys.json"
        ),
        {OME04: True, COSEM_G: False, NG_G: False},
        {
            OME04: "the legacy N5 keys left beside `multiscales` are unknown keys, allowed",
            COSEM_G: ZARR_NOT_N5,
            NG_G: ZARR_NOT_N5,
        },
    ),
    "reconstructed__zarr_em_group_zattrs__ome-only.json": Case(
        lambda t: _ome04_with_s0(t, "reconstructed__zarr_em_group_zattrs__ome-only.json"),
        {OME04: True},
    ),
    "reconstructed__zarr_em_s0_zarray__jrc_mus-liver-zon-1_like.json": Case(
        lambda t: _ome04_with_s0(t, "reconstructed__zarr_em_group_zattrs__ome-only.json") + "/s0",
        {CLASS_A: False},
        {CLASS_A: "an EM array, not a label array: no cellmap annotation attributes"},
    ),
    # ---- annotations (crops) as fibsem-tools and the segmentation challenge wrote them
    "reconstructed__crop_group_zattrs__cellmap-schemas-0.1.1.json": Case(_crop_0_1_1, {CROP: True}),
    "constructed__annotation_fibsem-tools-2023_crop_attrs_with_index.json": Case(
        lambda t: _crop(
            t, load("constructed__annotation_fibsem-tools-2023_crop_attrs_with_index.json")
        ),
        {CROP: True},
        {CROP: "2023 layout: the extra `index` is ignored and `version` defaults to 0.1.1"},
    ),
    "reconstructed__crop_all_group_zattrs.json": Case(
        lambda t: _crop_0_1_1(t) + "/all", {OME04: True}
    ),
    "reconstructed__crop_class_group_zattrs_instance.json": Case(
        lambda t: _crop_0_1_1(t) + "/mito", {CLASS_G: True, OME04: True}
    ),
    "reconstructed__crop_class_group_zattrs_semantic.json": Case(
        lambda t: _class_group(
            t,
            "reconstructed__crop_class_group_zattrs_semantic.json",
            "reconstructed__crop_class_array_zattrs_semantic.json",
        ),
        {CLASS_G: True, OME04: True},
    ),
    "reconstructed__crop_class_array_zarray.json": Case(
        lambda t: _crop_0_1_1(t) + "/mito_mem/s0", {CLASS_A: True}
    ),
    "reconstructed__crop_class_array_zattrs_semantic.json": Case(
        lambda t: _class_array(t, load("reconstructed__crop_class_array_zattrs_semantic.json")),
        {CLASS_A: True},
    ),
    "verbatim__crop_array_zattrs_instance__csc_issue132.json": Case(
        lambda t: _class_array(t, load("verbatim__crop_array_zattrs_instance__csc_issue132.json")),
        {CLASS_A: True},
    ),
    "verbatim__crop_group_cellmap_block__MIB3_plan_url_s3.json": Case(
        lambda t: _class_group(
            t,
            "verbatim__crop_group_cellmap_block__MIB3_plan_url_s3.json",
            "reconstructed__crop_class_array_zattrs_semantic.json",
        ),
        {CLASS_G: True, CROP: False},
        {CROP: "a class group's block (class_name, annotation_type), not a crop's"},
    ),
    "verbatim__derived_label_array_attrs__combine_tool.json": Case(
        lambda t: _class_array(t, load("verbatim__derived_label_array_attrs__combine_tool.json")),
        {CLASS_A: True},
        {CLASS_A: "a template: the placeholder class name is a string, counts may be empty"},
    ),
    "constructed__annotation_v0.1.0_histogram_array_attrs.json": Case(
        lambda t: _class_array(
            t, load("constructed__annotation_v0.1.0_histogram_array_attrs.json")
        ),
        {CLASS_A: False},
        {CLASS_A: "schema 0.1.0: `histogram` was renamed `complement_counts`, now required"},
    ),
    # ---- fibsem-metadata catalog documents (not node metadata at all)
    **{
        name: Case(lambda t, name=name: _catalog(t, name), {COSEM_G: False}, {COSEM_G: CATALOG})
        for name in (
            "verbatim__fibsem-metadata_index_2021_jrc_hela-2_first_volume.json",
            "verbatim__fibsem-metadata_source_jrc_hela-2_fibsem-uint8_precomputed.json",
            "verbatim__fibsem-metadata_source_jrc_hela-2_mito_seg.json",
            "verbatim__fibsem-metadata_source_jrc_mus-liver_mito_seg_trailing_slash_int_translate.json",
        )
    },
}

# The problems each invalid verdict must include: the reason above, as the tool words it.
EXPECTED_PROBLEMS: dict[tuple[str, str], list[str]] = {
    ("cellmap-schemas_neuroglancer_n5_Group_model_dump.json", COSEM_G): [
        "attributes.multiscales: field required",
        "members.s0.attributes.transform: field required",
    ],
    ("cosem_n5_multiscale_group__cosem-flows2021_emulated.json", COSEM_G): [
        "members.s0.attributes.pixelResolution: field required",
        "members.s2.attributes.pixelResolution: field required",
    ],
    ("cosem_n5_array_s0__cosem-flows2021_emulated.json", COSEM_A): [
        "attributes.pixelResolution: field required"
    ],
    ("zarr_view_of_n5__zarr-python_N5FSStore.json", COSEM_G): [
        "(root): is a Zarr v2 node; multiscale.cosem.Group describes N5 nodes"
    ],
    ("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json", NG_G): [
        "(root): is an array; multiscale.neuroglancer_n5.Group describes groups"
    ],
    ("neuroglancer_n5_multiscale_deprecated__neuroglancer_testdata.json", NG_G): [
        "attributes.pixelResolution: field required"
    ],
    ("neuroglancer_n5_viewer_style__jbms_issue176.json", NG_G): [
        "attributes.axes: field required",
        "attributes.units: field required",
    ],
    ("irregular__zarr3_group_zarr.json_multiscales_without_ome_namespace.json", OME05): [
        "attributes.ome: field required"
    ],
    ("ome-ngff_0.5_zarr.json_multiscales_example__ome-ngff.json", OME04): [
        "(root): is a Zarr v3 node"
    ],
    ("constructed__annotation_v0.1.0_histogram_array_attrs.json", CLASS_A): [
        "attributes.cellmap.annotation.complement_counts: field required"
    ],
    ("verbatim__crop_group_cellmap_block__MIB3_plan_url_s3.json", CROP): [
        "attributes.cellmap.annotation.class_names: field required"
    ],
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = app(argv, result_action="return_value")
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_document_has_a_case() -> None:
    documents = {p.name for p in WILD.glob("*.json")}
    assert documents == set(CASES)
    for name, case in CASES.items():
        assert case.verdicts, name
        # every irregular verdict (invalid, or valid despite an oddity) has its reason written
        for model, valid in case.verdicts.items():
            if not valid:
                assert case.why.get(model), (name, model)
        assert set(case.why) <= set(case.verdicts), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_inspect_reads_it(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = CASES[name].build(tmp_path)
    rc, out, err = run(["inspect", url], capsys)
    assert (rc, err) == (0, "")
    node = json.loads(out)
    assert ("shape" in node) != ("members" in node)


@pytest.mark.parametrize(
    ("name", "model"), sorted((n, m) for n, c in CASES.items() for m in c.verdicts)
)
def test_check_verdict(
    name: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    url = case.build(tmp_path)
    rc, out, err = run(["check", url, model], capsys)
    assert err == ""
    if case.verdicts[model]:
        assert (rc, out) == (0, f"{url}: valid {model}\n"), case.why.get(model)
    else:
        assert rc == 1, case.why[model]
        assert out.startswith(f"{url}: invalid {model} (")
        for problem in EXPECTED_PROBLEMS.get((name, model), []):
            assert f"  {problem}" in out, (problem, out)


def test_compression_variants_are_mapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(["inspect", _compression_variants(tmp_path)], capsys)
    assert rc == 0
    members = json.loads(out)["members"]
    ids = {name: (m["compressor"] or {}).get("id") for name, m in members.items()}
    assert ids == {
        "raw": None,
        "gzip": "gzip",
        "zlib": "zlib",
        "blosc": "blosc",
        "zstd": "zstd",
        "bz2": "bz2",
        "xz": "lzma",
    }
    assert members["gzip"]["shape"] == [10, 20, 30]


def test_legacy_n5_array_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _n5_array_doc(tmp_path, "n5_dataset__n5java_1.5.0_legacy_compressionType.json", "raw")
    rc, out, _ = run(["inspect", url], capsys)
    assert rc == 0
    node = json.loads(out)
    assert (node["shape"], node["chunks"], node["dtype"]) == ([5, 7], [4, 5], "|u1")
    assert node["compressor"] is None
