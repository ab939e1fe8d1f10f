"""Report formats for CI systems: JUnit XML, SARIF 2.1.0 and GitHub workflow annotations.

Each is a :class:`~cellmap_schemas._scan.report.Writer` fed the same node records as the json
report, so a CI job can show a scan's failures where it shows test or lint failures:

- ``junit``: one ``testsuite`` per dataset, one ``testcase`` per node and model (``classname``
  the dataset, ``name`` ``PATH [MODEL]``); an invalid verdict is a ``failure``, an unreadable
  node an ``error``, a node no model applies to a ``skipped`` case;
- ``sarif``: the rule table (:func:`cellmap_schemas.rules.all_rules`) as the driver's rules, one
  result per finding located at the node (``uriBaseId`` ``ROOT`` is the scanned URL); unreadable
  nodes are tool execution notifications (the tool could not judge them);
- ``github``: one ``::error`` / ``::warning`` workflow command per finding and unreadable node,
  then a ``::notice`` with the totals.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from cellmap_schemas._scan.report import DatasetSummary, NodeResult, Summary, printable

__all__ = ["GithubWriter", "JunitWriter", "SarifWriter"]

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str, *, attr: bool = False) -> str:
    """Text fit for XML 1.0: escaped, and characters XML cannot hold shown as escapes."""
    text = printable(text) if attr else _XML_ILLEGAL.sub(lambda m: printable(m.group()), text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attr:
        text = text.replace('"', "&quot;")
    return text


def _findings_text(node: NodeResult, name: str) -> str:
    r = node.results[name]
    lines = [f"{f.severity} {f.rule} {f.loc or '(root)'}: {f.msg}" for f in (*r.errors,
             *r.warnings)]  # fmt: skip
    return "\n".join(lines)


class JunitWriter:
    """JUnit XML (the Jenkins / Surefire dialect every CI reads); cases are kept per dataset."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._cases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])

    def node(self, node: NodeResult, dataset: str) -> None:
        dataset = node.dataset or dataset
        counts = self._counts[dataset]  # tests, failures, errors, skipped
        cases = self._cases[dataset]
        head = f'<testcase classname="{_xml(dataset, attr=True)}" '
        path = node.path or "."
        if node.status == "unreadable":
            counts[0] += 1
            counts[2] += 1
            msg = node.error or "unreadable"
            cases.append((path, head + f'name="{_xml(path, attr=True)}" time="0">'
                          f'<error type="unreadable" message="{_xml(msg, attr=True)}">'
                          f"{_xml(msg)}</error></testcase>"))  # fmt: skip
            return
        if not node.results:
            counts[0] += 1
            counts[3] += 1
            cases.append((path, head + f'name="{_xml(path, attr=True)}" time="0">'
                          '<skipped message="no model applies"/></testcase>'))  # fmt: skip
            return
        for name, result in node.results.items():
            counts[0] += 1
            case = head + f'name="{_xml(f"{path} [{name}]", attr=True)}" time="0">'
            text = _findings_text(node, name)
            if not result.valid:
                counts[1] += 1
                first = (result.errors or result.warnings)[:1]
                message = f"{first[0].rule} {first[0].loc}: {first[0].msg}" if first else "invalid"
                case += (
                    f'<failure type="{_xml(first[0].rule if first else "invalid", attr=True)}" '
                    f'message="{_xml(message, attr=True)}">{_xml(text)}</failure>'
                )
            elif text:
                case += f"<system-out>{_xml(text)}</system-out>"
            cases.append((f"{path}\x00{name}", case + "</testcase>"))

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        total = [0, 0, 0, 0]
        for counts in self._counts.values():
            total = [a + b for a, b in zip(total, counts, strict=True)]
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               f'<testsuites name="{_xml(f"cellmap-schemas scan {root}", attr=True)}" '
               f'tests="{total[0]}" failures="{total[1]}" errors="{total[2]}" '
               f'skipped="{total[3]}" time="{summary.elapsed_s}">']  # fmt: skip
        for dataset in sorted(self._cases):
            t, f, e, s = self._counts[dataset]
            out.append(
                f'<testsuite name="{_xml(dataset, attr=True)}" tests="{t}" failures="{f}" '
                f'errors="{e}" skipped="{s}" time="0"'
                + (f' timestamp="{summary.started_at}"' if summary.started_at else "")
                + ">"
            )
            out.append(
                "<properties>"
                f'<property name="root" value="{_xml(root, attr=True)}"/>'
                f'<property name="interrupted" value="{str(summary.interrupted).lower()}"/>'
                "</properties>"
            )
            out.extend(case for _, case in sorted(self._cases[dataset]))
            out.append("</testsuite>")
        out.append("</testsuites>\n")
        self._out.write("\n".join(out).encode("utf-8"))


