#!/usr/bin/env python3
"""Generate metadata-only Cellmap-style hierarchies, with a truth file, for tests and benchmarks.

The tree is shaped like the Cellmap bucket (``s3://janelia-cosem-datasets``): one folder per
dataset, an N5 container of COSEM multiscale groups (``<ds>/<ds>.n5/em/fibsem-uint8/s0..``,
``labels/<class>_seg/s0..``) and, in the richer layouts, Zarr containers with OME-NGFF images and
annotation crops. Only metadata documents are written (no chunks), so a tree of 20,000 groups takes
seconds. A share of the groups is broken on purpose, in known ways; ``truth.json`` records, per
dataset, how many nodes/groups/arrays were written, how many groups of each model should validate
or fail, and which nodes are broken and why, so scans can be checked against it.

Layouts
-------
``cosem``    N datasets of COSEM N5 groups only (what the original implementation can check).
``mixed``    as ``cosem``, plus per dataset a Zarr v2 container with an OME-NGFF 0.4 image and
             annotation crops, and a Zarr v3 container with an OME-NGFF 0.5 image.
``example``  the small fixed hierarchy committed as ``examples/cellmap-bucket`` (seed and sizes
             are ignored).

Import it (``scripts/`` is not a package) with ``importlib``; ``generate(...)`` returns the truth,
``upload(...)`` copies a tree to an S3 endpoint concurrently.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "BROKEN_KINDS",
    "LAYOUTS",
    "Broken",
    "DatasetTruth",
    "ModelCount",
    "Truth",
    "generate",
    "iter_files",
    "load_truth",
    "upload",
]

COSEM = "multiscale.cosem.Group"
OME04 = "multiscale.ome_ngff.v04.Group"
OME05 = "multiscale.ome_ngff.v05.Group"
CROP = "annotation.CropGroup"
LAYOUTS = ("cosem", "mixed", "example")

#: Ways a COSEM group is broken on purpose, each breaking one documented rule of the model.
BROKEN_KINDS: dict[str, str] = {
    "transform_mismatch": "the transform of one scale level differs from the group's multiscales",
    "missing_level": "the last scale level listed in `scales`/`multiscales` has no array",
    "malformed_json": "the attributes.json of scale level s1 is truncated (not JSON)",
    "unit_mismatch": "`pixelResolution.unit` differs from the entries of `units`",
    "axes_units_length": "`units` has fewer entries than `axes`",
}
#: Ways a crop or an OME-NGFF group is broken on purpose (example and mixed layouts).
OTHER_BROKEN_KINDS: dict[str, str] = {
    "missing_class_group": "`class_names` lists a class that has no group in the crop",
    "missing_coordinate_transformations": "a dataset of the multiscale has no "
    "`coordinateTransformations` (required by OME-NGFF)",
}

CELL_TYPES = ("hela", "macrophage", "jurkat", "cos7", "mus-liver", "ctl-id8", "fly-vnc", "sum159")
CLASSES = (
    "mito", "er", "nucleus", "golgi", "ves", "endo", "lyso", "ld", "perox", "mt", "cent",
    "chrom", "nucleolus", "pm", "ribo", "ecs", "cell", "np", "nechr", "hchrom", "mito_mem",
    "mito_lum", "er_mem", "er_lum", "golgi_mem", "golgi_lum", "nhchrom", "echrom", "ne",
    "ne_mem", "ne_lum", "np_out", "np_in", "vim", "glyco", "isg", "isg_mem", "isg_lum",
)  # fmt: skip
#: Voxel sizes (z, y, x) in nm seen on the bucket.
BASE_SCALES = ((5.24, 4.0, 4.0), (3.24, 4.0, 4.0), (4.0, 4.0, 4.0), (8.0, 8.0, 8.0), (2.96, 4, 4))


# ---- truth -----------------------------------------------------------------------------------
class Broken(msgspec.Struct, kw_only=True):
    """A node broken on purpose: the model root it breaks, how, and the node at fault."""

    path: str
    model: str
    kind: str
    detail: str
    node: str


class ModelCount(msgspec.Struct, kw_only=True):
    """How many model roots of one model should validate, and how many should fail."""

    valid: int = 0
    invalid: int = 0


class DatasetTruth(msgspec.Struct, kw_only=True):
    """What one dataset (first path component below the root) holds.

    ``nodes`` counts every directory with a metadata document (``groups`` + ``arrays`` +
    ``unreadable``, the latter being documents that are not valid JSON); ``roots`` maps each model
    root (a node meant to validate as a model: multiscale groups and crops) to that model;
    ``models`` counts the roots per model by expected verdict.
    """

    files: int = 0
    nodes: int = 0
    groups: int = 0
    arrays: int = 0
    unreadable: int = 0
    models: dict[str, ModelCount] = {}
    roots: dict[str, str] = {}
    broken: list[Broken] = []


class Truth(msgspec.Struct, kw_only=True):
    """What ``generate`` wrote; encoded as ``truth.json`` beside the datasets."""

    layout: str
    seed: int
    levels: str
    broken_fraction: float
    files: int = 0
    nodes: int = 0
    groups: int = 0
    arrays: int = 0
    roots: int = 0
    datasets: dict[str, DatasetTruth] = {}

    def broken(self) -> list[Broken]:
        """Every broken node, in dataset order."""
        return [b for d in self.datasets.values() for b in d.broken]


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a ``truth.json``."""
    return msgspec.json.decode(Path(path).read_bytes(), type=Truth)


