"""What a scan found: per-node results, per-dataset totals, and the four output formats.

The JSON document has exactly this shape (``ScanReport`` encodes to it)::

    {"root": str, "models": [str],
     "summary": {"nodes", "groups", "arrays", "valid", "invalid", "unreadable", "datasets",
                 "elapsed_s", "requests"},
     "datasets": [{"name", "nodes", "valid", "invalid", "unreadable", "conforms"}],
     "nodes": [{"path", "kind", "format", "status",
                "results": {MODEL: {"valid", "errors": [{"loc", "msg"}]}}, "error"}]}

Writers consume nodes as the crawler finishes them. ``ndjson``, ``csv`` and ``table`` keep no node
in memory (the table keeps a bounded list of failures); ``json`` keeps each node as its encoded
bytes, since the document's summary precedes its nodes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import msgspec

from cellmap_schemas.formats import Format as NodeFormat
from cellmap_schemas.formats import Kind
from cellmap_schemas.validation import Finding, ModelResult, Status

__all__ = [
    "FORMATS",
    "DatasetSummary",
    "FailOn",
    "ModelTally",
    "NodeResult",
    "ReportFormat",
    "ScanReport",
    "Summary",
    "Tally",
    "Writer",
    "atomic_output",
    "exit_code",
    "make_writer",
]

ReportFormat = Literal["table", "json", "ndjson", "csv"]
FailOn = Literal["invalid", "unreadable", "never"]
FORMATS: tuple[str, ...] = ("table", "json", "ndjson", "csv")


class NodeResult(msgspec.Struct, frozen=True):
    """One node's verdict.

    ``path`` is relative to the scanned root, ``/``-separated, without a leading slash (the root
    itself is ``""``). ``kind`` and ``format`` are ``None`` only when an unreadable node gave no
    clue. ``results`` has one entry per applicable model (CLI name); ``error`` says why an
    ``unreadable`` node could not be read.
    """

    path: str
    kind: Kind | None
    format: NodeFormat | None
    status: Status
    results: dict[str, ModelResult] = {}
    error: str | None = None


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


class Summary(msgspec.Struct):
    """Totals of a whole scan."""

    nodes: int = 0
    groups: int = 0
    arrays: int = 0
    valid: int = 0
    invalid: int = 0
    unreadable: int = 0
    warnings: int = 0
    """Nodes with at least one warning (valid or not)."""
    datasets: int = 0
    elapsed_s: float = 0.0
    requests: int = 0


class ScanReport(msgspec.Struct):
    """A finished scan, as returned by :func:`cellmap_schemas.scan` (``msgspec.json.encode`` of
    it is the ``--format json`` document)."""

    root: str
    models: list[str]
    summary: Summary
    datasets: list[DatasetSummary]
    nodes: list[NodeResult]

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


def exit_code(summary: Summary, fail_on: FailOn = "invalid") -> int:
    """0 when the scan passes, 1 when it fails.

    ``invalid`` (default): any invalid or unreadable node fails the scan (a node that could not be
    read cannot be said to conform). ``unreadable``: only unreadable nodes fail it. ``never``:
    report, never fail.
    """
    if fail_on == "never":
        return 0
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
        self.summary.datasets = len(self._datasets)
        datasets = [self._datasets[k] for k in sorted(self._datasets)]
        for d in datasets:
            d.conforms = bool(d.models) and d.invalid == 0 and d.unreadable == 0
            d.models = dict(sorted(d.models.items()))
        return self.summary, datasets


# ---- writers --------------------------------------------------------------------------------
class Writer(Protocol):
    """Receives nodes as they finish, then the totals."""

    def node(self, node: NodeResult, dataset: str) -> None: ...

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None: ...


_encoder = msgspec.json.Encoder()


class JsonWriter:
    """One document; nodes sorted by path so that two scans of a tree compare equal."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._nodes: list[tuple[str, bytes]] = []

    def node(self, node: NodeResult, dataset: str) -> None:
        self._nodes.append((node.path, _encoder.encode(node)))

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        self._nodes.sort(key=lambda item: item[0])
        enc = _encoder.encode
        out = self._out
        out.write(b'{"root":' + enc(root) + b',"models":' + enc(models))
        out.write(b',"summary":' + enc(summary) + b',"datasets":' + enc(datasets))
        out.write(b',"nodes":[')
        for i, (_, raw) in enumerate(self._nodes):
            if i:
                out.write(b",")
            out.write(raw)
        out.write(b"]}\n")
        self._nodes.clear()


class NdjsonWriter:
    """One node per line as it finishes; the last line holds the summary and the datasets."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def node(self, node: NodeResult, dataset: str) -> None:
        self._out.write(_encoder.encode(node) + b"\n")

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        line = _encoder.encode({"summary": summary, "datasets": datasets})
        self._out.write(line + b"\n")


CSV_COLUMNS = (
    "path", "kind", "format", "status", "model", "valid", "errors", "warnings", "error",
)  # fmt: skip


def _join(findings: tuple[Finding, ...]) -> str:
    return "; ".join(
        f"{f.rule} {f.loc}: {f.msg}" if f.loc else f"{f.rule} {f.msg}" for f in findings
    )


class CsvWriter:
    """One row per node and model (a node without applicable model gets one row, model empty)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None

    def _start(self) -> None:
        # the header waits for the first row: a scan that cannot start prints nothing
        self._text = io.TextIOWrapper(self._out, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text)
        self._csv.writerow(CSV_COLUMNS)

    def node(self, node: NodeResult, dataset: str) -> None:
        if self._csv is None:
            self._start()
        head = (node.path, node.kind or "", node.format or "", node.status)
        error = node.error or ""
        if not node.results:
            self._csv.writerow((*head, "", "", "", "", error))
            return
        for name, result in node.results.items():
            valid = "true" if result.valid else "false"
            row = (*head, name, valid, _join(result.errors), _join(result.warnings), error)
            self._csv.writerow(row)

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        if self._text is None:
            self._start()
        assert self._text is not None
        self._text.flush()
        self._text.detach()


