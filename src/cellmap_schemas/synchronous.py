"""The blocking API: the functions of :mod:`cellmap_schemas.asynchronous`, one event loop each.

Each function runs its async twin with ``anyio.run`` on asyncio (s3fs sessions are asyncio-bound)
and returns when the store is closed. Inside a running event loop use
:mod:`cellmap_schemas.asynchronous` instead; these raise ``RuntimeError`` there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from cellmap_schemas import asynchronous as _async
from cellmap_schemas.io.read import run_sync

if TYPE_CHECKING:
    from cellmap_schemas.scan.report import ScanReport

__all__ = ["check", "read", "scan"]


def read(
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
    >>> from cellmap_schemas import read
    >>> spec = read("/data/jrc_hela-2.n5/em/fibsem-uint16")  # doctest: +SKIP
    >>> sorted(spec.members)  # doctest: +SKIP
    ['s0', 's1', 's2']
    """
    return run_sync(partial(_async.read, url, depth=depth, storage_options=storage_options))


def check(
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
    >>> from cellmap_schemas import check
    >>> group = check("/data/jrc_hela-2.n5/em/fibsem-uint16", "multiscale.cosem.Group")
    ... # doctest: +SKIP
    """
    return run_sync(partial(_async.check, url, model, storage_options=storage_options))


def scan(
    url: str,
    models: Iterable[str] | None = None,
    concurrency: int = 64,
    retries: int = 3,
    timeout: float | None = 30.0,
    storage_options: Mapping[str, Any] | None = None,
) -> ScanReport:
    """Crawl every node below ``url`` concurrently and judge each by the models it looks like.

    The metadata of every array and group is read once (chunks are never touched; consolidated
    metadata replaces listings), each node is validated against the models whose convention it
    looks most like (or only ``models``), and totals are kept per dataset (the first path
    component below ``url``; ``url`` itself when it is a container). For results as they come,
    use :func:`cellmap_schemas.scan.open_scan`.

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
    >>> from cellmap_schemas import scan
    >>> report = scan("examples/cellmap-bucket", models=["multiscale.cosem.Group"])
    ... # doctest: +SKIP
    >>> report.summary.invalid  # doctest: +SKIP
    4
    """
    return run_sync(
        partial(
            _async.scan,
            url,
            models=models,
            concurrency=concurrency,
            retries=retries,
            timeout=timeout,
            storage_options=storage_options,
        )
    )
