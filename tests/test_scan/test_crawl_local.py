"""The crawler on local disk: counts against the generator's truth, request economy, and trees
built to break it (loops, huge and binary documents, consolidated metadata, odd layouts)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest

from cellmap_schemas._scan import NodeResult, open_scan
from cellmap_schemas._scan.report import ModelTally
from cellmap_schemas.errors import NodeNotFoundError, RootError, StoreError
from cellmap_schemas.io.store import Store, open_store
from cellmap_schemas.io.walk import Crawler
from cellmap_schemas.validation import Verdicts

from .conftest import by_path, run_scan, write

COSEM = "multiscale.cosem.Group"
NG = "multiscale.neuroglancer_n5.Group"


# ---- against the truth ------------------------------------------------------------------------
def test_counts_per_dataset_equal_the_truth(cosem_tree: tuple[Path, Any]) -> None:
    root, truth = cosem_tree
    report = run_scan(str(root))
    datasets = {d.name: d for d in report.datasets}
    assert set(datasets) == set(truth.datasets)
    for name, t in truth.datasets.items():
        d = datasets[name]
        assert d.nodes == t.nodes
        assert d.unreadable == t.unreadable
        nodes = [n for n in report.nodes if n.path.split("/")[0] == name]
        assert (
            Counter(n.kind for n in nodes)
            == Counter({"group": t.groups, "array": t.arrays, None: t.unreadable}) - Counter()
        )
        broken = {b.path for b in t.broken}
        assert d.conforms is (not broken and not t.unreadable)
    s = report.summary
    assert (s.nodes, s.groups, s.arrays) == (truth.nodes, truth.groups, truth.arrays)
    assert len(s.datasets) == len(truth.datasets)
    assert s.groups + s.arrays + s.unknown == s.nodes


def test_every_model_root_gets_the_truths_verdict(mixed_tree: tuple[Path, Any]) -> None:
    root, truth = mixed_tree
    nodes = by_path(run_scan(str(root)))
    checked = 0
    for t in truth.datasets.values():
        broken = {b.path for b in t.broken}
        for path, model in t.roots.items():
            node = nodes[path]
            assert model in node.results, (path, node.results)
            assert node.results[model].valid is (path not in broken), (path, node.results)
            assert node.status == ("invalid" if path in broken else "valid")
            checked += 1
    assert checked == truth.roots


def test_model_option_counts_equal_the_truth(mixed_tree: tuple[Path, Any]) -> None:
    root, truth = mixed_tree
    report = run_scan(str(root), models=[COSEM])
    judged = [n for n in report.nodes if COSEM in n.results]
    # every COSEM group of the truth is judged, with the truth's verdict
    cosem = [n for n in judged if n.format == "n5"]
    expected = sum(t.models[COSEM].valid + t.models[COSEM].invalid for t in truth.datasets.values())
    assert len(cosem) == expected
    assert sum(n.status == "invalid" for n in cosem) == sum(
        t.models[COSEM].invalid for t in truth.datasets.values()
    )
    # asked for by name, COSEM also judges the OME-NGFF images (they share `multiscales`): each
    # fails, first of all for its storage format
    others = [n for n in judged if n.format != "n5"]
    assert others and all(n.status == "invalid" for n in others)
    assert all(n.results[COSEM].errors[0].rule == "FMT001" for n in others)
    assert all(set(n.results) <= {COSEM} for n in report.nodes)


def test_the_example_bucket(example: Path) -> None:
    report = run_scan(str(example), models=[COSEM])
    datasets = {d.name: d for d in report.datasets}
    # the OME-NGFF images of the .zarr containers are not COSEM groups
    assert datasets["jrc_hela-2"].models[COSEM] == ModelTally(judged=7, valid=3, invalid=4)
    assert datasets["jrc_hela-2"].conforms is False
    assert datasets["jrc_macrophage-2"].conforms is False
    # OME-NGFF 0.5 keeps `multiscales` under `ome`: nothing there is judged, nothing conforms
    assert datasets["jrc_cos7-1a"].models == {} and datasets["jrc_cos7-1a"].conforms is False
    nodes = by_path(report)
    for path in ("em/fibsem-uint8", "labels/er_seg", "labels/mito_seg"):
        assert nodes[f"jrc_hela-2/jrc_hela-2.n5/{path}"].status == "valid"
    er = nodes["jrc_macrophage-2/jrc_macrophage-2.n5/labels/er_seg"]
    assert er.status == "invalid"
    # the unreadable level is reported once, as unreadable, not again as a missing level
    [error] = er.results[COSEM].errors
    assert (error.rule, error.loc) == ("MEM001", "members.s1")
    assert "member unreadable" in error.msg and "invalid JSON" in error.msg
    s1 = nodes["jrc_macrophage-2/jrc_macrophage-2.n5/labels/er_seg/s1"]
    assert s1.status == "unreadable" and s1.format == "n5" and "invalid JSON" in (s1.error or "")


# ---- request economy ---------------------------------------------------------------------------
class Recording(Store):
    """Delegates to a real store and records every key read and every directory listed."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.location)
        self.inner = inner
        self.read: list[str] = []
        self.listed: list[str] = []

    @property
    def requests(self) -> int:  # type: ignore[override]
        return self.inner.requests

    @requests.setter
    def requests(self, value: int) -> None:
        pass

    async def get(self, key: str) -> bytes | None:
        self.read.append(key)
        return await self.inner.get(key)

    async def get_many(self, keys: Iterable[str]) -> list[bytes | StoreError | None]:
        keys = list(keys)
        self.read.extend(keys)
        return await self.inner.get_many(keys)

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        self.listed.append(key)
        return await self.inner.list_dir(key)


