"""The model registry: CLI names, misspellings, and the key signatures that tell models apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cellmap_schemas import annotation, registry
from cellmap_schemas.registry import MODELS, close_matches, get_model, looks_like, signature

WILD = Path(__file__).parent.parent / "data" / "wild"


def load(name: str) -> dict[str, Any]:
    return json.loads((WILD / name).read_text())


CROP_KEYS = {
    "version",
    "name",
    "description",
    "created_by",
    "created_with",
    "start_date",
    "end_date",
    "duration_days",
    "protocol_uri",
    "class_names",
}


def test_annotation_models_are_registered() -> None:
    assert get_model("annotation.CropGroup") is annotation.CropGroup
    assert get_model("annotation.AnnotationGroup") is annotation.AnnotationGroup
    assert get_model("annotation.AnnotationArray") is annotation.AnnotationArray
    assert MODELS["annotation.CropGroup"].kind == "group"
    assert MODELS["annotation.AnnotationGroup"].kind == "group"
    assert MODELS["annotation.AnnotationArray"].kind == "array"


def test_every_registered_name_is_module_path_and_class() -> None:
    for name, info in MODELS.items():
        assert info.name == name
        module, _, cls = name.rpartition(".")
        assert module and cls[0].isupper()
        assert info.description


def test_crop_signature_descends_through_the_namespace() -> None:
    assert signature(annotation.CropGroup) == {("cellmap", "annotation", k) for k in CROP_KEYS}


def test_class_group_signature() -> None:
    assert signature(annotation.AnnotationGroup) == {
        ("cellmap", "annotation", "class_name"),
        ("cellmap", "annotation", "annotation_type"),
    }


def test_array_signature() -> None:
    assert signature(annotation.AnnotationArray) == {
        ("cellmap", "annotation", "class_name"),
        ("cellmap", "annotation", "annotation_type"),
        ("cellmap", "annotation", "complement_counts"),
    }


def test_signature_tells_a_crop_from_a_class_group() -> None:
    crop = load("reconstructed__crop_group_zattrs__cellmap-schemas-0.1.1.json")
    klass = load("reconstructed__crop_class_group_zattrs_semantic.json")
    assert looks_like(annotation.CropGroup, crop)
    assert not looks_like(annotation.AnnotationGroup, crop)
    assert looks_like(annotation.AnnotationGroup, klass)
    assert not looks_like(annotation.CropGroup, klass)
    assert signature(annotation.CropGroup).isdisjoint(signature(annotation.AnnotationGroup))


def test_signature_rejects_unrelated_attributes() -> None:
    ome_only = load("reconstructed__crop_all_group_zattrs.json")
    for model in (annotation.CropGroup, annotation.AnnotationGroup, annotation.AnnotationArray):
        assert not looks_like(model, ome_only)
        assert not looks_like(model, {"cellmap": {"other": {}}})
        assert not looks_like(model, {"cellmap": "not an object"})


def test_signature_of_an_unconstrained_model_is_empty() -> None:
    from cellmap_schemas.spec.zarr_v2 import GroupSpec

    assert signature(GroupSpec) == frozenset()
    assert looks_like(GroupSpec, {})


def test_get_model_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(KeyError) as exc:
        get_model("annotation.CropGrop")
    text = str(exc.value)
    assert "unknown model 'annotation.CropGrop'" in text
    assert "did you mean annotation.CropGroup" in text


def test_get_model_far_name_has_no_suggestion() -> None:
    with pytest.raises(KeyError) as exc:
        get_model("zzzzzzzz")
    assert "did you mean" not in str(exc.value)


def test_close_matches_case_and_class_name() -> None:
    assert close_matches("ANNOTATION.CROPGROUP")[0] == "annotation.CropGroup"
    # a bare class name finds every model with that class name
    groups = close_matches("Group")
    assert groups and all(name.endswith(".Group") for name in groups)
    assert close_matches("cosem.Group")[0] == "multiscale.cosem.Group"
    assert len(close_matches("annotation.", n=2)) <= 2


def test_get_model_is_lazy_and_cached_by_import() -> None:
    info = MODELS["annotation.CropGroup"]
    assert info.load() is info.load() is annotation.CropGroup
    assert registry.signature(annotation.CropGroup) is registry.signature(annotation.CropGroup)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_loads_as_its_kind(name: str) -> None:
    from cellmap_schemas.spec import ArraySpec, ArraySpecV3, GroupSpec, GroupSpecV3

    model = get_model(name)
    info = MODELS[name]
    assert info.marker_paths, f"{name} has no markers to be recognised by"
    if not info.default:  # a profile (Neuroglancer readability): rules on the tree only
        assert callable(model._tree_problems)
        return
    bases = (ArraySpec, ArraySpecV3) if info.kind == "array" else (GroupSpec, GroupSpecV3)
    assert issubclass(model, bases)
    assert signature(model), f"{name} has no attribute keys to be recognised by"


def test_preload_imports_every_model_before_any_use() -> None:
    """What forked workers inherit: every model's module, loaded once in the parent."""
    code = (
        "import sys\n"
        "from cellmap_schemas import registry\n"
        "def loaded():\n"
        "    return [f'cellmap_schemas.{i.name.rpartition(\".\")[0]}' in sys.modules\n"
        "            for i in registry.MODELS.values()]\n"
        "before = loaded()\n"
        "registry.preload()\n"
        "print(all(before), all(loaded()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
