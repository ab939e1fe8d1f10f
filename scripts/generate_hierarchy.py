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
``irregular`` as irregular as the real bucket: datasets of uneven size (a few large ones), with
             odd names (spaces, non-ASCII, dots, ``#``/``%``); N5 COSEM and Neuroglancer groups
             (zarr-python's indented or n5-java's compact JSON, several codecs, valid variants
             from the wild: int values, F-order transforms, unknown keys), Zarr v2 OME-NGFF 0.4
             images with crops and ``labels``, Zarr v3 OME-NGFF 0.5 images with ``labels``,
             Zarr v3-only datasets; stray files and plain folders (READMEs, thumbnails, backups,
             ``.zattrs`` without ``.zgroup``, data chunks beside array metadata). The same share
             of every model's roots is broken, cycling through ``IRREGULAR_KINDS`` (malformed,
             truncated, empty and binary documents, wrong types, missing keys, transforms that
             disagree with ``pixelResolution``, missing or wrong-rank levels, ...).
``example``  the small fixed hierarchy committed as ``examples/cellmap-bucket`` (seed and sizes
             are ignored).

Except in ``example``, ``truth.json`` also says, for every node, what a default ``scan`` must
report (``expected``: status and node class), and ``known`` lists the node classes on which the
scanner is known to say something else, with the reason the truth is right.

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
    "IRREGULAR_KINDS",
    "KNOWN_DISAGREEMENTS",
    "LAYOUTS",
    "Broken",
    "DatasetTruth",
    "Disagreement",
    "Expect",
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
NEUROGLANCER = "multiscale.neuroglancer_n5.Group"
COSEM_ARRAY = "multiscale.cosem.Array"
CLASS_GROUP = "annotation.AnnotationGroup"
CLASS_ARRAY = "annotation.AnnotationArray"
OME04_LABEL = "multiscale.ome_ngff.v04.ImageLabelGroup"
OME04_LABELS = "multiscale.ome_ngff.v04.LabelsGroup"
OME05_LABEL = "multiscale.ome_ngff.v05.ImageLabelGroup"
OME05_LABELS = "multiscale.ome_ngff.v05.LabelsGroup"
LAYOUTS = ("cosem", "mixed", "irregular", "example")

