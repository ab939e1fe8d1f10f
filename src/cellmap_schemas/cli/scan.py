"""``cellmap-schemas scan``: stream the crawler's verdicts into a report.

The command checks its arguments (and the output file) before any I/O, runs
:func:`cellmap_schemas.asynchronous.open_scan` and feeds each node to the chosen writer. A
SIGINT, SIGTERM or SIGHUP stops the crawl; the nodes finished so far are reported (the summary
says ``interrupted``) and the exit status is 128 + the signal number.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
import time
from collections.abc import Sequence
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
    from cellmap_schemas._scan import NodeResult, ScanStream
    from cellmap_schemas._scan.baseline import Baseline
    from cellmap_schemas._scan.report import ReportFormat
    from cellmap_schemas.validation import Options

__all__ = ["scan"]

_SUFFIXES = {
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
    ".xml": "junit",
    ".sarif": "sarif",
    ".html": "html",
    ".htm": "html",
}
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Format = Literal["table", "json", "ndjson", "csv", "junit", "sarif", "github", "html"]


class _OutputFailed(Exception):
    """Writing the report failed (full disk, ...): the message names the output, not the URL."""


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def scan(
    url: str,
    /,
    *,
    model: Annotated[list[str] | None, Parameter(name="--model", negative=())] = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float = 30.0,
    format: Annotated[Format | None, Parameter(name="--format")] = None,
    output: Annotated[Path | None, Parameter(name=["--output", "-o"])] = None,
    progress: bool | None = None,
    fail_on: Literal["invalid", "unreadable", "new", "never"] = "invalid",
    baseline: Annotated[Path | None, Parameter(name="--baseline")] = None,
    resume: Annotated[Path | None, Parameter(name="--resume")] = None,
    strict: Strict = False,
    select: Select = None,
    ignore: Ignore = None,
    storage_option: StorageOptions = None,
    dask: Annotated[str | None, Parameter(name="--dask")] = None,
    max_document_size: Annotated[int | None, Parameter(name="--max-document-size")] = None,
    follow_symlinks: Annotated[bool, Parameter(name="--follow-symlinks", negative=())] = False,
) -> int:
    """Audit every node below URL (a bucket, a folder of datasets or one container).

    Every array and group is read once, concurrently (chunks are never touched), and judged
    by every model whose markers it carries (a COSEM group by COSEM and by Neuroglancer N5);
    with --model, by the models given, for every node that carries their markers or shares a
    key with them. A dataset is the first path component below URL (URL itself when it is a
    container). The report gives each dataset's totals and verdict per model (a dataset where
    nothing was judged does not conform); --format json/ndjson/csv list every node with its
    errors and warnings, each naming its rule (`cellmap-schemas rules`); junit, sarif and
    github are for CI. docs/reports.md describes the records.

    SIGINT, SIGTERM or SIGHUP stop the scan: the nodes finished so far are reported, marked
    interrupted; --resume on that ndjson (or json) report continues it.

    For example:
      cellmap-schemas scan s3://janelia-cosem-datasets --model multiscale.cosem.Group
      cellmap-schemas scan examples/cellmap-bucket --strict --ignore OME008
      cellmap-schemas scan examples/cellmap-bucket --format ndjson | jq -c 'select(.status)'
      cellmap-schemas scan /data/jrc_hela-2 -o report.csv --fail-on unreadable
      cellmap-schemas scan /data -o today.ndjson --baseline yesterday.ndjson --fail-on new
      cellmap-schemas scan /data -o today.ndjson --resume today.ndjson

    Exit status: 0 every judged node conforms, 1 a node is invalid or unreadable (see
    --fail-on), 2 URL cannot be read, unknown model or bad usage, 129/130/143 interrupted
    by SIGHUP/SIGINT/SIGTERM.

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
    format: Literal["table", "json", "ndjson", "csv", "junit", "sarif", "github", "html"] | None
        Report format. Default: table on a terminal, else json; with -o, from the file suffix
        (.json, .ndjson/.jsonl, .csv, .xml for junit, .sarif).
    output: Path | None
        Write the report to this regular file (replaced atomically when the scan ends, keeping
        its permissions; a symlink's target is replaced) instead of stdout.
    progress: bool | None
        Show progress on stderr (nodes found and validated, requests, errors): a live line on
        a terminal, else a status line now and then. Default: when stderr is a terminal.
    fail_on: Literal["invalid", "unreadable", "new", "never"]
        What makes the exit status 1: an invalid or unreadable node (invalid), only an
        unreadable node (unreadable), a failure the --baseline report did not have (new),
        nothing (never).
    baseline: Path | None
        An earlier report (json, ndjson or csv): each node gets its change (new_failure,
        fixed, still_failing, unchanged, new) and the summary the counts.
    resume: Path | None
        The ndjson or json report of an interrupted scan of URL with the same options: its
        nodes are taken as they are, the scan does the rest.
    strict: bool
        Warnings (SHOULD rules) fail a node too.
    select: list[str] | None
        Only these rules count: IDs or prefixes (repeatable), e.g. --select COSEM.
    ignore: list[str] | None
        Drop these rules: IDs or prefixes (repeatable), e.g. --ignore OME008.
    storage_option: list[str] | None
        fsspec storage option key=value (repeatable), e.g. anon=true.
    dask: str | None
        Shard the scan over a Dask cluster: tcp://HOST:PORT (a running scheduler) or local:N
        (N worker processes on this machine); the report is the one a single process gives.
        Needs `pip install 'cellmap-schemas[dask]'`.
    max_document_size: int | None
        Largest metadata document read, in bytes (default 16 MiB); a larger one makes its node
        unreadable, without reading it whole.
    follow_symlinks: bool
        On local disk, follow symlinks that lead outside URL (by default such a link is
        reported, not followed; links into /proc, /sys and /dev never are).
    """

    problem = _usage_problem(
        model, concurrency, retries, timeout, fail_on, baseline, resume, dask,
        max_document_size, output, format,
    )  # fmt: skip
    if problem:
        err(problem)
        return EXIT_ERROR

    fmt: ReportFormat = format or _default_format(output)  # type: ignore[assignment]
    show = sys.stderr.isatty() if progress is None else progress
    _tune_gc()
    try:
        from cellmap_schemas._scan.baseline import Baseline, load_report
        from cellmap_schemas.io.read import run_sync

        store_options = storage_options(storage_option)
        verdict_options = options(strict, select, ignore)
        base = None
        if baseline is not None:
            base = Baseline(str(baseline), load_report(baseline)[1])
        done: tuple[Any, list[NodeResult]] | None = None
        if resume is not None:
            done = load_report(resume)
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
                baseline=base,
                resume=(resume, *done) if resume is not None and done is not None else None,
                dask=dask,
                store_limits={
                    "max_document_size": max_document_size,
                    "follow_symlinks": follow_symlinks,
                },
            )
        )
    except KeyboardInterrupt:  # before the signal handlers are in place
        err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _failed(url, exc, output)


def _failed(url: str, exc: Exception, output: Path | None) -> int:
    """The exit status of a scan that raised, after its one error line (if any)."""
    leaf = _output_failure(exc)
    if isinstance(leaf, BrokenPipeError):  # the reader left (| head): end quietly, as cat
        _silence_stdout()
        return 0
    if isinstance(leaf, _OutputFailed):
        _silence_stdout()
        err(str(leaf))
        return EXIT_ERROR
    if os.environ.get("CELLMAP_SCHEMAS_DEBUG"):
        raise exc
    err(_describe(url, exc, output))
    return EXIT_ERROR


def _usage_problem(
    model: Sequence[str] | None,
    concurrency: int,
    retries: int,
    timeout: float,
    fail_on: str,
    baseline: Path | None,
    resume: Path | None,
    dask: str | None,
    max_document_size: int | None,
    output: Path | None,
    format: str | None,
) -> str | None:
    """The first thing wrong with the arguments, checked before a scan that may take hours."""
    from cellmap_schemas._scan.report import FORMATS, output_problem
    from cellmap_schemas.errors import UnknownModelError
    from cellmap_schemas.registry import resolve

    try:
        for name in model or ():
            resolve(name)
    except UnknownModelError as exc:
        return f"{exc} (`cellmap-schemas models` lists them)"
    problems = [
        f"--concurrency must be at least 1, got {concurrency}" if concurrency < 1 else "",
        f"--retries must be 0 or more, got {retries}" if retries < 0 else "",
        f"--timeout must be positive, got {timeout:g}" if not timeout > 0 else "",
        "--fail-on new needs --baseline" if fail_on == "new" and baseline is None else "",
        "--resume does not combine with --dask" if resume is not None and dask else "",
        "--max-document-size must be positive"
        if max_document_size is not None and max_document_size < 1
        else "",
    ]
    if output is not None:
        problems.append(output_problem(output) or "")
        if format is None and _SUFFIXES.get(output.suffix.lower()) not in FORMATS:
            choices = ", ".join(k for k, v in _SUFFIXES.items() if v in FORMATS)
            problems.append(
                f"{output}: unknown report suffix {output.suffix or '(none)'!r}; "
                f"use {choices} or --format"
            )
    if dask is not None:
        from cellmap_schemas._scan.distributed import DistributedNotInstalled, require_distributed

        try:
            require_distributed()
        except DistributedNotInstalled as exc:
            problems.append(str(exc))
    return next((p for p in problems if p), None)


def _output_failure(exc: BaseException) -> BaseException | None:
    """The output's own failure (a closed pipe, a full disk), also from inside a task group."""
    stack = [exc]
    while stack:
        e = stack.pop()
        if isinstance(e, BrokenPipeError | _OutputFailed):
            return e
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
    return None


def _tune_gc() -> None:
    """A scan allocates many short-lived objects and few cycles: collect less often, and never
    rescan what the imports created (about a fifth of the CPU time of a large scan)."""
    gc.freeze()
    gc.set_threshold(200_000, 50, 1000)


def _default_format(output: Path | None) -> str:
    if output is not None:
        return _SUFFIXES[output.suffix.lower()]
    return "table" if sys.stdout.isatty() else "json"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _Out:
    """The writer and its stream; a failed write names the output (``stdout`` or the file)."""

    def __init__(self, writer: Any, out: IO[bytes] | None, name: str) -> None:
        self.writer = writer
        self.out = out
        self.name = name

    def _failed(self, exc: OSError) -> _OutputFailed:
        return _OutputFailed(f"{self.name}: {exc.strerror or exc}")

    def node(self, node: NodeResult, dataset: str) -> None:
        try:
            self.writer.node(node, dataset)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from None

    def finish(self, stream: ScanStream, summary: Any, datasets: Any) -> None:
        try:
            self.writer.finish(stream.root, stream.models, summary, datasets)
            if self.out is not None:
                self.out.flush()
            elif self.name == "stdout":
                sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise BrokenPipeError(*exc.args) from None
            raise self._failed(exc) from None


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
    fail_on: Literal["invalid", "unreadable", "new", "never"],
    baseline: Baseline | None,
    resume: tuple[Path, Any, list[NodeResult]] | None,
    dask: str | None = None,
    store_limits: dict[str, Any] | None = None,
) -> int:
    import anyio

    from cellmap_schemas._scan.report import atomic_output, exit_code, make_writer
    from cellmap_schemas.asynchronous import open_scan

    caught: list[int] = []
    # The handlers are in place before the output file exists: a signal at any point of the
    # scan ends in a report, and never leaves the temporary file behind.
    with anyio.open_signal_receiver(*_SIGNALS) as signals:
        async with anyio.create_task_group() as outer:

            async def watch() -> None:
                async for signum in signals:
                    caught.append(signum)
                    scope.cancel()
                    return

            outer.start_soon(watch)
            scope = anyio.CancelScope()
            try:
                kw: dict[str, Any] = dict(
                    models=models, concurrency=concurrency, retries=retries, timeout=timeout,
                    storage_options=storage_options, options=options,
                )  # fmt: skip
                if dask is not None:
                    from cellmap_schemas._scan.distributed import open_distributed_scan

                    opened: Any = open_distributed_scan(url, dask, **kw)
                else:
                    opened = open_scan(
                        url, done=resume[2] if resume else None, **kw, **(store_limits or {})
                    )
                async with opened as stream:
                    stream.options.fail_on = fail_on
                    if resume is not None:
                        _check_resume(resume[0], resume[1], stream)
                        stream.options.resume = str(resume[0])
                    if baseline is not None:
                        stream.options.baseline = baseline.source
                    code = await _consume(
                        stream, scope, caught, fmt, output, show, baseline, make_writer,
                        atomic_output, exit_code,
                    )  # fmt: skip
            finally:
                outer.cancel_scope.cancel()
    if caught:
        return 128 + caught[0]
    return code


