"""Every public name of the original's modules stays importable from the same path, and the
model modules stay light (no storage libraries imported)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# The public names of cellmap-schemas 0.8.1's modules (classes, functions, tables and type
# aliases defined there), listed by inspecting the installed original.
ORIGINAL_NAMES: dict[str, list[str]] = {
    "base": ["normalize_chunks", "structure_equal", "structure_group_equal"],
    "n5_wrap": [
        "N5ArraySpec",
        "N5GroupSpec",
        "from_zarr",
        "n5_array_unwrapper",
        "n5_array_wrapper",
        "n5_group_unwrapper",
        "n5_group_wrapper",
        "n5_spec_unwrapper",
        "n5_spec_wrapper",
        "update_n5_attrs",
    ],
    "annotation": [
        "Annotated",
        "AnnotationArray",
        "AnnotationArrayAttrs",
        "AnnotationGroup",
        "AnnotationGroupAttrs",
        "AnnotationState",
        "AnnotationType",
        "AnnotationWrapper",
        "CellmapWrapper",
        "CropGroup",
        "CropGroupAttrs",
        "InstanceName",
        "InstancePossibility",
        "InstanceSegmentation",
        "Label",
        "LabelList",
        "SemanticPossibility",
        "SemanticSegmentation",
        "T",
        "TName",
        "classNamedict",
        "serialize_date",
        "wrap_attributes",
    ],
    "multiscale.cosem": [
        "Array",
        "ArrayMetadata",
        "Group",
        "GroupMetadata",
        "MultiscaleMetadata",
        "STTransform",
        "ScaleMetadata",
        "change_coordinates",
        "new_groupmetadata",
        "new_multiscalemetadata",
        "new_sttransform",
    ],
    "multiscale.neuroglancer_n5": [
        "Array",
        "ArrayMetadata",
        "Group",
        "GroupMetadata",
        "PixelResolution",
    ],
}

CASES = [(module, name) for module, names in ORIGINAL_NAMES.items() for name in names]


@pytest.mark.parametrize(("module", "name"), CASES)
def test_original_name_is_importable(module: str, name: str) -> None:
    mod = importlib.import_module(f"cellmap_schemas.{module}")
    assert hasattr(mod, name), f"cellmap_schemas.{module}.{name} is missing"


@pytest.mark.parametrize("module", sorted(ORIGINAL_NAMES))
def test_dunder_all_names_exist(module: str) -> None:
    mod = importlib.import_module(f"cellmap_schemas.{module}")
    exported = getattr(mod, "__all__", [])
    assert [n for n in exported if not hasattr(mod, n)] == []


def test_models_keep_the_original_meaning() -> None:
    from cellmap_schemas import annotation, base
    from cellmap_schemas.multiscale import cosem, neuroglancer_n5
    from cellmap_schemas.spec import ArraySpec, GroupSpec

    for cls in (
        annotation.CropGroup,
        annotation.AnnotationGroup,
        cosem.Group,
        neuroglancer_n5.Group,
    ):
        assert issubclass(cls, GroupSpec)
    for cls in (annotation.AnnotationArray, cosem.Array, neuroglancer_n5.Array):
        assert issubclass(cls, ArraySpec)
    assert len(annotation.classNamedict) == 48
    assert callable(base.normalize_chunks) and callable(base.structure_equal)


HEAVY = ("fsspec", "s3fs", "tensorstore", "zarr", "aiohttp", "botocore")


@pytest.mark.parametrize(
    "module",
    [
        "cellmap_schemas.multiscale.cosem",
        "cellmap_schemas.multiscale.neuroglancer_n5",
        "cellmap_schemas.annotation",
        "cellmap_schemas.n5_wrap",
        "cellmap_schemas.base",
        "cellmap_schemas.spec",
        "cellmap_schemas.registry",
    ],
)
def test_model_modules_do_not_import_storage_libraries(module: str) -> None:
    code = (
        f"import sys, {module}\nprint(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
