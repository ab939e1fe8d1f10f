"""CROP101 in scans and checks: a crop's class groups on the grid of the image they annotate.

The hierarchy is the example bucket's jrc_hela-2 (an EM image at ``recon-1/em/fibsem-uint8``, a
crop at ``recon-1/labels/groundtruth/crop1`` annotated at half the image's spacing), copied to
``tmp_path`` and broken in one place per test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cellmap_schemas._scan import NodeResult, ScanReport
from cellmap_schemas.crop_grid import crop_scope, image_scope
from cellmap_schemas.synchronous import judge, scan

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cellmap-bucket" / "jrc_hela-2"
RECON = "jrc_hela-2.zarr/recon-1"
CROP = f"{RECON}/labels/groundtruth/crop1"
IMAGE = f"{RECON}/em/fibsem-uint8"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "jrc_hela-2"
    shutil.copytree(EXAMPLE, root)
    return root


def _shift_crop(root: Path, cls: str, dy: float) -> None:
    """Move one class group's s0 by ``dy`` nm along y (its other levels alike)."""
    path = root / CROP / cls / ".zattrs"
    attrs = json.loads(path.read_text())
    for ds in attrs["multiscales"][0]["datasets"]:
        for t in ds["coordinateTransformations"]:
            if t["type"] == "translation":
                t["translation"][1] += dy
    path.write_text(json.dumps(attrs))


def _crop101(node: NodeResult) -> list[str]:
    return [
        f.msg
        for r in node.results.values()
        for f in (*r.errors, *r.warnings)
        if f.rule == "CROP101"
    ]


def _node(report: ScanReport, path: str) -> NodeResult:
    return next(n for n in report.nodes if n.path == path)


def test_a_crop_on_the_grid_passes(dataset: Path) -> None:
    report = scan(str(dataset))
    crop = _node(report, CROP)
    assert crop.status == "valid"
    assert _crop101(crop) == []


def test_a_crop_off_the_grid_fails_naming_the_class_group_and_the_image(dataset: Path) -> None:
    _shift_crop(dataset, "mito", 1.0)  # a quarter of the image's 4 nm voxel
    report = scan(str(dataset))
    crop = _node(report, CROP)
    assert crop.status == "invalid"
    (msg,) = _crop101(crop)
    assert msg.startswith("mito: crop translate")
    assert "axis 1 is +0.25 image voxels off" in msg
    assert msg.endswith(f"(image {IMAGE})")
    # the class group itself is judged by its own models, which know nothing of the image
    assert _node(report, f"{CROP}/mito").status == "valid"


def test_check_of_the_crop_alone_finds_the_image_above_it(dataset: Path) -> None:
    _shift_crop(dataset, "mito", 1.0)
    checked = judge(str(dataset / CROP))
    scanned = _node(scan(str(dataset)), CROP)
    assert checked.status == scanned.status == "invalid"
    assert len(_crop101(checked)) == 1
    assert _crop101(checked)[0].endswith(f"(image {dataset / IMAGE})")


def test_without_the_image_in_the_bucket_the_rule_does_not_apply(dataset: Path) -> None:
    _shift_crop(dataset, "mito", 1.0)
    shutil.rmtree(dataset / RECON / "em")
    assert _crop101(_node(scan(str(dataset)), CROP)) == []
    assert judge(str(dataset / CROP)).status == "valid"


def test_a_crop_at_another_resolution_is_judged_on_voxel_corners(dataset: Path) -> None:
    """Shifted by one whole image voxel (4 nm, two crop voxels): still on the grid."""
    _shift_crop(dataset, "mito", 4.0)
    assert _crop101(_node(scan(str(dataset)), CROP)) == []


def test_scopes() -> None:
    assert image_scope("a/recon-1/em/fibsem-uint8") == "a/recon-1"
    assert image_scope("em/fibsem-uint8") == ""
    assert image_scope("a/recon-1/em") is None
    assert image_scope("fibsem-uint8") is None
    assert crop_scope("a/recon-1/labels/groundtruth/crop1") == "a/recon-1"
    assert crop_scope("labels/crop1") == ""
    assert crop_scope("groundtruth/crop1") is None
