"""Reading hierarchies: format detection by content, parse errors, tree reading, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import zarr

from cellmap_schemas.errors import (
    NodeNotFoundError,
    StoreError,
    UnsupportedFormatError,
    ValidationError,
)
from cellmap_schemas.formats import METADATA_KEYS, parse_node
from cellmap_schemas.io.read import depth_needed, read_node, read_tree, run_sync
from cellmap_schemas.io.store import open_store
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3
from cellmap_schemas.synchronous import read

N5_ARRAY = {
    "dimensions": [30, 20, 10],
    "blockSize": [8, 8, 8],
    "dataType": "uint16",
    "compression": {"type": "gzip", "level": -1, "useZlib": False},
    "pixelResolution": {"dimensions": [4.0, 4.0, 4.0], "unit": "nm"},
}


def doc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_n5(root: Path, levels: int = 3) -> Path:
    """An N5 container as n5-java / zarr-python's N5 store lay it out: root, group, arrays."""
    write_json(root / "attributes.json", {"n5": "2.0.0"})
    write_json(root / "em" / "attributes.json", {"n5": "2.0.0", "axes": ["x", "y", "z"]})
    for i in range(levels):
        arr = dict(N5_ARRAY, dimensions=[30 >> i, 20 >> i, 10 >> i])
        write_json(root / "em" / f"s{i}" / "attributes.json", arr)
        chunk = root / "em" / f"s{i}" / "0" / "0"
        chunk.mkdir(parents=True)
        (chunk / "0").write_bytes(b"\x00\x00\x00\x03" + bytes(64))
    return root


# ---- parse_node: pure ------------------------------------------------------------------------
def test_n5_group_and_array_become_zarr_v2_specs() -> None:
    group = parse_node({"attributes.json": doc({"n5": "2.0.0", "a": 1})}, "/d/x.n5")
    assert (group.format, group.kind) == ("n5", "group")
    assert group.spec == {"zarr_version": 2, "attributes": {"n5": "2.0.0", "a": 1}, "members": {}}
    array = parse_node({"attributes.json": doc(N5_ARRAY)}, "/d/x.n5/s0")
    assert (array.format, array.kind) == ("n5", "array")
    assert array.spec["shape"] == [10, 20, 30]  # F order on disk, C order in the spec
    assert array.spec["dtype"] == "<u2"
    assert array.spec["compressor"] == {"id": "gzip", "level": -1}
    assert array.spec["attributes"] == {"pixelResolution": N5_ARRAY["pixelResolution"]}
    ArraySpec.model_validate(array.spec)


def test_legacy_n5_compression_type() -> None:
    legacy = {"dimensions": [5, 4], "blockSize": [2, 2], "dataType": "uint8"}
    node = parse_node({"attributes.json": doc({**legacy, "compressionType": "raw"})}, "/x")
    assert node.kind == "array"
    assert node.spec["compressor"] is None


def test_zarr_v2_array_group_and_attributes_only() -> None:
    zarray = {
        "zarr_format": 2,
        "shape": [4],
        "chunks": [2],
        "dtype": "<i4",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "compressor": None,
    }
    node = parse_node({".zarray": doc(zarray), ".zattrs": doc({"k": "v"})}, "/a")
    assert (node.format, node.kind) == ("zarr2", "array")
    assert node.spec["attributes"] == {"k": "v"}
    ArraySpec.model_validate(node.spec)
    group = parse_node({".zgroup": doc({"zarr_format": 2})}, "/g")
    assert (group.kind, group.spec["attributes"]) == ("group", {})
    # .zattrs alone makes no node: the Zarr v2 specification and zarr-python open a group only
    # where a .zgroup is (scan and read agree on it)
    with pytest.raises(UnsupportedFormatError, match=r"holds \.zattrs but no \.zgroup or \.zarray"):
        parse_node({".zattrs": doc({"k": 1})}, "/g")


def test_zarr_v3_nodes() -> None:
    arr = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
    }
    node = parse_node({"zarr.json": doc(arr)}, "/v3/a")
    assert (node.format, node.kind) == ("zarr3", "array")
    assert node.spec["attributes"] == {}
    ArraySpecV3.model_validate(node.spec)
    group = parse_node({"zarr.json": doc({"zarr_format": 3, "node_type": "group"})}, "/v3")
    assert group.spec["members"] == {}
    GroupSpecV3.model_validate(group.spec)


