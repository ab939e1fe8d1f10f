"""Interrupting a scan with real signals, and resuming it: real subprocesses against a slow
loopback HTTP server, so that a signal lands in the middle of the crawl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "cellmap_schemas.cli", "scan", *argv, "--concurrency", "2"]


def _records(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[-1]["type"] == "summary"
    assert all(line["type"] == "node" for line in lines[:-1])
    return lines[-1], sorted(lines[:-1], key=lambda n: n["path"])


VOLATILE = ("started_at", "elapsed_s", "requests", "options", "resumed")


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def reference(slow_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The uninterrupted scan."""
    done = subprocess.run(
        _cmd(slow_url, "--format", "ndjson"), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr  # the tree has broken groups
    summary, nodes = _records(done.stdout)
    assert summary["interrupted"] is False and summary["nodes"] == len(nodes) > 40
    return summary, nodes


def _interrupt(argv: list[str], sig: signal.Signals, after: int, watch: Path | None) -> tuple[
    subprocess.CompletedProcess[str], int
]:  # fmt: skip
    """Run a scan, send ``sig`` once ``after`` node lines exist (on stdout, or in the temporary
    file next to ``watch``); returns the finished process and the lines seen before the signal."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    seen: list[str] = []
    deadline = time.monotonic() + 60
    if watch is None:
        assert proc.stdout is not None
        while len(seen) < after:
            line = proc.stdout.readline()
            assert line, "the scan ended before the signal"
            seen.append(line)
        proc.send_signal(sig)
        # read the rest through the same buffered stream: communicate() reads the pipe's fd
        # directly and would lose what readline() had already buffered ahead
        out = "".join(seen) + proc.stdout.read()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait(60)
    else:
        count = 0
        while count < after:
            assert time.monotonic() < deadline and proc.poll() is None
            tmp = [p for p in watch.parent.iterdir() if p.name.startswith(f".{watch.name}.")]
            count = tmp[0].read_text().count("\n") if tmp else 0
            time.sleep(0.01)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), len(seen)


@pytest.mark.parametrize(
    ("sig", "after"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 15), (signal.SIGHUP, 35)],
)
def test_a_signal_reports_what_is_finished_and_resume_completes_it(
    slow_url: str,
    reference: tuple[dict[str, Any], list[dict[str, Any]]],
    tmp_path: Path,
    sig: signal.Signals,
    after: int,
) -> None:
    done, _ = _interrupt(_cmd(slow_url, "--format", "ndjson"), sig, after, None)
    assert done.returncode == 128 + sig, done.stderr
    assert "Traceback" not in done.stderr and f"interrupted by {sig.name}" in done.stderr
    summary, nodes = _records(done.stdout)
    ref_summary, ref_nodes = reference
    assert summary["interrupted"] is True
    assert after <= summary["nodes"] == len(nodes) < ref_summary["nodes"]
    assert summary["groups"] + summary["arrays"] + summary["unknown"] == summary["nodes"]
    by_path = {n["path"]: n for n in ref_nodes}
    differ = [(n, by_path.get(n["path"])) for n in nodes if by_path.get(n["path"]) != n]
    assert not differ  # what is reported is the final verdict

    partial = tmp_path / "partial.ndjson"
    partial.write_text(done.stdout)
    resumed = subprocess.run(
        _cmd(slow_url, "--resume", str(partial), "-o", str(tmp_path / "full.ndjson")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 1, resumed.stderr
    summary2, nodes2 = _records((tmp_path / "full.ndjson").read_text())
    assert nodes2 == ref_nodes, resumed.stderr
    assert _comparable(summary2) == _comparable(ref_summary), (summary, summary2)
    assert summary2["resumed"] == len(nodes) and summary2["options"]["resume"] == str(partial)
    # finished arrays are not read again (once a whole multiscale group is finished)
    if after > 1:
        assert summary2["requests"] < ref_summary["requests"]


@pytest.mark.parametrize(
    ("sig", "suffix"),
    [
        (signal.SIGTERM, "ndjson"),
        (signal.SIGHUP, "ndjson"),
        (signal.SIGINT, "ndjson"),
        (signal.SIGTERM, "json"),
        (signal.SIGHUP, "csv"),
    ],
)
def test_a_signal_during_an_output_file_leaves_the_partial_report_and_no_temporary(
    slow_url: str, tmp_path: Path, sig: signal.Signals, suffix: str
) -> None:
    target = tmp_path / f"r.{suffix}"
    if suffix == "ndjson":
        done, _ = _interrupt(_cmd(slow_url, "-o", str(target)), sig, 10, target)
    else:
        proc = subprocess.Popen(
            _cmd(slow_url, "-o", str(target), "--progress"), stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        while True:  # the status lines say when some nodes are finished
            line = proc.stderr.readline()
            assert line.startswith("scan: "), line
            if not line.split(" nodes found, ", 1)[1].startswith("0 "):
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        done = subprocess.CompletedProcess([], proc.returncode, "", err)
    assert done.returncode == 128 + sig, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no .r.*.tmp
    text = target.read_text()
    if suffix == "ndjson":
        summary, nodes = _records(text)
        assert summary["interrupted"] is True and len(nodes) >= 10
    elif suffix == "json":
        doc = json.loads(text)
        assert doc["summary"]["interrupted"] is True
        assert doc["summary"]["nodes"] == len(doc["nodes"]) > 0
    else:
        assert text.startswith("dataset,path,kind,format,status,model")
        assert text.count("\n") > 1


def test_resume_refuses_a_report_of_another_scan(
    slow_url: str, reference: tuple[dict[str, Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    summary, nodes = reference
    other = tmp_path / "other.ndjson"
    lines = [json.dumps(n) for n in nodes] + [json.dumps({**summary, "root": "/elsewhere"})]
    other.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        _cmd(slow_url, "--resume", str(other)), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --resume {other}: that report is of another scan")
    assert done.stderr.count("\n") == 1


def test_resume_reads_a_report_cut_by_a_kill(
    slow_url: str, reference: tuple[dict[str, Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, nodes = reference
    cut = tmp_path / "cut.ndjson"
    body = "".join(json.dumps(n) + "\n" for n in nodes[:20])
    cut.write_text(body + json.dumps(nodes[20])[:30])  # a killed scan: no summary, a cut line
    done = subprocess.run(
        _cmd(slow_url, "--resume", str(cut), "--format", "ndjson"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    summary, got = _records(done.stdout)
    assert got == nodes and summary["resumed"] == 20


def test_progress_on_a_non_terminal_writes_status_lines(slow_url: str) -> None:
    done = subprocess.run(
        _cmd(slow_url, "--progress", "--format", "json"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("scan: ") for line in lines)
    assert "nodes found" in lines[0] and "\r" not in done.stderr and "\x1b" not in done.stderr
    assert json.loads(done.stdout)["summary"]["nodes"] > 40
