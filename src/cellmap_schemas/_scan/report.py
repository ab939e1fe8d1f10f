"""What a scan found: node records, totals, and the report formats.

Every format carries the same node record (``NodeResult``) and the same summary (``Summary``)::

    node:    {"type": "node", "dataset", "path", "kind", "format", "status",
              "results": {MODEL: {"valid", "errors": [FINDING], "warnings": [FINDING]}},
              "error", "change"}
    FINDING: {"rule", "severity", "loc", "msg"}
    summary: {"type": "summary", "tool_version", "started_at", "root", "models", "options",
              "interrupted", "nodes", "groups", "arrays", "unknown", "valid", "invalid",
              "unreadable", "not_applicable", "warnings", "datasets": [DATASET], "elapsed_s",
              "requests", "resumed", "baseline"}

``json`` is ``{"summary": SUMMARY, "nodes": [NODE]}`` (nodes sorted by path); ``ndjson`` is one
node a line as they finish, then the summary line (equal to the json summary); ``csv`` is long,
one row per problem (:data:`CSV_COLUMNS`). ``docs/report-schema.json`` is the JSON Schema of
these structs (``python -m cellmap_schemas._scan.report --schema`` prints it).

Writers consume nodes as they finish; ``json`` spools them (sorted runs in a temporary file,
merged at the end: its memory does not grow with the tree), ``junit``, ``sarif`` and ``html``
keep each node in compact form (their documents sort or group the nodes), the others keep none.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import msgspec

from cellmap_schemas._scan._spool import Spool
from cellmap_schemas.validation import Change, ModelResult, NodeResult

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "BaselineSummary",
    "Change",
    "DatasetSummary",
    "FailOn",
    "ModelTally",
    "NodeResult",
    "ReportFormat",
    "ReportOptions",
    "ScanReport",
    "Summary",
    "Tally",
    "Writer",
    "atomic_output",
    "exit_code",
    "make_writer",
    "output_problem",
    "printable",
    "relative_messages",
    "report_schema",
]

ReportFormat = Literal["table", "json", "ndjson", "csv", "junit", "sarif", "github", "html"]
FailOn = Literal["invalid", "unreadable", "new", "never"]


class ModelTally(msgspec.Struct):
    """How the nodes one model judged fared."""

    judged: int = 0
    valid: int = 0
    invalid: int = 0
    warnings: int = 0
    """Nodes with at least one warning from this model."""


class DatasetSummary(msgspec.Struct):
    """Totals of one dataset (the first path component below the root, or the root container).

    ``conforms`` is true only when some node was judged and none is invalid or unreadable: a
    dataset where no model applied to anything does not conform to anything.
    """

    name: str
    nodes: int = 0
    valid: int = 0
    invalid: int = 0
    unreadable: int = 0
    warnings: int = 0
    conforms: bool = False
    models: dict[str, ModelTally] = {}


class ReportOptions(msgspec.Struct, kw_only=True):
    """What the scan was asked: two reports compare only when these agree (``--resume``)."""

    models: list[str] | None = None
    """The ``--model`` names given (``None``: every model, by markers)."""
    strict: bool = False
    select: list[str] = []
    ignore: list[str] = []
    fail_on: FailOn = "invalid"
    concurrency: int = 64
    retries: int = 3
    timeout: float | None = 30.0
    resume: str | None = None
    baseline: str | None = None


class BaselineSummary(msgspec.Struct, kw_only=True):
    """How this scan differs from a ``--baseline`` report (failing: invalid or unreadable).

    A node missing from the baseline counts in ``new_nodes``, and in ``new_failures`` too when it
    fails; ``removed_nodes`` are in the baseline and not in this scan.
    """

    source: str
    new_failures: int = 0
    fixed: int = 0
    still_failing: int = 0
    new_nodes: int = 0
    removed_nodes: int = 0


def _options() -> ReportOptions:
    return ReportOptions()


class Summary(msgspec.Struct, kw_only=True, tag_field="type", tag="summary"):
    """A report's header and totals (the ndjson summary line, ``summary`` of the json document).

    ``groups + arrays + unknown == nodes`` (``unknown``: unreadable nodes of no known kind), and
    ``valid + invalid + unreadable + not_applicable == nodes``. ``interrupted``: a signal stopped
    the scan; the nodes finished until then are reported. ``resumed``: nodes taken from the
    ``--resume`` report instead of read again.
    """

    tool_version: str = ""
    started_at: str = ""
    """When the scan started, ISO 8601 UTC (``2025-01-31T12:00:00Z``)."""
    root: str = ""
    models: list[str] = []
    """Every model the scan could judge by."""
    options: ReportOptions = msgspec.field(default_factory=_options)
    interrupted: bool = False
    nodes: int = 0
    groups: int = 0
    arrays: int = 0
    unknown: int = 0
    valid: int = 0
    invalid: int = 0
    unreadable: int = 0
    not_applicable: int = 0
    warnings: int = 0
    """Nodes with at least one warning (valid or not)."""
    datasets: list[DatasetSummary] = []
    elapsed_s: float = 0.0
    requests: int = 0
    resumed: int = 0
    baseline: BaselineSummary | None = None


class ScanReport(msgspec.Struct):
    """A finished scan, as returned by :func:`cellmap_schemas.scan` (``msgspec.json.encode`` of
    it is the ``--format json`` document)."""

    summary: Summary
    nodes: list[NodeResult]

    @property
    def root(self) -> str:
        return self.summary.root

    @property
    def models(self) -> list[str]:
        return self.summary.models

    @property
    def datasets(self) -> list[DatasetSummary]:
        return self.summary.datasets

    @property
    def conforms(self) -> bool:
        """Whether no node is invalid or unreadable."""
        return self.summary.invalid == 0 and self.summary.unreadable == 0

    def exit_code(self, fail_on: FailOn = "invalid") -> int:
        """The CLI's exit code for this report (0 or 1)."""
        return exit_code(self.summary, fail_on)

    def to_json(self) -> bytes:
        """The ``--format json`` document."""
        return msgspec.json.encode(self)