def test_zarr_v3_without_node_type_is_rejected() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"^/v3/zarr.json: node_type must be"):
        parse_node({"zarr.json": doc({"zarr_format": 3})}, "/v3")


def test_format_is_decided_by_content_not_url() -> None:
    n5 = {"attributes.json": doc({"n5": "2.0.0"})}
    zarr2 = {".zgroup": doc({"zarr_format": 2})}
    for url in ("/plain/dir", "/a.zarr/b", "s3://bucket/key"):
        assert parse_node(n5, url).format == "n5"
    for url in ("/plain/dir", "/a.n5/b"):
        assert parse_node(zarr2, url).format == "zarr2"
    # both .n5 and .zarr in the URL: the original refused; the innermost container is the hint
    both = {**n5, **zarr2}
    assert parse_node(both, "/data.zarr/copy.n5/em").format == "n5"
    assert parse_node(both, "/data.n5/copy.zarr/em").format == "zarr2"
    assert parse_node(both, "/plain").format == "zarr2"


def test_no_metadata_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        parse_node({"README.md": b"hello"}, "/d")
    assert str(info.value) == (
        "/d: no N5 or Zarr metadata found (looked for " + ", ".join(METADATA_KEYS) + ")"
    )


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b'{"axes": [', "invalid JSON: Input data was truncated"),
        (b"{'single': 'quotes'}", "invalid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text (byte 0x89 at offset 0)"),
        (b"\x00\x00\x00\x01", "contains NUL bytes; a binary file, not JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "expected a JSON object, got a string"),
        (b"   ", "empty document, expected a JSON object"),
    ],
)
def test_bad_documents_name_url_key_and_cause(raw: bytes, cause: str) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        parse_node({"attributes.json": raw}, "s3://b/x.n5/em")
    message = str(info.value)
    assert message.startswith("s3://b/x.n5/em/attributes.json: ")
    assert cause in message
    assert "\n" not in message


def test_bare_nan_and_bom_are_accepted() -> None:
    zgroup = doc({"zarr_format": 2})
    node = parse_node(
        {".zgroup": zgroup, ".zattrs": b'\xef\xbb\xbf{"v": NaN, "w": Infinity}'}, "/g"
    )
    assert np.isnan(node.spec["attributes"]["v"])
    assert node.spec["attributes"]["w"] == float("inf")


def test_array_and_group_in_one_directory_is_rejected() -> None:
    docs = {".zarray": doc({"shape": [1]}), ".zgroup": doc({"zarr_format": 2})}
    with pytest.raises(UnsupportedFormatError, match=r"both \.zarray and \.zgroup"):
        parse_node(docs, "/x")


def test_irrelevant_documents_are_not_decoded() -> None:
    # a v3 node with a stray, broken .zattrs is read as v3 without complaint
    docs = {"zarr.json": doc({"zarr_format": 3, "node_type": "group"}), ".zattrs": b"{"}
    assert parse_node(docs, "/x").format == "zarr3"


def test_consolidated_v2_and_v3_are_parsed() -> None:
    zmeta = {
        "zarr_consolidated_format": 1,
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            "a/.zgroup": {"zarr_format": 2},
            "a/.zattrs": {"k": 1},
            "a/b/.zarray": {"shape": [2], "chunks": [2], "dtype": "|u1"},
        },
    }
    node = parse_node({".zgroup": doc({"zarr_format": 2}), ".zmetadata": doc(zmeta)}, "/c")
    assert node.consolidated is not None
    assert sorted(node.consolidated) == ["a", "a/b"]
    assert node.consolidated["a"].spec["attributes"] == {"k": 1}
    assert node.consolidated["a/b"].kind == "array"
    v3 = {
        "zarr_format": 3,
        "node_type": "group",
        "consolidated_metadata": {
            "kind": "inline",
            "must_understand": False,
            "metadata": {"g": {"zarr_format": 3, "node_type": "group", "attributes": {"x": 2}}},
        },
    }
    node3 = parse_node({"zarr.json": doc(v3)}, "/c3")
    assert "consolidated_metadata" not in node3.spec
    assert node3.consolidated is not None
    assert node3.consolidated["g"].spec["attributes"] == {"x": 2}