# ---- encoding --------------------------------------------------------------------------------
_enc = msgspec.json.Encoder(order="sorted")
_enc_ordered = msgspec.json.Encoder()


def _zarr2_json(doc: Any) -> bytes:
    """As zarr-python 2 writes .zarray/.zattrs/attributes.json: sorted keys, indent 4."""
    return msgspec.json.format(_enc.encode(doc), indent=4)


def _zarr3_json(doc: Any) -> bytes:
    """As zarr-python 3 writes zarr.json: insertion order, indent 2."""
    return msgspec.json.format(_enc_ordered.encode(doc), indent=2)


# ---- writing ---------------------------------------------------------------------------------
class _Writer:
    """Writes documents below ``out`` and keeps the per-dataset accounting for the truth."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.ds: DatasetTruth = DatasetTruth()
        self._made: set[str] = set()

    def begin(self, truth: Truth, name: str) -> None:
        self.ds = DatasetTruth(models={}, roots={}, broken=[])
        truth.datasets[name] = self.ds

    def file(self, rel: str, data: bytes) -> None:
        d, _, _ = rel.rpartition("/")
        if d not in self._made:
            os.makedirs(os.path.join(self.out, d), exist_ok=True)
            self._made.add(d)
        with open(os.path.join(self.out, rel), "wb") as f:
            f.write(data)
        self.ds.files += 1

    def node(self, rel: str, kind: str, docs: dict[str, bytes]) -> None:
        """One node: its metadata documents by file name; kind "group"|"array"|"unreadable"."""
        for name, data in docs.items():
            self.file(f"{rel}/{name}", data)
        self.ds.nodes += 1
        if kind == "group":
            self.ds.groups += 1
        elif kind == "array":
            self.ds.arrays += 1
        else:
            self.ds.unreadable += 1

    def root(self, rel: str, model: str, broken: tuple[str, str, str] | None) -> None:
        """Record a model root; ``broken`` is (kind, detail, faulty node) or None."""
        self.ds.roots[rel] = model
        count = self.ds.models.setdefault(model, ModelCount())
        if broken is None:
            count.valid += 1
        else:
            count.invalid += 1
            kind, detail, node = broken
            self.ds.broken.append(
                Broken(path=rel, model=model, kind=kind, detail=detail, node=node)
            )


def _levels(spec: str | int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(spec, int):
        return spec, spec
    if isinstance(spec, tuple):
        return spec
    lo, _, hi = str(spec).partition("-")
    return int(lo), int(hi or lo)


def _pyramid(base: Sequence[float], n: int) -> list[tuple[list[float], list[float]]]:
    """(scale, translate) per level in z, y, x, as COSEM's pipeline computes them (2x
    downsampling; each level's origin moves by half the previous level's voxel)."""
    out: list[tuple[list[float], list[float]]] = []
    translate = [0.0, 0.0, 0.0]
    for k in range(n):
        scale = [float(b) * 2**k for b in base]
        if k:
            prev = out[-1][0]
            translate = [t + p / 2 for t, p in zip(translate, prev, strict=True)]
        out.append((scale, translate))
    return out


def _cosem_group(
    w: _Writer,
    rel: str,
    *,
    n_levels: int,
    base: Sequence[float],
    shape_xyz: Sequence[int],
    dtype: str,
    name: str,
    broken: str | None,
) -> None:
    """One COSEM multiscale group in N5 (group attributes.json + one array per level)."""
    pyr = _pyramid(base, n_levels)
    units = ["nm", "nm", "nm"]
    datasets = [
        {
            "path": f"s{k}",
            "transform": {"axes": ["z", "y", "x"], "scale": s, "translate": t, "units": units},
        }
        for k, (s, t) in enumerate(pyr)
    ]
    group = {
        "axes": ["x", "y", "z"],
        "multiscales": [{"datasets": datasets, "name": name}],
        "n5": "2.0.0",
        "name": name,
        "pixelResolution": {"dimensions": pyr[0][0][::-1], "unit": "nm"},
        "scales": [[2**k] * 3 for k in range(n_levels)],
        "units": units,
    }
    fault: tuple[str, str, str] | None = None
    if broken == "unit_mismatch":
        group["pixelResolution"] = {"dimensions": pyr[0][0][::-1], "unit": "um"}
        fault = (broken, "pixelResolution.unit is 'um' but units are 'nm'", rel)
    elif broken == "axes_units_length":
        group["units"] = ["nm", "nm"]
        fault = (broken, "3 axes but 2 units", rel)
    w.node(rel, "group", {"attributes.json": _zarr2_json(group)})

    bad_level = min(2, n_levels - 1)
    for k, (scale, translate) in enumerate(pyr):
        level = f"{rel}/s{k}"
        if broken == "missing_level" and k == n_levels - 1:
            fault = (broken, f"s{k} is listed but has no array", level)
            continue
        transform = {"axes": ["z", "y", "x"], "scale": scale, "translate": translate}
        transform["units"] = units
        if broken == "transform_mismatch" and k == bad_level:
            transform = dict(transform, translate=[translate[0] + 1.0, *translate[1:]])
            fault = (
                broken,
                f"s{k} transform.translate[0] differs from multiscales[0].datasets[{k}]",
                level,
            )
        doc = {
            "blockSize": [64, 64, 64],
            "compression": {"level": -1, "type": "gzip", "useZlib": False},
            "dataType": dtype,
            "dimensions": [max(1, math.ceil(d / 2**k)) for d in shape_xyz],
            "pixelResolution": {"dimensions": scale[::-1], "unit": "nm"},
            "transform": transform,
        }
        data = _zarr2_json(doc)
        if broken == "malformed_json" and k == min(1, n_levels - 1):
            w.node(level, "unreadable", {"attributes.json": data[: len(data) // 2]})
            fault = (broken, f"s{k}/attributes.json is truncated", level)
        else:
            w.node(level, "array", {"attributes.json": data})
    w.root(rel, COSEM, fault)


def _n5_group(w: _Writer, rel: str) -> None:
    """A plain N5 group (container root or intermediate), as zarr-python's N5Store writes it."""
    w.node(rel, "group", {"attributes.json": _zarr2_json({"n5": "2.0.0"})})