async def _crawl(url: str, models: list[str] | None = None) -> tuple[Recording, list[NodeResult]]:
    async with open_store(url) as inner:
        store = Recording(inner)
        crawler = Crawler(store, Verdicts(models))
        send, receive = anyio.create_memory_object_stream[list[NodeResult]](1000)
        results: list[NodeResult] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(crawler.run, send)
            async with receive:
                async for batch in receive:
                    results.extend(batch)
    return store, results


def test_arrays_are_never_listed_and_chunks_never_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "c.n5/attributes.json": {"n5": "2.0.0"},
            "c.n5/raw/attributes.json": {
                "dimensions": [4, 4],
                "blockSize": [2, 2],
                "dataType": "uint8",
                "compression": {"type": "raw"},
            },
            "c.n5/raw/0/0": b"\x00" * 8,
            "c.n5/raw/0/1": b"\x00" * 8,
            "z.zarr/.zgroup": {"zarr_format": 2},
            "z.zarr/a/.zarray": {
                "zarr_format": 2,
                "shape": [4],
                "chunks": [2],
                "dtype": "|u1",
                "compressor": None,
                "fill_value": 0,
                "filters": None,
                "order": "C",
            },
            "z.zarr/a/0": b"\x00\x00",
            "z.zarr/a/1": b"\x00\x00",
            "v3.zarr/zarr.json": {"zarr_format": 3, "node_type": "group", "attributes": {}},
            "v3.zarr/b/zarr.json": {
                "zarr_format": 3,
                "node_type": "array",
                "shape": [4],
                "data_type": "uint8",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
                "chunk_key_encoding": {"name": "default"},
                "fill_value": 0,
                "codecs": [{"name": "bytes"}],
            },
            "v3.zarr/b/c/0": b"\x00\x00",
        },
    )
    store, results = anyio.run(_crawl, str(tmp_path))
    kinds = {r.path: r.kind for r in results}
    assert kinds == {
        "c.n5": "group",
        "c.n5/raw": "array",
        "z.zarr": "group",
        "z.zarr/a": "array",
        "v3.zarr": "group",
        "v3.zarr/b": "array",
    }
    arrays = [p for p, k in kinds.items() if k == "array"]
    assert not [key for key in store.listed if key in arrays]
    metadata = {"attributes.json", ".zarray", ".zattrs", ".zgroup", "zarr.json", ".zmetadata"}
    assert all(key.rsplit("/", 1)[-1] in metadata for key in store.read), store.read


