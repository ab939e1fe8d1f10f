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
    ScanReport,
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
    summary.root, summary.models = "s3://b", [COSEM]
    writer.finish("s3://b", [COSEM], summary, datasets)
    return out.getvalue()


def test_tally_counts_per_dataset_and_verdicts() -> None:
    summary, datasets = _tallied()
    counts = msgspec.to_builtins(summary)
    assert {k: counts[k] for k in ("nodes", "groups", "arrays", "unknown", "valid", "invalid",
            "unreadable", "not_applicable", "warnings", "elapsed_s", "requests")} == {
        "nodes": 4, "groups": 2, "arrays": 1, "unknown": 1, "valid": 1, "invalid": 1,
        "unreadable": 1, "not_applicable": 1, "warnings": 1, "elapsed_s": 1.235, "requests": 42,
    }  # fmt: skip
    # the unreadable node of no known kind is counted, so the kinds add up to the nodes
    assert summary.groups + summary.arrays + summary.unknown == summary.nodes
    assert summary.datasets == datasets
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


NODE_KEYS = ["type", "dataset", "path", "kind", "format", "status", "results", "error", "change"]


def test_json_document_has_exactly_the_documented_shape() -> None:
    doc = json.loads(_render("json"))
    assert list(doc) == ["summary", "nodes"]
    summary = doc["summary"]
    assert list(summary) == [
        "type", "tool_version", "started_at", "root", "models", "options", "interrupted",
        "nodes", "groups", "arrays", "unknown", "valid", "invalid", "unreadable",
        "not_applicable", "warnings", "datasets", "elapsed_s", "requests", "resumed", "baseline",
    ]  # fmt: skip
    assert summary["type"] == "summary" and summary["root"] == "s3://b"
    assert summary["models"] == [COSEM] and summary["interrupted"] is False
    assert list(summary["options"]) == [
        "models",
        "strict",
        "select",
        "ignore",
        "fail_on",
        "concurrency",
        "retries",
        "timeout",
        "resume",
        "baseline",
    ]
    assert list(summary["datasets"][0]) == ["name", "nodes", "valid", "invalid", "unreadable",
                                            "warnings", "conforms", "models"]  # fmt: skip
    assert [n["path"] for n in doc["nodes"]] == sorted(n.path for n in NODES)
    for node in doc["nodes"]:
        assert list(node) == NODE_KEYS and node["type"] == "node"
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
    assert em["error"] is None and em["change"] is None
    assert doc["nodes"][3]["kind"] is None and doc["nodes"][3]["error"].endswith("(403)")


def test_ndjson_streams_nodes_then_the_summary_line_equal_to_the_json_summary() -> None:
    lines = _render("ndjson").decode().splitlines()
    assert len(lines) == len(NODES) + 1
    nodes = [json.loads(line) for line in lines[:-1]]
    assert [n["path"] for n in nodes] == [n.path for n in reversed(NODES)]  # arrival order
    assert all(list(n) == NODE_KEYS and n["type"] == "node" for n in nodes)
    last = json.loads(lines[-1])
    assert last["type"] == "summary" and last["nodes"] == 4 and len(last["datasets"]) == 2
    doc = json.loads(_render("json"))
    assert last == doc["summary"]
    assert sorted(nodes, key=lambda n: n["path"]) == doc["nodes"]


def test_csv_is_long_one_row_per_problem() -> None:
    rows = list(csv.reader(io.StringIO(_render("csv").decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0][:10] == ["dataset", "path", "kind", "format", "status", "model", "severity",
                            "rule", "loc", "msg"]  # fmt: skip
    body = rows[1:]
    em = [r for r in body if r[1] == "ds1/c.n5/em"]
    assert em == [
        ["ds1", "ds1/c.n5/em", "group", "n5", "invalid", COSEM, "error", "NG006",
         "attributes.units[0]", "'nm' differs", ""],
        ["ds1", "ds1/c.n5/em", "group", "n5", "invalid", COSEM, "error", "COSEM001", "", "bad", ""],
        ["ds1", "ds1/c.n5/em", "group", "n5", "invalid", COSEM, "warning", "OME008",
         "attributes.x", "a SHOULD", ""],
    ]  # fmt: skip
    # a node without problems: one row, problem columns empty
    assert [r for r in body if r[1] == "ds1/c.n5/em/s0"] == [
        ["ds1", "ds1/c.n5/em/s0", "array", "n5", "valid", "", "", "", "", "", ""]
    ]
    unreadable = [r for r in body if r[1] == "ds2/x.zarr/a"]
    assert len(unreadable) == 1 and unreadable[0][2] == "" and unreadable[0][6] == "error"
    assert unreadable[0][9].endswith("access denied (403)")
    assert len(body) == 3 + 1 + 1 + 1


def test_csv_cells_cannot_start_a_formula() -> None:
    node = NodeResult(
        dataset="=HYPERLINK(1)", path="=HYPERLINK(1)/+x", kind=None, format=None,
        status="unreadable", error="-1 is @odd",
    )  # fmt: skip
    out = io.BytesIO()
    writer = make_writer("csv", out)
    writer.node(node, node.dataset)
    writer.finish("r", [], Summary(), [])
    row = list(csv.reader(io.StringIO(out.getvalue().decode())))[1]
    assert row[0] == "'=HYPERLINK(1)" and row[1] == "'=HYPERLINK(1)/+x"
    assert row[9] == "'-1 is @odd"


def test_table_lists_datasets_verdicts_and_failures() -> None:
    text = _render("table").decode()
    assert "ds1" in text and "ds2" in text and "fails" in text
    assert "ds1/c.n5/em" in text and "'nm' differs" in text and "(+2 more)" in text
    assert "access denied (403)" in text
    # ds2 holds one unreadable node and nothing judged: it fails, as in the HTML report
    assert "fails (unreadable)" in text
    assert "4 nodes (2 groups, 1 arrays, 1 unknown) in 2 datasets" in text
    assert "\x1b[" not in text  # no colour codes in a file


def test_table_neutralises_control_characters_in_names() -> None:
    evil = "ds\x1b]0;pwned\x07/a\x1b[2J\u202eb"
    node = NodeResult(dataset=evil, path=evil, kind=None, format=None, status="unreadable",
                      error=f"{evil}: bad\rline")  # fmt: skip
    out = io.BytesIO()
    writer = make_writer("table", out)
    writer.node(node, evil)
    tally = Tally()
    tally.add(node, evil)
    summary, datasets = tally.finish(elapsed_s=0, requests=0)
    writer.finish(evil, [], summary, datasets)
    text = out.getvalue().decode()
    assert not any(c in text for c in "\x1b\x07\r\u202e")
    assert "\\x1b]0;pwned\\x07" in text and "\\u202e" in text


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
    assert doc["summary"]["root"] == report.root == str(example)
    assert report.models[0] == "multiscale.neuroglancer_n5.Group"  # every model, in order
    assert sum(d["nodes"] for d in doc["summary"]["datasets"]) == doc["summary"]["nodes"]
    assert report.datasets == report.summary.datasets
    assert report.exit_code() == 1 and report.exit_code("never") == 0
    assert not report.conforms
    assert msgspec.json.decode(report.to_json(), type=ScanReport) == report
    # messages name locations relative to the root: no absolute local path anywhere
    assert str(example) not in json.dumps(doc["nodes"])
    unreadable = [n for n in report.nodes if n.status == "unreadable"]
    assert unreadable and all(n.error.startswith(n.path + "/") for n in unreadable)