def _zgroup(w: _Writer, rel: str, attrs: dict[str, Any] | None = None) -> None:
    docs = {".zgroup": _zarr2_json({"zarr_format": 2})}
    if attrs is not None:
        docs[".zattrs"] = _zarr2_json(attrs)
    w.node(rel, "group", docs)


def _zarray(
    w: _Writer, rel: str, shape: Sequence[int], dtype: str, attrs: dict[str, Any] | None
) -> None:
    zarray = {
        "chunks": [min(64, s) for s in shape],
        "compressor": {"checksum": False, "id": "zstd", "level": 3},
        "dimension_separator": "/",
        "dtype": dtype,
        "fill_value": 0,
        "filters": None,
        "order": "C",
        "shape": list(shape),
        "zarr_format": 2,
    }
    docs = {".zarray": _zarr2_json(zarray)}
    if attrs is not None:
        docs[".zattrs"] = _zarr2_json(attrs)
    w.node(rel, "array", docs)


def _ngff_multiscale(
    pyr: list[tuple[list[float], list[float]]], name: str | None, version: str | None
) -> dict[str, Any]:
    ms: dict[str, Any] = {
        "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "coordinateTransformations": [{"scale": [1.0, 1.0, 1.0], "type": "scale"}],
        "datasets": [
            {
                "coordinateTransformations": [
                    {"scale": s, "type": "scale"},
                    {"translation": t, "type": "translation"},
                ],
                "path": f"s{k}",
            }
            for k, (s, t) in enumerate(pyr)
        ],
    }
    if name is not None:
        ms["name"] = name
    if version is not None:
        ms["version"] = version
    return ms


