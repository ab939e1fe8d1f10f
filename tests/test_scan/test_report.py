"""Report formats (json shape, ndjson, csv, table), exit codes and the atomic output file."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cellmap_schemas._scan.report import (
    CSV_COLUMNS,
    DatasetSummary,
    NodeResult,
    Summary,
    Tally,
    atomic_output,
    exit_code,
    make_writer,
)
from cellmap_schemas.validation import Finding, ModelResult

from .conftest import run_scan

COSEM = "multiscale.cosem.Group"

NODES = [
    NodeResult(path="ds1/c.n5", kind="group", format="n5", status="not_applicable"),
    NodeResult(
        path="ds1/c.n5/em",
        kind="group",
        format="n5",
        status="invalid",
        results={
            COSEM: ModelResult(
                valid=False,
                errors=(
                    Finding("NG006", "error", "attributes.units[0]", "'nm' differs"),
                    Finding("COSEM001", "error", "", "bad"),
                ),
                warnings=(Finding("OME008", "warning", "attributes.x", "a SHOULD"),),
            )
        },
    ),
    NodeResult(
        path="ds1/c.n5/em/s0",
        kind="array",
        format="n5",
        status="valid",
        results={"multiscale.cosem.Array": ModelResult(valid=True)},
    ),
    NodeResult(
        path="ds2/x.zarr/a",
        kind=None,
        format="zarr3",
        status="unreadable",
        error="s3://b/ds2/x.zarr/a/zarr.json: access denied (403)",
    ),
]


def _tallied() -> tuple[Summary, list[DatasetSummary]]:
    tally = Tally()
    for node in NODES:
        tally.add(node, node.path.split("/")[0])
    return tally.finish(elapsed_s=1.23456, requests=42)


def _render(fmt: str) -> bytes:
    out = io.BytesIO()
    writer = make_writer(fmt, out)  # type: ignore[arg-type]
    for node in reversed(NODES):
        writer.node(node, node.path.split("/")[0])
    summary, datasets = _tallied()
    writer.finish("s3://b", [COSEM], summary, datasets)
    return out.getvalue()


def test_tally_counts_per_dataset_and_verdicts() -> None:
    summary, datasets = _tallied()
    assert msgspec.to_builtins(summary) == {
        "nodes": 4,
        "groups": 2,
        "arrays": 1,
        "valid": 1,
        "invalid": 1,
        "unreadable": 1,
        "warnings": 1,
        "datasets": 2,
        "elapsed_s": 1.235,
        "requests": 42,
    }
    tally = {"judged": 1, "valid": 0, "invalid": 1, "warnings": 1}
    assert msgspec.to_builtins(datasets) == [
        {
            "name": "ds1", "nodes": 3, "valid": 1, "invalid": 1, "unreadable": 0, "warnings": 1,
            "conforms": False,
            "models": {
                COSEM: tally,
                "multiscale.cosem.Array": {"judged": 1, "valid": 1, "invalid": 0, "warnings": 0},
            },
        },
        # nothing judged: does not conform, whatever its unreadable count
        {
            "name": "ds2", "nodes": 1, "valid": 0, "invalid": 0, "unreadable": 1, "warnings": 0,
            "conforms": False, "models": {},
        },
    ]  # fmt: skip


def test_a_dataset_conforms_only_when_something_was_judged() -> None:
    tally = Tally()
    tally.add(NODES[0], "plain")  # not_applicable only
    tally.add(NODES[2], "good")  # one valid node
    _, datasets = tally.finish(elapsed_s=0.0, requests=0)
    assert [(d.name, d.conforms) for d in datasets] == [("good", True), ("plain", False)]


def test_json_document_has_exactly_the_documented_shape() -> None:
    doc = json.loads(_render("json"))
    assert list(doc) == ["root", "models", "summary", "datasets", "nodes"]
    assert doc["root"] == "s3://b" and doc["models"] == [COSEM]
    assert list(doc["summary"]) == [
        "nodes", "groups", "arrays", "valid", "invalid", "unreadable", "warnings", "datasets",
        "elapsed_s", "requests",
    ]  # fmt: skip
    assert list(doc["datasets"][0]) == ["name", "nodes", "valid", "invalid", "unreadable",
                                        "warnings", "conforms", "models"]  # fmt: skip
    assert [n["path"] for n in doc["nodes"]] == sorted(n.path for n in NODES)
    for node in doc["nodes"]:
        assert list(node) == ["path", "kind", "format", "status", "results", "error"]
    em = doc["nodes"][1]
    assert em["results"] == {
        COSEM: {
            "valid": False,
            "errors": [
                {"rule": "NG006", "severity": "error", "loc": "attributes.units[0]",
                 "msg": "'nm' differs"},
                {"rule": "COSEM001", "severity": "error", "loc": "", "msg": "bad"},
            ],
            "warnings": [
                {"rule": "OME008", "severity": "warning", "loc": "attributes.x", "msg": "a SHOULD"}
            ],
        }
    }  # fmt: skip
    assert em["error"] is None
    assert doc["nodes"][3]["kind"] is None and doc["nodes"][3]["error"].endswith("(403)")


def test_ndjson_streams_nodes_then_the_summary_line() -> None:
    lines = _render("ndjson").decode().splitlines()
    assert len(lines) == len(NODES) + 1
    nodes = [json.loads(line) for line in lines[:-1]]
    assert [n["path"] for n in nodes] == [n.path for n in reversed(NODES)]  # arrival order
    assert all(list(n) == ["path", "kind", "format", "status", "results", "error"] for n in nodes)
    last = json.loads(lines[-1])
    assert list(last) == ["summary", "datasets"]
    assert last["summary"]["nodes"] == 4 and len(last["datasets"]) == 2


def test_csv_has_one_row_per_node_and_model() -> None:
    rows = list(csv.reader(io.StringIO(_render("csv").decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = {(r[0], r[4]): r for r in rows[1:]}
    assert len(rows) - 1 == 4
    em = body[("ds1/c.n5/em", COSEM)]
    assert em[:6] == ["ds1/c.n5/em", "group", "n5", "invalid", COSEM, "false"]
    assert em[6] == "NG006 attributes.units[0]: 'nm' differs; COSEM001 bad"
    assert em[7] == "OME008 attributes.x: a SHOULD"
    assert body[("ds1/c.n5", "")][3:6] == ["not_applicable", "", ""]
    unreadable = body[("ds2/x.zarr/a", "")]
    assert unreadable[1] == "" and unreadable[8].endswith("access denied (403)")


def test_table_lists_datasets_verdicts_and_failures() -> None:
    text = _render("table").decode()
    assert "ds1" in text and "ds2" in text and "fails" in text
    assert "ds1/c.n5/em" in text and "'nm' differs" in text and "(+2 more)" in text
    assert "access denied (403)" in text
    assert "4 nodes (2 groups, 1 arrays) in 2 datasets" in text
    assert "\x1b[" not in text  # no colour codes in a file


@pytest.mark.parametrize(
    ("fail_on", "counts", "code"),
    [
        ("invalid", {}, 0),
        ("invalid", {"invalid": 1}, 1),
        ("invalid", {"unreadable": 1}, 1),
        ("unreadable", {"invalid": 3}, 0),
        ("unreadable", {"unreadable": 1}, 1),
        ("never", {"invalid": 2, "unreadable": 2}, 0),
    ],
)
def test_exit_code(fail_on: Any, counts: dict[str, int], code: int) -> None:
    assert exit_code(Summary(nodes=5, **counts), fail_on) == code


def test_atomic_output_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("scan failed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]  # no temporary file left behind
    with atomic_output(target) as fh:
        fh.write(b"new")
        assert target.read_text() == "old"  # not visible before the end
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_report_of_a_real_scan_round_trips(example: Path) -> None:
    report = run_scan(str(example))
    doc = json.loads(report.to_json())
    assert doc["summary"]["nodes"] == len(doc["nodes"]) == len(report.nodes)
    assert doc["root"] == str(example)
    assert doc["models"][0] == "multiscale.neuroglancer_n5.Group"  # every model, in order
    assert sum(d["nodes"] for d in doc["datasets"]) == doc["summary"]["nodes"]
    assert report.exit_code() == 1 and report.exit_code("never") == 0
    assert not report.conforms
