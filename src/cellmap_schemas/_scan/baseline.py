"""Reading reports back: ``--resume`` (continue an interrupted scan) and ``--baseline`` (what
changed since an earlier scan).

:func:`load_report` reads a json, ndjson or csv report (recognised by content, not suffix). An
ndjson report whose last line was cut (a scan killed outright) is read up to that line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import msgspec

from cellmap_schemas._scan.report import (
    CSV_COLUMNS,
    BaselineSummary,
    Change,
    NodeResult,
    ScanReport,
    Summary,
)

__all__ = ["Baseline", "ReportError", "load_report"]


class ReportError(ValueError):
    """A file given as a report is not one of ours."""


_Line = msgspec.json.Decoder(NodeResult | Summary)


def load_report(path: Path) -> tuple[Summary | None, list[NodeResult]]:
    """The summary (None if the report has none: an ndjson scan killed outright, a csv) and the
    node records of a report. csv records carry no model results, only each node's status."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror or exc}") from None
    head = data.lstrip()[:1]
    if head == b"{":
        try:
            doc = msgspec.json.decode(data, type=ScanReport)
            return doc.summary, doc.nodes
        except msgspec.DecodeError:
            return _ndjson(path, data)
    if data.startswith(",".join(CSV_COLUMNS[:2]).encode()):
        return None, _csv(path, data)
    raise ReportError(f"{path}: not a json, ndjson or csv report of cellmap-schemas scan")


def _ndjson(path: Path, data: bytes) -> tuple[Summary | None, list[NodeResult]]:
    summary: Summary | None = None
    nodes: list[NodeResult] = []
    lines = data.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = _Line.decode(line)
        except msgspec.DecodeError as exc:
            if i == len(lines) - 1 and not data.endswith(b"\n"):
                break  # the line a killed scan was writing
            raise ReportError(f"{path}: line {i + 1} is not a report record: {exc}") from None
        if isinstance(record, Summary):
            summary = record
        else:
            nodes.append(record)
    return summary, nodes


def _csv(path: Path, data: bytes) -> list[NodeResult]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8", "replace")))
    nodes: dict[str, NodeResult] = {}
    for row in reader:
        p = _unquote(row.get("path") or "")
        if p in nodes:
            continue
        try:
            nodes[p] = msgspec.convert(
                {
                    "dataset": _unquote(row.get("dataset") or ""),
                    "path": p,
                    "kind": row.get("kind") or None,
                    "format": row.get("format") or None,
                    "status": row.get("status"),
                },
                NodeResult,
            )
        except msgspec.ValidationError as exc:
            raise ReportError(f"{path}: row {reader.line_num}: {exc}") from None
    return list(nodes.values())


def _unquote(cell: str) -> str:
    """A csv cell as it was before the formula guard prefixed it."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell


class Baseline:
    """Compares each node of a scan with an earlier report; keeps one flag per earlier path
    not met yet (a scan reports a path once: what is left at the end was removed)."""

    def __init__(self, source: str, nodes: list[NodeResult]) -> None:
        self.source = source
        self._failing = {n.path: n.failing for n in nodes}
        self.summary = BaselineSummary(source=source)

    def change(self, node: NodeResult) -> Change:
        """How ``node`` differs from its earlier record (and count it)."""
        s = self.summary
        before = self._failing.pop(node.path, None)
        now = node.failing
        if before is None:
            s.new_nodes += 1
            if now:
                s.new_failures += 1
                return "new_failure"
            return "new"
        if now and not before:
            s.new_failures += 1
            return "new_failure"
        if before and not now:
            s.fixed += 1
            return "fixed"
        if now:
            s.still_failing += 1
            return "still_failing"
        return "unchanged"

    def finish(self) -> BaselineSummary:
        self.summary.removed_nodes = len(self._failing)
        return self.summary
