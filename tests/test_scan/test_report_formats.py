"""Every report format against its schema (ours, SARIF 2.1.0, JUnit XSD), baselines, the output
file's safety and ``check --format json``: real scans through the real entry point."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from cellmap_schemas._scan.report import CSV_COLUMNS, report_schema
from cellmap_schemas.rules import all_rules

from .conftest import REPO, write

SCHEMAS = REPO / "tests" / "data" / "schemas"
DOC_SCHEMA = REPO / "docs" / "report-schema.json"


def cli(*argv: str, command: str = "scan") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellmap_schemas.cli", command, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(DOC_SCHEMA.read_text())
    return jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{name}"})


def test_published_schema_is_the_one_the_structs_give() -> None:
    """docs/report-schema.json is regenerated with
    ``python -m cellmap_schemas._scan.report --schema > docs/report-schema.json``."""
    assert json.loads(DOC_SCHEMA.read_text()) == json.loads(json.dumps(report_schema()))
    jsonschema.Draft202012Validator.check_schema(report_schema())


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example bucket plus a member whose name holds a formula and terminal escapes."""
    root = tmp_path_factory.mktemp("bucket") / "b"
    shutil.copytree(REPO / "examples" / "cellmap-bucket", root)
    evil = root / "jrc_hela-2" / "=cmd\x1b]0;x\x07.n5"
    write(evil, {"attributes.json": b"{not json"})
    return root


@pytest.fixture(scope="module")
def reports(bucket: Path) -> dict[str, str]:
    out = {}
    for fmt in ("json", "ndjson", "csv", "junit", "sarif", "github", "table"):
        done = cli(str(bucket), "--format", fmt)
        assert done.returncode == 1, done.stderr  # the bucket has broken nodes
        out[fmt] = done.stdout
    return out


def test_json_and_ndjson_follow_the_schema(reports: dict[str, str], bucket: Path) -> None:
    doc = json.loads(reports["json"])
    _validator("ScanReport").validate(doc)
    node, summary = _validator("NodeResult"), _validator("Summary")
    lines = [json.loads(line) for line in reports["ndjson"].splitlines()]
    for line in lines[:-1]:
        node.validate(line)
    summary.validate(lines[-1])
    assert list(summary.iter_errors(lines[0]))  # a node line is not a summary
    s = doc["summary"]
    assert s["groups"] + s["arrays"] + s["unknown"] == s["nodes"] == len(doc["nodes"])
    assert s["unknown"] >= 1  # the unreadable member of no known kind
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["started_at"])
    assert s["root"] == str(bucket) and s["tool_version"]
    assert str(bucket) not in json.dumps(doc["nodes"])  # messages relative to the root
    assert {n["dataset"] for n in doc["nodes"]} == {d["name"] for d in s["datasets"]}


def test_csv_rows_follow_the_node_schema(reports: dict[str, str]) -> None:
    rows = list(csv.DictReader(io.StringIO(reports["csv"])))
    assert tuple(rows[0]) == CSV_COLUMNS
    node = _validator("NodeResult")
    severities = {"", "error", "warning"}
    rules = {r.id for r in all_rules()} | {""}
    for row in rows:
        record = {
            "type": "node",
            "dataset": row["dataset"].removeprefix("'"),
            "path": row["path"].removeprefix("'"),
            "kind": row["kind"] or None,
            "format": row["format"] or None,
            "status": row["status"],
            "change": row["change"] or None,
        }
        node.validate(record)
        assert row["severity"] in severities and row["rule"] in rules
    evil = [r for r in rows if "=cmd" in r["path"]]
    assert evil and all(r["path"].startswith("jrc_hela-2/") for r in evil)
    assert all(r["dataset"] == "jrc_hela-2" for r in evil)
    assert not any(c[:1] and c[:1] in "=+-@" for r in rows for c in r.values())


