"""The ``cellmap-schemas`` command line: ``inspect``, ``check``, ``models`` and ``scan``.

Commands print and return an exit status; the logic lives in the library. Storage, zarr and rich
are imported only by the command that needs them, so ``--help`` stays fast, and every error is
caught here and printed as one ``error: <url>: <cause>`` line (no traceback; set
``CELLMAP_SCHEMAS_DEBUG=1`` to get one for unexpected errors).

Exit status: 0 valid / done, 1 invalid, 2 unreadable or bad usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from cyclopts import App, Parameter

from cellmap_schemas.errors import CellmapSchemasError, ValidationError

__all__ = ["app", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_ERROR = 2


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

app.command(
    "cellmap_schemas._cli_scan:scan",
    name="scan",
    help="Audit every node of a hierarchy (or many) against the models it looks like.",
)

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


# ---- output -----------------------------------------------------------------------------------
def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _naming(url: str, message: str) -> str:
    """The message, prefixed with the URL unless it already names it."""
    from cellmap_schemas.io.url import parse_url

    try:
        canonical = parse_url(url).url
    except ValueError:
        canonical = url
    if url in message or canonical in message:
        return message
    return f"{url}: {message}"


def _print_json(data: bytes) -> None:
    """Pretty and coloured on a terminal; plain indented JSON when piped (``| jq`` works)."""
    import msgspec

    text = msgspec.json.format(data, indent=2).decode()
    if sys.stdout.isatty():
        from rich.console import Console

        Console(soft_wrap=True).print_json(text)
    else:
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader left; stop quietly, as cat does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


@contextmanager
def _guard(url: str, status: list[int]) -> Iterator[None]:
    """Turn every failure into one stderr line and exit status 2 (``status[0]``)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, ExceptionGroup):  # from a task group: report the error itself
            from cellmap_schemas.io.read import first_error

            exc = first_error(exc)  # type: ignore[assignment]
        if isinstance(exc, CellmapSchemasError | OSError | TimeoutError):
            _err(_one_line(_naming(url, str(exc) or type(exc).__name__)))
        elif isinstance(exc, ValueError):  # a bad URL or storage option
            _err(_one_line(str(exc)))
        else:
            if os.environ.get("CELLMAP_SCHEMAS_DEBUG"):
                raise
            cause = f"unexpected {type(exc).__name__}: {exc}"
            hint = "(set CELLMAP_SCHEMAS_DEBUG=1 for a traceback)"
            _err(_one_line(f"{_naming(url, cause)} {hint}"))
        status[0] = EXIT_ERROR


def _options(pairs: Sequence[str] | None) -> dict[str, Any]:
    from cellmap_schemas.io.url import parse_storage_options

    return parse_storage_options(pairs or ())


def _run(func: Callable[[], Any]) -> Any:
    from cellmap_schemas.io.read import run_sync

    return run_sync(func)


# ---- commands ---------------------------------------------------------------------------------
@app.command
def inspect(
    url: str,
    /,
    *,
    depth: Annotated[int | None, Parameter(name="--depth")] = None,
    storage_option: StorageOptions = None,
) -> int:
    """Print the array or group at URL, with its members, as JSON.

    N5 nodes are shown in their Zarr v2 view (C-order shapes, numcodecs
    compressors). The format is recognised from the metadata, so the URL need
    not end in .n5 or .zarr. Coloured on a terminal, plain JSON when piped.

    For example:
      cellmap-schemas inspect /data/jrc_hela-2.n5/em/fibsem-uint16
      cellmap-schemas inspect s3://bucket/jrc_hela-2.n5/em --depth 1
      cellmap-schemas inspect data.zarr | jq '.members | keys'

    Exit status: 0 printed, 2 unreadable (missing, not N5/Zarr, storage
    error) or bad usage.

    Parameters
    ----------
    url: str
        Local path or s3://, gs://, http(s):// URL of an array or group.
    depth: int | None
        Levels of members to read below a group (0: the node alone). Default: all.
    storage_option: list[str] | None
        fsspec storage option key=value (repeatable).
    """
    status = [EXIT_OK]
    with _guard(url, status):
        if depth is not None and depth < 0:
            raise ValueError(f"--depth must be 0 or more, got {depth}")
        options = _options(storage_option)
        data, problems = _run(lambda: _inspect(url, depth, options))
        _print_json(data)
        if problems is not None:
            print(
                f"warning: {_one_line(_naming(url, 'not a valid array or group spec'))}",
                file=sys.stderr,
            )
            for loc, msg in problems.problems:
                print(f"  {loc or '(root)'}: {msg}", file=sys.stderr)
    return status[0]