def report_schema() -> dict[str, Any]:
    """The JSON Schema of every record a report holds (published as ``docs/report-schema.json``).

    ``$defs`` holds ``ScanReport`` (the json document), ``NodeResult`` (a node record, an ndjson
    node line) and ``Summary`` (the summary, the ndjson summary line).
    """
    (_, _, _), components = msgspec.json.schema_components(
        (ScanReport, NodeResult, Summary), ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/janelia-cellmap/cellmap-schemas/docs/report-schema.json",
        "title": "cellmap-schemas scan report",
        "description": (
            "A json report is a ScanReport; an ndjson report is NodeResult lines then one "
            "Summary line; a csv report has the columns of NodeResult, one row per finding."
        ),
        "$ref": "#/$defs/ScanReport",
        "$defs": components,
    }


def exit_code(summary: Summary, fail_on: FailOn = "invalid") -> int:
    """0 when the scan passes, 1 when it fails.

    ``invalid`` (default): any invalid or unreadable node fails the scan (a node that could not be
    read cannot be said to conform). ``unreadable``: only unreadable nodes fail it. ``new``: only
    failures the ``--baseline`` report did not have. ``never``: report, never fail.
    """
    if fail_on == "never":
        return 0
    if fail_on == "new":
        return 1 if summary.baseline is not None and summary.baseline.new_failures else 0
    bad = summary.unreadable + (summary.invalid if fail_on == "invalid" else 0)
    return 1 if bad else 0


class Tally:
    """Running totals per dataset and overall; constant memory per dataset."""

    def __init__(self) -> None:
        self.summary = Summary()
        self._datasets: dict[str, DatasetSummary] = {}

    def add(self, node: NodeResult, dataset: str) -> None:
        s = self.summary
        s.nodes += 1
        if node.kind == "group":
            s.groups += 1
        elif node.kind == "array":
            s.arrays += 1
        else:
            s.unknown += 1
        d = self._datasets.get(dataset)
        if d is None:
            d = self._datasets[dataset] = DatasetSummary(name=dataset, models={})
        d.nodes += 1
        status = node.status
        if status == "valid":
            s.valid += 1
            d.valid += 1
        elif status == "invalid":
            s.invalid += 1
            d.invalid += 1
        elif status == "unreadable":
            s.unreadable += 1
            d.unreadable += 1
        else:
            s.not_applicable += 1
        warned = False
        for name, result in node.results.items():
            t = d.models.get(name)
            if t is None:
                t = d.models[name] = ModelTally()
            t.judged += 1
            if result.valid:
                t.valid += 1
            else:
                t.invalid += 1
            if result.warnings:
                t.warnings += 1
                warned = True
        if warned:
            s.warnings += 1
            d.warnings += 1

    def finish(self, *, elapsed_s: float, requests: int) -> tuple[Summary, list[DatasetSummary]]:
        self.summary.elapsed_s = round(elapsed_s, 3)
        self.summary.requests = requests
        datasets = [self._datasets[k] for k in sorted(self._datasets)]
        for d in datasets:
            d.conforms = bool(d.models) and d.invalid == 0 and d.unreadable == 0
            d.models = dict(sorted(d.models.items()))
        self.summary.datasets = datasets
        return self.summary, datasets