def test_sarif_follows_the_oasis_schema(reports: dict[str, str], bucket: Path) -> None:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    doc = json.loads(reports["sarif"])
    jsonschema.Draft4Validator(schema).validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in all_rules()]
    assert run["originalUriBaseIds"]["ROOT"]["uri"] == bucket.as_uri() + "/"
    assert run["results"] and all(
        rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"]
    )
    n_findings = sum(
        len(m["errors"]) + len(m["warnings"])
        for n in json.loads(reports["json"])["nodes"]
        for m in n["results"].values()
    )
    assert len(run["results"]) == n_findings
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == json.loads(reports["json"])["summary"]["unreadable"]


def test_junit_follows_the_xsd(reports: dict[str, str]) -> None:
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "junit.xsd")))
    xml = etree.fromstring(reports["junit"].encode())
    schema.assertValid(xml)
    doc = json.loads(reports["json"])
    suites = xml.findall("testsuite")
    assert [s.get("name") for s in suites] == [d["name"] for d in doc["summary"]["datasets"]]
    cases = xml.findall("testsuite/testcase")
    assert len(cases) == sum(max(1, len(n["results"])) for n in doc["nodes"])
    failures = sum(
        1 for n in doc["nodes"] for m in n["results"].values() if not m["valid"]
    )  # fmt: skip
    assert int(xml.get("failures")) == failures == len(xml.findall("testsuite/testcase/failure"))
    assert int(xml.get("errors")) == doc["summary"]["unreadable"]
    assert "\x1b" not in reports["junit"] and "\x07" not in reports["junit"]


def test_github_annotations(reports: dict[str, str]) -> None:
    lines = reports["github"].splitlines()
    command = re.compile(r"::(error|warning|notice) (file=[^,:]+,)?title=[^:]+::.*")
    assert all(command.fullmatch(line) for line in lines)
    assert lines[-1].startswith("::notice title=cellmap-schemas scan ")
    assert any(line.startswith("::error file=") and ",title=NG006::" in line for line in lines)
    assert not any(c in reports["github"] for c in "\x1b\x07")


def test_table_shows_no_raw_escape_sequences(reports: dict[str, str]) -> None:
    table = reports["table"]
    assert "\x1b" not in table and "\x07" not in table
    assert "=cmd\\x1b]0;x\\x07.n5" in table


# ---- baselines ------------------------------------------------------------------------------
def test_baseline_shows_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    shutil.copytree(REPO / "examples" / "cellmap-bucket" / "jrc_macrophage-2", root)
    before = cli(str(root), "-o", str(tmp_path / "old.ndjson"))
    assert before.returncode == 1, before.stderr
    records = map(json.loads, (tmp_path / "old.ndjson").read_text().splitlines()[:-1])
    old = {n["path"]: n for n in sorted(records, key=lambda n: n["path"])}  # any order
    broken = next(p for p, n in old.items() if n["status"] == "valid" and n["kind"] == "array")
    fixed = next(p for p, n in old.items() if n["status"] == "unreadable")
    removed = next(p for p, n in old.items() if n["kind"] == "array" and p != broken
                   and n["status"] == "valid" and "/" in p)  # fmt: skip
    # break a valid array, repair the unreadable one from a sibling, remove one, add one
    (root / broken / "attributes.json").write_text("{")
    sibling = next(
        p for p, n in old.items() if p.rsplit("/", 1)[0] == fixed.rsplit("/", 1)[0]
        and n["kind"] == "array" and n["status"] == "valid"
    )  # fmt: skip
    shutil.copy(root / sibling / "attributes.json", root / fixed / "attributes.json")
    shutil.rmtree(root / removed)
    shutil.copytree(root / sibling, root / (sibling + "_copy"))

    for fmt in ("ndjson", "json", "csv"):  # any of our formats is a baseline
        base = tmp_path / f"old.{fmt}"
        if fmt != "ndjson":
            assert cli(str(REPO / "examples/cellmap-bucket/jrc_macrophage-2"), "-o",
                       str(base)).returncode == 1  # fmt: skip
        done = cli(str(root), "--baseline", str(tmp_path / "old.ndjson"), "--format", "json")
        assert done.returncode == 1
        doc = json.loads(done.stdout)
        nodes = {n["path"]: n for n in doc["nodes"]}
        assert nodes[broken]["change"] == "new_failure"
        assert nodes[sibling + "_copy"]["change"] == "new"
        assert removed not in nodes
        b = doc["summary"]["baseline"]
        assert b["removed_nodes"] >= 1 and b["new_nodes"] >= 1 and b["new_failures"] >= 1
        assert b["fixed"] >= 1
        assert {n["change"] for n in doc["nodes"]} <= {
            "new_failure", "fixed", "still_failing", "unchanged", "new"
        }  # fmt: skip
        # --fail-on new: only the new failure fails the scan
        assert cli(str(root), "--baseline", str(base), "--fail-on", "new").returncode == 1
    # the repaired member's group may now pass: still, it is only counted as a change
    assert sum(1 for n in doc["nodes"] if n["change"] == "fixed") == b["fixed"]
    current = tmp_path / "now.json"
    assert cli(str(root), "-o", str(current)).returncode == 1
    same = cli(str(root), "--baseline", str(current), "--fail-on", "new")
    assert same.returncode == 0  # failing, but nothing new
    table = cli(str(root), "--baseline", str(tmp_path / "old.ndjson"), "--format", "table")
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"since {tmp_path / 'old.ndjson'}: ")
    assert "new failure" in table.stdout and table.stdout.index("changes") < table.stdout.index(
        "cellmap-schemas scan"
    )