class TableWriter:
    """A rich table per dataset, then the first failures (the full list is in json/ndjson)."""

    MAX_FAILURES = 50

    def __init__(self, out: IO[bytes] | None, *, terminal: bool) -> None:
        self._out = out
        self._terminal = terminal
        self._failures: list[tuple[str, NodeResult]] = []
        self._more = 0

    def node(self, node: NodeResult, dataset: str) -> None:
        if node.status in ("invalid", "unreadable"):
            if len(self._failures) < self.MAX_FAILURES:
                self._failures.append((dataset, node))
            else:
                self._more += 1

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        from rich.table import Table

        with self._console() as console:
            table = Table(title=f"cellmap-schemas scan {root}", title_justify="left")
            for col, justify in (
                ("dataset", "left"),
                ("nodes", "right"),
                ("valid", "right"),
                ("invalid", "right"),
                ("unreadable", "right"),
                ("n/a", "right"),
                ("warnings", "right"),
                ("verdict", "left"),
            ):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
            for d in datasets:
                na = d.nodes - d.valid - d.invalid - d.unreadable
                table.add_row(
                    _escape(d.name),
                    str(d.nodes),
                    str(d.valid),
                    str(d.invalid),
                    str(d.unreadable),
                    str(na),
                    str(d.warnings),
                    _verdict(d),
                )
            console.print(table)
            if self._failures:
                fails = Table(title="failures", title_justify="left")
                for col in ("path", "status", "reason"):
                    fails.add_column(col, overflow="fold")
                for _, node in sorted(self._failures, key=lambda f: f[1].path):
                    fails.add_row(_escape(node.path or "."), node.status, _escape(_reason(node)))
                console.print(fails)
                if self._more:
                    console.print(f"... and {self._more} more (see --format json)")
            s = summary
            console.print(
                f"{s.nodes} nodes ({s.groups} groups, {s.arrays} arrays) in {s.datasets} "
                f"datasets: {s.valid} valid, {s.invalid} invalid, {s.unreadable} unreadable, "
                f"{s.warnings} with warnings; "
                f"{s.requests} requests in {s.elapsed_s:.2f} s"
                + (f"; models: {', '.join(models)}" if len(models) < len(_all_models()) else ""),
                soft_wrap=True,
            )

    @contextlib.contextmanager
    def _console(self) -> Iterator[Any]:
        from rich.console import Console

        if self._out is None:
            yield Console(highlight=False)
            return
        text = io.TextIOWrapper(self._out, encoding="utf-8", newline="\n", write_through=True)
        try:
            yield Console(
                file=text,
                force_terminal=self._terminal,
                no_color=not self._terminal,
                width=None if self._terminal else 160,
                highlight=False,
            )
        finally:
            text.flush()
            text.detach()


def _all_models() -> tuple[str, ...]:
    from cellmap_schemas.registry import MODELS

    return tuple(MODELS)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _verdict(d: DatasetSummary) -> str:
    """A dataset's verdict, in words (never colour alone), with the models that failed it."""
    if not d.models:
        return "nothing judged"
    if d.conforms:
        return "[green]conforms[/]"
    failed = [name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1]
              for name, t in d.models.items() if t.invalid]  # fmt: skip
    return "[red]fails[/]" + (f" ({', '.join(failed)})" if failed else "")


def _reason(node: NodeResult) -> str:
    if node.error:
        return node.error
    parts = []
    for name, result in node.results.items():
        if not result.valid:
            first = (result.errors or result.warnings or (None,))[0]
            detail = ""
            if first is not None:
                detail = f"{first.rule} {first.loc}: {first.msg}" if first.loc else first.msg
            n = len(result.errors) + len(result.warnings)
            extra = f" (+{n - 1} more)" if n > 1 else ""
            parts.append(f"{name}: {detail}{extra}")
    return "; ".join(parts)


def make_writer(fmt: ReportFormat, out: IO[bytes] | None, *, terminal: bool = False) -> Writer:
    """The writer of a format; ``out`` None means stdout (the table prints through rich)."""
    if fmt == "table":
        return TableWriter(out, terminal=terminal)
    if out is None:
        raise ValueError(f"format {fmt!r} needs an output stream")
    writers: dict[str, Callable[[IO[bytes]], Writer]] = {
        "json": JsonWriter,
        "ndjson": NdjsonWriter,
        "csv": CsvWriter,
    }
    return writers[fmt](out)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only when the block succeeds.

    The data goes to a temporary file in the same directory (so ``os.replace`` is a rename on
    one filesystem); on any error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