#: Ways a COSEM group is broken on purpose, each breaking one documented rule of the model.
BROKEN_KINDS: dict[str, str] = {
    "transform_mismatch": "the transform of one scale level differs from the group's multiscales",
    "level_shape": "scale level s1 is twice s0's shape and of another data type (each level's own "
    "document is valid; the pyramid is not)",
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
    "crop_off_grid": "the crop's offset is a quarter of an image voxel off the grid of the "
    "EM image's s0 (CROP101)",
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


class Expect(msgspec.Struct, array_like=True):
    """What a default scan must say of one node (``valid``, ``invalid``, ``unreadable`` or
    ``not_applicable``), and the node's class (``<model or format>:<variant>``), which names the
    node in ``Truth.known``."""

    status: str
    cls: str


class Disagreement(msgspec.Struct, kw_only=True):
    """A node class on which the scanner, as of this generator, says something other than the
    truth: what it says instead, and why the truth is right (a possible verdict bug)."""

    scanner: str
    reason: str


class DatasetTruth(msgspec.Struct, kw_only=True):
    """What one dataset (first path component below the root) holds.

    ``nodes`` counts every directory with a metadata document (``groups`` + ``arrays`` +
    ``unreadable``, the latter being nodes whose kind no document tells: not JSON); ``roots``
    maps each model root (a node meant to validate as a model: multiscale groups and crops) to
    that model;
    ``models`` counts the roots per model by expected verdict. ``expected`` maps every node to
    what a default scan must say of it, ``status`` counts those verdicts (the scan's per-dataset
    ``valid``/``invalid``/``unreadable`` and the rest not applicable); both are empty in the
    ``example`` layout, whose truth.json is committed as it was first written.
    """

    files: int = 0
    nodes: int = 0
    groups: int = 0
    arrays: int = 0
    unreadable: int = 0
    models: dict[str, ModelCount] = {}
    roots: dict[str, str] = {}
    broken: list[Broken] = []
    expected: dict[str, Expect] = {}
    status: dict[str, int] = {}


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
    known: dict[str, Disagreement] = {}

    def broken(self) -> list[Broken]:
        """Every broken node, in dataset order."""
        return [b for d in self.datasets.values() for b in d.broken]


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a ``truth.json``."""
    return msgspec.json.decode(Path(path).read_bytes(), type=Truth)


def _encode_truth(truth: Truth) -> bytes:
    """truth.json bytes; empty per-node fields are left out, so the committed example's
    truth.json (written before they existed) stays byte for byte what the generator writes."""
    doc = msgspec.to_builtins(truth)
    if not doc["known"]:
        del doc["known"]
    for d in doc["datasets"].values():
        for key in ("expected", "status"):
            if not d[key]:
                del d[key]
    return msgspec.json.format(msgspec.json.encode(doc), indent=2)


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
        self.ds = DatasetTruth(models={}, roots={}, broken=[], expected={}, status={})
        truth.datasets[name] = self.ds

    def file(self, rel: str, data: bytes) -> None:
        d, _, _ = rel.rpartition("/")
        if d not in self._made:
            os.makedirs(os.path.join(self.out, d), exist_ok=True)
            self._made.add(d)
        with open(os.path.join(self.out, rel), "wb") as f:
            f.write(data)
        self.ds.files += 1

    def node(
        self,
        rel: str,
        kind: str,
        docs: dict[str, bytes],
        status: str | None = None,
        cls: str | None = None,
    ) -> None:
        """One node: its metadata documents by file name; kind "group"|"array"|"unreadable";
        ``status`` is what a scan must say of it (default: ``unreadable`` for an unreadable node,
        else ``not_applicable``), ``cls`` the node class it belongs to (for known disagreements).
        """
        for name, data in docs.items():
            self.file(f"{rel}/{name}", data)
        self.ds.nodes += 1
        if kind == "group":
            self.ds.groups += 1
        elif kind == "array":
            self.ds.arrays += 1
        else:
            self.ds.unreadable += 1
        if status is None:
            status = "unreadable" if kind == "unreadable" else "not_applicable"
        self.expect(rel, status, cls or f"{kind}:{status}")

    def expect(self, rel: str, status: str, cls: str) -> None:
        """Record (or correct) what a scan must say of the node at ``rel``."""
        old = self.ds.expected.get(rel)
        if old is not None:
            self.ds.status[old.status] -= 1
        self.ds.expected[rel] = Expect(status=status, cls=cls)
        self.ds.status[status] = self.ds.status.get(status, 0) + 1

    def root(
        self,
        rel: str,
        model: str,
        broken: tuple[str, str, str] | None,
        status: str | None = None,
    ) -> None:
        """Record a model root; ``broken`` is (kind, detail, faulty node) or None. The root's
        expected status becomes valid/invalid (or ``status``: an unreadable root)."""
        self.ds.roots[rel] = model
        kind = "ok" if broken is None else broken[0]
        self.expect(rel, status or ("valid" if broken is None else "invalid"), f"{model}:{kind}")
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
    compact: bool = False,
    compression: dict[str, Any] | None = None,
    neuroglancer_only: bool = False,
    rng: random.Random | None = None,
    style: str | None = None,
) -> None:
    """One COSEM multiscale group in N5 (group attributes.json + one array per level).

    ``compact``: documents as n5-java writes them (no whitespace); ``compression``: the levels'
    codec; ``neuroglancer_only``: no ``multiscales``/``transform`` (the older Neuroglancer
    convention, a valid ``neuroglancer_n5.Group``); ``rng`` draws the bytes of binary garbage.
    ``style``, all valid variants seen in the wild: ``int_values`` (integral numbers written as
    ints, as fibsem-metadata has them), ``order_f`` (transforms in F order, x-y-z),
    ``order_null`` (``"order": null``: pixelResolution then equals the scale, unreversed),
    ``ordering_key`` (an unknown ``ordering`` key in the levels' transforms, as
    cellmap-n5-to-zarr's tests write it), ``anisotropic`` (z is not downsampled).
    """
    enc = (lambda d: _enc.encode(d)) if compact else _zarr2_json
    pyr = _pyramid(base, n_levels)
    if style == "int_values":
        pyr = [([_int(v) for v in s], [_int(v) for v in t]) for s, t in pyr]
    tax = ["z", "y", "x"]
    factors = [[2**k] * 3 for k in range(n_levels)]  # x, y, z
    if style == "anisotropic":  # z is not downsampled (thin FIB-SEM sections)
        factors = [[2**k, 2**k, 1] for k in range(n_levels)]
        pyr = []
        for k, f in enumerate(factors):
            scale = [float(b) * x for b, x in zip(base, f[::-1], strict=True)]
            if k:
                prev_s, prev_t = pyr[-1]
                translate = [t + (p / 2 if x > 1 else 0.0)
                             for t, p, x in zip(prev_t, prev_s, f[::-1], strict=True)]  # fmt: skip
            else:
                translate = [0.0, 0.0, 0.0]
            pyr.append((scale, translate))
    if style == "order_f":  # F order: transform lists in x-y-z, as the group's axes
        pyr = [(s[::-1], t[::-1]) for s, t in pyr]
        tax = ["x", "y", "z"]

    def pixel(scale: list[float]) -> list[float]:
        return scale if style in ("order_f", "order_null") else scale[::-1]

    def tr(scale: list[float], translate: list[float]) -> dict[str, Any]:
        t: dict[str, Any] = {"axes": tax, "scale": scale, "translate": translate, "units": units}
        if style == "order_f":
            t["order"] = "F"
        elif style == "order_null":  # null order: pixelResolution equals scale, not reversed
            t["order"] = None
        return t

    units = ["nm", "nm", "nm"]
    datasets = [{"path": f"s{k}", "transform": tr(s, t)} for k, (s, t) in enumerate(pyr)]
    group: dict[str, Any] = {
        "axes": ["x", "y", "z"],
        "multiscales": [{"datasets": datasets, "name": name}],
        "n5": "2.0.0",
        "name": name,
        "pixelResolution": {"dimensions": pixel(pyr[0][0]), "unit": "nm"},
        "scales": factors,
        "units": units,
    }
    model = COSEM
    if neuroglancer_only:
        del group["multiscales"]
        model = NEUROGLANCER
    fault: tuple[str, str, str] | None = None
    if broken == "unit_mismatch":
        group["pixelResolution"] = {"dimensions": pyr[0][0][::-1], "unit": "um"}
        fault = (broken, "pixelResolution.unit is 'um' but units are 'nm'", rel)
    elif broken == "axes_units_length":
        group["units"] = ["nm", "nm"]
        fault = (broken, "3 axes but 2 units", rel)
    elif broken == "wrong_type":
        group["units"] = "nm"
        fault = (broken, "`units` is a string, not a list", rel)
    elif broken == "missing_key":
        del group["pixelResolution"]
        fault = (broken, "the required `pixelResolution` is missing", rel)
    w.node(rel, "group", {"attributes.json": enc(group)})
    if broken == "extra_member_array":  # a mask beside the levels: not a COSEM array
        mask = {"blockSize": [64, 64, 64], "compression": {"type": "raw"}, "dataType": "uint8",
                "dimensions": list(shape_xyz)}  # fmt: skip
        w.node(f"{rel}/mask", "array", {"attributes.json": enc(mask)})
        fault = (broken, "member `mask` is an N5 array without COSEM attributes", f"{rel}/mask")

    bad_level = min(2, n_levels - 1)
    for k, (scale, translate) in enumerate(pyr):
        level = f"{rel}/s{k}"
        if broken == "missing_level" and k == n_levels - 1:
            fault = (broken, f"s{k} is listed but has no array", level)
            continue
        transform = tr(scale, translate)
        if style == "ordering_key":
            transform["ordering"] = "C"
        if broken == "transform_mismatch" and k == bad_level:
            transform = dict(transform, translate=[translate[0] + 1.0, *translate[1:]])
            fault = (
                broken,
                f"s{k} transform.translate[0] differs from multiscales[0].datasets[{k}]",
                level,
            )
        doc: dict[str, Any] = {
            "blockSize": [64, 64, 64],
            "compression": compression or {"level": -1, "type": "gzip", "useZlib": False},
            "dataType": dtype,
            "dimensions": [
                max(1, math.ceil(d / f)) for d, f in zip(shape_xyz, factors[k], strict=True)
            ],
            "pixelResolution": {"dimensions": pixel(scale), "unit": "nm"},
            "transform": transform,
        }
        if neuroglancer_only:
            del doc["transform"]
        if broken == "level_shape" and k == 1:  # larger than s0, and of another data type
            doc["dimensions"] = [d * 2 for d in shape_xyz]
            doc["dataType"] = "uint16" if dtype != "uint16" else "uint8"
            fault = (broken, f"s{k} is twice s0's shape, {doc['dataType']} under {dtype}", level)
        status, cls = "valid", f"{model}/level"
        odd = k == min(1, n_levels - 1)
        if broken == "pixel_resolution_mismatch" and odd:
            doc["pixelResolution"] = {"dimensions": [d * 2 for d in scale[::-1]], "unit": "nm"}
            fault = (broken, f"s{k} pixelResolution is twice its transform.scale", level)
            status, cls = "invalid", f"{COSEM_ARRAY}:pixel_resolution_mismatch"
        elif broken == "wrong_rank" and odd:
            doc["dimensions"], doc["blockSize"] = doc["dimensions"][:2], [64, 64]
            fault = (broken, f"s{k} has 2 dimensions but its transform has 3 axes", level)
            status, cls = "invalid", f"{COSEM_ARRAY}:wrong_rank"
        data = enc(doc)
        if broken == "malformed_json" and odd:
            w.node(level, "unreadable", {"attributes.json": data[: len(data) // 2]})
            fault = (broken, f"s{k}/attributes.json is truncated", level)
        elif broken == "binary_garbage" and odd:
            junk = b"\x89\xff\x00" + (rng or random.Random(k)).randbytes(61)
            w.node(level, "unreadable", {"attributes.json": junk}, cls="n5:binary_garbage")
            fault = (broken, f"s{k}/attributes.json is binary garbage", level)
        elif broken == "json_not_object" and odd:
            w.node(level, "unreadable", {"attributes.json": b"[]\n"}, cls="n5:json_not_object")
            fault = (broken, f"s{k}/attributes.json is a JSON array, not an object", level)
        elif broken == "empty_file" and odd:
            w.node(level, "unreadable", {"attributes.json": b""}, cls="n5:empty_file")
            fault = (broken, f"s{k}/attributes.json is empty", level)
        else:
            w.node(level, "array", {"attributes.json": data}, status, cls)
    w.root(rel, model, fault)


def _int(v: float) -> float:
    """``v`` as an int when integral (JSON writers that keep ints, unlike zarr-python)."""
    return int(v) if float(v).is_integer() else v


def _n5_group(w: _Writer, rel: str, version: str = "2.0.0", compact: bool = False) -> None:
    """A plain N5 group (container root or intermediate), as zarr-python's N5Store writes it
    (or, ``compact``, as n5-java does)."""
    doc = {"n5": version}
    w.node(rel, "group", {"attributes.json": _enc.encode(doc) if compact else _zarr2_json(doc)})


def _zgroup(
    w: _Writer,
    rel: str,
    attrs: dict[str, Any] | None = None,
    status: str | None = None,
    cls: str | None = None,
) -> None:
    docs = {".zgroup": _zarr2_json({"zarr_format": 2})}
    if attrs is not None:
        docs[".zattrs"] = _zarr2_json(attrs)
    w.node(rel, "group", docs, status, cls)


def _zarray(
    w: _Writer,
    rel: str,
    shape: Sequence[int],
    dtype: str,
    attrs: dict[str, Any] | None,
    status: str | None = None,
    cls: str | None = None,
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
    w.node(rel, "array", docs, status, cls)


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
    w: _Writer,
    rel: str,
    *,
    n_levels: int,
    base: Sequence[float],
    shape_zyx: Sequence[int],
    broken: str | None = None,
) -> None:
    """An OME-NGFF 0.4 image on Zarr v2, as cellmap-n5-to-zarr writes ``recon-1/em/...``."""
    pyr = _pyramid(base, n_levels)
    ms = _ngff_multiscale(pyr, "/" + rel.split("/", 2)[-1], "0.4")
    fault, status = _ome_fault(ms, rel, broken)
    if broken == "malformed_zattrs":
        data = _zarr2_json({"multiscales": [ms]})
        docs = {".zgroup": _zarr2_json({"zarr_format": 2}), ".zattrs": data[: len(data) // 3]}
        # .zgroup says "group": a group whose attributes cannot be read
        w.node(rel, "group", docs, "unreadable", f"{OME04}:malformed_zattrs")
        fault, status = (broken, ".zattrs is truncated", rel), "unreadable"
    else:
        _zgroup(w, rel, {"multiscales": [ms]})
    for k in range(n_levels):
        if broken == "missing_level" and k == n_levels - 1:
            continue
        shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
        if broken == "wrong_rank" and k == min(1, n_levels - 1):
            shape = shape[1:]
        _zarray(w, f"{rel}/s{k}", shape, "|u1", None)
    w.root(rel, OME04, fault, status)


def _ome_fault(
    ms: dict[str, Any], rel: str, broken: str | None
) -> tuple[tuple[str, str, str] | None, str | None]:
    """Break an OME-NGFF multiscale in place the way ``broken`` says; the fault for the truth."""
    n = len(ms["datasets"])
    if broken == "missing_coordinate_transformations":
        del ms["datasets"][min(1, n - 1)]["coordinateTransformations"]
        j = min(1, n - 1)
        return (broken, f"multiscales[0].datasets[{j}] has no coordinateTransformations", rel), None
    if broken == "missing_level":
        return (broken, f"multiscales[0].datasets[{n - 1}] names a missing array", rel), None
    if broken == "wrong_rank":
        return (broken, "level s1 has 2 dimensions, the multiscale 3 axes", rel), None
    return None, None


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
    broken: str | None = None,
    broken_all: bool = False,
) -> None:
    """An annotation crop (cellmap-schemas annotation 0.1.1, fibsem-tools' split_annotation).

    ``broken_all``: the dense ``all`` image breaks OME-NGFF (it is invalid) while the crop stays
    valid: a crop judges only the members named in ``class_names``."""
    crop_attrs: dict[str, Any] = {
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
    fault = None
    ann = crop_attrs["cellmap"]["annotation"]
    if broken == "crop_missing_key":
        del ann["created_by"]
        fault = (broken, "the required `created_by` is missing", rel)
    elif broken == "crop_bad_date":
        ann["start_date"] = "2021-02-30"
        fault = (broken, "`start_date` '2021-02-30' is not a date", rel)
    elif broken == "crop_off_grid":
        fault = (broken, OTHER_BROKEN_KINDS[broken], rel)
    elif broken == "old_version":
        ann["version"] = "0.1.0"
        fault = (broken, "`version` is '0.1.0', the convention is '0.1.1'", rel)
    stray = next(c for c in ("ecs", "cell", "pm", "np", "ne", "vim") if c not in listed)
    if broken == "class_is_array":
        ann["class_names"] = [*listed, stray]
        fault = (broken, f"`class_names` lists {stray!r}, which is an array of the crop", rel)
    _zgroup(w, rel, crop_attrs)
    if broken == "class_is_array":
        _zarray(w, f"{rel}/{stray}", list(shape_zyx), "|u1", None)
    pyr = [
        (s, [o + t for o, t in zip(offset, tr, strict=True)])
        for s, tr in _pyramid([b / 2 for b in base], n_levels)
    ]
    ms = _ngff_multiscale(pyr, None, "0.4")
    ms.update(metadata=None, name=None, type=None)
    voxels = math.prod(shape_zyx)
    semantic_of = {c: c != "all" and c.endswith(("_mem", "_lum")) for c in ("all", *classes)}
    # the class broken inside (its group's encoding, or one array's counts)
    target = None
    if broken == "counts_not_in_encoding":
        target = next(c for c in classes if semantic_of[c])
    elif broken == "instance_encoding_present":
        target = next(c for c in classes if not semantic_of[c])
    for cls in ("all", *classes):
        semantic = semantic_of[cls]
        if cls == "all" and broken_all:
            bad = msgspec.json.decode(msgspec.json.encode(ms))
            _ome_fault(bad, rel, "missing_coordinate_transformations")
            _zgroup(w, f"{rel}/all", {"multiscales": [bad]}, "invalid", f"{OME04}:crop_all_broken")
        elif cls == "all":
            _zgroup(w, f"{rel}/{cls}", {"multiscales": [ms]}, "valid", f"{OME04}:crop_all")
        else:
            ann = {"annotation_type": _annotation_type(semantic), "class_name": cls}
            status, ncls = "valid", f"{CLASS_GROUP}:ok"
            if cls == target:
                status, ncls = "invalid", f"{CLASS_GROUP}:{broken}"
                if broken == "instance_encoding_present":
                    ann["annotation_type"] = {
                        "encoding": {"absent": 0, "present": 1, "unknown": 255},
                        "type": "instance_segmentation",
                    }
                    fault = (broken, f"{cls}: instance encoding has 'present'", f"{rel}/{cls}")
            attrs = {"cellmap": {"annotation": ann}, "multiscales": [ms]}
            _zgroup(w, f"{rel}/{cls}", attrs, status, ncls)
        for k in range(n_levels):
            shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
            attrs = None
            status, ncls = None, None
            if cls != "all":
                counts = {"absent": voxels // 4**k, "unknown": 0}
                status, ncls = "valid", f"{CLASS_ARRAY}:ok"
                if cls == target and broken == "counts_not_in_encoding" and k == 0:
                    counts["mislabeled"] = 7
                    status, ncls = "invalid", f"{CLASS_ARRAY}:{broken}"
                    fault = (broken, f"{cls}/s0 counts 'mislabeled'", f"{rel}/{cls}/s0")
                ann = {
                    "annotation_type": _annotation_type(semantic),
                    "class_name": cls,
                    "complement_counts": counts,
                }
                attrs = {"cellmap": {"annotation": ann}}
            _zarray(w, f"{rel}/{cls}/s{k}", shape, "|u1" if cls != "all" else "<u8", attrs,
                    status, ncls)  # fmt: skip
    missing = [c for c in listed if c not in classes]
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


def _zarr3_array(
    w: _Writer,
    rel: str,
    shape: Sequence[int],
    dtype: str,
    truncate: bool = False,
    dimension_names: Sequence[str] = ("z", "y", "x"),
) -> None:
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
        "dimension_names": list(dimension_names),
    }
    data = _zarr3_json(doc)
    if truncate:
        w.node(rel, "unreadable", {"zarr.json": data[: len(data) // 2]}, cls="zarr3:malformed")
    else:
        w.node(rel, "array", {"zarr.json": data})


def _ome05_image(
    w: _Writer,
    rel: str,
    *,
    n_levels: int,
    base: Sequence[float],
    shape_zyx: Sequence[int],
    broken: bool | str | None = False,
    label: dict[str, Any] | None = None,
    dtype: str = "uint8",
) -> None:
    """An OME-NGFF 0.5 image on Zarr v3, as zarrify writes it (``attributes.ome``); with
    ``label`` (an ``image-label`` object) a label image. ``broken=True`` means
    ``missing_coordinate_transformations`` (the example's spelling)."""
    pyr = _pyramid(base, n_levels)
    ms = _ngff_multiscale(pyr, None, None)
    kind = "missing_coordinate_transformations" if broken is True else broken or None
    fault, _ = _ome_fault(ms, rel, kind)
    if kind == "malformed_array_json":
        fault = (kind, "s0/zarr.json is truncated", f"{rel}/s0")
    if kind == "dimension_names_mismatch":
        fault = (kind, "s0 has dimension_names x, y, z; the axes are z, y, x", f"{rel}/s0")
    ome: dict[str, Any] = {"version": "0.5", "multiscales": [ms]}
    if kind == "wrong_version":
        ome["version"] = "0.4"
        fault = (kind, "`ome.version` is '0.4' in a Zarr v3 (0.5) image", rel)
    model = OME05
    if label is not None:
        ome["image-label"] = label
        model = OME05_LABEL
        if dtype.startswith("float"):
            fault = ("label_float_dtype", f"label arrays have dtype {dtype}", rel)
    _zarr3_group(w, rel, {"ome": ome})
    for k in range(n_levels):
        if kind == "missing_level" and k == n_levels - 1:
            continue
        shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
        _zarr3_array(
            w,
            f"{rel}/s{k}",
            shape,
            dtype,
            truncate=kind == "malformed_array_json" and k == 0,
            dimension_names="xyz" if kind == "dimension_names_mismatch" and k == 0 else "zyx",
        )
    w.root(rel, model, fault)


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
    # Annotated at half the image's spacing, on its grid: voxel corners on image voxel corners
    # (the image's s0 is at the origin), a whole number of image voxels from it.
    voxels = (rng.randrange(0, 600), 112, 3232)
    offset = [k * b - b / 4 for k, b in zip(voxels, base, strict=True)]
    off_grid = rng.random() < 0.25
    if off_grid:
        offset[1] += base[1] / 4
    _crop(w, f"{z}/recon-1/labels/groundtruth/crop{crop}", name=f"crop{crop}",
          classes=("mito", "mito_mem"), listed=("mito_mem", "mito"), shape_zyx=(200, 400, 400),
          base=base, offset=offset, broken="crop_off_grid" if off_grid else None)  # fmt: skip
    v3 = f"{name}/{name}-ome.zarr"
    _zarr3_group(w, v3)
    _ome05_image(w, f"{v3}/em", n_levels=rng.randint(*levels), base=base, shape_zyx=shape_zyx)


def _labels(
    w: _Writer,
    image: str,
    *,
    version: str,
    names: Sequence[str],
    n_levels: int,
    base: Sequence[float],
    shape_zyx: Sequence[int],
    broken: str | None,
) -> None:
    """An OME-NGFF ``labels`` group below ``image`` with one label image per name (0.4 on Zarr
    v2 or 0.5 on Zarr v3); ``labels_missing_image`` lists one image too many,
    ``label_float_dtype`` gives the first label image float arrays."""
    rel = f"{image}/labels"
    listed = [*names, "nucleus_pred"] if broken == "labels_missing_image" else list(names)
    fault = None
    if broken == "labels_missing_image":
        fault = (broken, "`labels` lists 'nucleus_pred', which has no group", rel)
    label = {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}]}
    if version == "0.4":
        _zgroup(w, rel, {"labels": listed})
        w.root(rel, OME04_LABELS, fault)
        for i, name in enumerate(names):
            sub = f"{rel}/{name}"
            pyr = _pyramid(base, n_levels)
            ms = _ngff_multiscale(pyr, name, "0.4")
            _zgroup(w, sub, {"image-label": dict(label, version="0.4"), "multiscales": [ms]})
            dtype = "<f4" if broken == "label_float_dtype" and i == 0 else "<u8"
            for k in range(n_levels):
                shape = [max(1, math.ceil(d / 2**k)) for d in shape_zyx]
                _zarray(w, f"{sub}/s{k}", shape, dtype, None)
            bad = ("label_float_dtype", f"arrays of {name} are {dtype}", sub)
            w.root(sub, OME04_LABEL, bad if dtype == "<f4" else None)
    else:
        _zarr3_group(w, rel, {"ome": {"version": "0.5", "labels": listed}})
        w.root(rel, OME05_LABELS, fault)
        for i, name in enumerate(names):
            dtype = "float32" if broken == "label_float_dtype" and i == 0 else "uint64"
            _ome05_image(w, f"{rel}/{name}", n_levels=n_levels, base=base, shape_zyx=shape_zyx,
                         label=label, dtype=dtype)  # fmt: skip


def _stray(w: _Writer, rel: str, rng: random.Random, *, chunk: bool = False) -> None:
    """Files and folders that are not metadata, as real buckets have them: READMEs, Finder
    litter, thumbnails, editor backups, notes in plain folders, or (``chunk``) a data chunk."""
    if chunk:
        w.file(f"{rel}/0/0/0", rng.randbytes(rng.randrange(16, 200)))
        return
    pick = rng.randrange(5)
    if pick == 0:
        w.file(f"{rel}/README.md", b"# Notes\n\nAcquired 2021; see the paper for the protocol.\n")
    elif pick == 1:
        w.file(f"{rel}/.DS_Store", b"\x00\x00\x00\x01Bud1" + rng.randbytes(40))
    elif pick == 2:
        w.file(f"{rel}/thumbnails/em.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(80))
    elif pick == 3:
        w.file(f"{rel}/attributes.json.bak", b'{"n5": "2.0.0"}')
    else:
        w.file(f"{rel}/tmp/notes.txt", b"re-run the downsampling after the fix\n")


#: How roots of each model are broken on purpose in the ``irregular`` layout; the model, the
#: root's verdict, and the other nodes it changes are in the writers above.
IRREGULAR_KINDS: dict[str, tuple[str, ...]] = {
    COSEM: (
        "transform_mismatch", "missing_level", "malformed_json", "unit_mismatch",
        "axes_units_length", "wrong_type", "missing_key", "binary_garbage", "empty_file",
        "pixel_resolution_mismatch", "wrong_rank", "json_not_object", "extra_member_array",
    ),
    CROP: (
        "missing_class_group", "crop_missing_key", "crop_bad_date", "counts_not_in_encoding",
        "instance_encoding_present", "old_version", "class_is_array",
    ),
    OME04: ("malformed_zattrs", "missing_coordinate_transformations", "missing_level",
            "wrong_rank"),
    OME05: ("missing_coordinate_transformations", "missing_level", "malformed_array_json",
            "dimension_names_mismatch", "wrong_version"),
    OME04_LABELS: ("labels_missing_image", "label_float_dtype"),
    OME05_LABELS: ("labels_missing_image", "label_float_dtype"),
}  # fmt: skip

#: The class of every node below a group whose attributes are unreadable (whatever it is).
BELOW_UNREADABLE = "below_unreadable_group"


#: Node classes on which the scanner disagrees with the truth (see ``Disagreement``).
KNOWN_DISAGREEMENTS: dict[str, Disagreement] = {}
"""None today. (The scan once reported a Zarr v2 group whose ``.zattrs`` is unreadable and did
not look below it, so its readable members were missing; it now crawls on below such a group.)"""

_ODD_NAMES = ("{} copy", "{}-\u00fc\u00e9", "{}.v2", "{} #2 (50%)")
_COMPRESSIONS = (
    {"level": -1, "type": "gzip", "useZlib": False},
    {"type": "raw"},
    {"blocksize": 0, "clevel": 5, "cname": "zstd", "shuffle": 1, "type": "blosc"},
    {"checksum": False, "id": "zstd", "level": 3, "type": "zstd"},
)


def _mark_below_unreadable(truth: Truth) -> None:
    """Give the nodes below an unreadable group their own class: they are readable nodes with
    their own verdicts, but a scanner may not look below a group it cannot read."""
    for d in truth.datasets.values():
        tops = [p for p, e in d.expected.items() if e.status == "unreadable"]
        for top in tops:
            for p, e in d.expected.items():
                if p.startswith(top + "/"):
                    e.cls = BELOW_UNREADABLE


def _plan(m: int, rng: random.Random) -> list[str]:
    """The roots of one dataset with ``m`` of them: always an EM image; N5 COSEM label groups
    for most of the budget; in some datasets Zarr v2 (OME-NGFF 0.4 image, crops, labels) and
    Zarr v3 (OME-NGFF 0.5 image, labels) containers, and datasets without N5."""
    n5 = m < 3 or m > 12 or rng.random() > 0.15
    if not n5:  # Zarr v3 only, as jrc_cos7-1a in the example: images and label images
        return [OME05, OME05_LABELS, *[OME05] * (m - 2)][:m]
    plan = [COSEM]
    extras: list[str] = []
    if m >= 3 and rng.random() < 0.6:
        extras.append(OME04)
        extras += [CROP] * max(1, m // 10)
        if rng.random() < 0.6:
            extras.append(OME04_LABELS)
    if m >= 2 and rng.random() < 0.35:
        extras.append(OME05)
        if rng.random() < 0.7:
            extras.append(OME05_LABELS)
    plan += extras[: m - 1]
    plan += [COSEM] * (m - len(plan))
    return plan


def _irregular(
    w: _Writer,
    truth: Truth,
    *,
    total: int,
    datasets: int,
    levels: tuple[int, int],
    broken_fraction: float,
    rng: random.Random,
) -> None:
    """Datasets as irregular as the real bucket's: uneven sizes, every format, broken documents
    of many kinds, stray files and folders, odd names (see ``generate``)."""
    weights = [rng.lognormvariate(0.0, 0.8) for _ in range(datasets)]  # a few big datasets
    per = [max(1, round(total * x / sum(weights))) for x in weights]
    per[per.index(max(per))] += total - sum(per)
    if min(per) < 1:
        per = _split(total, datasets)
    plans = [_plan(m, rng) for m in per]
    # the same share of every model's roots is broken, cycling through that model's kinds
    slots: dict[str, list[tuple[int, int]]] = {}
    for i, p in enumerate(plans):
        for j, model in enumerate(p):
            slots.setdefault(model, []).append((i, j))
    kind_of: dict[tuple[int, int], str] = {}
    for model, where in slots.items():
        kinds = IRREGULAR_KINDS[model]
        picked = sorted(rng.sample(range(len(where)), round(broken_fraction * len(where))))
        for n, k in enumerate(picked):
            kind_of[where[k]] = kinds[n % len(kinds)]
    width = max(4, len(str(datasets)))
    for i, plan in enumerate(plans):
        name = f"jrc_{rng.choice(CELL_TYPES)}-{i + 1:0{width}d}"
        if i % 7 in (1, 2, 3, 4):
            name = _ODD_NAMES[i % 7 - 1].format(name)
        w.begin(truth, name)
        _dataset(w, name, plan, {j: k for (d, j), k in kind_of.items() if d == i}, levels, rng)


def _dataset(
    w: _Writer,
    name: str,
    plan: Sequence[str],
    broken: dict[int, str],
    levels: tuple[int, int],
    rng: random.Random,
) -> None:
    """One dataset of the irregular layout: the roots of ``plan`` (``broken``: slot -> kind)."""
    base = rng.choice(BASE_SCALES)
    shape_xyz = [rng.randrange(500, 30000), rng.randrange(300, 4000), rng.randrange(500, 20000)]
    shape_zyx = shape_xyz[::-1]
    compact = rng.random() < 0.3  # written by n5-java rather than zarr-python
    compression = rng.choice(_COMPRESSIONS)
    _stray(w, name, rng)
    n5 = f"{name}/{name}.n5"
    z2 = f"{name}/{name}.zarr"
    z3 = f"{name}/processed/{name}-ome.zarr"  # below a plain folder
    made: set[str] = set()
    labels = iter(_label_names(len(plan)))
    odd = iter(("mito.v2_seg", "er seg", "mitochondrien-\u00fc_seg"))

    def n5_groups(*rels: str) -> None:
        for rel in rels:
            if rel not in made:
                made.add(rel)
                _n5_group(w, rel, rng.choice(("2.0.0", "2.0.0", "4.0.0")), compact)

    def z2_groups(*rels: str) -> None:
        for rel in rels:
            if rel not in made:
                made.add(rel)
                _zgroup(w, rel)

    def z3_groups(*rels: str) -> None:
        for rel in rels:
            if rel not in made:
                made.add(rel)
                _zarr3_group(w, rel)

    em_done = False
    crops = 0
    v3_images: list[str] = []
    for j, model in enumerate(plan):
        kind = broken.get(j)
        n_levels = rng.randint(*levels)
        if model == COSEM:
            n5_groups(n5)
            if rng.random() < 0.2:
                _stray(w, n5, rng)
            if not em_done:
                em_done = True
                gname = rng.choice(("fibsem-uint8", "fibsem-uint16"))
                rel, dtype = f"{n5}/em/{gname}", gname.removeprefix("fibsem-")
                n5_groups(f"{n5}/em")
            else:
                gname = next(odd, None) if rng.random() < 0.1 else None
                gname = gname or next(labels)
                rel, dtype = f"{n5}/labels/{gname}", "uint64"
                n5_groups(f"{n5}/labels")
            ng_only = kind is None and rng.random() < 0.08
            styles = ("int_values", "order_f", "order_null", "ordering_key", "anisotropic")
            style = rng.choice((None,) * 8 + styles)
            _cosem_group(w, rel, n_levels=n_levels, base=base, shape_xyz=shape_xyz, dtype=dtype,
                         name=gname, broken=kind, compact=compact, compression=compression,
                         neuroglancer_only=ng_only, rng=rng, style=style)  # fmt: skip
            if rng.random() < 0.1:
                _stray(w, rel, rng)
            if rng.random() < 0.1 and kind is None:
                _stray(w, f"{rel}/s0", rng, chunk=True)
        elif model == OME04:
            z2_groups(z2, f"{z2}/recon-1", f"{z2}/recon-1/em")
            if rng.random() < 0.5:  # attributes without .zgroup: not a node (Zarr v2 spec)
                w.file(f"{z2}/recon-1/scratch/.zattrs", _zarr2_json({"note": "work in progress"}))
            rel = f"{z2}/recon-1/em/fibsem-uint8"
            _ome04_image(w, rel, n_levels=n_levels, base=base, shape_zyx=shape_zyx, broken=kind)
            if kind is None and rng.random() < 0.3:
                _stray(w, f"{rel}/s0", rng, chunk=True)
        elif model == CROP:
            z2_groups(z2, f"{z2}/recon-1", f"{z2}/recon-1/labels",
                      f"{z2}/recon-1/labels/groundtruth")  # fmt: skip
            crops += 1
            classes = list(rng.sample(CLASSES, rng.randint(1, 4)))
            if kind == "counts_not_in_encoding" and not any(
                c.endswith(("_mem", "_lum")) for c in classes
            ):
                classes.append("mito_mem")
            if kind == "instance_encoding_present" and all(
                c.endswith(("_mem", "_lum")) for c in classes
            ):
                classes.append("mito")
            listed = [*classes, "ld"] if kind == "missing_class_group" else list(classes)
            if "ld" in classes and kind == "missing_class_group":
                listed = [*classes, "perox"] if "perox" not in classes else [*classes, "cent"]
            size = [rng.randrange(20, 400) for _ in range(3)]
            # on the grid of the dataset's EM image (s0 at the origin, twice the crop's spacing)
            offset = [rng.randrange(0, 600) * b - b / 4 for b in base]
            cname = f"crop{crops * 7 + rng.randrange(7)}"
            _crop(w, f"{z2}/recon-1/labels/groundtruth/{cname}", name=cname, classes=classes,
                  listed=listed, shape_zyx=size, base=base, offset=offset,
                  n_levels=rng.randint(1, 3), broken=kind,
                  broken_all=kind is None and rng.random() < 0.15)  # fmt: skip
        elif model in (OME04_LABELS, OME05_LABELS):
            v04 = model == OME04_LABELS
            image = f"{z2}/recon-1/em/fibsem-uint8" if v04 else v3_images[0]
            names = rng.sample(("mito", "er", "nucleus", "cell"), rng.randint(1, 2))
            _labels(w, image, version="0.4" if v04 else "0.5", names=names,
                    n_levels=rng.randint(1, 3), base=base, shape_zyx=shape_zyx,
                    broken=kind)  # fmt: skip
        elif model == OME05:
            if plan[0] == COSEM:
                z3_groups(z3)  # below the plain folder `processed`
                rel = f"{z3}/em" if not v3_images else f"{z3}/pred-{len(v3_images)}"
            else:  # a Zarr v3-only dataset, as jrc_cos7-1a in the example
                z = f"{name}/{name}.zarr"
                z3_groups(z, f"{z}/recon-1", f"{z}/recon-1/em")
                rel = f"{z}/recon-1/em/fibsem-uint8"
                if v3_images:
                    z3_groups(f"{z}/recon-1/predictions")
                    rel = f"{z}/recon-1/predictions/pred-{len(v3_images)}"
            v3_images.append(rel)
            _ome05_image(w, rel, n_levels=n_levels, base=base, shape_zyx=shape_zyx, broken=kind)


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
        ("lyso_seg", "level_shape"),
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
        ``groups_per_dataset``); in ``irregular``, the total number of model roots, spread
        unevenly.
    levels
        Scale levels per multiscale group: ``6``, or a range ``"5-10"`` drawn per group.
    broken_fraction
        Share of COSEM groups broken on purpose, cycling through ``BROKEN_KINDS`` (in
        ``irregular``: of every model's roots, through ``IRREGULAR_KINDS``).
    seed
        Seed of the generator: same seed and options, same bytes.
    layout
        ``"cosem"``, ``"mixed"``, ``"irregular"`` or ``"example"`` (module docstring).
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
        for d in truth.datasets.values():  # committed before per-node truth existed
            d.expected, d.status = {}, {}
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
        if layout == "irregular":
            _irregular(
                w,
                truth,
                total=sum(per),
                datasets=len(per),
                levels=lv,
                broken_fraction=broken_fraction,
                rng=random.Random(seed),
            )
            _mark_below_unreadable(truth)
            truth.known = {
                cls: KNOWN_DISAGREEMENTS[cls]
                for cls in sorted(
                    {e.cls for d in truth.datasets.values() for e in d.expected.values()}
                )
                if cls in KNOWN_DISAGREEMENTS
            }
        else:
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
    (out / "truth.json").write_bytes(_encode_truth(truth))
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
