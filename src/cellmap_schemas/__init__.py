"""cellmap-schemas: typed, fast validation of Cellmap N5 / Zarr hierarchies."""

from typing import TYPE_CHECKING

from cellmap_schemas.errors import (
    CellmapSchemasError,
    NodeExistsError,
    NodeNotFoundError,
    StoreError,
    UnknownModelError,
    UnsupportedFormatError,
    ValidationError,
)

if TYPE_CHECKING:
    from cellmap_schemas._scan import (
        DatasetSummary,
        NodeResult,
        RootError,
        ScanReport,
        ScanStream,
        Summary,
    )
    from cellmap_schemas.synchronous import check, judge, read, scan
    from cellmap_schemas.validation import Finding, ModelResult, Options

__all__ = [
    "CellmapSchemasError",
    "DatasetSummary",
    "Finding",
    "ModelResult",
    "NodeExistsError",
    "NodeNotFoundError",
    "NodeResult",
    "Options",
    "RootError",
    "ScanReport",
    "ScanStream",
    "StoreError",
    "Summary",
    "UnknownModelError",
    "UnsupportedFormatError",
    "ValidationError",
    "__version__",
    "check",
    "judge",
    "read",
    "scan",
]

_LAZY = {
    "check": "cellmap_schemas.synchronous",
    "judge": "cellmap_schemas.synchronous",
    "read": "cellmap_schemas.synchronous",
    "scan": "cellmap_schemas.synchronous",
    "DatasetSummary": "cellmap_schemas._scan",
    "NodeResult": "cellmap_schemas._scan",
    "RootError": "cellmap_schemas._scan",
    "ScanReport": "cellmap_schemas._scan",
    "ScanStream": "cellmap_schemas._scan",
    "Summary": "cellmap_schemas._scan",
    "Finding": "cellmap_schemas.validation",
    "ModelResult": "cellmap_schemas.validation",
    "Options": "cellmap_schemas.validation",
}


def _version() -> str:
    from cellmap_schemas.__about__ import __version__

    return __version__


def __getattr__(name: str) -> object:
    if name == "__version__":
        return _version()
    # The API loads the I/O layer on first use, keeping `import cellmap_schemas` light.
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'cellmap_schemas' has no attribute {name!r}")
