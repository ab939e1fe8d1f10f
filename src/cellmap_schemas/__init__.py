"""cellmap-schemas: typed, fast validation of Cellmap N5 / Zarr hierarchies."""

from importlib.metadata import PackageNotFoundError, version
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

try:
    __version__ = version("cellmap-schemas")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

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


def __getattr__(name: str) -> object:
    # read/check load the I/O layer on first use, keeping `import cellmap_schemas` light.
    if name in ("check", "read", "scan"):
        from cellmap_schemas import synchronous

        return getattr(synchronous, name)
    raise AttributeError(f"module 'cellmap_schemas' has no attribute {name!r}")
