"""The target of a write: what is there already, claiming it, clearing what it replaces.

Split from :mod:`cellmap_schemas.io.write`, which decides what to write; the steps here talk to
the tensorstore kvstore of the container: they survey the metadata documents at each node path
(with the generations a conditional write needs), find keys without metadata that a new array
would adopt, claim the target by writing its defining document only if nobody did meanwhile,
delete the subtrees being replaced and write the remaining documents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cellmap_schemas.errors import NodeExistsError, StoreError
from cellmap_schemas.io._tensorstore import Container, describe_error
from cellmap_schemas.n5_wrap import is_n5_array

if TYPE_CHECKING:
    import tensorstore as ts

# Every document that marks a directory as a node, in any of the three formats.
_METADATA_KEYS = ("attributes.json", ".zgroup", ".zarray", ".zattrs", "zarr.json")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _describe(path: str) -> str:
    return f"node {path!r}" if path else "the container root"


def _open_kvstore(where: Container) -> ts.KvStore:
    import tensorstore as ts

    try:
        return ts.KvStore.open(where.kvstore, context=where.ts_context()).result()
    except ValueError as exc:
        raise StoreError(f"{where.url}: cannot open storage: {describe_error(exc)}") from exc


def _survey(
    kv: ts.KvStore, where: Container, paths: list[str]
) -> tuple[dict[str, dict[str, bytes | None]], dict[str, bytes]]:
    """The metadata documents present at each of ``paths`` (None where missing), and the
    storage generation of each document key read (for conditional writes)."""
    if where.kvstore.get("driver") == "file":
        _refuse_special_files(
            where, [_join(p, k) for p in dict.fromkeys(paths) for k in _METADATA_KEYS]
        )
    pending = [
        (path, key, kv.read(_join(path, key)))
        for path in dict.fromkeys(paths)
        for key in _METADATA_KEYS
    ]
    found: dict[str, dict[str, bytes | None]] = {path: {} for path in paths}
    stamps: dict[str, bytes] = {}
    errors: list[StoreError] = []
    for path, key, future in pending:
        try:
            result = future.result()
        except ValueError as exc:
            errors.append(
                StoreError(f"{where.url}: reading {_join(path, key)} failed: {describe_error(exc)}")
            )
            errors[-1].__cause__ = exc
            continue
        found[path][key] = bytes(result.value) if result.state == "value" else None
        stamps[_join(path, key)] = bytes(result.stamp.generation)
    if errors:
        raise errors[0]
    return found, stamps


def _refuse_special_files(where: Container, keys: list[str]) -> None:
    """tensorstore's file driver would block for ever opening a FIFO named like a document."""
    import stat

    base = where.kvstore["path"]
    for key in keys:
        try:
            mode = os.stat(base + key).st_mode
        except OSError:
            continue  # missing, or an error tensorstore's read reports
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise StoreError(f"{where.url_of(key)}: not a regular file")


def _leftovers(kv: ts.KvStore, where: Container, paths: list[str]) -> dict[str, str]:
    """For each of ``paths`` that holds keys other than metadata documents, the first one."""
    pending = [(path, kv.list(_subtree(path))) for path in paths]
    out: dict[str, str] = {}
    for path, future in pending:
        try:
            keys = sorted(k.decode("utf-8", "replace") for k in future.result())
        except ValueError as exc:
            raise StoreError(
                f"{where.url}: listing {_describe(path)} failed: {describe_error(exc)}"
            ) from exc
        own = {_join(path, key) for key in _METADATA_KEYS}
        foreign = next((k for k in keys if k not in own), None)
        if foreign is not None:
            out[path] = foreign
    return out


def _subtree(path: str) -> ts.KvStore.KeyRange:
    """Every key below ``path``: "a/" up to "a0" ("0" follows "/"); the root is everything."""
    import tensorstore as ts

    return ts.KvStore.KeyRange(f"{path}/", f"{path}0") if path else ts.KvStore.KeyRange()


def _defining_key(documents: Mapping[str, bytes]) -> str:
    """The document that makes a directory a node (``.zarray``/``.zgroup`` before ``.zattrs``)."""
    return next(k for k in ("attributes.json", ".zarray", ".zgroup", "zarr.json") if k in documents)


def _claim(
    kv: ts.KvStore, where: Container, key: str, data: bytes, generation: bytes, base: str
) -> None:
    """Write ``key`` only if its generation is still ``generation``; else NodeExistsError."""
    try:
        stamp = kv.write(key, data, if_equal=generation).result()
    except ValueError as exc:
        raise StoreError(f"{where.url}: writing {key} failed: {describe_error(exc)}") from exc
    if not bytes(stamp.generation):  # the condition failed: another writer came first
        raise NodeExistsError(
            f"{where.url}: {_describe(base)} was written by another writer meanwhile "
            f"({key}); nothing written"
        )


def _is_array(docs: Mapping[str, bytes | None]) -> bool:
    """Whether the documents of a directory describe an array (in any format)."""
    if docs.get(".zarray") is not None:
        return True
    for key, test in (("zarr.json", _v3_array), ("attributes.json", is_n5_array)):
        raw = docs.get(key)
        if raw is not None:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if isinstance(doc, dict) and test(doc):
                return True
    return False


def _v3_array(doc: Mapping[str, Any]) -> bool:
    return doc.get("node_type") == "array"


def _topmost(paths: list[str]) -> list[str]:
    """The paths not below another path of the list (deleting those deletes them all)."""
    chosen: list[str] = []
    for path in sorted(paths, key=lambda p: (p.count("/"), p)):
        if not any(path == c or not c or path.startswith(c + "/") for c in chosen):
            chosen.append(path)
    return chosen


def _delete_subtrees(
    kv: ts.KvStore, where: Container, paths: list[str], keep: str | None = None
) -> None:
    """Delete everything below each of ``paths``, except the key ``keep`` (a claimed document)."""
    import tensorstore as ts

    ranges: list[tuple[str, ts.KvStore.KeyRange]] = []
    for path in paths:
        full = _subtree(path)
        if (
            keep is not None
            and full.inclusive_min <= keep.encode()
            and (not full.exclusive_max or keep.encode() < full.exclusive_max)
        ):
            ranges.append((path, ts.KvStore.KeyRange(full.inclusive_min, keep)))
            ranges.append((path, ts.KvStore.KeyRange(keep + "\x00", full.exclusive_max)))
        else:
            ranges.append((path, full))
    pending = [(path, kv.delete_range(r)) for path, r in ranges]
    for path, future in pending:
        try:
            future.result()
        except ValueError as exc:
            raise StoreError(
                f"{where.url}: deleting {_describe(path)} failed: {describe_error(exc)}"
            ) from exc


def _write_documents(kv: ts.KvStore, where: Container, documents: dict[str, bytes]) -> None:
    pending = [(key, kv.write(key, data)) for key, data in documents.items()]
    failures: list[tuple[str, ValueError]] = []
    for key, future in pending:
        try:
            future.result()
        except ValueError as exc:
            failures.append((key, exc))
    if failures:
        key, first = failures[0]
        more = f" (and {len(failures) - 1} more documents)" if len(failures) > 1 else ""
        raise StoreError(
            f"{where.url}: writing {key} failed: {describe_error(first)}{more}"
        ) from first
