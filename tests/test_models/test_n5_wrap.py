"""N5 attributes.json <-> the Zarr v2 view: compression, dtype, F/C order, wrapped views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellmap_schemas.errors import ValidationError
from cellmap_schemas.n5_wrap import (
    N5_VERSION,
    N5ArrayMetadata,
    N5ArraySpec,
    N5GroupSpec,
    compression_from_n5,
    compression_to_n5,
    dtype_from_n5,
    dtype_to_n5,
    is_n5_array,
    n5_array_to_spec_dict,
    n5_array_unwrapper,
    n5_array_wrapper,
    n5_group_to_spec_dict,
    n5_group_unwrapper,
    n5_group_wrapper,
    n5_spec_unwrapper,
    n5_spec_wrapper,
    spec_to_n5_array,
    spec_to_n5_group,
    unwrap,
    wrap,
)
from cellmap_schemas.spec import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v2 import spec_dict_from_zarray

WILD = Path(__file__).parent.parent / "data" / "wild"
VARIANTS = json.loads(
    (WILD / "n5_dataset_compression_variants__zarr-python_N5Store.json").read_text()
)


def load(name: str) -> dict[str, Any]:
    return json.loads((WILD / name).read_text())


def spec_of(doc: dict[str, Any]) -> ArraySpec[Any]:
    return ArraySpec.model_validate(n5_array_to_spec_dict(doc))


# ---- compression ---------------------------------------------------------------------------
EXPECTED_CODECS = {
    "raw": None,
    "gzip": {"id": "gzip", "level": -1},
    "zlib": {"id": "zlib", "level": 6},
    "blosc": {"id": "blosc", "blocksize": 0, "clevel": 5, "cname": "zstd", "shuffle": 1},
    "zstd": {"id": "zstd", "checksum": False, "level": 3},
    "bz2": {"id": "bz2", "level": 9},
    "xz": {"id": "lzma", "format": 1, "check": -1, "preset": 6, "filters": None},
}


def test_every_variant_is_covered() -> None:
    assert set(VARIANTS) == set(EXPECTED_CODECS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CODECS))
def test_compression_maps_to_the_numcodecs_config(name: str) -> None:
    assert spec_of(VARIANTS[name]).compressor == EXPECTED_CODECS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_CODECS))
def test_n5_to_spec_to_n5_is_lossless(name: str) -> None:
    doc = VARIANTS[name]
    back = spec_to_n5_array(spec_of(doc))
    expected = json.loads(json.dumps(doc))
    if name == "zstd":
        # zarr-python's N5Store leaks the numcodecs "id" into the N5 block; it repeats `type`,
        # and tensorstore refuses the block with it ("Object includes extra members"), so it is
        # the one key not written back.
        del expected["compression"]["id"]
    assert back == expected


@pytest.mark.parametrize("name", sorted(EXPECTED_CODECS))
def test_spec_to_n5_to_spec_is_lossless(name: str) -> None:
    spec = spec_of(VARIANTS[name])
    assert spec_of(spec_to_n5_array(spec)) == spec
    assert compression_from_n5(compression_to_n5(spec.compressor)) == spec.compressor


def test_compression_to_n5_unwraps_the_n5_wrapper() -> None:
    wrapped = {"id": "n5_wrapper", "compressor_config": {"id": "gzip", "level": 1}}
    assert compression_to_n5(wrapped) == {"type": "gzip", "level": 1, "useZlib": False}
    assert compression_to_n5(None) == {"type": "raw"}


def test_compression_without_n5_equivalent() -> None:
    with pytest.raises(ValueError, match="compressor 'blosc2' has no N5 equivalent"):
        compression_to_n5({"id": "blosc2"})


def test_unknown_n5_compression_is_passed_on_for_validation() -> None:
    assert compression_from_n5({"type": "snappy", "x": 1}) == {"id": "snappy", "x": 1}
    with pytest.raises(ValidationError) as exc:
        N5ArrayMetadata.model_validate({**VARIANTS["raw"], "compression": {"type": "snappy"}})
    assert list(dict(exc.value.problems)) == ["compression.type"]


def test_legacy_compression_type() -> None:
    doc = load("n5_dataset__n5java_1.5.0_legacy_compressionType.json")
    spec = spec_of(doc)
    assert spec.compressor is None
    assert spec.attributes == {}  # compressionType is array metadata, not an attribute
    assert (spec.shape, spec.chunks, spec.dtype) == ((5, 7), (4, 5), "|u1")
    # written back in the N5 2.x form (what n5-java >= 2 writes for the same dataset)
    assert spec_to_n5_array(spec) == load("n5_dataset__n5java_2.5.1_raw.json")


def test_legacy_key_does_not_override_compression() -> None:
    doc = {**VARIANTS["gzip"], "compressionType": "raw"}
    assert spec_of(doc).compressor == {"id": "gzip", "level": -1}


# ---- order and dtype ------------------------------------------------------------------------
def test_f_order_lists_are_reversed() -> None:
    spec = spec_of({**VARIANTS["raw"], "dimensions": [30, 20, 10], "blockSize": [5, 4, 3]})
    assert spec.shape == (10, 20, 30)
    assert spec.chunks == (3, 4, 5)
    assert spec.order == "C"
    back = spec_to_n5_array(spec)
    assert (back["dimensions"], back["blockSize"]) == ([30, 20, 10], [5, 4, 3])


def test_spec_in_f_order_is_refused() -> None:
    spec = spec_of(VARIANTS["raw"]).model_copy(update={"order": "F"})
    with pytest.raises(ValueError, match="order must be 'C'"):
        spec_to_n5_array(spec)


DTYPES = {
    "uint8": "|u1",
    "int8": "|i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "int64": "<i8",
    "float32": "<f4",
    "float64": "<f8",
}


@pytest.mark.parametrize(("n5", "numpy"), sorted(DTYPES.items()))
def test_dtype_mapping(n5: str, numpy: str) -> None:
    assert dtype_from_n5(n5) == numpy
    assert dtype_to_n5(numpy) == n5
    assert dtype_to_n5(np.dtype(numpy).newbyteorder(">").str) == n5
    assert dtype_to_n5(n5) == n5
    assert spec_of({**VARIANTS["raw"], "dataType": n5}).dtype == numpy


def test_dtype_without_n5_equivalent_is_left_for_validation() -> None:
    assert dtype_from_n5("complex64") == "complex64"
    assert dtype_to_n5("<c8") == "<c8"
    with pytest.raises(ValidationError) as exc:
        N5ArrayMetadata.model_validate({**VARIANTS["raw"], "dataType": "complex64"})
    assert list(dict(exc.value.problems)) == ["dataType"]


# ---- attributes and groups -----------------------------------------------------------------
def test_user_attributes_are_kept_verbatim() -> None:
    doc = load("reconstructed__jrc_hela-2_n5_em_fibsem-uint16_s0_attributes.json")
    spec = spec_of(doc)
    assert spec.attributes == {k: doc[k] for k in ("pixelResolution", "transform")}
    assert (spec.shape, spec.chunks, spec.dtype) == ((6368, 1600, 12000), (64, 64, 64), "<u2")
    assert spec_to_n5_array(spec) == doc


def test_merged_group_and_array_keeps_its_group_keys() -> None:
    doc = load("irregular_n5_merged_group_and_array__neuroglancer_issue602_user.json")
    assert is_n5_array(doc)
    spec = spec_of(doc)
    assert spec.attributes["scales"] == doc["scales"]
    assert spec_to_n5_array(spec) == doc


@pytest.mark.parametrize(
    "name",
    [
        "n5_root__n5java_1.5.0.json",
        "n5_root__n5java_2.5.1.json",
        "n5_root__n5java_4.0.0.json",
        "n5_root__zarr-python_N5Store.json",
        "n5_intermediate_group__zarr-python_N5Store.json",
    ],
)
def test_group_documents(name: str) -> None:
    doc = load(name)
    assert not is_n5_array(doc)
    spec = GroupSpec.model_validate(n5_group_to_spec_dict(doc))
    assert spec.attributes == doc and spec.members == {}
    assert spec_to_n5_group(spec, root=True) == doc  # an existing version is kept
    assert spec_to_n5_group(spec) == doc


def test_root_group_gets_the_n5_version() -> None:
    spec = GroupSpec(attributes={"axes": ["x"]})
    assert spec_to_n5_group(spec, root=True) == {"axes": ["x"], "n5": N5_VERSION}
    assert spec_to_n5_group(spec) == {"axes": ["x"]}


def test_seed_example_attributes_json() -> None:
    # The original wrote exactly these keys for the seed's 4x4 int64 scale level.
    resolution = {"dimensions": [1.0, 1.0], "unit": "nm"}
    spec = ArraySpec.from_array(
        np.zeros((4, 4), dtype="int64"), attributes={"pixelResolution": resolution}
    )
    assert spec_to_n5_array(spec) == {
        "blockSize": [4, 4],
        "compression": {"type": "raw"},
        "dataType": "int64",
        "dimensions": [4, 4],
        "pixelResolution": resolution,
    }


def test_array_keys_in_attributes_never_shadow_the_spec() -> None:
    spec = ArraySpec.from_array(np.zeros((2, 3), dtype="u1"), attributes={"dimensions": [9]})
    assert spec_to_n5_array(spec)["dimensions"] == [3, 2]


def test_wrong_types_are_passed_on_for_validation() -> None:
    doc = {**VARIANTS["raw"], "dimensions": "big", "dataType": 8}
    with pytest.raises(ValidationError) as exc:
        ArraySpec.model_validate(n5_array_to_spec_dict(doc))
    assert set(dict(exc.value.problems)) == {"shape", "dtype"}


# ---- N5ArrayMetadata -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED_CODECS))
def test_n5_array_metadata_accepts_every_variant(name: str) -> None:
    meta = N5ArrayMetadata.model_validate(VARIANTS[name])
    assert meta.dimensions == (30, 20, 10)


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({"blockSize": [5, 5]}, {"blockSize": "has 2 entries but dimensions has 3"}),
        ({"blockSize": [5, 0, 5]}, {"blockSize[1]": "Expected `int` >= 1"}),
        ({"dimensions": [30, -1, 10]}, {"dimensions[1]": "Expected `int` >= 0"}),
        # integral floats are refused (docs/coercion.md)
        ({"dimensions": [30.0, 20, 10]}, {"dimensions[0]": "Expected `int`, got `float`"}),
        ({"blockSize": ["5", 5, 5]}, {"blockSize[0]": "Expected `int`, got `str`"}),
    ],
)
def test_n5_array_metadata_rules(changes: dict[str, Any], problems: dict[str, str]) -> None:
    doc = {**VARIANTS["raw"], **changes}
    for call in (
        N5ArrayMetadata.model_validate,
        lambda d: N5ArrayMetadata.model_validate_json(json.dumps(d)),
    ):
        with pytest.raises(ValidationError) as exc:
            call(doc)
        assert dict(exc.value.problems) == problems


# ---- wrapped view ----------------------------------------------------------------------------
def test_wrap_and_unwrap() -> None:
    spec = spec_of(VARIANTS["zstd"])
    wrapped = wrap(spec)
    assert isinstance(wrapped, N5ArraySpec)
    assert wrapped.dimension_separator == "."
    assert wrapped.compressor == {"id": "n5_wrapper", "compressor_config": spec.compressor}
    assert unwrap(wrapped) == spec
    assert unwrap(spec) == spec


def test_zarr_python_view_of_n5_unwraps_to_the_n5_spec() -> None:
    view = load("zarr_view_of_n5__zarr-python_N5FSStore.json")
    zarray = view["compression_variants/zstd/.zarray"]
    wrapped = N5ArraySpec.model_validate(spec_dict_from_zarray(zarray, {}))
    assert wrapped.filters == ()
    assert unwrap(wrapped) == spec_of(VARIANTS["zstd"])
    labels = view["labels/mito_seg/s0/.zarray"]
    attrs = view["labels/mito_seg/s0/.zattrs"]
    spec = unwrap(N5ArraySpec.model_validate(spec_dict_from_zarray(labels, attrs)))
    assert spec.compressor == {"id": "gzip", "level": -1}
    assert spec_to_n5_array(spec)["compression"] == {"type": "gzip", "level": -1, "useZlib": False}


def test_original_wrapper_names() -> None:
    spec = spec_of(VARIANTS["gzip"])
    dotted = n5_array_wrapper(spec)
    assert dotted.dimension_separator == "." and dotted.compressor == spec.compressor
    wrapped = wrap(spec)
    unwrapped = n5_array_unwrapper(wrapped)
    assert type(unwrapped) is N5ArraySpec  # the class is kept, as in the original
    assert unwrapped.model_dump() == spec.model_dump()
    group = N5GroupSpec(
        attributes={"n5": "2.0.0"}, members={"s0": spec, "g": GroupSpec(members={"a": spec})}
    )
    out = n5_group_wrapper(group)
    assert isinstance(out, N5GroupSpec)
    assert out.members["s0"].dimension_separator == "."
    assert out.members["g"].members["a"].dimension_separator == "."
    assert n5_spec_wrapper(group) == out
    assert n5_group_unwrapper(out) == group
    assert n5_spec_unwrapper(n5_spec_wrapper(spec)) == spec


# ---- generated documents -----------------------------------------------------------------------
compression_st = st.sampled_from(sorted(EXPECTED_CODECS)).map(lambda k: VARIANTS[k]["compression"])


@st.composite
def n5_array_st(draw: st.DrawFn) -> dict[str, Any]:
    dims = draw(st.lists(st.integers(0, 100_000), min_size=1, max_size=5))
    compression = dict(draw(compression_st))
    compression.pop("id", None)
    attrs = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=5).filter(
                lambda k: (
                    k
                    not in {"dimensions", "blockSize", "dataType", "compression", "compressionType"}
                )
            ),
            st.integers() | st.text(max_size=5) | st.lists(st.floats(allow_nan=False), max_size=3),
            max_size=3,
        )
    )
    return {
        **attrs,
        "dimensions": dims,
        "blockSize": [draw(st.integers(1, max(1, d))) for d in dims],
        "dataType": draw(st.sampled_from(sorted(DTYPES))),
        "compression": compression,
    }


@settings(max_examples=80, deadline=None)
@given(n5_array_st())
def test_generated_n5_documents_round_trip(doc: dict[str, Any]) -> None:
    spec = spec_of(doc)
    assert spec_to_n5_array(spec) == doc
    assert spec_of(spec_to_n5_array(spec)) == spec
    assert N5ArrayMetadata.model_validate(doc).dataType == doc["dataType"]
    assert spec.shape == tuple(reversed(doc["dimensions"]))