# ---- the output file ------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path: Path) -> Path:
    return REPO / "examples" / "cellmap-bucket" / "jrc_hela-2"


def test_output_keeps_mode_and_symlink(small: Path, tmp_path: Path) -> None:
    real = tmp_path / "reports" / "today.json"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    assert cli(str(small), "-o", str(link)).returncode == 0
    assert link.is_symlink() and link.resolve() == real
    assert json.loads(real.read_text())["summary"]["nodes"] == 49
    assert real.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["today.json"]
    dangling = tmp_path / "next.json"
    dangling.symlink_to(tmp_path / "reports" / "new.json")
    assert cli(str(small), "-o", str(dangling)).returncode == 0
    assert dangling.is_symlink() and (tmp_path / "reports" / "new.json").is_file()


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_output_refuses_what_is_not_a_regular_file(small: Path, tmp_path: Path, kind: str) -> None:
    target = {"fifo": tmp_path / "pipe", "directory": tmp_path, "device": Path("/dev/full")}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    done = cli(str(small), "-o", str(target))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {target}: is ")
    assert str(small) not in done.stderr


def test_stdout_failures_name_the_output(small: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "cellmap_schemas.cli", "scan", str(small), "--format", "json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert done.stderr == "error: stdout: No space left on device\n"


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson", "csv", "github"])
def test_a_reader_that_leaves_ends_the_scan_quietly(small: Path, fmt: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellmap_schemas.cli", "scan", str(small), "--format", fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.read(1)
    proc.stdout.close()  # as `| head -c 1` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == b""


# ---- check ----------------------------------------------------------------------------------
def test_check_json_is_the_scan_record(tmp_path: Path) -> None:
    group = REPO / "examples/cellmap-bucket/jrc_macrophage-2/jrc_macrophage-2.n5/labels/er_seg"
    done = cli(str(group), "--format", "json", command="check")
    record = json.loads(done.stdout)
    _validator("NodeResult").validate(record)
    assert record["type"] == "node" and record["path"] == "" and record["dataset"] == "er_seg"
    assert str(group) not in done.stdout  # messages relative to the node
    scanned = json.loads(cli(str(group.parent), "--format", "json").stdout)
    ours = next(n for n in scanned["nodes"] if n["path"] == "er_seg")
    assert record["status"] == ours["status"] and record["results"].keys() == ours["results"].keys()
