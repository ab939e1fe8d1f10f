"""The public API: package exports, sync/async twins, read/check behaviour, import weight."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import cellmap_schemas
from cellmap_schemas import asynchronous, synchronous
from cellmap_schemas.errors import NodeNotFoundError, UnsupportedFormatError, ValidationError
from cellmap_schemas.multiscale import cosem
from cellmap_schemas.spec.zarr_v2 import GroupSpec

TWINS = ["check", "inspect", "judge", "read", "scan"]


def write_n5_group(root: Path, *, broken_scale: bool = False) -> Path:
    """A COSEM multiscale group written as N5 documents from the model's own constructor."""
    import numpy as np

    from cellmap_schemas.n5_wrap import spec_to_n5_array, spec_to_n5_group

    data = np.zeros((8, 8), dtype="uint8")
    group = cosem.Group.from_arrays(
        arrays=[data, data[::2, ::2]],
        paths=["s0", "s1"],
        scales=[[4.0, 4.0], [8.0, 8.0]],
        axes=["y", "x"],
        units=["nm", "nm"],
    )
    (root / "raw").mkdir(parents=True)
    (root / "attributes.json").write_text(json.dumps({"n5": "2.0.0"}))
    attrs = spec_to_n5_group(group)
    (root / "raw" / "attributes.json").write_text(json.dumps(attrs))
    for name, member in group.members.items():
        doc = spec_to_n5_array(member)
        if broken_scale and name == "s1":
            doc["transform"]["scale"] = [9.0, 9.0]
        (root / "raw" / name).mkdir()
        (root / "raw" / name / "attributes.json").write_text(json.dumps(doc))
    return root / "raw"


def test_exports_are_sorted_and_importable() -> None:
    assert cellmap_schemas.__all__ == sorted(cellmap_schemas.__all__)
    for name in cellmap_schemas.__all__:
        value = getattr(cellmap_schemas, name)  # AttributeError if an export is missing
        assert name == "__version__" or getattr(value, "__name__", name) == name
    assert cellmap_schemas.read is synchronous.read
    assert cellmap_schemas.check is synchronous.check
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = cellmap_schemas.nope  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", TWINS)
def test_twins_share_signature_and_docs(name: str) -> None:
    sync_fn = getattr(synchronous, name)
    async_fn = getattr(asynchronous, name)
    assert inspect.iscoroutinefunction(async_fn)
    assert not inspect.iscoroutinefunction(sync_fn)
    assert inspect.signature(sync_fn) == inspect.signature(async_fn)

    def section(fn: object, title: str) -> str:
        doc = inspect.getdoc(fn) or ""
        match = re.search(rf"^{title}\n-+\n(.*?)(?=^\w+\n-+\n|\Z)", doc, re.M | re.S)
        assert match is not None, f"{name}: no {title} section"
        return match.group(1)

    for title in ("Parameters", "Returns", "Raises"):
        assert section(sync_fn, title) == section(async_fn, title)
    # the Dask scan is blocking only: its async side is a stream (open_distributed_scan)
    others = {"Inspection", "WorkerPool", "scan_distributed"}
    assert sorted(set(synchronous.__all__) - others) == sorted(TWINS)


def test_read_and_check_blocking(tmp_path: Path) -> None:
    raw = write_n5_group(tmp_path / "d.n5")
    spec = cellmap_schemas.read(str(raw))
    assert isinstance(spec, GroupSpec)
    assert sorted(spec.members) == ["s0", "s1"]
    by_name = cellmap_schemas.check(str(raw), "multiscale.cosem.Group")
    by_class = cellmap_schemas.check(str(raw), cosem.Group)
    assert isinstance(by_name, cosem.Group)
    assert by_name == by_class
    assert by_name == cosem.Group.from_url(str(raw))


def test_check_reports_every_problem_with_the_url(tmp_path: Path) -> None:
    raw = write_n5_group(tmp_path / "d.n5", broken_scale=True)
    with pytest.raises(ValidationError) as info:
        cellmap_schemas.check(str(raw), "multiscale.cosem.Group")
    assert info.value.url == str(raw)
    locs = [loc for loc, _ in info.value.problems]
    assert any(loc.startswith("members.s1") for loc in locs), locs


def test_async_calls_run_concurrently(tmp_path: Path) -> None:
    """Three checks in one task group overlap: a server that holds each request a while sees
    requests of different checks in flight at once."""
    import functools
    import threading
    import time
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    write_n5_group(tmp_path / "a.n5")
    write_n5_group(tmp_path / "b.n5", broken_scale=True)
    flying: dict[str, int] = {}  # requests in flight, by the call (top folder) they belong to
    most = [0]  # the most calls with a request in flight at once
    lock = threading.Lock()

    class Slow(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def send_head(self):  # type: ignore[no-untyped-def]
            call = self.path.strip("/").split("/")[0]
            with lock:
                flying[call] = flying.get(call, 0) + 1
                most[0] = max(most[0], sum(1 for n in flying.values() if n))
            time.sleep(0.2)
            with lock:
                flying[call] -= 1
            return super().send_head()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Slow, directory=tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    good, bad, missing = f"{base}/a.n5/raw", f"{base}/b.n5/raw", f"{base}/missing"
    results: dict[str, object] = {}

    async def one(url: str) -> None:
        try:
            results[url] = await asynchronous.check(url, "multiscale.cosem.Group")
        except (ValidationError, NodeNotFoundError, UnsupportedFormatError) as exc:
            results[url] = exc

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for url in (good, bad, missing):
                tg.start_soon(one, url)

    try:
        anyio.run(main)
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(results[good], cosem.Group)
    assert isinstance(results[bad], ValidationError)
    assert isinstance(results[missing], NodeNotFoundError | UnsupportedFormatError)
    assert most[0] >= 2  # requests of different calls were in flight at the same time


def test_async_read_depth(tmp_path: Path) -> None:
    raw = write_n5_group(tmp_path / "a.n5")
    top = anyio.run(lambda: asynchronous.read(str(tmp_path / "a.n5"), depth=1))
    assert top.members["raw"].members == {}
    full = anyio.run(lambda: asynchronous.read(str(tmp_path / "a.n5")))
    assert sorted(full.members["raw"].members) == ["s0", "s1"]
    assert anyio.run(lambda: asynchronous.read(str(raw), 0)).members == {}


def test_model_resolution_errors() -> None:
    from cellmap_schemas import UnknownModelError

    with pytest.raises(UnknownModelError) as info:
        synchronous.check("/nowhere", "multiscale.cosem.Grop")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith(
        "unknown model 'multiscale.cosem.Grop'; did you mean multiscale.cosem.Group or "
    )
    with pytest.raises(TypeError, match="expected a model class or name"):
        synchronous.check("/nowhere", dict)  # type: ignore[arg-type]
    assert asynchronous.resolve_model("multiscale.cosem.Array") is cosem.Array


def test_light_imports() -> None:
    """Models and the CLI module load no storage stack; `import cellmap_schemas` no I/O layer."""
    code = (
        "import sys, cellmap_schemas, cellmap_schemas.multiscale.cosem, cellmap_schemas.cli\n"
        "heavy = ['fsspec', 's3fs', 'zarr', 'tensorstore', 'aiobotocore', 'rich']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
