"""``cellmap-schemas inspect``: a node and its members as JSON."""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import Parameter

from cellmap_schemas.cli._common import (
    EXIT_OK,
    StorageOptions,
    at_least,
    guard,
    print_json,
    storage_options,
)

__all__ = ["inspect"]


def inspect(
    url: str,
    /,
    *,
    depth: Annotated[int | None, Parameter(name="--depth", validator=at_least(0))] = None,
    storage_option: StorageOptions = None,
) -> int:
    """Print the array or group at URL, with its members, as JSON.

    N5 nodes are shown in their Zarr v2 view (C-order shapes, numcodecs
    compressors). The format is recognised from the metadata, so the URL need
    not end in .n5 or .zarr. Coloured on a terminal, plain JSON when piped. A
    member that cannot be read is shown as {"unreadable": REASON} in place.

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
    with guard(url, status):
        from cellmap_schemas.synchronous import inspect as read_as_is

        shown = read_as_is(url, depth, storage_options=storage_options(storage_option))
        import msgspec

        print_json(msgspec.json.encode(shown.document))
        if shown.problems is not None:
            print(f"warning: {url}: not a valid array or group spec", file=sys.stderr)
            for rule, loc, msg in shown.problems.issues:
                print(f"  {loc or '(root)'}: {msg} [{rule}]", file=sys.stderr)
    return status[0]