async def _inspect(
    url: str, depth: int | None, options: dict[str, Any]
) -> tuple[bytes, ValidationError | None]:
    import msgspec

    from cellmap_schemas.io.read import generic_spec_type, read_tree, validate_node
    from cellmap_schemas.io.store import open_store

    async with open_store(url, storage_options=options) as store:
        node = await read_tree(store, "", depth)
    try:
        spec = validate_node(generic_spec_type(node), node)
    except ValidationError as exc:  # still show what is there
        return msgspec.json.encode(node.spec), exc
    return msgspec.json.encode(spec), None


@app.command
def check(
    url: str,
    model: str,
    /,
    *,
    storage_option: StorageOptions = None,
) -> int:
    """Validate the array or group at URL against MODEL and report every problem.

    MODEL is a name listed by `cellmap-schemas models`. The node is read as
    deep as the model looks (a multiscale group and its arrays, a crop and its
    classes) and validated; every problem is printed with its location.

    For example:
      cellmap-schemas check /data/hela.n5/em/fibsem-uint16 multiscale.cosem.Group
      cellmap-schemas check s3://bucket/hela.n5/em/s0 multiscale.cosem.Array
      cellmap-schemas check crops.zarr/crop1 annotation.CropGroup \\
          --storage-option anon=true

    Exit status: 0 valid, 1 invalid, 2 unreadable (missing, not N5/Zarr,
    storage error), unknown model or bad usage.

    Parameters
    ----------
    url: str
        Local path or s3://, gs://, http(s):// URL of an array or group.
    model: str
        Model name, e.g. multiscale.cosem.Group (see `cellmap-schemas models`).
    storage_option: list[str] | None
        fsspec storage option key=value (repeatable).
    """
    from cellmap_schemas.registry import MODELS, close_matches

    info = MODELS.get(model)
    if info is None:
        hint = close_matches(model)
        more = f"; did you mean {' or '.join(hint)}?" if hint else ""
        _err(f"unknown model {model!r}{more} (`cellmap-schemas models` lists them)")
        return EXIT_ERROR
    try:
        cls = info.load()
    except (ImportError, AttributeError) as exc:
        _err(f"model {model} cannot be loaded: {_one_line(str(exc))}")
        return EXIT_ERROR

    status = [EXIT_OK]
    with _guard(url, status):
        options = _options(storage_option)
        from cellmap_schemas.io.read import read_model_async

        try:
            _run(lambda: read_model_async(cls, url, storage_options=options))
        except ValidationError as exc:
            n = len(exc.problems)
            print(f"{url}: invalid {model} ({n} problem{'s' if n != 1 else ''})")
            for loc, msg in exc.problems:
                print(f"  {loc or '(root)'}: {msg}")
            return EXIT_INVALID
        print(f"{url}: valid {model}")
    return status[0]


@app.command
def models(*, as_json: Annotated[bool, Parameter(name="--json", negative=())] = False) -> int:
    """List the models `check` and `scan` know, with what each describes.

    For example:
      cellmap-schemas models
      cellmap-schemas models --json | jq -r '.[] | select(.kind == "group") | .name'

    Exit status: 0.

    Parameters
    ----------
    as_json: bool
        Print a JSON list of {name, kind, description} objects instead of a table.
    """
    from cellmap_schemas.registry import MODELS

    if as_json:
        import msgspec

        _print_json(msgspec.json.encode([vars(info) for info in MODELS.values()]))
        return EXIT_OK
    width = max(len(name) for name in MODELS)
    for name, info in MODELS.items():
        print(f"{name:<{width}}  {info.kind:<5}  {info.description}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``cellmap-schemas``); exits with the command's status."""
    app(list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()
