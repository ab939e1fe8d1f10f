"""The storage formats: their names, their metadata documents, and which models describe them.

One table for every module that reads, crawls, writes or validates: a node's format is decided
by the documents it holds (``attributes.json`` is N5, ``.zarray`` / ``.zgroup`` / ``.zattrs`` /
``.zmetadata`` Zarr v2, ``zarr.json`` Zarr v3), never by its URL.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "CHILD_KEYS",
    "FORMAT_NAMES",
    "METADATA_KEYS",
    "N5_KEYS",
    "ZARR2_KEYS",
    "ZARR3_KEYS",
    "Format",
    "Kind",
    "format_of_key",
]

Format = Literal["n5", "zarr2", "zarr3"]
"""A node's storage format."""

Kind = Literal["array", "group"]
"""A node's kind."""

N5_KEYS: tuple[str, ...] = ("attributes.json",)
ZARR2_KEYS: tuple[str, ...] = (".zarray", ".zgroup", ".zattrs")
ZARR3_KEYS: tuple[str, ...] = ("zarr.json",)
METADATA_KEYS: tuple[str, ...] = (*ZARR3_KEYS, *ZARR2_KEYS, ".zmetadata", *N5_KEYS)
"""Every document that can make a directory a node; all are fetched for the node asked for."""

CHILD_KEYS: dict[Format, tuple[str, ...]] = {
    "n5": N5_KEYS,
    "zarr2": ZARR2_KEYS,
    "zarr3": ZARR3_KEYS,
}
"""The documents to fetch for a group's children: a group only holds nodes of its own format."""

FORMAT_NAMES: dict[Format, str] = {"n5": "N5", "zarr2": "Zarr v2", "zarr3": "Zarr v3"}


def format_of_key(key: str) -> Format | None:
    """The format a metadata document belongs to (``None`` for any other file)."""
    if key == "attributes.json":
        return "n5"
    if key == "zarr.json":
        return "zarr3"
    if key in (".zarray", ".zgroup", ".zattrs", ".zmetadata"):
        return "zarr2"
    return None
