"""cellmap-schemas: typed, fast validation of Cellmap N5 / Zarr hierarchies."""

from typing import TYPE_CHECKING

from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeExistsError,
    NodeNotFoundError,
    StoreError,
    UnsupportedFormatError,
    ValidationError,
)

if TYPE_CHECKING:
    from cellmap_schemas.synchronous import check, read, scan

__all__ = [
    "CellmapSchemasError",
    "NodeExistsError",
    "NodeNotFoundError",
    "StoreError",
    "UnsupportedFormatError",
    "ValidationError",
    "__version__",
    "check",
    "read",
    "scan",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cellmap-schemas")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


def __getattr__(name: str) -> object:
    # __version__ is looked up on first use: importlib.metadata costs ~70 ms of start-up.
    if name == "__version__":
        return _version()
    # read/check load the I/O layer on first use, keeping `import cellmap_schemas` light.
    if name in ("check", "read", "scan"):
        from cellmap_schemas import synchronous

        return getattr(synchronous, name)
    raise AttributeError(f"module 'cellmap_schemas' has no attribute {name!r}")