async def _consume(
    stream: ScanStream,
    scope: Any,
    caught: list[int],
    fmt: ReportFormat,
    output: Path | None,
    show: bool,
    baseline: Baseline | None,
    make_writer: Any,
    atomic_output: Any,
    exit_code: Any,
) -> int:
    import anyio

    from cellmap_schemas._scan.report import printable

    with atomic_output(output) if output is not None else _stdout(fmt) as out:
        name = str(output) if output is not None else "stdout"
        sink = _Out(make_writer(fmt, out, terminal=False), out, name)
        dataset_of = stream.dataset_of
        change = baseline.change if baseline is not None else None

        def add(node: NodeResult) -> None:
            if change is not None:
                import msgspec

                node = msgspec.structs.replace(node, change=change(node))
            sink.node(node, node.dataset or dataset_of(node.path))

        async with anyio.create_task_group() as tg:
            if show:
                tg.start_soon(_progress, stream)
            with scope:
                async for node in stream:
                    add(node)
            tg.cancel_scope.cancel()
        interrupted = bool(caught)
        if interrupted:
            for node in stream.ready():  # finished, not handed out yet: reported too
                add(node)
        summary, datasets = stream.finish(interrupted=interrupted)
        if baseline is not None:
            summary.baseline = baseline.finish()
        sink.finish(stream, summary, datasets)
        if interrupted:
            sig = signal.Signals(caught[0]).name
            err(printable(f"interrupted by {sig}: {summary.nodes} nodes reported"))
    code: int = exit_code(summary, stream.options.fail_on)
    return code


