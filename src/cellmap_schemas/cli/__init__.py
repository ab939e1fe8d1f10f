"""The ``cellmap-schemas`` command line: ``inspect``, ``check``, ``models``, ``rules``, ``scan``.

A thin layer over :mod:`cellmap_schemas.synchronous`: each command parses its arguments, calls
the API and prints. Commands are registered lazily, and storage, zarr and rich are imported only
by the command that needs them, so ``--help`` stays fast.

Exit status: 0 valid or done, 1 invalid, 2 unreadable or bad usage, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cyclopts import App

__all__ = ["app", "main"]


def _version() -> str:
    from cellmap_schemas import _version as version

    return version()


app = App(
    name="cellmap-schemas",
    help=(
        "Inspect and validate Cellmap N5 / Zarr hierarchies.\n\n"
        "Reads local paths, s3://, gs:// and http(s):// URLs. Formats are recognised\n"
        "by their metadata (attributes.json, .zarray / .zgroup / .zattrs, zarr.json),\n"
        "not by the URL.\n\n"
        "Exit status: 0 valid or done, 1 invalid, 2 unreadable or bad usage."
    ),
    version=_version,
    help_format="plaintext",
    error_formatter=lambda e: _usage_error(e),
)


def _usage_error(exc: Exception) -> Any:
    """A usage error as the one ``error:`` line every other error is (exit status 2)."""
    import sys

    from rich.text import Text

    from cellmap_schemas.cli._common import one_line

    # written ourselves, never wrapped at the terminal's width; cyclopts' console ends the line
    text = str(exc)
    argument = getattr(exc, "argument", None)
    own = getattr(exc, "exception_message", None)  # a validator's own words
    if own and argument is not None:
        text = f"{argument.name} {own}"
    sys.stderr.write(f"error: {one_line(text)}")
    sys.stderr.flush()
    return Text("")


# Every command module imports only cyclopts and the standard library at the top; what a
# command needs (storage, zarr, rich) it imports when it runs, so --help stays fast.
from cellmap_schemas.cli import catalog, check, inspect, scan  # noqa: E402

app.command(inspect.inspect)
app.command(check.check)
app.command(catalog.models)
app.command(catalog.rules)
app.command(scan.scan)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``cellmap-schemas``); exits with the command's status.

    Writing the output can fail after a command did its work: a reader that left (``| head``)
    ends it quietly, as ``cat`` does; a full disk is one error line naming the output.
    """
    import os
    import sys

    try:
        app(list(argv) if argv is not None else None)
    except OSError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        if isinstance(exc, BrokenPipeError):
            sys.exit(0)
        sys.stderr.write(f"error: stdout: {exc.strerror or exc}\n")
        sys.exit(2)
