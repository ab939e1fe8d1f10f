"""What the commands share: exit codes, one-line errors, JSON output and common parameters.

Every error a command meets is printed as one ``error: <url>: <cause>`` line on stderr (no
traceback; ``CELLMAP_SCHEMAS_DEBUG=1`` re-raises unexpected ones), and a closed stdout (``| head``)
ends a command quietly, as ``cat`` does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from cyclopts import Parameter

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "Ignore",
    "Select",
    "StorageOptions",
    "Strict",
    "at_least",
    "describe",
    "err",
    "guard",
    "one_line",
    "options",
    "positive",
    "print_json",
    "storage_options",
    "write_stdout",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

StorageOptions = Annotated[
    list[str] | None,
    Parameter(
        name="--storage-option",
        negative=(),
        help=(
            "An fsspec storage option as key=value (repeatable); values are read as JSON when "
            "they parse, dotted keys nest: anon=true, endpoint_url=http://127.0.0.1:9000, "
            "client_kwargs.region_name=us-east-1."
        ),
    ),
]
Strict = Annotated[
    bool, Parameter(name="--strict", negative=(), help="Warnings (SHOULD rules) fail too.")
]
Select = Annotated[
    list[str] | None,
    Parameter(
        name="--select",
        negative=(),
        help="Only these rules count: IDs or prefixes (repeatable), e.g. --select COSEM.",
    ),
]
Ignore = Annotated[
    list[str] | None,
    Parameter(
        name="--ignore",
        negative=(),
        help="Drop these rules: IDs or prefixes (repeatable), e.g. --ignore OME008.",
    ),
]


def at_least(n: int) -> Callable[[Any, Any], None]:
    """A cyclopts validator: the value (when given) is ``n`` or more."""

    def check(_type: Any, value: Any) -> None:
        if value is not None and value < n:
            raise ValueError(f"must be {'at least 1' if n == 1 else f'{n} or more'}, got {value}")

    return check


def positive(_type: Any, value: Any) -> None:
    """A cyclopts validator: the value (when given) is greater than 0."""
    if value is not None and not value > 0:
        raise ValueError(f"must be positive, got {value:g}")


def err(message: str) -> None:
    """Print one error line on stderr."""
    print(f"error: {one_line(message)}", file=sys.stderr)


def one_line(text: str) -> str:
    """A message on one line (a document's own error may span several)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(url: str, exc: BaseException) -> str:
    """The one-line message of a failure, naming the URL unless the message already does."""
    from cellmap_schemas.errors import CellmapSchemasError

    if isinstance(exc, BaseExceptionGroup):  # from a task group: report the error itself
        exc = _first_leaf(exc)
    text = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, ValueError) and not isinstance(exc, CellmapSchemasError):
        return text  # a bad URL or storage option: the message says what is wrong
    if not isinstance(exc, CellmapSchemasError | OSError | TimeoutError):
        text = (
            f"unexpected {type(exc).__name__}: {text} (CELLMAP_SCHEMAS_DEBUG=1 shows a traceback)"
        )
    if url in text or _canonical(url) in text:
        return text
    return f"{url}: {text}"


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    from cellmap_schemas.errors import CellmapSchemasError

    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    ours = [e for e in leaves if isinstance(e, CellmapSchemasError)]
    return (ours or leaves or [group])[0]


def _canonical(url: str) -> str:
    from cellmap_schemas.io.url import parse_url

    try:
        return parse_url(url).url
    except ValueError:
        return url


@contextmanager
def guard(url: str, status: list[int]) -> Iterator[None]:
    """Turn every failure into one stderr line and exit status 2 (``status[0]``)."""
    try:
        yield
    except Exception as exc:
        from cellmap_schemas.errors import CellmapSchemasError

        expected = isinstance(exc, CellmapSchemasError | OSError | TimeoutError | ValueError)
        if not expected and os.environ.get("CELLMAP_SCHEMAS_DEBUG"):
            raise
        err(describe(url, exc))
        status[0] = EXIT_ERROR


def write_stdout(text: str) -> None:
    """Write to stdout; a reader that left (``| head``) ends the output quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def print_json(data: bytes) -> None:
    """Pretty and coloured on a terminal; plain indented JSON when piped (``| jq`` works)."""
    import msgspec

    text = msgspec.json.format(data, indent=2).decode()
    if sys.stdout.isatty():
        from rich.console import Console

        Console(soft_wrap=True).print_json(text)
    else:
        write_stdout(text + "\n")


def storage_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``--storage-option`` pairs as the options dict of the I/O layer."""
    from cellmap_schemas.io.url import parse_storage_options

    return parse_storage_options(pairs or ())


def options(strict: bool, select: Sequence[str] | None, ignore: Sequence[str] | None) -> Any:
    """The verdict options of ``--strict``, ``--select`` and ``--ignore``."""
    from cellmap_schemas.validation import Options

    return Options(strict=strict, select=tuple(select or ()), ignore=tuple(ignore or ()))