def _ome04_image(
    w: _Writer, rel: str, *, n_levels: int, base: Sequence[float], shape_zyx: Sequence[int]
) -> None:
    """An OME-NGFF 0.4 image on Zarr v2, as cellmap-n5-to-zarr writes ``recon-1/em/...``."""
    pyr = _pyramid(base, n_levels)
    _zgroup(w, rel, {"multiscales": [_ngff_multiscale(pyr, "/" + rel.split("/", 2)[-1], "0.4")]})
    for k in range(n_levels):
        shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
        _zarray(w, f"{rel}/s{k}", shape, "|u1", None)
    w.root(rel, OME04, None)


def _annotation_type(semantic: bool) -> dict[str, Any]:
    if semantic:
        return {
            "encoding": {"absent": 0, "present": 1, "unknown": 255},
            "type": "semantic_segmentation",
        }
    return {"encoding": {"absent": 0, "unknown": 255}, "type": "instance_segmentation"}


def _crop(
    w: _Writer,
    rel: str,
    *,
    name: str,
    classes: Sequence[str],
    listed: Sequence[str],
    shape_zyx: Sequence[int],
    base: Sequence[float],
    offset: Sequence[float],
    n_levels: int = 3,
) -> None:
    """An annotation crop (cellmap-schemas annotation 0.1.1, fibsem-tools' split_annotation)."""
    crop_attrs = {
        "cellmap": {
            "annotation": {
                "class_names": list(listed),
                "created_by": [],
                "created_with": [],
                "description": None,
                "duration_days": None,
                "end_date": None,
                "name": name,
                "protocol_uri": None,
                "start_date": None,
                "version": "0.1.1",
            }
        }
    }
    _zgroup(w, rel, crop_attrs)
    pyr = [
        (s, [o + t for o, t in zip(offset, tr, strict=True)])
        for s, tr in _pyramid([b / 2 for b in base], n_levels)
    ]
    ms = _ngff_multiscale(pyr, None, "0.4")
    ms.update(metadata=None, name=None, type=None)
    voxels = math.prod(shape_zyx)
    for cls in ("all", *classes):
        semantic = cls != "all" and cls.endswith(("_mem", "_lum"))
        if cls == "all":
            _zgroup(w, f"{rel}/{cls}", {"multiscales": [ms]})
        else:
            ann = {"annotation_type": _annotation_type(semantic), "class_name": cls}
            _zgroup(w, f"{rel}/{cls}", {"cellmap": {"annotation": ann}, "multiscales": [ms]})
        for k in range(n_levels):
            shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
            attrs = None
            if cls != "all":
                counts = {"absent": voxels // 4**k, "unknown": 0}
                ann = {
                    "annotation_type": _annotation_type(semantic),
                    "class_name": cls,
                    "complement_counts": counts,
                }
                attrs = {"cellmap": {"annotation": ann}}
            _zarray(w, f"{rel}/{cls}/s{k}", shape, "|u1" if cls != "all" else "<u8", attrs)
    missing = [c for c in listed if c not in classes]
    fault = None
    if missing:
        fault = (
            "missing_class_group",
            f"class_names lists {missing[0]!r} but the crop has no such group",
            rel,
        )
    w.root(rel, CROP, fault)


def _zarr3_group(w: _Writer, rel: str, attributes: dict[str, Any] | None = None) -> None:
    doc: dict[str, Any] = {"zarr_format": 3, "node_type": "group"}
    doc["attributes"] = attributes if attributes is not None else {}
    w.node(rel, "group", {"zarr.json": _zarr3_json(doc)})


def _zarr3_array(w: _Writer, rel: str, shape: Sequence[int], dtype: str) -> None:
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": dtype,
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": [min(64, s) for s in shape]},
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "configuration": {"level": 3, "checksum": False}},
        ],
        "attributes": {},
        "dimension_names": ["z", "y", "x"],
    }
    w.node(rel, "array", {"zarr.json": _zarr3_json(doc)})


