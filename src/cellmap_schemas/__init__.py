"""cellmap-schemas: typed, fast validation of Cellmap N5 / Zarr hierarchies."""

from importlib.metadata import PackageNotFoundError, version

from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeNotFoundError,
    StoreError,
    UnsupportedFormatError,
    ValidationError,
)

try:
    __version__ = version("cellmap-schemas")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "CellmapSchemasError",
    "NodeNotFoundError",
    "StoreError",
    "UnsupportedFormatError",
    "ValidationError",
    "__version__",
]