def test_a_bare_array_outside_any_container_is_not_listed(tmp_path: Path) -> None:
    zarray = {"zarr_format": 2, "shape": [64], "chunks": [1], "dtype": "|u1", "order": "C",
              "compressor": None, "fill_value": 0, "filters": None}  # fmt: skip
    chunks = {f"data/raw/{i}": b"\x00" for i in range(64)}
    write(tmp_path, {"data/raw/.zarray": zarray, **chunks, "data/notes/readme.txt": "x"})
    store, results = anyio.run(_crawl, str(tmp_path))
    assert [(r.path, r.kind) for r in results] == [("data/raw", "array")]
    assert "data/raw" not in store.listed
    assert sorted(store.listed) == ["", "data", "data/notes"]


def test_n5_costs_one_read_per_node_and_one_listing_per_group(
    cosem_tree: tuple[Path, Any],
) -> None:
    root, truth = cosem_tree
    store, results = anyio.run(_crawl, str(root), [COSEM])
    assert len(results) == truth.nodes
    inside = [k for k in store.read if ".n5/" in k or k.endswith(".n5/attributes.json")]
    assert len(inside) == truth.nodes  # attributes.json of every node, nothing probed twice
    n5_listings = [k for k in store.listed if ".n5" in k]
    # every group, and every node whose document is broken (it may be a group holding nodes)
    unreadable = sum(n.status == "unreadable" for n in results)
    assert unreadable and len(n5_listings) == truth.groups + unreadable
    # outside the containers: the root and the dataset folders are listed, nothing else
    assert sorted(k for k in store.listed if ".n5" not in k) == sorted(["", *truth.datasets])


def test_zarr2_consolidated_metadata_replaces_listings(tmp_path: Path) -> None:
    attrs = {"multiscales": [{"version": "0.4"}]}
    zarray = {
        "zarr_format": 2,
        "shape": [4],
        "chunks": [2],
        "dtype": "<u2",
        "compressor": None,
        "fill_value": 0,
        "filters": None,
        "order": "C",
    }
    meta = {
        ".zgroup": {"zarr_format": 2},
        "g/.zgroup": {"zarr_format": 2},
        "g/.zattrs": attrs,
        "g/s0/.zarray": zarray,
        "g/s0/.zattrs": {},
        "h/deep/x/.zarray": zarray,  # an implicit group "h", then "deep"
    }
    write(
        tmp_path,
        {
            "c.zarr/.zgroup": {"zarr_format": 2},
            "c.zarr/.zmetadata": {"zarr_consolidated_format": 1, "metadata": meta},
            # on disk, but not in the consolidated document: not seen
            "c.zarr/unlisted/.zgroup": {"zarr_format": 2},
        },
    )
    store, results = anyio.run(_crawl, str(tmp_path / "c.zarr"))
    assert {r.path: r.kind for r in results} == {
        "": "group",
        "g": "group",
        "g/s0": "array",
        "h/deep/x": "array",
    }
    assert store.listed == []  # the root's probe found the document: it lists everything


