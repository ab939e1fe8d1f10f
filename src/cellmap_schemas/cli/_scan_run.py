"""Running ``cellmap-schemas scan``: signals, the report's output, progress, resume, baseline.

A SIGINT, SIGTERM or SIGHUP stops the crawl; the nodes finished so far are reported (the summary
says ``interrupted``) and the exit status is 128 + the signal number. The report goes to stdout
or replaces its output file atomically at the end; a failed write names the output.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from cellmap_schemas.cli._common import EXIT_ERROR, EXIT_INTERRUPTED, describe, err

if TYPE_CHECKING:
    from cellmap_schemas._scan import NodeResult, ScanStream
    from cellmap_schemas._scan.baseline import Baseline
    from cellmap_schemas._scan.processes import WorkerPool
    from cellmap_schemas._scan.report import ReportFormat
    from cellmap_schemas.validation import Options

__all__ = ["SUFFIXES", "ScanRequest", "run"]

SUFFIXES = {
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
    ".xml": "junit",
    ".sarif": "sarif",
    ".html": "html",
    ".htm": "html",
}
"""Report formats by output file suffix."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _OutputFailed(Exception):
    """Writing the report failed (a full disk, a closed pipe): the message names the output."""


@dataclass(frozen=True, kw_only=True)
class ScanRequest:
    """What the command line asked for, checked: one scan and where its report goes."""

    url: str
    models: Sequence[str] | None
    concurrency: int
    jobs: int | None
    retries: int
    timeout: float
    storage_options: dict[str, Any]
    options: Options
    fmt: ReportFormat
    output: Path | None
    show: bool
    fail_on: Literal["invalid", "unreadable", "new", "never"]
    baseline: Path | None
    resume: Path | None
    dask: str | None
    max_document_size: int | None
    follow_symlinks: bool


def default_format(output: Path | None) -> str:
    """The report format of an output file's suffix; on stdout, a table on a terminal."""
    if output is not None:
        return SUFFIXES[output.suffix.lower()]
    return "table" if sys.stdout.isatty() else "json"


def run(req: ScanRequest) -> int:
    """Run the scan and write its report; the exit status (every failure is one line)."""
    _tune_gc()
    try:
        from cellmap_schemas._scan.baseline import Baseline, load_report
        from cellmap_schemas.synchronous import run_sync

        base = None
        if req.baseline is not None:
            base = Baseline(str(req.baseline), load_report(req.baseline)[1])
        resume = None
        if req.resume is not None:
            resume = (req.resume, *load_report(req.resume))
        with _workers(req) as pool:
            return run_sync(lambda: _run(req, base, resume, pool))
    except KeyboardInterrupt:  # before the signal handlers are in place
        err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _failed(req.url, exc, req.output)


@contextmanager
def _workers(req: ScanRequest) -> Iterator[WorkerPool | None]:
    """The scan's worker processes, forked now, while this process runs one thread (a fork
    copies only the forking thread); ``None`` where the scan runs in this process."""
    if req.dask is not None or req.resume is not None or req.jobs == 1:
        yield None
        return
    from cellmap_schemas._scan.processes import WorkerPool, available_cpus
    from cellmap_schemas.io.store import preload

    if req.jobs is None and available_cpus() == 1:
        yield None
        return
    preload(req.url)
    with WorkerPool(req.jobs) as pool:
        yield pool.start()


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
    rescan what the imports created (about a fifth of the CPU time of a large scan).

    The young generation is collected every 200,000 net allocations: a scan leaves almost no
    cyclic garbage (the diagnosis keeps no tracebacks), and on the 2,010-root benchmark tree
    20,000 cost ~10% more time for no smaller peak.
    """
    gc.freeze()
    gc.set_threshold(200_000, 50, 1000)


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

    def sync(self) -> None:
        """Push what was written to the file or pipe (the scan is about to wait)."""
        self._flushing(lambda: None)

    def finish(self, stream: ScanStream, summary: Any, datasets: Any) -> None:
        self._flushing(lambda: self.writer.finish(stream.root, stream.models, summary, datasets))

    def _flushing(self, write: Any) -> None:
        try:
            write()
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
    req: ScanRequest,
    baseline: Baseline | None,
    resume: tuple[Path, Any, list[NodeResult]] | None,
    pool: WorkerPool | None,
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
                    models=req.models, concurrency=req.concurrency, retries=req.retries,
                    timeout=req.timeout, storage_options=req.storage_options,
                    options=req.options,
                )  # fmt: skip
                if req.dask is not None:
                    from cellmap_schemas._scan.distributed import open_distributed_scan

                    opened: Any = open_distributed_scan(req.url, req.dask, **kw)
                else:
                    opened = open_scan(
                        req.url,
                        done=resume[2] if resume else None,
                        jobs=pool or 1,
                        max_document_size=req.max_document_size,
                        follow_symlinks=req.follow_symlinks,
                        **kw,
                    )
                async with opened as stream:
                    stream.options.fail_on = req.fail_on
                    if resume is not None:
                        _check_resume(resume[0], resume[1], stream)
                        stream.options.resume = str(resume[0])
                    if baseline is not None:
                        stream.options.baseline = baseline.source
                    code = await _consume(
                        stream, scope, caught, req.fmt, req.output, req.show, baseline,
                        make_writer, atomic_output, exit_code,
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
                    if stream.drained:
                        sink.sync()
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
