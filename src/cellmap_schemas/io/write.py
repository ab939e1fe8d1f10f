"""Create hierarchies in storage and write arrays into them, with tensorstore.

:func:`write_spec` (behind every spec's ``to_zarr``) writes the metadata documents of a spec tree
and returns a handle whose arrays are tensorstore arrays; :func:`write_pyramid` also writes the
data of every array, all writes in flight at once.

The metadata documents are written by this module, not by tensorstore's drivers, so that the
bytes on disk are exactly the spec (tensorstore's zarr driver, for example, would drop keys and
its n5 driver would not write the container's ``{"n5": ...}``). They go through a tensorstore
kvstore, so local disk and S3 share one code path. tensorstore then opens each array from the
documents just written; N5 arrays are opened with their axes reversed, so that they present the
same C-order (numpy) view as the specs and as zarr-python's N5 store.

Safety rules: every document is checked by tensorstore (in memory) before storage is touched;
an existing node, or an array's directory that holds keys but no metadata (leftover chunks a
new array would adopt), is replaced only with ``overwrite=True``, and then deleted first;
nothing outside the target path is modified (missing parent groups are created, existing ones
are left as they are). Of concurrent writers of one path exactly one succeeds: the target's
defining document is written first, conditionally on the generation the survey saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from cellmap_schemas.errors import NodeExistsError, StoreError, UnsupportedFormatError
from cellmap_schemas.io._documents import StorageFormat, _documents, _is_group_spec
from cellmap_schemas.io._target import (
    _claim,
    _defining_key,
    _delete_subtrees,
    _describe,
    _is_array,
    _join,
    _leftovers,
    _open_kvstore,
    _survey,
    _topmost,
    _write_documents,
)
from cellmap_schemas.io._tensorstore import Container, container, describe_error
from cellmap_schemas.io.url import Location, parse_url
from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

if TYPE_CHECKING:
    import tensorstore as ts

__all__ = [
    "ArrayHandle",
    "GroupHandle",
    "StorageFormat",
    "split_container",
    "storage_format",
    "write_pyramid",
    "write_spec",
]

Spec = ArraySpec[Any] | GroupSpec[Any] | ArraySpecV3[Any] | GroupSpecV3[Any]

_DRIVERS: dict[StorageFormat, str] = {"n5": "n5", "zarr2": "zarr", "zarr3": "zarr3"}


# ---- handles ----------------------------------------------------------------------------------
class ArrayHandle:
    """An array created in storage: a tensorstore array in C (numpy) order, plus where it lives.

    Indexing returns tensorstore views (``handle[0:64].read().result()``), and any other
    tensorstore attribute is available on the handle (``handle.domain``, ``handle.spec()``).
    Assignment (``handle[:] = data``) writes and waits; a storage failure raises
    :class:`~cellmap_schemas.errors.StoreError` naming the container, the array and the region.

    Attributes
    ----------
    url
        The container's URL.
    path
        The array's path inside the container.
    spec
        The spec the array was created from.
    tensorstore
        The underlying ``tensorstore.TensorStore`` (for N5: the n5 driver's array, transposed).
    """

    __slots__ = ("path", "spec", "tensorstore", "url")

    def __init__(self, url: str, path: str, spec: Any, array: ts.TensorStore) -> None:
        self.url = url
        self.path = path
        self.spec = spec
        self.tensorstore = array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.tensorstore.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.tensorstore.dtype.numpy_dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> ts.TensorStore:
        return self.tensorstore[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        futures = self.tensorstore[key].write(value)
        _settle(self, key, futures)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        data = self.tensorstore.read().result()
        return data if dtype is None else data.astype(dtype, copy=False)

    def __getattr__(self, name: str) -> Any:
        if name == "tensorstore":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.tensorstore, name)

    def __repr__(self) -> str:
        return (
            f"<ArrayHandle {self.path or '/'} shape={self.shape} dtype={self.dtype} in {self.url}>"
        )


class GroupHandle(Mapping[str, "ArrayHandle | GroupHandle"]):
    """A group created in storage: its members by name (``group["s0"]``, ``group["a/s0"]``).

    Attributes
    ----------
    url
        The container's URL.
    path
        The group's path inside the container.
    spec
        The spec the group was created from.
    members
        The member handles by name.
    """

    __slots__ = ("members", "path", "spec", "url")

    def __init__(
        self, url: str, path: str, spec: Any, members: dict[str, ArrayHandle | GroupHandle]
    ) -> None:
        self.url = url
        self.path = path
        self.spec = spec
        self.members = members

    def __getitem__(self, key: str) -> ArrayHandle | GroupHandle:
        node: ArrayHandle | GroupHandle = self
        for part in (p for p in key.split("/") if p):
            if not isinstance(node, GroupHandle) or part not in node.members:
                raise KeyError(key)
            node = node.members[part]
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def arrays(self) -> dict[str, ArrayHandle]:
        """Every array below this group by its relative path, depth first in spec order."""
        out: dict[str, ArrayHandle] = {}
        for name, member in self.members.items():
            if isinstance(member, GroupHandle):
                out.update({f"{name}/{k}": v for k, v in member.arrays().items()})
            else:
                out[name] = member
        return out

    def __repr__(self) -> str:
        return f"<GroupHandle {self.path or '/'} members={list(self.members)} in {self.url}>"


# ---- writing ----------------------------------------------------------------------------------
def storage_format(spec: Spec, store: str | os.PathLike[str] | Location) -> StorageFormat:
    """The format a spec is written in: N5 in a ``.n5`` container, else the spec's Zarr version.

    Raises
    ------
    ValueError
        For a Zarr v3 spec and a ``.n5`` container.
    """
    root, _ = split_container(store)
    n5 = root.path.lower().endswith(".n5")
    v3 = isinstance(spec, ArraySpecV3 | GroupSpecV3)
    if n5 and v3:
        raise ValueError(f"{root.url}: a Zarr v3 spec cannot be written to an N5 container")
    return "n5" if n5 else "zarr3" if v3 else "zarr2"


def split_container(
    store: str | os.PathLike[str] | Location,
    path: str = "",
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Location, str]:
    """The container and the node path inside it.

    A store that runs into a container (``data.n5/image``) is split after the outermost
    ``.n5`` / ``.zarr`` component, so the container's root (where N5 keeps its version) is known
    and ``to_zarr("data.n5/image")`` means ``to_zarr("data.n5", "image")``.
    """
    location = parse_url(
        store if isinstance(store, Location) else os.fspath(store), storage_options
    )
    parts = location.path.split("/")
    first = 1 if location.protocol != "file" else 0  # a bucket name is not a container
    for i in range(first, len(parts)):
        if parts[i].lower().endswith((".n5", ".zarr")) and i < len(parts) - 1:
            inner = _join("/".join(parts[i + 1 :]), _clean_path(path))
            root = Location(location.protocol, "/".join(parts[: i + 1]), location.storage_options)
            return root, inner
        if parts[i].lower().endswith((".n5", ".zarr")):
            break
    return location, _clean_path(path)


def write_spec(
    spec: Spec,
    store: str | os.PathLike[str] | Location,
    path: str = "",
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> ArrayHandle | GroupHandle:
    """Create the node ``spec`` describes (and, for a group, all its members) in storage.

    Parameters
    ----------
    spec
        A Zarr v2 or v3 array or group spec (or a model derived from one).
    store
        The container: a local path or an ``s3://`` URL. A name ending in ``.n5`` is written as
        N5 (F-order metadata in ``attributes.json``); otherwise Zarr v2 (``.zarray``, ``.zgroup``,
        ``.zattrs``) or, for a v3 spec, Zarr v3 (``zarr.json``). A store that runs into a
        container (``data.n5/image``) is split there: the rest is prefixed to ``path``.
    path
        Where the node goes inside the container ("/"-separated; "" is the container root).
    overwrite
        Replace existing nodes (each existing node of the tree, and each array directory that
        holds keys but no metadata, is deleted with everything below it before writing).
        Without it, either is an error and nothing is written.
    storage_options
        fsspec-style options for S3: ``endpoint_url`` (else ``AWS_ENDPOINT_URL_S3`` /
        ``AWS_ENDPOINT_URL``), ``anon``, ``profile``, ``client_kwargs.region_name``, and
        ``retries`` (attempts per request, default 5). For local paths, ``fsync=True`` syncs
        every file written (off by default, as in zarr-python; writes are atomic either way).

    Returns
    -------
    ArrayHandle or GroupHandle
        Arrays are tensorstore arrays in C order: ``handle["s0"][:] = data`` writes data.

    Raises
    ------
    NodeExistsError
        If a node of the tree already exists (or an array's directory is not empty) and
        ``overwrite`` is false, a parent of ``path`` is an array, or another writer wrote the
        same path meanwhile; names the node.
    UnsupportedFormatError
        If tensorstore cannot store an array as specified (e.g. a codec it lacks).
    StoreError
        If storage fails; names the URL and the cause.

    Examples
    --------
    >>> from cellmap_schemas.spec.zarr_v2 import ArraySpec
    >>> import numpy as np, tempfile
    >>> spec = ArraySpec.from_array(np.zeros((4, 6), dtype="uint8"), chunks=(2, 3))
    >>> handle = spec.to_zarr(tempfile.mkdtemp() + "/data.n5", "raw")
    >>> handle[:] = np.arange(24, dtype="uint8").reshape(4, 6)
    >>> int(handle[1, 2].read().result())
    8
    """
    root, base = split_container(store, path, storage_options)
    fmt = storage_format(spec, root)
    where = container(root, None)
    nodes = list(_walk(spec, base))
    documents = {node.path: _documents(node.spec, fmt, root=not node.path) for node in nodes}
    _check_with_tensorstore(where, fmt, nodes, documents)

    kv = _open_kvstore(where)
    parents = _parents(base)
    found, stamps = _survey(kv, where, [*parents, *(n.path for n in nodes)])
    for parent in parents:
        if _is_array(found[parent]):
            raise NodeExistsError(
                f"{where.url}: cannot create {_describe(base)}: {_describe(parent)} is an array"
            )
    existing = [n.path for n in nodes if any(v is not None for v in found[n.path].values())]
    if existing and not overwrite:
        key = next(k for k, v in found[existing[0]].items() if v is not None)
        raise NodeExistsError(
            f"{where.url}: {_describe(existing[0])} already exists ({_join(existing[0], key)}); "
            "pass overwrite=True to replace it"
        )
    # An array written where chunks remain without metadata would adopt them (and read back
    # their values): such leftovers are refused, or deleted with overwrite=True.
    leftovers = _leftovers(kv, where, [n.path for n in nodes if not _is_group_spec(n.spec)])
    leftovers = {p: k for p, k in leftovers.items() if p not in existing}
    if leftovers and not overwrite:
        path, key = next(iter(leftovers.items()))
        raise NodeExistsError(
            f"{where.url}: {_describe(path)} is not empty ({key} exists, without metadata); "
            "pass overwrite=True to replace it"
        )

    # Parents that are not nodes yet become empty groups, so the tree is reachable from the root.
    writes: dict[str, bytes] = {}
    for parent in parents:
        if all(v is None for v in found[parent].values()):
            group = GroupSpecV3() if fmt == "zarr3" else GroupSpec()
            for key, data in _documents(group, fmt, root=not parent).items():
                writes[_join(parent, key)] = data
    for node in nodes:
        for key, data in documents[node.path].items():
            writes[_join(node.path, key)] = data

    # The target's defining document is written first, on the condition that it is still what
    # the survey saw: of concurrent writers of one path exactly one wins, the others write
    # nothing (an exclusive create, or a compare-and-swap with overwrite).
    claim = _join(base, _defining_key(documents[base]))
    _claim(kv, where, claim, writes.pop(claim), stamps[claim], base)
    _delete_subtrees(kv, where, _topmost([*existing, *leftovers]), keep=claim)
    _write_documents(kv, where, writes)
    return _open_handles(where, fmt, spec, base, nodes)


def write_pyramid(
    spec: GroupSpec[Any] | GroupSpecV3[Any],
    store: str | os.PathLike[str] | Location,
    path: str,
    arrays: Mapping[str, Any] | Sequence[Any],
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> GroupHandle:
    """Create a group and write the data of its arrays, every write in flight at once.

    Parameters
    ----------
    spec, store, path, overwrite, storage_options
        As for :func:`write_spec`.
    arrays
        The data: by member path (``{"s0": a0, "s1": a1}``), or a sequence matched in order to
        the group's arrays (depth first, in spec order, as ``from_arrays`` lists them). Arrays
        not given are created but left unwritten.

    Returns
    -------
    GroupHandle

    Raises
    ------
    ValueError
        If a name is not an array of the group, or a shape differs from the spec (checked before
        anything is written).
    StoreError
        If a write fails; names the array and the region.
    """
    if not isinstance(spec, GroupSpec | GroupSpecV3):
        raise TypeError(f"write_pyramid needs a group spec, got {type(spec).__name__}")
    root, base = split_container(store, path, storage_options)
    specs = {
        _relative(n.path, base): n.spec for n in _walk(spec, base) if not _is_group_spec(n.spec)
    }
    if isinstance(arrays, Mapping):
        data = dict(arrays)
    else:
        if len(arrays) != len(specs):
            raise ValueError(
                f"{len(arrays)} arrays given for the {len(specs)} arrays of the group "
                f"({', '.join(specs)})"
            )
        data = dict(zip(specs, arrays, strict=True))
    unknown = [name for name in data if name not in specs]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ValueError(f"{names}: not arrays of the group ({', '.join(specs)})")
    for name, array in data.items():
        if tuple(np.shape(array)) != tuple(specs[name].shape):
            raise ValueError(
                f"array {name!r} has shape {tuple(np.shape(array))}, "
                f"the spec says {tuple(specs[name].shape)}"
            )
        _check_cast(name, array, specs[name])

    group = write_spec(spec, root, base, overwrite=overwrite)
    assert isinstance(group, GroupHandle)
    handles = group.arrays()
    pending = [
        (handles[name], handles[name].tensorstore.write(array)) for name, array in data.items()
    ]
    failures: list[BaseException] = []
    for handle, futures in pending:  # all issued above; now wait for every one of them
        try:
            _settle(handle, ..., futures)
        except (StoreError, ValueError) as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
    return group


def _check_cast(name: str, array: Any, spec: Any) -> None:
    """tensorstore converts only where numpy's "safe" rule allows; say so before writing."""
    source = getattr(array, "dtype", None)
    if source is None:
        return
    dtype = spec.dtype if isinstance(spec, ArraySpec) else spec.data_type
    try:
        target = np.dtype(dtype if isinstance(dtype, str) else [tuple(f) for f in dtype])
    except (TypeError, ValueError):
        return
    if not np.can_cast(np.dtype(source), target, "safe"):
        raise TypeError(
            f"array {name!r}: cannot write {np.dtype(source)} data into a {target} array "
            "without loss; convert it first (e.g. data.astype(...))"
        )


# ---- steps ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    path: str  # relative to the container root, "" for the root
    spec: Any


def _walk(spec: Any, path: str) -> Iterator[_Node]:
    """The nodes of a spec tree, parents first, members in spec order."""
    yield _Node(path, spec)
    for name, member in (getattr(spec, "members", None) or {}).items():
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"member name {name!r} of {_describe(path)} is not a valid node name")
        yield from _walk(member, _join(path, name))


def _clean_path(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    if ".." in parts:
        raise ValueError(f"path {path!r} must stay inside the container (no '..')")
    return "/".join(parts)


def _relative(path: str, base: str) -> str:
    return path[len(base) + 1 :] if base else path


def _parents(path: str) -> list[str]:
    """The container root and every group above ``path`` ("a/b/c" -> "", "a", "a/b")."""
    parts = path.split("/") if path else []
    return ["/".join(parts[:i]) for i in range(len(parts))]


def _check_with_tensorstore(
    where: Container, fmt: StorageFormat, nodes: list[_Node], documents: dict[str, dict[str, bytes]]
) -> None:
    """Open every array in memory from its documents, so what tensorstore cannot store fails
    before storage is touched."""
    import tensorstore as ts

    key = {"n5": "attributes.json", "zarr2": ".zarray", "zarr3": "zarr.json"}[fmt]
    pending = []
    for node in nodes:
        if _is_group_spec(node.spec):
            continue
        metadata = json.loads(documents[node.path][key])
        spec = {
            "driver": _DRIVERS[fmt],
            "kvstore": {"driver": "memory"},
            "metadata": metadata,
            "create": True,
        }
        opened: Any
        try:
            opened = ts.open(spec)
        except (ValueError, TypeError) as exc:
            opened = exc
        pending.append((node, opened))
    for node, future in pending:
        try:
            if isinstance(future, BaseException):
                raise future
            future.result()
        except (ValueError, TypeError) as exc:
            raise UnsupportedFormatError(
                f"{where.url}: array {node.path!r} cannot be stored as specified: "
                f"{describe_error(exc)}"
            ) from exc


def _open_handles(
    where: Container, fmt: StorageFormat, spec: Any, base: str, nodes: list[_Node]
) -> ArrayHandle | GroupHandle:
    import tensorstore as ts

    context = where.ts_context()
    pending = {
        node.path: ts.open(
            {"driver": _DRIVERS[fmt], "kvstore": where.kvstore_at(node.path), "open": True},
            context=context,
        )
        for node in nodes
        if not _is_group_spec(node.spec)
    }
    arrays: dict[str, ts.TensorStore] = {}
    for path, future in pending.items():
        try:
            array = future.result()
        except ValueError as exc:
            raise StoreError(
                f"{where.url}: opening array {path!r} failed: {describe_error(exc)}"
            ) from exc
        arrays[path] = array.T if fmt == "n5" else array  # N5 lists x first; present C order

    def build(node_spec: Any, path: str) -> ArrayHandle | GroupHandle:
        if not _is_group_spec(node_spec):
            return ArrayHandle(where.url, path, node_spec, arrays[path])
        members = {
            name: build(member, _join(path, name)) for name, member in node_spec.members.items()
        }
        return GroupHandle(where.url, path, node_spec, members)

    return build(spec, base)


# ---- write results ----------------------------------------------------------------------------
def _settle(handle: ArrayHandle, key: Any, futures: ts.WriteFutures) -> None:
    """Wait for a write; a bad source (shape) is a ValueError, a storage failure a StoreError."""
    try:
        futures.copy.result()
    except ValueError as exc:
        region = _region(handle.shape, key)
        raise ValueError(
            f"{handle.url}: writing {handle.path} {region}: {describe_error(exc)}"
        ) from exc
    try:
        futures.commit.result()
    except ValueError as exc:
        region = _region(handle.shape, key)
        raise StoreError(
            f"{handle.url}: writing {handle.path} {region} failed: {describe_error(exc)}"
        ) from exc


def _region(shape: tuple[int, ...], key: Any) -> str:
    """``[z0:z1, y0:y1, x0:x1]``: the box an index expression selects, in array coordinates."""
    import tensorstore as ts

    try:
        transform = ts.IndexTransform(input_shape=shape)[key]
    except (IndexError, TypeError, ValueError):
        return f"[{key!r}]"
    bounds = []
    for out in transform.output:
        if out.method == ts.OutputIndexMethod.constant:
            lo, hi = out.offset, out.offset + 1
        elif out.method == ts.OutputIndexMethod.single_input_dimension:
            dim = transform.domain[cast(int, out.input_dimension)]
            if dim.exclusive_max <= dim.inclusive_min:
                lo = hi = out.offset
            else:
                stride = cast(int, out.stride)
                ends = (
                    out.offset + stride * dim.inclusive_min,
                    out.offset + stride * (dim.exclusive_max - 1),
                )
                lo, hi = min(ends), max(ends) + 1
        else:
            index = np.asarray(out.index_array)
            ends = (out.offset + out.stride * index.min(), out.offset + out.stride * index.max())
            lo, hi = int(min(ends)), int(max(ends)) + 1
        bounds.append(f"{lo}:{hi}")
    return f"[{', '.join(bounds)}]"