def test_zarr3_consolidated_metadata_replaces_listings(tmp_path: Path) -> None:
    array = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": {},
    }
    root = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {},
        "consolidated_metadata": {
            "kind": "inline",
            "must_understand": False,
            "metadata": {
                "a": {"zarr_format": 3, "node_type": "group", "attributes": {}},
                "a/b": array,
                "../escape": array,
            },
        },
    }
    write(tmp_path, {"v3.zarr/zarr.json": root})
    store, results = anyio.run(_crawl, str(tmp_path / "v3.zarr"))
    found = {r.path: (r.kind, r.status) for r in results}
    assert found["a"] == ("group", "not_applicable")
    assert found["a/b"] == ("array", "not_applicable")
    assert found[".."][1] == "unreadable"  # an unsafe name in the document is reported
    assert store.listed == []  # the consolidated root is never listed
    assert len(store.read) == 6  # the root's probe; nothing below it is read


def test_broken_consolidated_document_falls_back_to_listing(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "c.zarr/.zgroup": {"zarr_format": 2},
            "c.zarr/.zmetadata": b"{not json",
            "c.zarr/g/.zgroup": {"zarr_format": 2},
        },
    )
    report = run_scan(str(tmp_path / "c.zarr"))
    assert {n.path: n.kind for n in report.nodes} == {"": "group", "g": "group"}


# ---- trees built to break a crawler ------------------------------------------------------------
def test_symlink_loops_do_not_hang_the_scan(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ds/c.n5/attributes.json": {"n5": "2.0.0"},
            "ds/c.n5/g/attributes.json": {},
        },
    )
    os.symlink("..", tmp_path / "ds/c.n5/g/up")  # g/up -> c.n5: a cycle
    os.symlink(tmp_path / "ds", tmp_path / "ds/c.n5/g/top")  # an absolute one, to an ancestor
    os.symlink("self", tmp_path / "ds/self")  # a link to itself (ELOOP)
    report = run_scan(str(tmp_path))
    assert sorted(n.path for n in report.nodes) == ["ds/c.n5", "ds/c.n5/g"]
    assert report.conforms


def test_documents_of_several_megabytes(tmp_path: Path) -> None:
    big = {"n5": "2.0.0", "notes": ["x" * 1000] * 6000}  # ~6 MB
    write(
        tmp_path,
        {
            "c.n5/attributes.json": big,
            "c.n5/g/attributes.json": {"padding": "y" * 4_000_000},
        },
    )
    assert (tmp_path / "c.n5/attributes.json").stat().st_size > 5_000_000
    report = run_scan(str(tmp_path))
    assert {n.path: n.status for n in report.nodes} == {
        "c.n5": "not_applicable",
        "c.n5/g": "not_applicable",
    }


def test_non_utf8_and_non_json_documents_are_unreadable(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "c.n5/attributes.json": {"n5": "2.0.0"},
            "c.n5/latin1/attributes.json": '{"unit": "µm"}'.encode("latin-1"),
            "c.n5/binary/attributes.json": b"\x89PNG\r\n\x1a\n\x00\x00",
            "c.n5/list/attributes.json": b"[1, 2]",
            "c.n5/ok/attributes.json": {"unit": "µm"},
        },
    )
    nodes = by_path(run_scan(str(tmp_path)))
    assert nodes["c.n5/latin1"].status == "unreadable"
    assert "not UTF-8" in (nodes["c.n5/latin1"].error or "")
    assert nodes["c.n5/binary"].status == "unreadable"
    assert "expected a JSON object" in (nodes["c.n5/list"].error or "")
    assert nodes["c.n5/ok"].status == "not_applicable"
    for path in ("c.n5/latin1", "c.n5/binary", "c.n5/list"):
        assert nodes[path].format == "n5" and nodes[path].results == {}


def test_unreadable_member_makes_its_group_invalid(example: Path) -> None:
    group = example / "jrc_macrophage-2/jrc_macrophage-2.n5/labels/er_seg"
    report = run_scan(str(group), models=[COSEM])
    nodes = by_path(report)
    assert nodes[""].status == "invalid"
    assert nodes["s1"].status == "unreadable"
    assert [d.name for d in report.datasets] == ["er_seg"]  # the root node is the dataset


