"""Exceptions raised by cellmap-schemas.

Every exception derives from :class:`CellmapSchemasError` and from the builtin it resembles, so
callers can catch either::

    CellmapSchemasError(Exception)
    ├── ValidationError(…, ValueError)          every (loc, msg) problem found in one document
    ├── NodeNotFoundError(…, FileNotFoundError) no array or group metadata at a URL
    ├── NodeExistsError(…, FileExistsError)     a write would replace an existing node
    ├── UnsupportedFormatError(…, ValueError)   metadata exists but is not N5 / Zarr v2 / Zarr v3
    └── StoreError(…, OSError)                  storage failed: permission, network, timeout

This module imports nothing from the package, so every other module can import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "CellmapSchemasError",
    "NodeExistsError",
    "NodeNotFoundError",
    "StoreError",
    "UnsupportedFormatError",
    "ValidationError",
]


class CellmapSchemasError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(CellmapSchemasError, ValueError):
    """A document does not conform to a model.

    Carries every problem found, not just the first, as ``(loc, msg)`` pairs where ``loc`` is a
    readable path such as ``attributes.multiscales[0].datasets[2].transform.scale`` (empty for the
    document itself).
    """

    def __init__(
        self,
        problems: Iterable[tuple[str, str]],
        *,
        title: str = "document",
        url: str | None = None,
    ) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.title = title
        self.url = url
        super().__init__(str(self))

    def errors(self) -> list[dict[str, str]]:
        """The problems as ``{"loc", "msg"}`` dicts (the shape used in JSON reports)."""
        return [{"loc": loc, "msg": msg} for loc, msg in self.problems]

    def with_url(self, url: str) -> ValidationError:
        """The same problems, attributed to the document at ``url``."""
        return ValidationError(self.problems, title=self.title, url=url)

    def __str__(self) -> str:
        n = len(self.problems)
        where = f" at {self.url}" if self.url else ""
        head = f"{n} validation error{'s' if n != 1 else ''} for {self.title}{where}"
        return "\n".join([head, *(f"  {loc or '(root)'}: {msg}" for loc, msg in self.problems)])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_validation_error, (self.problems, self.title, self.url))


def _rebuild_validation_error(
    problems: Sequence[tuple[str, str]], title: str, url: str | None
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