# ---- text safety ----------------------------------------------------------------------------
def relative_messages(node: NodeResult, base: str) -> NodeResult:
    """``node`` with the root URL stripped from its messages (``/data/b/x.n5/s0/...`` becomes
    ``x.n5/s0/...``): reports name locations relative to the root, never a local absolute path."""
    base = base.rstrip("/")
    if not base:
        return node
    error = node.error
    touched = error is not None and base in error
    if not touched:
        for result in node.results.values():
            if (result.errors or result.warnings) and any(
                base in f.msg for f in (*result.errors, *result.warnings)
            ):
                touched = True
                break
    if not touched:
        return node
    pattern = re.compile(re.escape(base) + r"(/|(?=[\s:'\",)\]]|$))")

    def strip(text: str) -> str:
        return pattern.sub(lambda m: "" if m.group(1) else ".", text)

    results = {
        name: ModelResult(
            valid=r.valid,
            errors=tuple(msgspec.structs.replace(f, msg=strip(f.msg)) for f in r.errors),
            warnings=tuple(msgspec.structs.replace(f, msg=strip(f.msg)) for f in r.warnings),
        )
        for name, r in node.results.items()
    }
    return msgspec.structs.replace(
        node, results=results, error=strip(error) if error is not None else None
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``), so that a member
    name cannot drive the terminal that shows a report."""
    if not _CONTROL.search(text):
        return text

    def esc(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL.sub(esc, text)


def _safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text (no ``=1+1`` formula from a member name)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


# ---- writers --------------------------------------------------------------------------------
class Writer(Protocol):
    """Receives nodes as they finish, then the totals."""

    def node(self, node: NodeResult, dataset: str) -> None: ...

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None: ...


_encoder = msgspec.json.Encoder()
_JOINED = 4096
"""Encoded nodes :class:`JsonWriter` joins into one write."""


class JsonWriter:
    """One document; nodes sorted by path so that two scans of a tree compare equal.

    The summary comes first and is known only at the end, so the encoded nodes wait in a
    :class:`~cellmap_schemas._scan._spool.Spool` (a few MB in memory, the rest in a temporary
    file beside the output), whatever the size of the tree.
    """

    def __init__(self, out: IO[bytes], *, budget: int | None = None) -> None:
        self._out = out
        name = getattr(out, "name", None)
        beside = os.path.dirname(name) if isinstance(name, str) and os.path.isabs(name) else None
        self._nodes = Spool(budget=budget, directory=beside)

    def node(self, node: NodeResult, dataset: str) -> None:
        self._nodes.add(node.path, _encoder.encode(node))

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        out = self._out
        out.write(b'{"summary":' + _encoder.encode(summary) + b',"nodes":[')
        sep, chunk = b"", []
        for raw in self._nodes.drain():  # joined a few thousand at a time: one write each
            chunk.append(raw)
            if len(chunk) == _JOINED:
                out.write(sep + b",".join(chunk))
                sep, chunk = b",", []
        if chunk:
            out.write(sep + b",".join(chunk))
        out.write(b"]}\n")


class NdjsonWriter:
    """One node per line as it finishes; the last line is the summary. The command line
    flushes the stream whenever the scan waits for more results (not after every line: one
    write per node cost ~7% of a local scan), so a killed scan leaves every line it had
    finished before its last wait."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def node(self, node: NodeResult, dataset: str) -> None:
        self._out.write(_encoder.encode(node) + b"\n")

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        self._out.write(_encoder.encode(summary) + b"\n")


CSV_COLUMNS = (
    "dataset", "path", "kind", "format", "status", "model", "severity", "rule", "loc", "msg",
    "change",
)  # fmt: skip


