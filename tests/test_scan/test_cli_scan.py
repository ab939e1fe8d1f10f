"""``cellmap-schemas scan``: formats, output file, exit codes, --fail-on, errors on one line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cellmap_schemas.cli import app

from .conftest import write

COSEM = "multiscale.cosem.Group"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = app(["scan", *argv], result_action="return_value")
    except SystemExit as exc:  # a usage error: cyclopts exits with the status
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "cellmap_schemas.cli", "scan", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def good(example: Path) -> Path:
    return example / "jrc_hela-2"


@pytest.fixture
def bad(example: Path) -> Path:
    return example / "jrc_macrophage-2"


def test_piped_output_defaults_to_json(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run([str(good), "--no-progress"], capsys)
    assert rc == 0
    doc = json.loads(out)
    # below a folder that is not a node, each first-level entry is a dataset
    head = ("name", "nodes", "valid", "invalid", "unreadable", "warnings", "conforms")
    assert [tuple(d[k] for k in head) for d in doc["summary"]["datasets"]] == [
        ("jrc_hela-2.n5", 24, 21, 0, 0, 0, True),
        ("jrc_hela-2.zarr", 25, 11, 0, 0, 0, True),
    ]
    # each COSEM group and array has a COSEM and a Neuroglancer verdict
    n5 = doc["summary"]["datasets"][0]["models"]
    assert {k: v["judged"] for k, v in n5.items()} == {
        "multiscale.cosem.Array": 18, "multiscale.cosem.Group": 3,
        "multiscale.neuroglancer_n5.Array": 18, "multiscale.neuroglancer_n5.Group": 3,
    }  # fmt: skip
    assert doc["summary"]["root"] == str(good)
    assert err == ""


def test_invalid_nodes_exit_1_and_fail_on_tunes_it(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run([str(bad), "--model", COSEM, "--format", "ndjson"], capsys)
    assert rc == 1
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]
    assert summary["type"] == "summary"
    # 5 broken COSEM groups, and 5 OME-NGFF images of the .zarr judged by COSEM, as asked
    assert (summary["invalid"], summary["unreadable"]) == (10, 1)
    assert {n["type"] for n in lines[:-1]} == {"node"}
    assert {n["status"] for n in lines[:-1]} == {"valid", "invalid", "unreadable", "not_applicable"}
    assert run([str(bad), "--model", COSEM, "--fail-on", "never"], capsys)[0] == 0
    assert run([str(bad), "--model", COSEM, "--fail-on", "unreadable"], capsys)[0] == 1


def test_fail_on_unreadable_ignores_invalid_nodes(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    em = example / "jrc_macrophage-2/jrc_macrophage-2.n5/em"
    assert run([str(em), "--model", COSEM], capsys)[0] == 1
    assert run([str(em), "--model", COSEM, "--fail-on", "unreadable"], capsys)[0] == 0


def test_output_file_format_from_suffix_and_flag(
    bad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run([str(bad), "-o", str(tmp_path / "r.csv")], capsys)
    assert rc == 1 and out == ""
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert rows[0][:5] == ["dataset", "path", "kind", "format", "status"]
    assert any(r[4] == "unreadable" for r in rows[1:])
    run([str(bad), "--output", str(tmp_path / "r.ndjson")], capsys)
    last = (tmp_path / "r.ndjson").read_text().splitlines()[-1]
    assert json.loads(last)["type"] == "summary"
    run([str(bad), "-o", str(tmp_path / "report.txt"), "--format", "table"], capsys)
    assert "jrc_macrophage-2" in (tmp_path / "report.txt").read_text()
    run([str(bad), "-o", str(tmp_path / "report.out"), "--format", "json"], capsys)
    assert json.loads((tmp_path / "report.out").read_text())["summary"]["nodes"] == 63
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r.csv", "r.ndjson", "report.out", "report.txt"
    ]  # fmt: skip


def test_output_file_untouched_when_the_root_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous report")
    rc, _, err = run([str(tmp_path / "missing"), "-o", str(target)], capsys)
    assert rc == 2
    assert target.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert err.startswith(f"error: {tmp_path / 'missing'}: ") and err.count("\n") == 1


def test_unknown_model_suggests_close_names(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run([str(good), "--model", "multiscale.cosem.group"], capsys)
    assert rc == 2 and out == ""
    assert "unknown model 'multiscale.cosem.group'" in err
    assert "did you mean multiscale.cosem.Group" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--retries", "-1"], "--retries must be 0 or more"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--max-document-size", "0"], "--max-document-size must be at least 1, got 0"),
        (["--storage-option", "novalue"], "not of the form key=value"),
        (["-o", "/nonexistent-dir/report.json"], "no such directory '/nonexistent-dir'"),
        (["-o", "/"], "is a directory"),
        (["-o", "/dev/null"], "/dev/null: is a character device, not a regular file"),
        (["-o", "report.txt"], "unknown report suffix '.txt'; use .json, .ndjson, .jsonl, .csv"),
        (["--fail-on", "new"], "--fail-on new needs --baseline"),
    ],
)
def test_bad_usage_exits_2(
    good: Path, option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run([str(good), *option], capsys)
    assert rc == 2
    assert err.startswith("error: ") and message in err


def test_progress_goes_to_stderr_and_keeps_stdout_clean(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run([str(good), "--progress", "--format", "json"], capsys)
    assert rc == 0
    assert json.loads(out)["summary"]["nodes"] == 49


def test_real_entry_point_never_prints_a_traceback(tmp_path: Path) -> None:
    write(tmp_path, {"c.n5/attributes.json": b"\xff\xfe not json"})
    done = cli(str(tmp_path), "--format", "json")
    assert done.returncode == 1  # the node is reported unreadable; the scan goes on
    assert json.loads(done.stdout)["nodes"][0]["status"] == "unreadable"
    done = cli(str(tmp_path / "nothing-here"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    for fmt in ("json", "ndjson", "csv", "table"):  # nothing on stdout when the scan cannot start
        done = cli(str(tmp_path / "nothing-here"), "--format", fmt)
        assert (done.returncode, done.stdout) == (2, "")
    done = cli("s3://")
    assert done.returncode == 2 and done.stderr.startswith("error: s3://: ")


def test_table_on_a_terminal(good: Path, tmp_path: Path) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cellmap_schemas.cli", "scan", str(good), "--no-progress"],
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=120,
            env={**os.environ, "COLUMNS": "160"},
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "jrc_hela-2" in text and "conforms" in text and "49" in text
    assert not text.lstrip().startswith("{")


def test_progress_is_shown_when_stderr_is_a_terminal(good: Path) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cellmap_schemas.cli", "scan", str(good), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "nodes found" in shown and "requests" in shown
    assert json.loads(proc.stdout)["summary"]["nodes"] == 49  # stdout holds the report only
