#!/usr/bin/env python3
"""The local floor of a metadata scan: one thread, ``os.scandir`` walk, read and decode every
metadata document, nothing else.

What any scanner of the tree must at least do: list every directory that can hold nodes
(below an array there are only chunks, so arrays are not listed), read each metadata document
(``attributes.json``, ``.zgroup``, ``.zattrs``, ``.zarray``, ``zarr.json``) and parse it
(``msgspec.json.decode``, untyped; broken documents are counted, not diagnosed). No models, no
report. Prints JSON: the walk's own time (``seconds``, without interpreter start-up) and counts.

    uv run python benchmarks/floor_walk.py DIR
"""

from __future__ import annotations

import json
import os
import sys
import time

import msgspec

__all__ = ["METADATA", "walk"]

METADATA = frozenset({"attributes.json", ".zgroup", ".zattrs", ".zarray", "zarr.json"})
_decode = msgspec.json.Decoder().decode


def _is_array(docs: dict[str, object]) -> bool:
    if ".zarray" in docs:
        return True
    z = docs.get("zarr.json")
    if isinstance(z, dict):
        return z.get("node_type") == "array"
    a = docs.get("attributes.json")
    return isinstance(a, dict) and "dimensions" in a and "dataType" in a


def walk(root: str) -> dict[str, int]:
    """Walk ``root`` as a scanner must; counts of directories listed (``arrays`` of them are
    arrays: on S3 their documents are fetched by key, without a listing), documents and bytes
    read, and documents that are not JSON."""
    listed = arrays = docs_read = nbytes = broken = 0
    stack = [root]
    while stack:
        path = stack.pop()
        listed += 1
        subdirs: list[str] = []
        docs: dict[str, object] = {}
        with os.scandir(path) as it:
            for entry in it:
                if entry.name in METADATA:
                    with open(entry.path, "rb") as f:
                        data = f.read()
                    docs_read += 1
                    nbytes += len(data)
                    try:
                        docs[entry.name] = _decode(data)
                    except msgspec.DecodeError:
                        broken += 1
                        docs[entry.name] = None
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
        if _is_array(docs):
            arrays += 1
        else:
            stack.extend(subdirs)
    return {
        "listed": listed,
        "arrays": arrays,
        "documents": docs_read,
        "bytes": nbytes,
        "broken": broken,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    t0 = time.perf_counter()
    counts = walk(args[0])
    print(json.dumps({"seconds": time.perf_counter() - t0, **counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