def _ome05_image(
    w: _Writer,
    rel: str,
    *,
    n_levels: int,
    base: Sequence[float],
    shape_zyx: Sequence[int],
    broken: bool = False,
) -> None:
    """An OME-NGFF 0.5 image on Zarr v3, as zarrify writes it (``attributes.ome``)."""
    pyr = _pyramid(base, n_levels)
    ms = _ngff_multiscale(pyr, None, None)
    fault = None
    if broken:
        del ms["datasets"][1]["coordinateTransformations"]
        fault = (
            "missing_coordinate_transformations",
            "multiscales[0].datasets[1] has no coordinateTransformations",
            rel,
        )
    _zarr3_group(w, rel, {"ome": {"version": "0.5", "multiscales": [ms]}})
    for k in range(n_levels):
        shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
        _zarr3_array(w, f"{rel}/s{k}", shape, "uint8")
    w.root(rel, OME05, fault)


# ---- layouts ---------------------------------------------------------------------------------
def _split(total: int, parts: int) -> list[int]:
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


def _label_names(n: int) -> list[str]:
    """``n`` distinct ``<class>_seg`` names: the class table first, then numbered repeats."""
    out = []
    for i in range(n):
        cls = CLASSES[i % len(CLASSES)]
        rep = i // len(CLASSES)
        out.append(f"{cls}_seg" if rep == 0 else f"{cls}-{rep + 1}_seg")
    return out


def _large(
    w: _Writer,
    truth: Truth,
    *,
    per_dataset: list[int],
    levels: tuple[int, int],
    broken_fraction: float,
    rng: random.Random,
    mixed: bool,
) -> None:
    total = sum(per_dataset)
    n_broken = round(broken_fraction * total)
    broken_at = sorted(rng.sample(range(total), n_broken))
    kinds = list(BROKEN_KINDS)
    kind_of = {g: kinds[i % len(kinds)] for i, g in enumerate(broken_at)}
    width = max(4, len(str(len(per_dataset))))
    g = 0
    for i, m in enumerate(per_dataset):
        name = f"jrc_{rng.choice(CELL_TYPES)}-{i + 1:0{width}d}"
        w.begin(truth, name)
        base = rng.choice(BASE_SCALES)
        shape_xyz = [
            rng.randrange(2000, 30000),
            rng.randrange(1000, 4000),
            rng.randrange(2000, 20000),
        ]
        n5 = f"{name}/{name}.n5"
        _n5_group(w, n5)
        labels = _label_names(m - 1)
        for j in range(m):
            if j == 0:
                rel, gname, dtype = f"{n5}/em/fibsem-uint8", "fibsem-uint8", "uint8"
                _n5_group(w, f"{n5}/em")
            else:
                if j == 1:
                    _n5_group(w, f"{n5}/labels")
                gname = labels[j - 1]
                rel, dtype = f"{n5}/labels/{gname}", "uint64"
            _cosem_group(
                w,
                rel,
                n_levels=rng.randint(*levels),
                base=base,
                shape_xyz=shape_xyz,
                dtype=dtype,
                name=gname,
                broken=kind_of.get(g),
            )
            g += 1
        if mixed:
            _mixed_extras(w, name, base=base, shape_zyx=shape_xyz[::-1], rng=rng, levels=levels)