# ---- reading from storage --------------------------------------------------------------------
def tree(url: str, depth: int | None = None) -> tuple[dict[str, Any], int]:
    async def main() -> tuple[dict[str, Any], int]:
        async with open_store(url) as store:
            node = await read_tree(store, "", depth)
            return node.spec, store.requests

    return anyio.run(main)


def test_n5_hierarchy_on_disk(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "data.n5")
    spec = read(str(root))
    assert isinstance(spec, GroupSpec)
    em = spec.members["em"]
    assert isinstance(em, GroupSpec)
    assert sorted(em.members) == ["s0", "s1", "s2"]
    assert em.members["s1"].shape == (5, 10, 15)
    assert not hasattr(em.members["s0"], "members")


def test_never_lists_or_reads_inside_an_array(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "data.n5", levels=2)
    # a directory inside an array that would look like a node if it were listed
    write_json(root / "em" / "s0" / "trap" / "attributes.json", {"n5": "2.0.0"})
    spec, requests = tree(str(root / "em"))
    assert sorted(spec["members"]) == ["s0", "s1"]
    # 6 keys for the node asked for, 1 listing, 1 key per child of an N5 group
    assert requests == len(METADATA_KEYS) + 1 + 2


def test_depth_bounds_the_read(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "data.n5")
    spec0, req0 = tree(str(root), depth=0)
    assert spec0["members"] == {}
    assert req0 == len(METADATA_KEYS)
    spec1, _ = tree(str(root), depth=1)
    assert spec1["members"]["em"]["members"] == {}
    spec_all, _ = tree(str(root))
    assert sorted(spec_all["members"]["em"]["members"]) == ["s0", "s1", "s2"]
    assert read(str(root), depth=1).members["em"].members == {}


def test_urls_without_a_container_suffix(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "plain_dir")
    assert sorted(read(str(root / "em")).members) == ["s0", "s1", "s2"]
    g = zarr.open_group(str(tmp_path / "also_plain"), mode="w", zarr_format=2)
    g.create_array("a", shape=(3,), dtype="u1")
    assert isinstance(read(str(tmp_path / "also_plain")).members["a"], ArraySpec)


def test_url_with_both_suffixes(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "export.zarr" / "copy.n5")
    assert sorted(read(str(root / "em")).members) == ["s0", "s1", "s2"]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_hierarchies_match_zarr_python(tmp_path: Path, zarr_format: int) -> None:
    path = str(tmp_path / "data.zarr")
    g = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    g.attrs["name"] = "root"
    sub = g.create_group("labels")
    sub.attrs["k"] = [1, 2]
    sub.create_array("mito", shape=(8, 8), chunks=(4, 4), dtype="u8", attributes={"a": 1})
    g.create_array("raw", shape=(5,), dtype="f4", fill_value=float("nan"))
    spec = read(path)
    expected_type = GroupSpec if zarr_format == 2 else GroupSpecV3
    assert type(spec) is expected_type
    assert spec == expected_type.from_zarr(zarr.open_group(path, mode="r"))
    assert spec.members["labels"].members["mito"].attributes == {"a": 1}
    assert spec.attributes == {"name": "root"}


def test_consolidated_v2_metadata_replaces_listings(tmp_path: Path) -> None:
    path = tmp_path / "c.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_group("a").create_array("b", shape=(2,), dtype="u1")
    zarr.consolidate_metadata(str(path))
    # remove the member's own document: only the consolidated copy knows it now
    (path / "a" / "b" / ".zarray").unlink()
    spec, requests = tree(str(path))
    assert spec["members"]["a"]["members"]["b"]["shape"] == [2]
    assert requests == len(METADATA_KEYS)  # no listing, no member reads
    spec1, _ = tree(str(path), depth=1)
    assert spec1["members"]["a"]["members"] == {}