class _Text:
    """A text layer over a binary stream, started lazily (a scan that cannot start prints
    nothing) and detached at the end (the binary stream stays the caller's)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.text: io.TextIOWrapper | None = None

    def open(self) -> io.TextIOWrapper:
        if self.text is None:
            self.text = io.TextIOWrapper(
                self._out, encoding="utf-8", newline="", write_through=True
            )
        return self.text

    def close(self) -> None:
        text = self.open()
        text.flush()
        text.detach()


class CsvWriter:
    """Long form: one row per finding; a node without findings gets one row, problem columns
    empty; an unreadable node one row with its error in ``msg``."""

    def __init__(self, out: IO[bytes]) -> None:
        self._text = _Text(out)
        self._csv: Any = None

    def node(self, node: NodeResult, dataset: str) -> None:
        if self._csv is None:
            self._csv = csv.writer(self._text.open())
            self._csv.writerow(CSV_COLUMNS)
        head = (node.dataset or dataset, node.path, node.kind or "", node.format or "",
                node.status)  # fmt: skip
        change = node.change or ""
        rows: list[tuple[str, ...]] = []
        if node.error is not None:
            rows.append((*head, "", "error", "", "", node.error, change))
        for name, result in node.results.items():
            for f in (*result.errors, *result.warnings):
                rows.append((*head, name, f.severity, f.rule, f.loc, f.msg, change))
        if not rows:
            rows.append((*head, "", "", "", "", "", change))
        self._csv.writerows([_safe_cell(c) for c in row] for row in rows)

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        if self._csv is None:
            self._csv = csv.writer(self._text.open())
            self._csv.writerow(CSV_COLUMNS)
        self._text.close()


def _writer_class(fmt: str) -> Callable[[IO[bytes]], Writer]:
    """The writer of a file format, its module imported only when asked for (the HTML report's
    template and the CI formats are not a scan's start-up)."""
    if fmt == "html":
        from cellmap_schemas._scan.html import HtmlWriter

        return HtmlWriter
    if fmt in ("junit", "sarif", "github"):
        from cellmap_schemas._scan import formats_ci

        ci: dict[str, Callable[[IO[bytes]], Writer]] = {
            "junit": formats_ci.JunitWriter,
            "sarif": formats_ci.SarifWriter,
            "github": formats_ci.GithubWriter,
        }
        return ci[fmt]
    plain: dict[str, Callable[[IO[bytes]], Writer]] = {
        "json": JsonWriter,
        "ndjson": NdjsonWriter,
        "csv": CsvWriter,
    }
    return plain[fmt]


FORMATS: tuple[str, ...] = (
    "table", "json", "ndjson", "csv", "junit", "sarif", "github", "html",
)  # fmt: skip


def make_writer(fmt: ReportFormat, out: IO[bytes] | None, *, terminal: bool = False) -> Writer:
    """The writer of a format; ``out`` None means stdout (the table prints through rich)."""
    if fmt == "table":
        from cellmap_schemas._scan.table import TableWriter

        return TableWriter(out, terminal=terminal)
    if out is None:
        raise ValueError(f"format {fmt!r} needs an output stream")
    return _writer_class(fmt)(out)


# ---- the output file ------------------------------------------------------------------------
def output_problem(path: Path) -> str | None:
    """Why a report cannot be written at ``path``, or None: a report goes onto a regular file
    only (a symlink's target counts), never a directory, device, FIFO or socket."""
    try:
        st = os.stat(path)  # follows symlinks: the target is what is written
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if st is not None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return f"{path}: is a directory, not a report file"
        if not stat.S_ISREG(mode):
            what = (
                "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode)
                else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file"
            )  # fmt: skip
            return f"{path}: is {what}, not a regular file; reports are written to files only"
    real = Path(os.path.realpath(path))
    folder = real.parent
    if not folder.is_dir():
        return f"{path}: no such directory {str(path.parent if str(path.parent) else '.')!r}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{path}: cannot write in {str(folder)!r} (permission denied)"
    return None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only when the block succeeds.

    The data goes to a temporary file next to the file written (so ``os.replace`` is a rename on
    one filesystem); on any error the temporary file is removed and ``path`` is left untouched.
    A symlink is kept: its target is replaced. An existing report keeps its permission bits.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    directory = real.parent
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":  # python -m cellmap_schemas._scan.report --schema
    import json
    import sys

    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m cellmap_schemas._scan.report --schema")
    print(json.dumps(report_schema(), indent=2))
