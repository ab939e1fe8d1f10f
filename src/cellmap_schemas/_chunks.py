"""Helpers the spec modules share: chunk shapes for new arrays and structural comparison.

Kept apart from :mod:`cellmap_schemas.base` (which re-exports them under the original's names)
because they need no validation machinery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

__all__ = ["auto_chunks", "normalize_chunks", "structure_equal", "structure_group_equal"]


def structure_equal(a: Any, b: Any) -> bool:
    """Whether two specs are equal when attributes are ignored, recursively through members."""
    if type(a) is not type(b) and not (
        isinstance(a, msgspec.Struct) and isinstance(b, msgspec.Struct)
    ):
        return False
    fa = getattr(a, "__struct_fields__", ())
    fb = getattr(b, "__struct_fields__", ())
    if set(fa) != set(fb):
        return False
    for name in fa:
        if name == "attributes":
            continue
        va, vb = getattr(a, name), getattr(b, name)
        if name == "members":
            if va.keys() != vb.keys() or not all(structure_equal(va[k], vb[k]) for k in va):
                return False
        elif va != vb:
            return False
    return True


def structure_group_equal(a: Any, b: Any) -> bool:
    """:func:`structure_equal` for two groups (the original's name for the group case)."""
    return structure_equal(a, b)


def auto_chunks(
    shape: Sequence[int], itemsize: int, target_bytes: int = 1 << 20
) -> tuple[int, ...]:
    """A chunk shape for ``shape``: halve the longest axis until a chunk holds ``target_bytes``.

    Small arrays stay one chunk (the seed's 4x4 example keeps ``chunks == shape``), and large
    ones end up with near-isotropic chunks of about a megabyte, a good unit for object stores.
    """
    chunks = [max(1, int(s)) for s in shape]
    while math.prod(chunks) * itemsize > target_bytes and max(chunks) > 1:
        i = max(range(len(chunks)), key=chunks.__getitem__)
        chunks[i] = math.ceil(chunks[i] / 2)
    return tuple(chunks)


def normalize_chunks(
    chunks: Literal["auto"] | Sequence[int] | Sequence[Sequence[int]],
    arrays: Sequence[Any],
) -> tuple[tuple[int, ...], ...]:
    """One chunk shape per array.

    ``"auto"`` picks a shape from the largest array and uses it for all of them (pyramid levels
    share chunks, which keeps chunk grids aligned); a tuple of ints is used for every array; a
    tuple of tuples must have one entry per array.
    """
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f'chunks must be "auto" or a sequence, got {chunks!r}')
        largest = max(arrays, key=lambda a: math.prod(a.shape))
        itemsize = int(getattr(getattr(largest, "dtype", None), "itemsize", 1) or 1)
        return (auto_chunks(largest.shape, itemsize),) * len(arrays)
    items: list[Any] = list(chunks)
    if all(isinstance(c, int) for c in items):
        return (tuple(int(c) for c in items),) * len(arrays)
    if len(items) != len(arrays):
        raise ValueError(
            f"got {len(items)} chunk shapes for {len(arrays)} arrays; give one per array"
        )
    return tuple(tuple(int(x) for x in c) for c in items)