def _root_uri(root: str) -> str:
    """The scanned root as an absolute URI ending in ``/`` (SARIF's ``originalUriBaseIds``)."""
    if "://" not in root:
        root = Path(root).absolute().as_uri()
    return root.rstrip("/") + "/"


def _node_uri(path: str) -> str:
    return quote(path, safe="/") if path else "./"


class SarifWriter:
    """SARIF 2.1.0: one run, the whole rule table, one result per finding."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._results: list[tuple[str, dict[str, Any]]] = []
        self._notes: list[tuple[str, dict[str, Any]]] = []

    def node(self, node: NodeResult, dataset: str) -> None:
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": _node_uri(node.path), "uriBaseId": "ROOT"}
            }
        }
        if node.status == "unreadable":
            self._notes.append((node.path, {
                "level": "error",
                "message": {"text": node.error or "unreadable"},
                "locations": [location],
            }))  # fmt: skip
            return
        for name, result in node.results.items():
            for f in (*result.errors, *result.warnings):
                loc = dict(location)
                if f.loc:
                    loc["logicalLocations"] = [{"fullyQualifiedName": f.loc, "kind": "member"}]
                self._results.append((f"{node.path}\x00{name}", {
                    "ruleId": f.rule,
                    "level": "error" if f.severity == "error" else "warning",
                    "message": {"text": f.msg},
                    "locations": [loc],
                    "properties": {"model": name, "dataset": node.dataset or dataset,
                                   "nodeStatus": node.status},
                }))  # fmt: skip

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        from cellmap_schemas.rules import all_rules

        rules = all_rules()
        index = {r.id: i for i, r in enumerate(rules)}
        results = []
        for _, result in sorted(self._results, key=_first):
            if result["ruleId"] in index:
                result["ruleIndex"] = index[result["ruleId"]]
            results.append(result)
        invocation: dict[str, Any] = {
            "executionSuccessful": not summary.interrupted,
            "toolExecutionNotifications": [n for _, n in sorted(self._notes, key=_first)],
        }
        if summary.started_at:
            invocation["startTimeUtc"] = summary.started_at
        doc = {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "cellmap-schemas",
                    "version": summary.tool_version or "0",
                    "informationUri": "https://github.com/janelia-cellmap/cellmap-schemas",
                    "rules": [{
                        "id": r.id,
                        "shortDescription": {"text": r.summary},
                        "defaultConfiguration": {"level": r.severity},
                        "properties": {"source": r.source},
                    } for r in rules],
                }},
                "originalUriBaseIds": {"ROOT": {"uri": _root_uri(root)}},
                "invocations": [invocation],
                "results": results,
                "properties": {"interrupted": summary.interrupted, "models": models},
            }],
        }  # fmt: skip
        self._out.write(json.dumps(doc, indent=1).encode("utf-8") + b"\n")


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _gh_data(text: str) -> str:
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubWriter:
    """GitHub Actions workflow commands, one line per finding, as nodes finish."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def node(self, node: NodeResult, dataset: str) -> None:
        file = _gh_prop(node.path or ".")
        lines = []
        if node.status == "unreadable":
            lines.append(f"::error file={file},title=unreadable::{_gh_data(node.error or '')}")
        for name, result in node.results.items():
            for f in (*result.errors, *result.warnings):
                level = "error" if f.severity == "error" or not result.valid else "warning"
                where = f"{f.loc}: " if f.loc else ""
                lines.append(
                    f"::{level} file={file},title={_gh_prop(f.rule)}::"
                    + _gh_data(f"{name}: {where}{f.msg}")
                )
        if lines:
            self._out.write(("\n".join(lines) + "\n").encode("utf-8"))

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        s = summary
        text = (
            f"{s.nodes} nodes: {s.valid} valid, {s.invalid} invalid, {s.unreadable} unreadable"
            + (" (interrupted)" if s.interrupted else "")
        )
        title = _gh_prop(f"cellmap-schemas scan {root}")
        self._out.write(f"::notice title={title}::{_gh_data(text)}\n".encode())