def _mixed_extras(
    w: _Writer,
    name: str,
    *,
    base: Sequence[float],
    shape_zyx: Sequence[int],
    rng: random.Random,
    levels: tuple[int, int],
) -> None:
    z = f"{name}/{name}.zarr"
    for rel in (z, f"{z}/recon-1", f"{z}/recon-1/em"):
        _zgroup(w, rel)
    _ome04_image(w, f"{z}/recon-1/em/fibsem-uint8", n_levels=rng.randint(*levels), base=base,
                 shape_zyx=shape_zyx)  # fmt: skip
    for rel in (f"{z}/recon-1/labels", f"{z}/recon-1/labels/groundtruth"):
        _zgroup(w, rel)
    crop = rng.randrange(1, 500)
    _crop(w, f"{z}/recon-1/labels/groundtruth/crop{crop}", name=f"crop{crop}",
          classes=("mito", "mito_mem"), listed=("mito_mem", "mito"), shape_zyx=(200, 400, 400),
          base=base, offset=(rng.randrange(0, 5000) * 1.0, 900.0, 25863.0))  # fmt: skip
    v3 = f"{name}/{name}-ome.zarr"
    _zarr3_group(w, v3)
    _ome05_image(w, f"{v3}/em", n_levels=rng.randint(*levels), base=base, shape_zyx=shape_zyx)


def _example(w: _Writer, truth: Truth) -> None:
    """The fixed example committed as examples/cellmap-bucket (see its README)."""
    # jrc_hela-2: every node conforms.
    name = "jrc_hela-2"
    w.begin(truth, name)
    n5 = f"{name}/{name}.n5"
    base, shape_xyz = (5.24, 4.0, 4.0), (12000, 1600, 6368)
    _n5_group(w, n5)
    _n5_group(w, f"{n5}/em")
    _cosem_group(w, f"{n5}/em/fibsem-uint8", n_levels=6, base=base, shape_xyz=shape_xyz,
                 dtype="uint8", name="fibsem-uint8", broken=None)  # fmt: skip
    _n5_group(w, f"{n5}/labels")
    for cls in ("mito_seg", "er_seg"):
        _cosem_group(w, f"{n5}/labels/{cls}", n_levels=6, base=base, shape_xyz=shape_xyz,
                     dtype="uint64", name=cls, broken=None)  # fmt: skip
    z = f"{name}/{name}.zarr"
    for rel in (z, f"{z}/recon-1", f"{z}/recon-1/em"):
        _zgroup(w, rel)
    _ome04_image(w, f"{z}/recon-1/em/fibsem-uint8", n_levels=6, base=base,
                 shape_zyx=shape_xyz[::-1])  # fmt: skip
    for rel in (f"{z}/recon-1/labels", f"{z}/recon-1/labels/groundtruth"):
        _zgroup(w, rel)
    _crop(w, f"{z}/recon-1/labels/groundtruth/crop1", name="crop1", classes=("mito", "mito_mem"),
          listed=("mito_mem", "mito"), shape_zyx=(200, 1000, 1000), base=base,
          offset=(3132.21, 899.0, 25863.0))  # fmt: skip

    # jrc_macrophage-2: COSEM groups and a crop broken in documented ways, one of each good.
    name = "jrc_macrophage-2"
    w.begin(truth, name)
    n5 = f"{name}/{name}.n5"
    base, shape_xyz = (3.24, 4.0, 4.0), (6000, 2400, 3500)
    _n5_group(w, n5)
    _n5_group(w, f"{n5}/em")
    _cosem_group(w, f"{n5}/em/fibsem-uint8", n_levels=5, base=base, shape_xyz=shape_xyz,
                 dtype="uint8", name="fibsem-uint8", broken="transform_mismatch")  # fmt: skip
    _n5_group(w, f"{n5}/labels")
    for cls, broken in (
        ("mito_seg", "missing_level"),
        ("er_seg", "malformed_json"),
        ("nucleus_seg", "unit_mismatch"),
        ("ld_seg", None),
    ):
        n = 4 if broken == "missing_level" else 5  # s0..s3 listed, s3 missing
        _cosem_group(w, f"{n5}/labels/{cls}", n_levels=n, base=base, shape_xyz=shape_xyz,
                     dtype="uint64", name=cls, broken=broken)  # fmt: skip
    z = f"{name}/{name}.zarr"
    for rel in (z, f"{z}/recon-1", f"{z}/recon-1/labels", f"{z}/recon-1/labels/groundtruth"):
        _zgroup(w, rel)
    _crop(w, f"{z}/recon-1/labels/groundtruth/crop3", name="crop3", classes=("nucleus",),
          listed=("nucleus",), shape_zyx=(100, 300, 300), base=base,
          offset=(1000.0, 1200.0, 800.0))  # fmt: skip
    _crop(w, f"{z}/recon-1/labels/groundtruth/crop4", name="crop4", classes=("mito", "mito_mem"),
          listed=("mito", "mito_mem", "er"), shape_zyx=(100, 200, 200), base=base,
          offset=(2000.0, 400.0, 600.0))  # fmt: skip

    # jrc_cos7-1a: OME-NGFF 0.5 on Zarr v3 (one image good, one broken).
    name = "jrc_cos7-1a"
    w.begin(truth, name)
    z = f"{name}/{name}.zarr"
    base, shape_zyx = (8.0, 8.0, 8.0), (1600, 2000, 2400)
    for rel in (z, f"{z}/recon-1", f"{z}/recon-1/em", f"{z}/recon-1/labels"):
        _zarr3_group(w, rel)
    _ome05_image(w, f"{z}/recon-1/em/fibsem-uint8", n_levels=5, base=base, shape_zyx=shape_zyx)
    _ome05_image(w, f"{z}/recon-1/labels/cell_seg", n_levels=3, base=base, shape_zyx=shape_zyx,
                 broken=True)  # fmt: skip