def test_directories_without_metadata_are_crossed_not_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a/b/c/d.n5/attributes.json": {"n5": "2.0.0"},
            "a/notes.txt": "hello",
            # chunk-like folders below a container without metadata are not crawled
            "a/b/c/d.n5/orphan/0/0/0": b"\x00",
        },
    )
    report = run_scan(str(tmp_path))
    assert [n.path for n in report.nodes] == ["a/b/c/d.n5"]
    assert [d.name for d in report.datasets] == ["a"]


def test_root_that_is_one_array(example: Path) -> None:
    url = example / "jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/s0"
    report = run_scan(str(url))
    [node] = report.nodes
    assert (node.path, node.kind, node.status) == ("", "array", "valid")
    assert [d.name for d in report.datasets] == ["s0"]


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(NodeNotFoundError, match="not found"):
        run_scan(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NodeNotFoundError):
        run_scan(str(tmp_path / "empty"))


def test_unreadable_root_directory_raises(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads anything: use a root that is a file in place of a directory instead
        (tmp_path / "file").write_text("{}")
        with pytest.raises((NodeNotFoundError, StoreError)):
            run_scan(str(tmp_path / "file" / "below"))
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    try:
        with pytest.raises(RootError, match="access denied"):
            run_scan(str(locked))
    finally:
        locked.chmod(0o755)


def test_deep_nesting_is_reported_not_followed(tmp_path: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(70))
    write(tmp_path, {f"{deep}/attributes.json": {}})
    report = run_scan(str(tmp_path))
    [node] = report.nodes
    assert node.status == "unreadable" and "deeper than" in (node.error or "")


# ---- streaming ----------------------------------------------------------------------------------
def test_results_stream_and_an_early_exit_stops_the_crawl(cosem_tree: tuple[Path, Any]) -> None:
    root, truth = cosem_tree

    async def first_few() -> tuple[list[str], int]:
        async with open_scan(str(root), models=[COSEM]) as scan:
            seen = []
            async for node in scan:
                seen.append(node.path)
                if len(seen) == 3:
                    break
            return seen, scan.done

    seen, done = anyio.run(first_few)
    assert len(seen) == 3 and done == 3

    async def everything() -> tuple[int, int, int]:
        async with open_scan(str(root)) as scan:
            n = 0
            async for _ in scan:
                n += 1
            summary, _datasets = scan.finish()
            return n, summary.nodes, scan.found

    assert anyio.run(everything) == (truth.nodes, truth.nodes, truth.nodes)


def test_blocking_scan_matches_the_async_core(example: Path) -> None:
    from cellmap_schemas import scan

    report = scan(str(example), models=[COSEM])
    again = run_scan(str(example), models=[COSEM])
    assert [(n.path, n.status) for n in report.nodes] == [(n.path, n.status) for n in again.nodes]
    assert json.loads(report.to_json())["summary"]["nodes"] == len(report.nodes)


def test_documents_of_the_wrong_shape_never_crash_the_scan(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "c.n5/attributes.json": {"n5": "2.0.0"},
            "c.n5/a/attributes.json": {"dimensions": 5, "dataType": 3},
            "c.n5/b/attributes.json": {
                "dimensions": [1],
                "dataType": "uint8",
                "blockSize": "x",
                "compression": "raw",
            },
            "c.n5/e/attributes.json": {
                "axes": 5,
                "units": None,
                "scales": "x",
                "pixelResolution": [],
                "multiscales": {},
            },
            "c.n5/f/attributes.json": {"cellmap": {"annotation": 3}},
            "z.zarr/.zgroup": {"zarr_format": 2},
            "z.zarr/.zmetadata": {"metadata": []},  # unusable: the container is crawled
            "z.zarr/a/.zarray": {"shape": "x"},
            "z.zarr/c/.zgroup": {"zarr_format": 2},
            "z.zarr/c/.zattrs": b"[1, 2]",
            "v3.zarr/zarr.json": {"zarr_format": 3, "node_type": "group", "attributes": []},
            "v3.zarr/a/zarr.json": {"zarr_format": 3, "node_type": "array"},
            "v3.zarr/c/zarr.json": {
                "zarr_format": 3,
                "node_type": "group",
                "consolidated_metadata": {"metadata": {"x": 5}},
            },
            "v3.zarr/d/zarr.json": {"zarr_format": 3, "node_type": "bucket"},
            "arr.zarr/.zarray": {"shape": [1]},
            "arr.zarr/.zgroup": {"zarr_format": 2},
        },
    )
    report = run_scan(str(tmp_path))
    nodes = by_path(report)
    assert set(nodes) == {
        "c.n5", "c.n5/a", "c.n5/b", "c.n5/e", "c.n5/f", "z.zarr", "z.zarr/a", "z.zarr/c",
        "v3.zarr", "v3.zarr/a", "v3.zarr/c", "v3.zarr/d", "arr.zarr",
    }  # fmt: skip
    assert not any("internal error" in (n.error or "") for n in report.nodes)
    assert nodes["c.n5/e"].status == "invalid"
    # `multiscales` is no list: no COSEM marker; the Neuroglancer keys make it judged as such
    assert set(nodes["c.n5/e"].results) == {NG}
    assert nodes["c.n5/e"].results[NG].errors[0].loc == "attributes.axes"
    unreadable = {p for p, n in nodes.items() if n.status == "unreadable"}
    # v3.zarr/c: a bad consolidated entry falls back to crawling, as a bad .zmetadata does
    assert unreadable == {"z.zarr/c", "v3.zarr/d", "arr.zarr"}
    assert "holds both .zarray and .zgroup" in (nodes["arr.zarr"].error or "")
    assert all(n.error for p, n in nodes.items() if p in unreadable)


