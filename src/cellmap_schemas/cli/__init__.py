"""The ``cellmap-schemas`` command line: ``inspect``, ``check``, ``models``, ``rules``, ``scan``.

A thin layer over :mod:`cellmap_schemas.synchronous`: each command parses its arguments, calls
the API and prints. Commands are registered lazily, and storage, zarr and rich are imported only
by the command that needs them, so ``--help`` stays fast.

Exit status: 0 valid or done, 1 invalid, 2 unreadable or bad usage, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence

from cyclopts import App

__all__ = ["app", "main"]


def _version() -> str:
    from cellmap_schemas import __version__

    return __version__


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
)

for _name, _help in (
    ("inspect", "Print the array or group at URL, with its members, as JSON."),
    ("check", "Judge the node at URL by the models it follows (or MODEL) and list every problem."),
    ("models", "List the models check and scan know, with what each describes."),
    ("rules", "List every rule: its ID, severity, summary and source."),
    ("scan", "Audit every node of a hierarchy (or many) against the models it follows."),
):
    _module = {"models": "catalog", "rules": "catalog"}.get(_name, _name)
    app.command(f"cellmap_schemas.cli.{_module}:{_name}", name=_name, help=_help)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``cellmap-schemas``); exits with the command's status."""
    app(list(argv) if argv is not None else None)
