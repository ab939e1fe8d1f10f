"""Helpers shared by the scan tests: the hierarchy generator, small trees, scan runners."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from cellmap_schemas._scan import ScanReport, collect

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "cellmap-bucket"


def _load_generator() -> ModuleType:
    name = "generate_hierarchy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "generate_hierarchy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # msgspec resolves the truth Structs' annotations through it
    spec.loader.exec_module(mod)
    return mod


gh = _load_generator()


def run_scan(url: str, **kw: Any) -> ScanReport:
    """The async core, run to the end (what the blocking ``scan`` does)."""
    return anyio.run(lambda: collect(url, **kw), backend="asyncio")


def write(root: Path, files: Mapping[str, bytes | str | dict[str, Any]]) -> Path:
    """Write documents below ``root``: dicts as JSON, str as UTF-8, bytes as they are."""
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, dict):
            body = json.dumps(body)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
    return root


def by_path(report: ScanReport) -> dict[str, Any]:
    return {n.path: n for n in report.nodes}


@pytest.fixture
def example() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def cosem_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A generated bucket of COSEM N5 groups (some broken on purpose) and its truth."""
    out = tmp_path_factory.mktemp("cosem")
    truth = gh.generate(
        out, datasets=4, groups_per_dataset=15, levels="3-5", broken_fraction=0.3, seed=11
    )
    return out, truth


@pytest.fixture(scope="session")
def mixed_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """N5, Zarr v2 (OME-NGFF 0.4, crops) and Zarr v3 (OME-NGFF 0.5) containers per dataset."""
    out = tmp_path_factory.mktemp("mixed")
    truth = gh.generate(
        out,
        datasets=3,
        groups_per_dataset=6,
        levels="3-4",
        broken_fraction=0.3,
        seed=5,
        layout="mixed",
    )
    return out, truth


Runner = Callable[..., ScanReport]


# ---- a slow loopback HTTP server: a signal lands in the middle of the crawl -----------------
DELAY = 0.03
"""Seconds each request waits: with --concurrency 2 a scan of the tree takes a few seconds."""


class _Slow(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        time.sleep(DELAY)
        return super().send_head()


@pytest.fixture(scope="module")
def slow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A generated tree (2 datasets, 40% broken) on a loopback server answering in 30 ms."""
    root = tmp_path_factory.mktemp("slow")
    gh.generate(root, datasets=2, groups_per_dataset=5, levels="3-4", broken_fraction=0.4, seed=3)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Slow, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
