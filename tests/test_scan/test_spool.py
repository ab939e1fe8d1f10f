"""The json report's spool: records sorted in bounded memory give the document an in-memory
sort gives, byte for byte, however many runs they were spilled in."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import msgspec
import pytest

from cellmap_schemas._scan import _spool
from cellmap_schemas._scan._spool import Spool
from cellmap_schemas._scan.report import (
    JsonWriter,
    NodeResult,
    ScanReport,
    Summary,
    Tally,
)
from cellmap_schemas.validation import Finding, ModelResult

from .test_cli_scan import run

NAMES = ["a", "b", "s0", "s10", "é", "日本", "a b", "a/b", "z", "\udcff", "#%", "A"]


def _records(n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` records in a random order, some keys repeated (their order must hold)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4)))
        out.append(
            (key, f"{i}:".encode() + bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
        )
    return out


@pytest.mark.parametrize("budget", [1, 200, 5_000, 1 << 30])
def test_drain_is_a_stable_sort_by_key(budget: int) -> None:
    records = _records(3_000, seed=budget)
    spool = Spool(budget=budget)
    for key, payload in records:
        spool.add(key, payload)
    expected = [payload for _, payload in sorted(records, key=lambda r: r[0])]
    assert list(spool.drain()) == expected
    assert list(spool.drain()) == []  # drained: empty, its file gone


def test_records_larger_than_the_read_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spool, "READ_BUFFER", 64)
    spool = Spool(budget=1)
    big = [(f"k{i % 7}", bytes([i]) * (1000 + i)) for i in range(50)]
    for key, payload in big:
        spool.add(key, payload)
    assert list(spool.drain()) == [p for _, p in sorted(big, key=lambda r: r[0])]


def test_the_temporary_file_goes_where_asked_and_leaves_nothing(tmp_path: Path) -> None:
    spool = Spool(budget=1, directory=str(tmp_path))
    for key, payload in _records(100, seed=1):
        spool.add(key, payload)
    assert len(list(spool.drain())) == 100
    assert list(tmp_path.iterdir()) == []
    dropped = Spool(budget=1, directory=str(tmp_path))
    dropped.add("x", b"y")
    dropped.close()
    assert list(tmp_path.iterdir()) == []


def _nodes(n: int, seed: int) -> list[NodeResult]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        path = f"ds{rng.randrange(5)}/c{rng.randrange(30)}.n5/g{i}/s{rng.randrange(7)}"
        bad = rng.random() < 0.2
        finding = Finding("NG006", "error", "attributes.units[0]", f"'nm' differs at {i}")
        result = ModelResult(valid=not bad, errors=(finding,) if bad else ())
        status = "invalid" if bad else "valid"
        out.append(
            NodeResult(path=path, kind="array", format="n5", status=status,
                       results={"multiscale.cosem.Array": result})
        )  # fmt: skip
    return out


def _report(nodes: list[NodeResult], budget: int | None) -> tuple[bytes, Summary]:
    tally = Tally()
    out = io.BytesIO()
    writer = JsonWriter(out, budget=budget)
    for node in nodes:
        tally.add(node, node.path.split("/")[0])
        writer.node(node, node.path.split("/")[0])
    summary, datasets = tally.finish(elapsed_s=1.5, requests=7)
    writer.finish("/data", ["multiscale.cosem.Array"], summary, datasets)
    return out.getvalue(), summary


def test_a_spooled_report_is_the_in_memory_document_byte_for_byte() -> None:
    nodes = _nodes(5_000, seed=3)
    spooled, summary = _report(nodes, budget=20_000)  # some 40 runs
    in_memory, _ = _report(nodes, budget=1 << 30)
    assert spooled == in_memory
    # the document of the API's ScanReport: what the writer kept in memory before
    ordered = sorted(nodes, key=lambda n: n.path)
    assert spooled == ScanReport(summary=summary, nodes=ordered).to_json() + b"\n"
    doc = msgspec.json.decode(spooled, type=ScanReport)
    assert doc.summary.nodes == len(doc.nodes) == 5_000


def test_a_spooled_scan_report_has_every_node(
    cosem_tree: tuple[Path, object],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = cosem_tree
    rc, _, _ = run([str(root), "-o", str(tmp_path / "memory.json")], capsys)
    monkeypatch.setattr(_spool, "BUDGET", 2_000)  # a run every few nodes
    rc2, _, _ = run([str(root), "-o", str(tmp_path / "spooled.json")], capsys)
    rc3, _, _ = run([str(root), "-o", str(tmp_path / "streamed.ndjson")], capsys)
    assert rc == rc2 == rc3 == 1
    memory = json.loads((tmp_path / "memory.json").read_bytes())
    spooled = json.loads((tmp_path / "spooled.json").read_bytes())
    lines = [json.loads(line) for line in (tmp_path / "streamed.ndjson").read_text().splitlines()]
    assert len(spooled["nodes"]) == spooled["summary"]["nodes"] > 100
    assert spooled["nodes"] == memory["nodes"]
    assert spooled["nodes"] == sorted(lines[:-1], key=lambda n: n["path"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "memory.json", "spooled.json", "streamed.ndjson",
    ]  # fmt: skip