@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
def test_consolidated_v3_metadata_replaces_listings(tmp_path: Path) -> None:
    path = tmp_path / "c3.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    g.create_group("a").create_array("b", shape=(2,), dtype="u1")
    zarr.consolidate_metadata(str(path))
    spec, requests = tree(str(path))
    assert spec["members"]["a"]["members"]["b"]["shape"] == [2]
    assert requests == len(METADATA_KEYS)


def test_missing_node_and_directory_without_metadata(tmp_path: Path) -> None:
    with pytest.raises(NodeNotFoundError, match=r"/nope: not found \(no such file or directory\)"):
        read(str(tmp_path / "nope"))
    (tmp_path / "empty_ish").mkdir()
    (tmp_path / "empty_ish" / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="no N5 or Zarr metadata found"):
        read(str(tmp_path / "empty_ish"))


def test_bad_member_document_names_the_member(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "d.n5", levels=2)
    (root / "em" / "s1" / "attributes.json").write_bytes(b"\xff\xfe binary")
    with pytest.raises(UnsupportedFormatError) as info:
        read(str(root / "em"))
    assert str(info.value).startswith(f"{root}/em/s1/attributes.json: not UTF-8 text")


def test_errors_deep_in_the_tree_are_raised_as_themselves(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "d.n5", levels=2)
    (root / "em" / "s1" / "attributes.json").write_text("{broken")
    # read from the root: the bad document is two levels down, read in a task group
    with pytest.raises(UnsupportedFormatError) as info:
        read(str(root))
    assert str(info.value).startswith(f"{root}/em/s1/attributes.json: invalid JSON")


def test_plain_directories_inside_groups_are_not_members(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "d.n5", levels=1)
    (root / "em" / "thumbnails").mkdir()
    assert sorted(read(str(root / "em")).members) == ["s0"]


def test_generic_spec_errors_carry_the_url(tmp_path: Path) -> None:
    root = tmp_path / "bad.n5"
    write_json(root / "attributes.json", {**N5_ARRAY, "dimensions": ["x", 2, 3]})
    with pytest.raises(ValidationError) as info:
        read(str(root))
    assert info.value.url == str(root)
    assert any(loc.startswith("shape") for loc, _ in info.value.problems)


# ---- S3 (moto server) -------------------------------------------------------------------------
def test_n5_and_zarr3_on_s3(s3: Any, tmp_path: Path) -> None:
    make_n5(tmp_path / "jrc.n5")
    g = zarr.open_group(str(tmp_path / "v3"), mode="w", zarr_format=3)
    g.create_array("s0", shape=(4, 4), dtype="u1")
    s3.client().create_bucket(Bucket="cells")
    s3.upload_dir("cells", tmp_path / "jrc.n5", "ds/jrc.n5")
    s3.upload_dir("cells", tmp_path / "v3", "ds/v3")
    spec = read("s3://cells/ds/jrc.n5/em")
    assert sorted(spec.members) == ["s0", "s1", "s2"]
    assert spec.members["s2"].shape == (2, 5, 7)
    assert sorted(read("s3://cells/ds/v3").members) == ["s0"]
    with pytest.raises(NodeNotFoundError, match=r"^s3://cells/ds/missing: not found"):
        read("s3://cells/ds/missing")


