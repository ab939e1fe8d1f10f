"""The async API: read, judge and scan hierarchies from inside an event loop.

Each call opens its own store and closes it before returning, so calls are independent and can
run concurrently (``anyio`` task groups, ``asyncio.gather``). :mod:`cellmap_schemas.synchronous`
has the same functions for blocking code. Every verdict comes from one engine,
:func:`cellmap_schemas.validation.judge_node`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellmap_schemas._scan import MEMBER_DEPTH, open_scan
from cellmap_schemas._scan.distributed import open_distributed_scan
from cellmap_schemas._scan.processes import WorkerPool
from cellmap_schemas.io.read import read_model_async, read_spec
from cellmap_schemas.validation import Options

if TYPE_CHECKING:
    from cellmap_schemas._scan.report import NodeResult, ScanReport
    from cellmap_schemas.errors import ValidationError

__all__ = [
    "Inspection",
    "WorkerPool",
    "check",
    "inspect",
    "judge",
    "open_distributed_scan",
    "open_scan",
    "read",
    "resolve_model",
    "scan",
]


def resolve_model(model: str | type[Any]) -> Any:
    """The model class for a CLI name (``"multiscale.cosem.Group"``) or a class.

    Raises
    ------
    UnknownModelError
        If ``model`` is a name no model has (a ``KeyError``, as from :func:`scan`); the message
        lists close matches.
    TypeError
        If ``model`` is a class that cannot validate documents.
    """
    if isinstance(model, str):
        from cellmap_schemas.registry import get_model

        return get_model(model)
    if not isinstance(model, type) or not callable(getattr(model, "model_validate", None)):
        raise TypeError(f"expected a model class or name, got {model!r}")
    return model


async def read(
    url: str,
    depth: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Read the array or group at ``url`` into a spec tree.

    The format (N5, Zarr v2, Zarr v3) is detected from the metadata found, not from the URL.
    N5 and Zarr v2 nodes become :class:`~cellmap_schemas.spec.ArraySpec` /
    :class:`~cellmap_schemas.spec.GroupSpec`; Zarr v3 nodes become
    :class:`~cellmap_schemas.spec.ArraySpecV3` / :class:`~cellmap_schemas.spec.GroupSpecV3`.

    Parameters
    ----------
    url : str
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://`` URL of an array or group.
    depth : int or None, optional
        Levels of members to read below a group: ``None`` (default) reads the whole hierarchy,
        ``0`` the node alone, ``1`` its direct members. Arrays are never read inside.
    storage_options : mapping, optional
        fsspec options for the storage, e.g. ``{"anon": True}`` or ``{"endpoint_url": ...}``.

    Returns
    -------
    ArraySpec or GroupSpec or ArraySpecV3 or GroupSpecV3
        The node, with its members (read concurrently) for a group.

    Raises
    ------
    NodeNotFoundError
        If nothing exists at ``url``.
    UnsupportedFormatError
        If there is no N5 / Zarr metadata there, or a document is not a JSON object.
    ValidationError
        If the metadata does not form a valid array or group spec.
    StoreError
        If storage fails (access denied, unreachable, timeout).

    Examples
    --------
    >>> import anyio
    >>> from cellmap_schemas.asynchronous import read
    >>> spec = anyio.run(read, "/data/jrc_hela-2.n5/em/fibsem-uint16")  # doctest: +SKIP
    >>> sorted(spec.members)  # doctest: +SKIP
    ['s0', 's1', 's2']
    """
    return await read_spec(url, depth=depth, storage_options=storage_options)


@dataclass(frozen=True)
class Inspection:
    """What ``cellmap-schemas inspect`` shows: the node as read, valid spec or not.

    ``document`` is the node's spec as JSON-ready builtins, members included; a member that
    could not be read is ``{"unreadable": reason}`` in its place. ``problems`` says why the
    node is not a valid array or group spec of its format (``None`` when it is).
    """

    document: dict[str, Any]
    problems: ValidationError | None


