"""Hierarchies built to break the readers and writers: each class of problem is reproduced with
real files, FIFOs, device nodes, symlinks and concurrent writers, and its exact outcome checked
(counts equal to the truth, bounded time, one-line messages naming the URL once)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from cellmap_schemas._scan import NodeResult
from cellmap_schemas.errors import NodeExistsError, StoreError, UnsupportedFormatError
from cellmap_schemas.formats import decode_document, parse_node
from cellmap_schemas.io import read as read_module
from cellmap_schemas.io.read import read_tree
from cellmap_schemas.io.store import NotFollowedError, open_store
from cellmap_schemas.io.walk import MAX_DEPTH, Crawler
from cellmap_schemas.spec.zarr_v2 import ArraySpec
from cellmap_schemas.validation import Verdicts

N5_ARRAY = {
    "dimensions": [4],
    "blockSize": [2],
    "dataType": "uint8",
    "compression": {"type": "raw"},
}


def write(root: Path, files: dict[str, Any]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())


def crawl(url: str | Path, *, follow_symlinks: bool = False) -> dict[str, NodeResult]:
    """Every node result of a scan of ``url``, by path (the crawler on a store opened as asked)."""

    async def main() -> dict[str, NodeResult]:
        async with open_store(str(url), follow_symlinks=follow_symlinks, timeout=20) as store:
            crawler = Crawler(store, Verdicts(None))
            send, receive = anyio.create_memory_object_stream[list[NodeResult]](10_000)
            out: dict[str, NodeResult] = {}
            async with anyio.create_task_group() as tg:
                tg.start_soon(crawler.run, send)
                async with receive:
                    async for batch in receive:
                        for result in batch:
                            assert result.path not in out, result.path
                            out[result.path] = result
            return out

    return anyio.run(main, backend="asyncio")


def timed(func: Callable[[], Any], limit: float) -> Any:
    start = time.monotonic()
    result = func()
    assert time.monotonic() - start < limit
    return result


def unreadable(nodes: dict[str, NodeResult]) -> dict[str, str | None]:
    return {p: n.error for p, n in nodes.items() if n.status == "unreadable"}


# ---- 1. a failing listing costs only its own directory ----------------------------------------
def _too_long_chain(base: Path, name_length: int = 200) -> tuple[list[str], str]:
    """N5 groups nested below ``base`` until a group's ``attributes.json`` path exceeds
    PATH_MAX; created relative to directory descriptors. Returns (readable group paths
    relative to ``base``, the first group whose document cannot be reached)."""
    name = "n" * name_length
    readable: list[str] = []
    fd = os.open(base, os.O_RDONLY)
    rel = ""
    try:
        while True:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
            rel = f"{rel}/{name}" if rel else name
            doc = os.open("attributes.json", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
            os.write(doc, b"{}")
            os.close(doc)
            if len(f"{base}/{rel}/attributes.json") >= 4096:
                return readable, rel
            readable.append(rel)
    finally:
        os.close(fd)


def test_one_failing_directory_in_a_batch_costs_only_itself(tmp_path: Path) -> None:
    root = tmp_path / "c.n5"
    write(root, {"attributes.json": {"n5": "2.0.0"}})
    for i in range(30):
        write(root, {f"g{i:02d}/attributes.json": {}, f"g{i:02d}/a/attributes.json": N5_ARRAY})
    # g05: a chain of 1,500 links, which Python's realpath resolves by recursion (the kernel
    # gives up after 40): before, its RecursionError made every directory of the batch unreadable
    chain = root / "g05" / "chain"
    chain.mkdir()
    for i in range(1500):
        os.symlink(f"l{i + 1}", chain / f"l{i}")
    os.symlink(".", chain / "l1500")
    # g07: groups nested until a path is longer than the kernel takes (ENAMETOOLONG)
    readable, too_long = _too_long_chain(root / "g07")

    nodes = timed(lambda: crawl(root), 30)
    assert unreadable(nodes) == {
        f"g07/{too_long}": f"{root}/g07/{too_long}/attributes.json: File name too long"
    }
    kinds = Counter(n.kind for p, n in nodes.items() if p != f"g07/{too_long}")
    assert kinds == {"group": 1 + 30 + len(readable), "array": 30}
    assert {f"g{i:02d}/a" for i in range(30)} <= set(nodes)


def test_listing_failing_after_the_directory_opened_is_its_own_error() -> None:
    """``/proc/1/map_files`` opens, then refuses to be read (EPERM): a real mid-listing error."""
    try:
        with os.scandir("/proc/1/map_files") as it:
            list(it)
        pytest.skip("/proc/1/map_files is readable here")
    except PermissionError:
        pass
    except OSError:
        pytest.skip("no /proc/1/map_files")

    async def main() -> list[object]:
        async with open_store("/proc/1") as store:
            return await store.list_many(["task", "map_files", "net", "attr"])

    results = timed(lambda: anyio.run(main), 10)
    failed = results[1]
    assert isinstance(failed, StoreError)
    assert str(failed) == "/proc/1/map_files: access denied (Permission denied)"
    for other in (results[0], results[2], results[3]):
        assert isinstance(other, tuple) and (other[0] or other[1])


def test_unforeseen_failure_of_one_path_is_that_paths_error(tmp_path: Path) -> None:
    """A key that cannot even be encoded (a lone surrogate from a JSON document) fails alone."""
    write(tmp_path, {"a/attributes.json": {}, "b/attributes.json": {}})

    async def main() -> tuple[list[object], list[object]]:
        async with open_store(tmp_path) as store:
            keys = ["a/attributes.json", "\ud800/attributes.json", "b/attributes.json"]
            return await store.get_many(keys), await store.list_many(["a", "\ud800", "b"])

    reads, listings = anyio.run(main)
    assert reads[0] == reads[2] == b"{}"
    assert listings[0] == listings[2] == ([], ["attributes.json"])
    for failed in (reads[1], listings[1]):
        assert isinstance(failed, StoreError)
        assert "UnicodeEncodeError" in str(failed) and "\n" not in str(failed)


# ---- 2. symlinks out of the root --------------------------------------------------------------
@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside, {"c.n5/attributes.json": {"n5": "2.0.0"}, "c.n5/s0/attributes.json": N5_ARRAY})
    write(outside, {"secret.json": {"n5": "2.0.0"}})
    write(root, {"c.n5/attributes.json": {"n5": "2.0.0"}, "c.n5/g/attributes.json": {}})
    write(root, {"c.n5/g/s0/attributes.json": N5_ARRAY})
    os.symlink(outside / "c.n5", root / "c.n5" / "out")  # out of the root, in an N5 context
    os.symlink(outside, root / "away")  # out of the root, above any node
    os.symlink("/proc", root / "c.n5" / "proc")
    os.symlink("g", root / "c.n5" / "alias")  # inside: followed
    (root / "leak").mkdir()
    os.symlink(outside / "secret.json", root / "leak" / "attributes.json")
    return root, outside


def _refusal(root: Path, link: str, target: Path | str) -> str:
    return (
        f"{root}/{link}: symlink to {target} outside the scanned root: "
        "not followed (use --follow-symlinks)"
    )


def test_links_out_of_the_root_are_reported_not_followed(linked: tuple[Path, Path]) -> None:
    root, outside = linked
    nodes = timed(lambda: crawl(root), 10)
    assert unreadable(nodes) == {
        "c.n5/out": _refusal(root, "c.n5/out", outside / "c.n5"),
        "away": _refusal(root, "away", outside),
        "c.n5/proc": _refusal(root, "c.n5/proc", "/proc"),
        "leak": _refusal(root, "leak/attributes.json", outside / "secret.json"),
    }
    readable = {p: n.kind for p, n in nodes.items() if n.status != "unreadable"}
    assert readable == {
        "c.n5": "group",
        "c.n5/g": "group",
        "c.n5/g/s0": "array",
        "c.n5/alias": "group",
        "c.n5/alias/s0": "array",
    }


def test_follow_symlinks_follows_them_but_never_into_proc(linked: tuple[Path, Path]) -> None:
    root, _ = linked
    nodes = timed(lambda: crawl(root, follow_symlinks=True), 10)
    assert unreadable(nodes) == {
        "c.n5/proc": f"{root}/c.n5/proc: symlink to /proc on a pseudo filesystem: not followed"
    }
    assert nodes["c.n5/out/s0"].kind == "array"
    assert nodes["away/c.n5/s0"].kind == "array"
    assert nodes["leak"].kind == "group"


def test_read_tree_names_the_link_it_did_not_follow(linked: tuple[Path, Path]) -> None:
    root, outside = linked

    async def main() -> Any:
        async with open_store(root / "c.n5") as store:
            return await read_tree(store)

    node = anyio.run(main)
    assert set(node.spec["members"]) == {"alias", "g"}
    # `proc` holds no metadata document: no node to report (a missing key is never resolved)
    assert set(node.errors) == {"out"}
    assert isinstance(node.errors["out"], NotFollowedError)
    assert node.failures["out"] == _refusal(root, "c.n5/out", outside / "c.n5")


def test_reads_through_a_link_out_are_refused_however_deep(linked: tuple[Path, Path]) -> None:
    """A key read directly (no listing before it) is refused as well, naming the link."""
    root, outside = linked

    async def main() -> list[object]:
        async with open_store(root) as store:
            keys = ["c.n5/out/s0/attributes.json", "away/c.n5/attributes.json"]
            keys += ["c.n5/alias/s0/attributes.json", "c.n5/g/s0/attributes.json"]
            first = await store.get_many(keys)
            return [*first, *(await store.get_many(keys))]  # the second time from the cache

    results = anyio.run(main)
    for i in (0, 4):
        assert str(results[i]) == _refusal(root, "c.n5/out", outside / "c.n5")
        assert str(results[i + 1]) == _refusal(root, "away", outside)
        assert results[i + 2] == results[i + 3] == json.dumps(N5_ARRAY).encode()


# ---- 3. special files named like metadata -----------------------------------------------------
def _device(path: Path) -> bool:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
    except (PermissionError, OSError):
        return False
    return True


def test_special_metadata_files_make_their_node_unreadable(tmp_path: Path) -> None:
    write(tmp_path, {"c.zarr/.zgroup": {"zarr_format": 2}, "plain/ok/attributes.json": {}})
    for d in ("c.zarr/fifo", "c.zarr/dev", "plain/fifo", "c.n5", "c.n5/fifo"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "c.n5/attributes.json").write_bytes(b'{"n5": "2.0.0"}')
    os.mkfifo(tmp_path / "c.zarr/fifo/.zgroup")
    os.mkfifo(tmp_path / "plain/fifo/attributes.json")  # above any node: was silently missed
    os.mkfifo(tmp_path / "c.n5/fifo/attributes.json")
    expected = {
        "c.zarr/fifo": f"{tmp_path}/c.zarr/fifo/.zgroup: not a regular file (a FIFO)",
        "plain/fifo": f"{tmp_path}/plain/fifo/attributes.json: not a regular file (a FIFO)",
        "c.n5/fifo": f"{tmp_path}/c.n5/fifo/attributes.json: not a regular file (a FIFO)",
    }
    if _device(tmp_path / "c.zarr/dev/.zgroup"):
        expected["c.zarr/dev"] = (
            f"{tmp_path}/c.zarr/dev/.zgroup: not a regular file (a character device)"
        )
    else:
        os.rmdir(tmp_path / "c.zarr/dev")
    nodes = timed(lambda: crawl(tmp_path), 10)
    assert unreadable(nodes) == expected
    assert {p for p, n in nodes.items() if n.status != "unreadable"} == {
        "c.zarr",
        "c.n5",
        "plain/ok",
    }
    for message in expected.values():
        assert message.count(str(tmp_path)) == 1, message


def test_fifo_through_fsspec_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".zgroup")

    async def main() -> None:
        async with open_store(tmp_path, storage_options={"auto_mkdir": False}, timeout=5) as s:
            await s.get(".zgroup")

    with pytest.raises(StoreError) as info:
        timed(lambda: anyio.run(main), 5)
    assert str(info.value) == f"{tmp_path}/.zgroup: not a regular file"


# ---- 4. depth limits --------------------------------------------------------------------------
def test_json_nested_100000_deep_is_a_one_line_format_error(tmp_path: Path) -> None:
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    write(tmp_path, {"c.n5/attributes.json": {"n5": "2.0.0"}, "c.n5/d/attributes.json": deep})
    message = f"{tmp_path}/c.n5/d/attributes.json: JSON nested too deeply (more than 256 levels)"
    nodes = timed(lambda: crawl(tmp_path / "c.n5"), 10)
    assert unreadable(nodes) == {"d": message}
    with pytest.raises(UnsupportedFormatError) as info:
        decode_document(deep, f"{tmp_path}/c.n5/d", "attributes.json")
    assert str(info.value) == message
    # deep, but not as deep as the decoder's recursion: the limit holds all the same
    medium = b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}"
    with pytest.raises(UnsupportedFormatError, match="JSON nested too deeply"):
        decode_document(medium, "x", "zarr.json")
    assert decode_document(b'{"a": ' + b"[" * 250 + b"]" * 250 + b"}", "x", "zarr.json")


def _nested_groups(root: Path, levels: int) -> list[str]:
    paths = [""]
    write(root, {".zgroup": {"zarr_format": 2}})
    rel = ""
    for _ in range(levels):
        rel = f"{rel}/g" if rel else "g"
        write(root, {f"{rel}/.zgroup": {"zarr_format": 2}})
        paths.append(rel)
    return paths


def test_nesting_deeper_than_the_limit_is_reported_by_every_reader(tmp_path: Path) -> None:
    assert read_module.MAX_DEPTH == MAX_DEPTH == 64
    root = tmp_path / "nest.zarr"
    paths = _nested_groups(root, 150)
    cut = paths[MAX_DEPTH]
    message = f"{root}/{cut}: nested deeper than 64 levels; not followed"

    nodes = timed(lambda: crawl(root), 20)
    assert set(nodes) == set(paths[: MAX_DEPTH + 1])
    assert unreadable(nodes) == {cut: message}

    async def main() -> Any:
        async with open_store(root) as store:
            return await read_tree(store)

    tree = timed(lambda: anyio.run(main), 20)
    assert tree.failures == {cut: message}
    spec, levels = tree.spec, 0
    while spec["members"]:
        spec, levels = spec["members"]["g"], levels + 1
    assert levels == MAX_DEPTH - 1


# ---- 5. a bad entry of Zarr v3 consolidated metadata ------------------------------------------
def test_bad_consolidated_v3_entry_is_named_and_the_group_crawled(tmp_path: Path) -> None:
    root = tmp_path / "v3.zarr"
    array = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
    }
    group = {
        "zarr_format": 3,
        "node_type": "group",
        "consolidated_metadata": {
            "kind": "inline",
            "must_understand": False,
            "metadata": {"a": array, "x": {"zarr_format": 3, "node_type": "bucket"}},
        },
    }
    write(root, {"zarr.json": group, "a/zarr.json": array, "b/zarr.json": array})
    with pytest.raises(UnsupportedFormatError) as info:
        parse_node({"zarr.json": (root / "zarr.json").read_bytes()}, str(root))
    assert str(info.value) == (
        f"{root}/zarr.json: consolidated_metadata entry 'x': node_type must be 'array' or "
        "'group', got 'bucket'"
    )
    assert "x/zarr.json" not in str(info.value)
    nodes = timed(lambda: crawl(root), 10)
    assert {p: (n.kind, n.status) for p, n in nodes.items()} == {
        "": ("group", "not_applicable"),
        "a": ("array", "not_applicable"),
        "b": ("array", "not_applicable"),  # listed: not in the consolidated document
    }


# ---- 6. writes onto leftovers, concurrent writers ---------------------------------------------
def _spec() -> ArraySpec[Any]:
    return ArraySpec.from_array(np.zeros((4, 6), dtype="uint8"), chunks=(2, 3))


def _leftover(container: Path) -> list[Path]:
    """An array written with 7s whose metadata was then removed: its chunks remain."""
    handle = _spec().to_zarr(str(container), "raw")
    handle[:] = np.full((4, 6), 7, dtype="uint8")
    for name in ("attributes.json", ".zarray", ".zattrs"):
        (container / "raw" / name).unlink(missing_ok=True)
    chunks = sorted(p for p in (container / "raw").rglob("*") if p.is_file())
    assert chunks
    return chunks


@pytest.mark.parametrize("name", ["data.zarr", "data.n5"])
def test_array_onto_leftover_chunks_is_refused(tmp_path: Path, name: str) -> None:
    container = tmp_path / name
    chunks = _leftover(container)
    before = {p: p.read_bytes() for p in chunks}
    with pytest.raises(NodeExistsError) as info:
        _spec().to_zarr(str(container), "raw")
    first = chunks[0].relative_to(container)
    assert str(info.value) == (
        f"{container}: node 'raw' is not empty ({first} exists, without metadata); "
        "pass overwrite=True to replace it"
    )
    assert {p: p.read_bytes() for p in chunks} == before  # nothing replaced


@pytest.mark.parametrize("name", ["data.zarr", "data.n5"])
def test_overwrite_deletes_leftover_chunks_first(tmp_path: Path, name: str) -> None:
    container = tmp_path / name
    chunks = _leftover(container)
    handle = _spec().to_zarr(str(container), "raw", overwrite=True)
    assert not any(p.exists() for p in chunks)
    np.testing.assert_array_equal(np.asarray(handle), np.zeros((4, 6), dtype="uint8"))


def test_concurrent_writers_in_threads_exactly_one_wins(tmp_path: Path) -> None:
    for trial in range(15):
        container = tmp_path / f"t{trial}.zarr"
        barrier = threading.Barrier(6)
        outcomes: list[str] = []

        def writer(
            container: Path = container,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                _spec().to_zarr(str(container), "raw")
                outcomes.append("ok")
            except NodeExistsError as exc:
                assert str(exc).startswith(f"{container}: node 'raw' ")
                outcomes.append("exists")

        threads = [threading.Thread(target=writer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["exists"] * 5 + ["ok"], (trial, outcomes)


_WRITER = """
import os, sys, time
import numpy as np
from cellmap_schemas.errors import NodeExistsError
from cellmap_schemas.spec.zarr_v2 import ArraySpec
container, go = sys.argv[1], sys.argv[2]
spec = ArraySpec.from_array(np.zeros((4, 6), dtype="uint8"), chunks=(2, 3))
while not os.path.exists(go):
    time.sleep(0.001)