def test_public_bucket_anonymously(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    make_n5(tmp_path / "pub.n5", levels=1)
    s3.public_bucket("open-data")
    s3.upload_dir("open-data", tmp_path / "pub.n5", "pub.n5")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert sorted(read("s3://open-data/pub.n5/em").members) == ["s0"]
    assert sorted(read("s3://open-data/pub.n5/em", storage_options={"anon": True}).members) == [
        "s0"
    ]


def test_private_bucket_without_credentials(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    make_n5(tmp_path / "p.n5", levels=1)
    s3.client().create_bucket(Bucket="private")
    s3.upload_dir("private", tmp_path / "p.n5", "p.n5")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError) as info:
        read("s3://private/p.n5/em")
    assert "s3://private/p.n5/em" in str(info.value)
    assert "\n" not in str(info.value)


# ---- models ----------------------------------------------------------------------------------
def test_depth_needed_follows_the_member_types() -> None:
    from cellmap_schemas.annotation import AnnotationArray, AnnotationGroup, CropGroup
    from cellmap_schemas.multiscale import cosem, neuroglancer_n5

    assert depth_needed(ArraySpec) == 0
    assert depth_needed(cosem.Array) == 0
    assert depth_needed(cosem.Group) == 1
    assert depth_needed(AnnotationArray) == 0
    assert depth_needed(AnnotationGroup) == 1
    # members may be any node, at any depth: the original read the whole hierarchy
    assert depth_needed(CropGroup) is None
    assert depth_needed(GroupSpec) is None
    assert depth_needed(neuroglancer_n5.Group) is None


def test_from_url_validates_and_sets_url(tmp_path: Path) -> None:
    from cellmap_schemas.multiscale import neuroglancer_n5

    root = make_n5(tmp_path / "d.n5", levels=1)
    arr = neuroglancer_n5.Array.from_url(str(root / "em" / "s0"))
    assert arr.attributes.pixelResolution.unit == "nm"
    with pytest.raises(ValidationError) as info:
        neuroglancer_n5.Group.from_url(str(root / "em"))
    assert info.value.url == str(root / "em")
    assert "attributes.scales" in {loc for loc, _ in info.value.problems}


def test_format_families_are_enforced(tmp_path: Path) -> None:
    from cellmap_schemas.multiscale import cosem

    v3 = zarr.open_group(str(tmp_path / "v3"), mode="w", zarr_format=3)
    with pytest.raises(ValidationError, match=r"is a Zarr v3 node; spec\.zarr_v2\.GroupSpec "):
        GroupSpec.from_url(str(tmp_path / "v3"))
    assert GroupSpecV3.from_url(str(tmp_path / "v3")) == GroupSpecV3.from_zarr(v3)
    zarr.open_group(str(tmp_path / "v2"), mode="w", zarr_format=2)
    cosem_n5_only = r"is a Zarr v2 node; multiscale\.cosem\.Group describes N5 nodes"
    with pytest.raises(ValidationError, match=cosem_n5_only):
        cosem.Group.from_url(str(tmp_path / "v2"))
    with pytest.raises(ValidationError, match=r"is a Zarr v2 node; spec\.zarr_v3\.GroupSpecV3 "):
        GroupSpecV3.from_url(str(tmp_path / "v2"))


def test_read_node_on_a_plain_directory(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_store(str(tmp_path)) as store:
            with pytest.raises(UnsupportedFormatError):
                await read_node(store, "")

    (tmp_path / "x.txt").write_text("x")
    anyio.run(main)


def test_blocking_api_refuses_a_running_loop() -> None:
    async def inner() -> None:
        return None

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"cellmap_schemas.asynchronous"):
            run_sync(inner)

    anyio.run(main)


def test_broken_consolidated_metadata_is_walked_instead(tmp_path: Path) -> None:
    """A read does what a scan does: a broken `.zmetadata` hides neither the group nor its
    members, which are walked instead of taken from the document."""
    path = tmp_path / "c.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_group("a").create_array("b", shape=(2,), dtype="u1")
    (path / ".zmetadata").write_text('{"metadata": [1, 2]}')  # `metadata` is no object
    with pytest.raises(UnsupportedFormatError, match="`metadata` must be a JSON object"):
        parse_node({".zgroup": b'{"zarr_format": 2}', ".zmetadata": b'{"metadata": [1]}'}, "/c")
    spec, _ = tree(str(path))
    assert spec["members"]["a"]["members"]["b"]["shape"] == [2]
    assert read(str(path)).members["a"].members["b"].shape == (2,)


def test_a_read_below_the_root_keeps_paths_relative_to_the_node(tmp_path: Path) -> None:
    root = make_n5(tmp_path / "d.n5", levels=2)
    (root / "em" / "s1" / "attributes.json").write_text("{broken")

    async def main() -> Any:
        async with open_store(str(root)) as store:
            return await read_tree(store, "em")

    node = anyio.run(main)
    assert sorted(node.spec["members"]) == ["s0"]
    assert list(node.errors) == ["s1"]
    assert isinstance(node.errors["s1"], UnsupportedFormatError)
