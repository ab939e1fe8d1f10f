"""``cellmap-schemas scan``: the command and its argument checks; running the scan and
writing its report is :mod:`cellmap_schemas.cli._scan_run`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from cyclopts import Parameter

from cellmap_schemas.cli._common import (
    EXIT_ERROR,
    Ignore,
    Select,
    StorageOptions,
    Strict,
    at_least,
    err,
    guard,
    options,
    positive,
    storage_options,
)

__all__ = ["scan"]

Format = Literal["table", "json", "ndjson", "csv", "junit", "sarif", "github", "html"]


def scan(
    url: str,
    /,
    *,
    model: Annotated[list[str] | None, Parameter(name="--model", negative=())] = None,
    concurrency: Annotated[int, Parameter(validator=at_least(1))] = 64,
    jobs: Annotated[int | None, Parameter(name=["--jobs", "-j"], validator=at_least(1))] = None,
    retries: Annotated[int, Parameter(validator=at_least(0))] = 3,
    timeout: Annotated[float, Parameter(validator=positive)] = 30.0,
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
    max_document_size: Annotated[
        int | None, Parameter(name="--max-document-size", validator=at_least(1))
    ] = None,
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
        is read in large batches instead. Shared out among the --jobs processes.
    jobs: int | None
        Worker processes that crawl and judge shards of the tree (1: all in this process;
        with --resume the scan runs in one). Default: one per CPU this process may use, at most 8.
    retries: int
        Extra attempts for a request that failed transiently (5xx, throttling, timeout, reset).
    timeout: float
        Seconds allowed for one attempt of one request (on local disk, for reads that go to the
        device or a network filesystem; reads the page cache answers take microseconds).
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

    problem = _usage_problem(model, fail_on, baseline, resume, dask, output, format)
    if dask is not None and jobs is not None:
        problem = problem or "--jobs does not combine with --dask (the cluster's workers run it)"
    if problem:
        err(problem)
        return EXIT_ERROR
    from cellmap_schemas.cli._scan_run import ScanRequest, default_format, run

    with guard(url, status := [EXIT_ERROR]):  # a bad storage option: one line, exit 2
        request = ScanRequest(
            url=url,
            models=model,
            concurrency=concurrency,
            jobs=jobs,
            retries=retries,
            timeout=timeout,
            storage_options=storage_options(storage_option),
            options=options(strict, select, ignore),
            fmt=format or default_format(output),  # type: ignore[arg-type]
            output=output,
            show=sys.stderr.isatty() if progress is None else progress,
            fail_on=fail_on,
            baseline=baseline,
            resume=resume,
            dask=dask,
            max_document_size=max_document_size,
            follow_symlinks=follow_symlinks,
        )
        return run(request)
    return status[0]


def _usage_problem(
    model: Sequence[str] | None,
    fail_on: str,
    baseline: Path | None,
    resume: Path | None,
    dask: str | None,
    output: Path | None,
    format: str | None,
) -> str | None:
    """The first thing wrong with the arguments together (each alone is checked by its
    validator), before a scan that may take hours."""
    from cellmap_schemas._scan.report import FORMATS, output_problem
    from cellmap_schemas.cli._scan_run import SUFFIXES
    from cellmap_schemas.errors import UnknownModelError
    from cellmap_schemas.registry import resolve

    try:
        for name in model or ():
            resolve(name)
    except UnknownModelError as exc:
        return f"{exc} (`cellmap-schemas models` lists them)"
    problems = [
        "--fail-on new needs --baseline" if fail_on == "new" and baseline is None else "",
        "--resume does not combine with --dask" if resume is not None and dask else "",
    ]
    if output is not None:
        problems.append(output_problem(output) or "")
        if format is None and SUFFIXES.get(output.suffix.lower()) not in FORMATS:
            choices = ", ".join(k for k, v in SUFFIXES.items() if v in FORMATS)
            problems.append(
                f"{output}: unknown report suffix {output.suffix or '(none)'!r}; "
                f"use {choices} or --format"
            )
    if dask is not None:
        from cellmap_schemas._scan.distributed import require_distributed
        from cellmap_schemas.errors import DistributedNotInstalled

        try:
            require_distributed()
        except DistributedNotInstalled as exc:
            problems.append(str(exc))
    return next((p for p in problems if p), None)
