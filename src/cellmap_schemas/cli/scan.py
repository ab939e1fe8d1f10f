"""``cellmap-schemas scan``: stream the crawler's verdicts into a report.

The command checks its arguments, runs :func:`cellmap_schemas.asynchronous.open_scan` and feeds
each node to the chosen writer; the work is in the API.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

from cyclopts import Parameter

from cellmap_schemas.cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    Ignore,
    Select,
    StorageOptions,
    Strict,
    describe,
    err,
    options,
    storage_options,
)

if TYPE_CHECKING:
    from cellmap_schemas._scan import ScanStream
    from cellmap_schemas._scan.report import ReportFormat
    from cellmap_schemas.validation import Options

__all__ = ["scan"]

_SUFFIXES = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}


def scan(
    url: str,
    /,
    *,
    model: Annotated[list[str] | None, Parameter(name="--model", negative=())] = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float = 30.0,
    format: Annotated[
        Literal["table", "json", "ndjson", "csv"] | None, Parameter(name="--format")
    ] = None,
    output: Annotated[Path | None, Parameter(name=["--output", "-o"])] = None,
    progress: bool | None = None,
    fail_on: Literal["invalid", "unreadable", "never"] = "invalid",
    strict: Strict = False,
    select: Select = None,
    ignore: Ignore = None,
    storage_option: StorageOptions = None,
) -> int:
    """Audit every node below URL (a bucket, a folder of datasets or one container).

    Every array and group is read once, concurrently (chunks are never touched), and judged
    by every model whose markers it carries (a COSEM group by COSEM and by Neuroglancer N5);
    with --model, by the models given, for every node that carries their markers or shares a
    key with them. A dataset is the first path component below URL (URL itself when it is a
    container). The report gives each dataset's totals and verdict per model (a dataset where
    nothing was judged does not conform); --format json/ndjson/csv list every node with its
    errors and warnings, each naming its rule (`cellmap-schemas rules`).

    For example:
      cellmap-schemas scan s3://janelia-cosem-datasets --model multiscale.cosem.Group
      cellmap-schemas scan examples/cellmap-bucket --strict --ignore OME008
      cellmap-schemas scan examples/cellmap-bucket --format ndjson | jq -c 'select(.status)'
      cellmap-schemas scan /data/jrc_hela-2 -o report.csv --fail-on unreadable

    Exit status: 0 every judged node conforms, 1 a node is invalid or unreadable (see
    --fail-on), 2 URL cannot be read, unknown model or bad usage, 130 interrupted.

    Parameters
    ----------
    url: str
        Local path or s3://, gs://, http(s):// URL to scan.
    model: list[str] | None
        Judge nodes only by this model (repeatable; see `cellmap-schemas models`). Default:
        every model, each node by those whose markers it carries.
    concurrency: int
        Directories read at once on remote storage (each with its few requests); local disk
        is read in large batches instead.
    retries: int
        Extra attempts for a request that failed transiently (5xx, throttling, timeout, reset).
    timeout: float
        Seconds allowed for one attempt of one request.
    format: Literal["table", "json", "ndjson", "csv"] | None
        Report format. Default: table on a terminal, else json (with -o: from the file suffix,
        else json).
    output: Path | None
        Write the report to this file (replaced atomically when the scan ends) instead of stdout.
    progress: bool | None
        Show progress on stderr (nodes found and validated, requests, errors). Default: when
        stderr is a terminal.
    fail_on: Literal["invalid", "unreadable", "never"]
        What makes the exit status 1: an invalid or unreadable node (invalid), only an
        unreadable node (unreadable), nothing (never).
    strict: bool
        Warnings (SHOULD rules) fail a node too.
    select: list[str] | None
        Only these rules count: IDs or prefixes (repeatable), e.g. --select COSEM.
    ignore: list[str] | None
        Drop these rules: IDs or prefixes (repeatable), e.g. --ignore OME008.
    storage_option: list[str] | None
        fsspec storage option key=value (repeatable), e.g. anon=true.
    """
    from cellmap_schemas.errors import UnknownModelError
    from cellmap_schemas.registry import resolve

    try:
        for name in model or ():
            resolve(name)  # unknown names fail before any I/O
    except UnknownModelError as exc:
        err(f"{exc} (`cellmap-schemas models` lists them)")
        return EXIT_ERROR
    problems = [
        f"--concurrency must be at least 1, got {concurrency}" if concurrency < 1 else "",
        f"--retries must be 0 or more, got {retries}" if retries < 0 else "",
        f"--timeout must be positive, got {timeout:g}" if not timeout > 0 else "",
    ]
    if output is not None:
        # checked before the scan, which may take hours, rather than when the report is written
        folder = output.parent if str(output.parent) else Path(".")
        if output.is_dir():
            problems.append(f"{output}: is a directory, not a report file")
        elif not folder.is_dir():
            problems.append(f"{output}: no such directory {str(folder)!r}")
        elif not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"{output}: cannot write in {str(folder)!r} (permission denied)")
    if any(problems):
        err(next(p for p in problems if p))
        return EXIT_ERROR

    fmt: ReportFormat = format or _default_format(output)
    show = sys.stderr.isatty() if progress is None else progress
    _tune_gc()
    try:
        from cellmap_schemas.io.read import run_sync

        store_options = storage_options(storage_option)
        verdict_options = options(strict, select, ignore)
        return run_sync(
            lambda: _run(
                url,
                models=model,
                concurrency=concurrency,
                retries=retries,
                timeout=timeout,
                storage_options=store_options,
                options=verdict_options,
                fmt=fmt,
                output=output,
                show=show,
                fail_on=fail_on,
            )
        )
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("CELLMAP_SCHEMAS_DEBUG"):
            raise
        err(_describe(url, exc, output))
        return EXIT_ERROR


def _tune_gc() -> None:
    """A scan allocates many short-lived objects and few cycles: collect less often, and never
    rescan what the imports created (about a fifth of the CPU time of a large scan)."""
    gc.freeze()
    gc.set_threshold(200_000, 50, 1000)


def _default_format(output: Path | None) -> ReportFormat:
    if output is not None:
        return _SUFFIXES.get(output.suffix.lower(), "json")  # type: ignore[return-value]
    return "table" if sys.stdout.isatty() else "json"


async def _run(
    url: str,
    *,
    models: Sequence[str] | None,
    concurrency: int,
    retries: int,
    timeout: float,
    storage_options: dict[str, Any],
    options: Options,
    fmt: ReportFormat,
    output: Path | None,
    show: bool,
    fail_on: Literal["invalid", "unreadable", "never"],
) -> int:
    from cellmap_schemas._scan.report import atomic_output, exit_code, make_writer
    from cellmap_schemas.asynchronous import open_scan

    async with open_scan(
        url,
        models=models,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        storage_options=storage_options,
        options=options,
    ) as stream:
        with ExitStack() as stack:
            out: IO[bytes] | None
            if output is not None:
                out = stack.enter_context(atomic_output(output))
            elif fmt == "table":
                out = None
            else:
                sys.stdout.flush()
                out = sys.stdout.buffer
            writer = make_writer(fmt, out, terminal=False)
            add = writer.node
            dataset_of = stream.dataset_of
            with _progress(stream) if show else nullcontext():
                async for node in stream:
                    add(node, dataset_of(node.path))
            summary, datasets = stream.finish()
            writer.finish(stream.root, stream.models, summary, datasets)
            if out is not None:
                out.flush()
    return exit_code(summary, fail_on)


@contextmanager
def _progress(stream: ScanStream) -> Iterator[None]:
    """A live line on stderr; rich refreshes it from its own thread, reading the counters."""
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, TimeElapsedColumn
    from rich.text import Text

    class Counters(ProgressColumn):
        def render(self, task: Any) -> Text:
            s = stream.summary
            return Text(
                f"{stream.found} nodes found, {stream.done} validated, "
                f"{stream.requests} requests, {s.invalid + s.unreadable} errors"
            )

    with Progress(
        SpinnerColumn(),
        Counters(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        refresh_per_second=8,
    ) as bar:
        bar.add_task("scan", total=None)
        yield


def _describe(url: str, exc: BaseException, output: Path | None) -> str:
    text = describe(url, exc)
    if isinstance(exc, OSError) and output is not None and str(output) in str(exc):
        return str(exc)
    return text