class _stdout:
    """stdout as the report's binary stream (None for the table, which prints through rich)."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt

    def __enter__(self) -> IO[bytes] | None:
        if self._fmt == "table":
            return None
        sys.stdout.flush()
        return sys.stdout.buffer

    def __exit__(self, *exc: object) -> None:
        return None


def _check_resume(path: Path, summary: Any, stream: ScanStream) -> None:
    """A report resumes only the scan it is a part of: same root, same verdict options."""
    if summary is None:
        return  # killed outright: the records are all there is to go by
    o, n = summary.options, stream.options
    ours = (summary.root, o.models, o.strict, o.select, o.ignore)
    theirs = (stream.root, n.models, n.strict, n.select, n.ignore)
    if ours != theirs:
        raise ValueError(
            f"--resume {path}: that report is of another scan ({summary.root}, models "
            f"{o.models or 'all'}, strict={o.strict}, select={o.select}, ignore={o.ignore})"
        )


async def _progress(stream: ScanStream) -> None:
    """Progress on stderr: a live line on a terminal, else a status line at 1, 2, 4, ... 60 s
    (a CI log gets a few lines, not a spinner)."""
    import anyio

    def status() -> str:
        s = stream.summary
        return (
            f"{stream.found} nodes found, {stream.done} validated, "
            f"{stream.requests} requests, {s.invalid + s.unreadable} errors"
        )

    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress, ProgressColumn, SpinnerColumn, TimeElapsedColumn
        from rich.text import Text

        class Counters(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(status())

        with Progress(
            SpinnerColumn(),
            Counters(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            refresh_per_second=8,
        ) as bar:
            bar.add_task("scan", total=None)
            await anyio.sleep_forever()
    started = time.monotonic()
    wait = 1.0
    while True:
        await anyio.sleep(wait)
        print(f"scan: {status()} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        wait = min(wait * 2, 60.0)


def _describe(url: str, exc: BaseException, output: Path | None) -> str:
    from cellmap_schemas._scan.baseline import ReportError

    if isinstance(exc, ReportError):
        return str(exc)
    text = describe(url, exc)
    if isinstance(exc, OSError) and output is not None and str(output) in str(exc):
        return str(exc)
    return text