try:
    spec.to_zarr(container, "raw")
    print("ok")
except NodeExistsError:
    print("exists")
"""


@pytest.mark.parametrize("name", ["data.zarr", "data.n5"])
def test_concurrent_writers_in_processes_exactly_one_wins(tmp_path: Path, name: str) -> None:
    for trial in range(3):
        container = tmp_path / str(trial) / name
        go = tmp_path / f"go{trial}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(container), str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        time.sleep(1.5)  # every interpreter imported and waiting
        go.touch()
        outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert outcomes == ["exists", "exists", "exists", "ok"], (trial, outcomes)


@pytest.mark.parametrize("document", [".zarray", ".zattrs"])
def test_write_onto_a_fifo_named_like_metadata_fails_at_once(tmp_path: Path, document: str) -> None:
    """tensorstore's file driver would block for ever opening the FIFO: refused before."""
    container = tmp_path / "data.zarr"
    (container / "raw").mkdir(parents=True)
    os.mkfifo(container / "raw" / document)
    for overwrite in (False, True):
        with pytest.raises(StoreError) as info:
            timed(lambda o=overwrite: _spec().to_zarr(str(container), "raw", overwrite=o), 10)
        assert str(info.value) == f"{container}/raw/{document}: not a regular file"
    assert stat.S_ISFIFO(os.lstat(container / "raw" / document).st_mode)  # nothing replaced