def generate(
    out: str | os.PathLike[str],
    *,
    datasets: int = 20,
    groups_per_dataset: int | Sequence[int] = 100,
    groups: int | None = None,
    levels: str | int | tuple[int, int] = 6,
    broken_fraction: float = 0.1,
    seed: int = 0,
    layout: str = "cosem",
    clean: bool = True,
) -> Truth:
    """Write a metadata-only hierarchy below ``out`` and its ``truth.json``; return the truth.

    Parameters
    ----------
    out
        Directory to write into (emptied first when ``clean``, except a ``README.md``).
    datasets
        Number of datasets (first-level folders).
    groups_per_dataset
        Multiscale groups per dataset (one ``em`` group, the rest ``labels/<class>_seg``), or
        one count per dataset.
    groups
        Total number of multiscale groups, spread evenly over ``datasets`` (overrides
        ``groups_per_dataset``).
    levels
        Scale levels per multiscale group: ``6``, or a range ``"5-10"`` drawn per group.
    broken_fraction
        Share of COSEM groups broken on purpose, cycling through ``BROKEN_KINDS``.
    seed
        Seed of the generator: same seed and options, same bytes.
    layout
        ``"cosem"``, ``"mixed"`` or ``"example"`` (module docstring).
    clean
        Remove ``out`` before writing.

    Returns
    -------
    Truth
        What was written; also saved as ``out/truth.json``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    lv = _levels(levels)
    if not 1 <= lv[0] <= lv[1]:
        raise ValueError(f"bad levels {levels!r}")
    if not 0.0 <= broken_fraction <= 1.0:
        raise ValueError("broken_fraction must be in [0, 1]")
    out = Path(out)
    if clean and out.exists():
        for child in out.iterdir():  # a README describing the tree survives regeneration
            if child.is_dir():
                shutil.rmtree(child)
            elif child.name != "README.md":
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out)
    if layout == "example":
        truth = Truth(layout=layout, seed=0, levels="5-6", broken_fraction=0.0, datasets={})
        _example(w, truth)
    else:
        if groups is not None:
            per = _split(groups, datasets)
        elif isinstance(groups_per_dataset, int):
            per = [groups_per_dataset] * datasets
        else:
            per = list(groups_per_dataset)
        if any(p < 1 for p in per):
            raise ValueError("every dataset needs at least one group")
        truth = Truth(
            layout=layout,
            seed=seed,
            levels=f"{lv[0]}-{lv[1]}",
            broken_fraction=broken_fraction,
            datasets={},
        )
        _large(
            w,
            truth,
            per_dataset=per,
            levels=lv,
            broken_fraction=broken_fraction,
            rng=random.Random(seed),
            mixed=layout == "mixed",
        )
    for d in truth.datasets.values():
        truth.files += d.files
        truth.nodes += d.nodes
        truth.groups += d.groups
        truth.arrays += d.arrays
        truth.roots += len(d.roots)
    (out / "truth.json").write_bytes(msgspec.json.format(msgspec.json.encode(truth), indent=2))
    return truth


# ---- S3 --------------------------------------------------------------------------------------
def iter_files(root: str | os.PathLike[str], *, skip_truth: bool = True) -> Iterable[Path]:
    """Every file below ``root`` (sorted), without the root's truth.json."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if skip_truth and f == "truth.json" and Path(dirpath) == root:
                continue
            yield Path(dirpath, f)


