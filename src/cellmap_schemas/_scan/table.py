"""The ``table`` report: a rich table per dataset and model, then the first failures."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import IO, Any

from cellmap_schemas._scan.report import (
    DatasetSummary,
    NodeResult,
    Summary,
    printable,
)
from cellmap_schemas.validation import Finding

__all__ = ["TableWriter"]


class TableWriter:
    """What changed (against a baseline), a table per dataset, then the first failures (the
    full list is in json/ndjson). Every name is shown through :func:`printable`."""

    MAX_FAILURES = 50

    def __init__(self, out: IO[bytes] | None, *, terminal: bool) -> None:
        self._out = out
        self._terminal = terminal
        self._failures: list[NodeResult] = []
        self._more = 0
        self._changes: dict[str, list[NodeResult]] = {"new_failure": [], "fixed": []}
        self._more_changes = 0

    def node(self, node: NodeResult, dataset: str) -> None:
        if node.change in self._changes:
            shown = self._changes[node.change]
            if len(shown) < self.MAX_FAILURES:
                shown.append(node)
            else:
                self._more_changes += 1
        if node.failing:
            if len(self._failures) < self.MAX_FAILURES:
                self._failures.append(node)
            else:
                self._more += 1

    def finish(
        self, root: str, models: list[str], summary: Summary, datasets: list[DatasetSummary]
    ) -> None:
        from rich.table import Table

        with self._console() as console:
            s = summary
            if s.interrupted:
                console.print(
                    f"interrupted: {s.nodes} nodes finished before the scan was stopped "
                    "(resume it with --resume on an ndjson report)",
                    soft_wrap=True,
                )
            b = s.baseline
            if b is not None:
                console.print(
                    f"since {_escape(b.source)}: {b.new_failures} new failures, {b.fixed} fixed, "
                    f"{b.still_failing} still failing, {b.new_nodes} new nodes, "
                    f"{b.removed_nodes} removed",
                    soft_wrap=True,
                )
                if any(self._changes.values()):
                    changes = Table(title="changes", title_justify="left")
                    for col in ("change", "path", "status", "reason"):
                        changes.add_column(col, overflow="fold")
                    for change, nodes in self._changes.items():
                        for node in sorted(nodes, key=lambda n: n.path):
                            changes.add_row(
                                change.replace("_", " "),
                                _escape(node.path or "."),
                                node.status,
                                _escape(_reason(node)),
                            )
                    console.print(changes)
                    if self._more_changes:
                        console.print(f"... and {self._more_changes} more changes")
            table = Table(title=f"cellmap-schemas scan {_escape(root)}", title_justify="left")
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
            console.print(_per_model(datasets))
            if self._failures:
                fails = Table(title="failures", title_justify="left")
                for col in ("path", "status", "reason"):
                    fails.add_column(col, overflow="fold")
                for node in sorted(self._failures, key=lambda n: n.path):
                    fails.add_row(_escape(node.path or "."), node.status, _escape(_reason(node)))
                console.print(fails)
                if self._more:
                    console.print(f"... and {self._more} more (see --format json)")
            unknown = f", {s.unknown} unknown" if s.unknown else ""
            console.print(
                f"{s.nodes} nodes ({s.groups} groups, {s.arrays} arrays{unknown}) in "
                f"{len(datasets)} datasets: {s.valid} valid, {s.invalid} invalid, "
                f"{s.unreadable} unreadable, {s.warnings} with warnings; "
                f"{s.requests} requests in {s.elapsed_s:.2f} s"
                + (f"; models: {', '.join(models)}" if summary.options.models else ""),
                soft_wrap=True,
            )

    @contextlib.contextmanager
    def _console(self) -> Iterator[Any]:
        from rich.console import Console as RichConsole

        class Console(RichConsole):
            def on_broken_pipe(self) -> None:
                # rich exits with status 1; the caller ends quietly instead (``| head``)
                raise BrokenPipeError

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


def _per_model(datasets: list[DatasetSummary]) -> Any:
    """Each model's verdicts per dataset: a COSEM group counts for COSEM and Neuroglancer."""
    from rich.table import Table

    table = Table(title="verdicts per model", title_justify="left")
    for col, justify in (
        ("dataset", "left"), ("model", "left"), ("judged", "right"), ("valid", "right"),
        ("invalid", "right"), ("warnings", "right"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for d in datasets:
        for name, t in d.models.items():
            table.add_row(
                _escape(d.name), name, str(t.judged), str(t.valid), str(t.invalid), str(t.warnings)
            )
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(printable(text))


def _verdict(d: DatasetSummary) -> str:
    """A dataset's verdict, in words (never colour alone); "verdicts per model" says which.
    The same three words as the HTML report: an unreadable node fails a dataset even where
    nothing could be judged."""
    if not d.models:
        return "[red]fails[/] (unreadable)" if d.unreadable else "nothing judged"
    if d.conforms:
        return "[green]conforms[/]"
    failed = sum(1 for t in d.models.values() if t.invalid)
    return "[red]fails[/]" + (f" ({failed} model{'s' if failed != 1 else ''})" if failed else "")


def _finding_text(f: Finding) -> str:
    return f"{f.rule} {f.loc}: {f.msg}" if f.loc else f"{f.rule} {f.msg}"


def _reason(node: NodeResult) -> str:
    if node.error:
        return node.error
    parts = []
    for name, result in node.results.items():
        if not result.valid:
            first = (result.errors or result.warnings or (None,))[0]
            detail = ""
            if first is not None:
                detail = _finding_text(first) if first.loc else first.msg
            n = len(result.errors) + len(result.warnings)
            extra = f" (+{n - 1} more)" if n > 1 else ""
            parts.append(f"{name}: {detail}{extra}")
    return "; ".join(parts)
