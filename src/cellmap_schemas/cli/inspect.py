"""``cellmap-schemas inspect``: a node and its members as JSON."""

from __future__ import annotations

import sys
from typing import Annotated, Any

from cyclopts import Parameter

from cellmap_schemas.cli._common import (
    EXIT_OK,
    StorageOptions,
    guard,
    print_json,
    storage_options,
)

__all__ = ["inspect"]


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
        if depth is not None and depth < 0:
            raise ValueError(f"--depth must be 0 or more, got {depth}")
        from cellmap_schemas.errors import ValidationError
        from cellmap_schemas.io.read import generic_spec_type, read_tree, run_sync, validate_node
        from cellmap_schemas.io.store import open_store

        opts = storage_options(storage_option)

        async def read() -> Any:
            async with open_store(url, storage_options=opts) as store:
                return await read_tree(store, "", depth)

        node = run_sync(read)
        import msgspec

        try:
            shown: Any = msgspec.to_builtins(validate_node(generic_spec_type(node), node))
            problems = None
        except ValidationError as exc:  # still show what is there
            shown, problems = node.spec, exc
        _mark_unreadable(shown, node.failures)
        print_json(msgspec.json.encode(shown))
        if problems is not None:
            print(f"warning: {url}: not a valid array or group spec", file=sys.stderr)
            for rule, loc, msg in problems.issues:
                print(f"  {loc or '(root)'}: {msg} [{rule}]", file=sys.stderr)
    return status[0]


def _mark_unreadable(spec: dict[str, Any], failures: dict[str, str]) -> None:
    """Put ``{"unreadable": reason}`` where each member that could not be read would be."""
    for path, reason in failures.items():
        parts = [p for p in path.split("/") if p not in ("", ".")]
        node = spec
        for part in parts[:-1]:
            node = node.get("members", {}).get(part, {})
        if parts:
            node.setdefault("members", {})[parts[-1]] = {"unreadable": reason}
        else:
            spec["members_unreadable"] = reason