def test_repeated_array_documents_get_the_verdicts_their_documents_deserve(
    tmp_path: Path,
) -> None:
    """Label arrays repeat their image's documents byte for byte; a scan parses and judges
    each distinct document once, and every repeat must still get its own record with the
    verdicts a unique copy of the same document gets (here: one with an extra key)."""
    good = {
        "dimensions": [64, 64, 64],
        "blockSize": [32, 32, 32],
        "dataType": "uint8",
        "compression": {"type": "raw"},
        "pixelResolution": {"dimensions": [4.0, 4.0, 4.0], "unit": "nm"},
        "transform": {"axes": ["z", "y", "x"], "scale": [4.0, 4.0, 4.0],
                      "translate": [0.0, 0.0, 0.0], "units": ["nm", "nm", "nm"]},
    }  # fmt: skip
    bad = {**good, "transform": {**good["transform"], "scale": [4.0, -1.0]}}

    def tree(root: Path, unique: bool) -> Path:
        files: dict[str, Any] = {"c.n5/attributes.json": {"n5": "2.0.0"}}
        for i in range(6):
            for name, doc in (("good", good), ("bad", bad)):
                extra = {"note": f"copy {i}"} if unique else {}
                files[f"c.n5/{name}{i}/s0/attributes.json"] = {**doc, **extra}
                files[f"c.n5/{name}{i}/attributes.json"] = {"n5": "2.0.0"}
        return write(root, files)

    repeated = by_path(run_scan(str(tree(tmp_path / "repeated", unique=False))))
    unique = by_path(run_scan(str(tree(tmp_path / "unique", unique=True))))
    assert set(repeated) == set(unique)
    arrays = [p for p, n in repeated.items() if n.kind == "array"]
    assert len(arrays) == 12
    for path in arrays:
        assert repeated[path].status == unique[path].status, path
        assert repeated[path].results == unique[path].results, path
    assert {repeated[p].status for p in arrays if "/bad" in f"/{p}"} == {"invalid"}
    assert {repeated[p].status for p in arrays if "/good" in f"/{p}"} == {"valid"}