def upload(
    root: str | os.PathLike[str],
    bucket: str,
    *,
    endpoint_url: str | None = None,
    prefix: str = "",
    workers: int = 32,
    client: Any = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Upload every file below ``root`` to ``s3://bucket/prefix`` with a thread pool; return
    how many. The bucket must exist. ``client`` defaults to a boto3 client for ``endpoint_url``
    (credentials from the environment)."""
    import boto3
    from botocore.config import Config

    root = Path(root)
    if client is None:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(max_pool_connections=workers, retries={"max_attempts": 5}),
        )
    files = list(iter_files(root))

    def put(path: Path) -> None:
        key = "/".join(p for p in (prefix.strip("/"), path.relative_to(root).as_posix()) if p)
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(put, files):
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(done)
    return done


# ---- CLI -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (emptied first)")
    p.add_argument("--datasets", type=int, default=20)
    p.add_argument("--groups-per-dataset", type=int, default=100)
    p.add_argument("--groups", type=int, default=None, help="total groups (overrides per-dataset)")
    p.add_argument("--levels", default="6", help="scale levels per group: N or LO-HI")
    p.add_argument("--broken-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=LAYOUTS, default="cosem")
    p.add_argument("--example", action="store_true", help="same as --layout example")
    p.add_argument("--s3", metavar="BUCKET", help="also upload the tree to this bucket")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--prefix", default="")
    p.add_argument("--workers", type=int, default=32)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    truth = generate(
        a.out,
        datasets=a.datasets,
        groups_per_dataset=a.groups_per_dataset,
        groups=a.groups,
        levels=a.levels,
        broken_fraction=a.broken_fraction,
        seed=a.seed,
        layout="example" if a.example else a.layout,
    )
    dt = time.perf_counter() - t0
    print(
        f"{a.out}: {len(truth.datasets)} datasets, {truth.roots} model roots, {truth.nodes} nodes "
        f"({truth.groups} groups, {truth.arrays} arrays), {truth.files} files, "
        f"{len(truth.broken())} broken, in {dt:.2f} s",
        file=sys.stderr,
    )
    if a.s3:
        t0 = time.perf_counter()
        n = upload(a.out, a.s3, endpoint_url=a.endpoint_url, prefix=a.prefix, workers=a.workers)
        print(f"uploaded {n} files to s3://{a.s3}/{a.prefix} in {time.perf_counter() - t0:.2f} s",
              file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
