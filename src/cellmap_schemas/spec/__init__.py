"""Zarr v2 and v3 array / group specs: the shape of a hierarchy's metadata, without data."""

from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec, Node
from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3, NodeV3

__all__ = ["ArraySpec", "ArraySpecV3", "GroupSpec", "GroupSpecV3", "Node", "NodeV3"]