async def inspect(
    url: str,
    depth: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Inspection:
    """Read the node at ``url`` with its members ``depth`` levels deep, and show it whatever
    it holds: unlike :func:`read`, an invalid spec or an unreadable member does not raise.

    Parameters
    ----------
    url : str
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://`` URL of an array or group.
    depth : int or None, optional
        Levels of members to read below a group: ``None`` (default) reads the whole hierarchy,
        ``0`` the node alone.
    storage_options : mapping, optional
        fsspec options for the storage, e.g. ``{"anon": True}``.

    Returns
    -------
    Inspection
        ``document`` (the spec as builtins, unreadable members marked) and ``problems``.

    Raises
    ------
    NodeNotFoundError, UnsupportedFormatError, StoreError
        The node itself cannot be read.
    ValueError
        ``depth`` is negative.
    """
    import msgspec

    from cellmap_schemas.errors import ValidationError
    from cellmap_schemas.io.read import generic_spec_type, read_tree, validate_node
    from cellmap_schemas.io.store import open_store

    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    async with open_store(url, storage_options=storage_options) as store:
        node = await read_tree(store, "", depth)
    problems = None
    try:
        document = msgspec.to_builtins(validate_node(generic_spec_type(node), node))
    except ValidationError as exc:  # still show what is there
        document, problems = dict(node.spec), exc
    _mark_unreadable(document, node.failures)
    return Inspection(document, problems)


def _mark_unreadable(spec: dict[str, Any], failures: Mapping[str, str]) -> None:
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


async def check(
    url: str,
    model: str | type[Any],
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Read the node at ``url`` as deep as ``model`` needs and validate it.

    Parameters
    ----------
    url : str
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://`` URL of an array or group.
    model : str or type
        A model class, or its name as the CLI spells it (``"multiscale.cosem.Group"``; see
        :data:`cellmap_schemas.registry.MODELS`).
    storage_options : mapping, optional
        fsspec options for the storage, e.g. ``{"anon": True}`` or ``{"endpoint_url": ...}``.

    Returns
    -------
    object
        The validated model instance.

    Raises
    ------
    ValidationError
        If the node does not conform; ``.problems`` lists every problem, ``.url`` the node.
    UnknownModelError
        If ``model`` is a name no model has (a ``KeyError``; the message lists close matches).
    NodeNotFoundError
        If nothing exists at ``url``.
    UnsupportedFormatError
        If there is no N5 / Zarr metadata there, or a document is not a JSON object.
    StoreError
        If storage fails (access denied, unreachable, timeout).

    Examples
    --------
    >>> import anyio
    >>> from cellmap_schemas.asynchronous import check
    >>> url = "/data/jrc_hela-2.n5/em/fibsem-uint16"
    >>> group = anyio.run(check, url, "multiscale.cosem.Group")  # doctest: +SKIP
    """
    cls = resolve_model(model)
    return await read_model_async(cls, url, storage_options=storage_options)


async def judge(
    url: str,
    models: Iterable[str] | None = None,
    *,
    options: Options | None = None,
    storage_options: Mapping[str, Any] | None = None,
    retries: int = 3,
    timeout: float | None = 30.0,
) -> NodeResult:
    """Every verdict on the node at ``url``, exactly as :func:`scan` gives it for that node.

    The node is read with the members its verdicts depend on (two levels, as a scan holds them)
    and judged by every model whose markers it carries, or by ``models`` whatever it carries.

    Parameters
    ----------
    url : str
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://`` URL of an array or group.
    models : iterable of str, optional
        Model names to judge by (``"multiscale.cosem.Group"``); default: those whose markers
        the node carries.
    options : Options, optional
        ``strict``, ``select`` and ``ignore`` (see :class:`~cellmap_schemas.validation.Options`).
    storage_options : mapping, optional
        fsspec options for the storage, e.g. ``{"anon": True}``.

    Returns
    -------
    NodeResult
        ``status`` (``valid``, ``invalid`` or ``not_applicable``) and ``results`` per model,
        each with its ``errors`` and ``warnings``.

    Raises
    ------
    UnknownModelError
        A model name is not registered.
    NodeNotFoundError, UnsupportedFormatError, StoreError
        The node itself cannot be read.
    """
    names = list(models or ())
    async with open_scan(
        url,
        models=names,
        options=options,
        storage_options=storage_options,
        retries=retries,
        timeout=timeout,
        max_depth=MEMBER_DEPTH,
        force=bool(names),
    ) as stream:
        root = None
        async for node in stream:
            if node.path == "":
                root = node
    if root is None or root.status == "unreadable":
        await _raise_unreadable(url, storage_options, root.error if root else None)
    assert root is not None
    return root


async def _raise_unreadable(
    url: str, storage_options: Mapping[str, Any] | None, reason: str | None
) -> None:
    """Raise why the node at ``url`` cannot be read, with the reader's own precise error."""
    from cellmap_schemas.errors import UnsupportedFormatError
    from cellmap_schemas.io.read import read_node
    from cellmap_schemas.io.store import open_store

    async with open_store(url, storage_options=storage_options) as store:
        await read_node(store, "")  # raises NodeNotFoundError / UnsupportedFormatError / ...
    raise UnsupportedFormatError(reason or f"{url}: cannot be read")


async def scan(
    url: str,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
    options: Options | None = None,
    jobs: int | WorkerPool = 1,
) -> ScanReport:
    """Crawl every node below ``url`` concurrently and judge each by the models it follows.

    The metadata of every array and group is read once (chunks are never touched; consolidated
    metadata replaces listings), each node is judged by every model whose markers it carries
    (or, with ``models``, by those of them it carries a marker or a key of), and totals are kept
    per dataset and model (a dataset is the first path component below ``url``; ``url`` itself
    when it is a container). For results as they come, use :func:`open_scan`.

    Parameters
    ----------
    url : str
        Local path or ``file://``, ``s3://``, ``gs://``, ``http(s)://`` URL of a bucket, a
        folder of datasets or one container.
    models : iterable of str, optional
        CLI names of the models to judge by (``"multiscale.cosem.Group"``); default: all.
    concurrency : int, optional
        Directories read at once (default 64).
    retries : int, optional
        Extra attempts for a request that failed transiently (default 3).
    timeout : float or None, optional
        Seconds allowed for one attempt of one request (default 30).
    storage_options : mapping, optional
        fsspec options for the storage, e.g. ``{"anon": True}`` or ``{"endpoint_url": ...}``.
    options : Options, optional
        ``strict``, ``select`` and ``ignore`` (see :class:`~cellmap_schemas.validation.Options`).
    jobs : int or WorkerPool, optional
        Worker processes that crawl and judge shards of the tree (default 1: this process
        alone); a :class:`WorkerPool` is reused across scans. The report is the same.

    Returns
    -------
    ScanReport
        ``nodes`` (sorted by path, each with its status and per-model results), ``datasets``
        and ``summary``; ``msgspec.json.encode(report)`` is the CLI's JSON report.

    Raises
    ------
    UnknownModelError
        If a model name is not registered (a ``KeyError``; the message lists close matches).
    NodeNotFoundError
        If nothing exists at ``url``.
    StoreError
        If ``url`` itself cannot be read (access denied, unreachable). Failures below it are
        reported per node, never raised.

    Examples
    --------
    >>> import anyio
    >>> from cellmap_schemas.asynchronous import scan
    >>> report = anyio.run(scan, "examples/cellmap-bucket")  # doctest: +SKIP
    >>> [(d.name, d.conforms) for d in report.datasets]  # doctest: +SKIP
    [('jrc_cos7-1a', False), ('jrc_hela-2', True), ('jrc_macrophage-2', False)]
    """
    from cellmap_schemas._scan import collect

    return await collect(
        url,
        models=models,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        storage_options=storage_options,
        options=options,
        jobs=jobs,
    )
