"""One engine: ``check`` and ``scan`` give the same verdict on every node.

``scan`` judges each node as the crawler meets it; ``check`` (CLI and API) reads one node with the
members its verdicts depend on and judges it alone. Both must give the same status and the same
results (every model, every error and warning), on the example hierarchy, on the in-the-wild
documents placed in hierarchies, and on a generated bucket with broken nodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cellmap_schemas import judge, scan
from cellmap_schemas._scan import NodeResult
from cellmap_schemas.cli import app
from test_generator import gh
from test_wild import CASES

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "cellmap-bucket"


def _verdict(node: NodeResult, below: str = "") -> Any:
    """Status and results; messages name paths relative to the root of the call, so a scan's
    are made relative to the node (``below``), as ``check``'s are."""
    text = msgspec.json.encode({"status": node.status, "results": node.results}).decode()
    if below:
        text = text.replace(f"{below}/", "")
    return json.loads(text)


def _assert_check_agrees_with_scan(root: Path, *, cli_every: int = 1) -> int:
    """Judge every readable node of a scan of ``root`` again with ``check``; compare."""
    report = scan(str(root))
    compared = 0
    for i, node in enumerate(report.nodes):
        if node.status == "unreadable":
            continue
        url = str(root / node.path) if node.path else str(root)
        alone = judge(url)
        assert _verdict(alone) == _verdict(node, node.path), node.path
        if i % cli_every == 0:  # the CLI's JSON is the same record
            rc = app(["check", url, "--format", "json"], result_action="return_value")
            assert rc == (0 if node.status == "valid" else 1), node.path
        compared += 1
    return compared


def test_example_hierarchy(capsys: pytest.CaptureFixture[str]) -> None:
    assert _assert_check_agrees_with_scan(EXAMPLE) >= 100
    capsys.readouterr()


def test_cli_check_prints_the_scans_record(capsys: pytest.CaptureFixture[str]) -> None:
    report = scan(str(EXAMPLE))
    capsys.readouterr()
    judged = [n for n in report.nodes if len(n.results) >= 2]  # COSEM groups: COSEM and NG
    assert judged
    for node in judged:
        rc = app(
            ["check", str(EXAMPLE / node.path), "--format", "json"], result_action="return_value"
        )
        record = json.loads(capsys.readouterr().out)
        assert rc in (0, 1)
        assert {k: record[k] for k in ("status", "results")} == _verdict(node, node.path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_wild_documents(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    CASES[name].build(tmp_path)
    assert _assert_check_agrees_with_scan(tmp_path) >= 1
    capsys.readouterr()


def test_generated_bucket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gh.generate(
        tmp_path, datasets=3, groups_per_dataset=10, levels="3-5", broken_fraction=0.3, seed=11,
        layout="mixed",
    )  # fmt: skip
    assert _assert_check_agrees_with_scan(tmp_path, cli_every=7) >= 50
    capsys.readouterr()


def test_a_model_asked_for_gives_the_same_verdict_in_check_and_scan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = "multiscale.neuroglancer_n5.Group"
    report = scan(str(EXAMPLE), models=[model])
    judged = [n for n in report.nodes if model in n.results]
    # the case: every COSEM group is judged as a Neuroglancer group when asked for
    assert len(judged) >= 8
    for node in judged:
        alone = judge(str(EXAMPLE / node.path), [model])
        mine = msgspec.structs.replace(node, results={model: node.results[model]})
        theirs = msgspec.structs.replace(node, results=alone.results)
        assert _verdict(theirs)["results"] == _verdict(mine, node.path)["results"], node.path
    capsys.readouterr()
