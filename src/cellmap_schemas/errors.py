"""Exceptions raised by cellmap-schemas.

Every exception derives from :class:`CellmapSchemasError` and from the builtin it resembles, so
callers can catch either::

    CellmapSchemasError(Exception)
    ├── ValidationError(…, ValueError)          every (loc, msg) problem found in one document
    ├── NodeNotFoundError(…, FileNotFoundError) no array or group metadata at a URL
    ├── NodeExistsError(…, FileExistsError)     a write would replace an existing node
    ├── UnsupportedFormatError(…, ValueError)   metadata exists but is not N5 / Zarr v2 / Zarr v3
    ├── UnknownModelError(…, KeyError)          a model name that is not registered
    └── StoreError(…, OSError)                  storage failed: permission, network, timeout
        └── NotFollowedError                    a path a store deliberately does not follow

This module imports only :mod:`cellmap_schemas.rules` (standard library only), so every other
module can import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cellmap_schemas.rules import Problem

__all__ = [
    "CellmapSchemasError",
    "DistributedNotInstalled",
    "NodeExistsError",
    "NodeNotFoundError",
    "NotFollowedError",
    "RootError",
    "StoreError",
    "UnknownModelError",
    "UnsupportedFormatError",
    "ValidationError",
]


class CellmapSchemasError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(CellmapSchemasError, ValueError):
    """A document does not conform to a model.

    Carries every error found, not just the first. ``issues`` holds them as
    :class:`~cellmap_schemas.rules.Problem` triples ``(rule, loc, msg)`` where ``loc`` is a
    readable path such as ``attributes.multiscales[0].datasets[2].transform.scale`` (empty for
    the document itself); ``problems`` gives the same as ``(loc, msg)`` pairs.
    """

    def __init__(
        self,
        problems: Iterable[Problem | tuple[str, str]],
        *,
        title: str = "document",
        url: str | None = None,
    ) -> None:
        self.issues: tuple[Problem, ...] = tuple(
            p if isinstance(p, Problem) else Problem("", *p) for p in problems
        )
        self.title = title
        self.url = url
        super().__init__(str(self))

    @property
    def problems(self) -> tuple[tuple[str, str], ...]:
        """The errors as ``(loc, msg)`` pairs."""
        return tuple((p.loc, p.msg) for p in self.issues)

    def errors(self) -> list[dict[str, str]]:
        """The errors as ``{"rule", "loc", "msg"}`` dicts (the shape used in JSON reports)."""
        return [{"rule": p.rule, "loc": p.loc, "msg": p.msg} for p in self.issues]

    def with_url(self, url: str) -> ValidationError:
        """The same problems, attributed to the document at ``url``."""
        return ValidationError(self.issues, title=self.title, url=url)

    def __str__(self) -> str:
        n = len(self.issues)
        where = f" at {self.url}" if self.url else ""
        head = f"{n} validation error{'s' if n != 1 else ''} for {self.title}{where}"
        return "\n".join([head, *(f"  {p.loc or '(root)'}: {p.msg}" for p in self.issues)])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_validation_error, (self.issues, self.title, self.url))


def _rebuild_validation_error(
    problems: Sequence[Problem], title: str, url: str | None
) -> ValidationError:
    return ValidationError(problems, title=title, url=url)


class NodeNotFoundError(CellmapSchemasError, FileNotFoundError):
    """No array or group metadata exists at the URL."""


class NodeExistsError(CellmapSchemasError, FileExistsError):
    """An array or group already exists where a write would create one (without overwrite)."""


class UnsupportedFormatError(CellmapSchemasError, ValueError):
    """The URL holds something, but not N5, Zarr v2 or Zarr v3 metadata (or not valid JSON)."""


class StoreError(CellmapSchemasError, OSError):
    """The storage backend failed: access denied, unreachable host, timeout, throttling."""


class NotFollowedError(StoreError):
    """A path the store deliberately does not follow (a symlink out of the root): the message
    is the whole reason, not a failure of the read or listing that met it."""


class UnknownModelError(CellmapSchemasError, KeyError):
    """A model name that is not registered; the message suggests close matches."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        super().__init__(name)

    def __str__(self) -> str:
        more = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown model {self.name!r}{more}"


class RootError(StoreError):
    """The root a scan starts from cannot be read (missing, denied, unreachable); failures
    below it are reported per node instead."""


class DistributedNotInstalled(CellmapSchemasError, ImportError):
    """``distributed`` is not installed (it is an optional extra); the message says how to
    install it."""
