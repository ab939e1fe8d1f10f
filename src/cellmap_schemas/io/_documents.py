"""The metadata documents of one node, byte for byte as zarr-python (2 or 3) would write them.

Split from :mod:`cellmap_schemas.io.write`: encoding a spec is pure (no storage), and the
writer checks every document with tensorstore before it touches storage.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import msgspec

from cellmap_schemas.n5_wrap import spec_to_n5_array, spec_to_n5_group
from cellmap_schemas.spec.zarr_v2 import GroupSpec
from cellmap_schemas.spec.zarr_v3 import GroupSpecV3

StorageFormat = Literal["n5", "zarr2", "zarr3"]


def _is_group_spec(spec: Any) -> bool:
    return isinstance(spec, GroupSpec | GroupSpecV3)


def _attributes(spec: Any) -> dict[str, Any]:
    attrs = spec.attributes
    return msgspec.to_builtins(attrs) if isinstance(attrs, msgspec.Struct) else dict(attrs)


def _json_fill(value: Any) -> Any:
    """Zarr writes non-finite float fill values as strings (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _encode_v2(doc: Any) -> bytes:
    # zarr-python 2's layout: sorted keys, four-space indent, ASCII.
    return json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=True, allow_nan=False).encode()


def _encode_v3(doc: Any) -> bytes:
    # zarr-python 3's layout: field order kept, two-space indent.
    return json.dumps(doc, indent=2, ensure_ascii=True, allow_nan=False).encode()


def _documents(spec: Any, fmt: StorageFormat, *, root: bool) -> dict[str, bytes]:
    """The metadata documents of one node, by key relative to the node's directory."""
    if fmt == "n5":
        if _is_group_spec(spec):
            return {"attributes.json": _encode_v2(spec_to_n5_group(spec, root=root))}
        return {"attributes.json": _encode_v2(spec_to_n5_array(spec))}
    if fmt == "zarr2":
        if _is_group_spec(spec):
            return {
                ".zgroup": _encode_v2({"zarr_format": 2}),
                ".zattrs": _encode_v2(_attributes(spec)),
            }
        zarray, zattrs = spec.to_documents()
        zarray["fill_value"] = _json_fill(zarray.get("fill_value"))
        return {".zarray": _encode_v2(zarray), ".zattrs": _encode_v2(zattrs)}
    doc = spec.to_document()
    if not _is_group_spec(spec):
        doc["fill_value"] = _json_fill(doc.get("fill_value"))
        if doc.get("dimension_names") is None:
            doc.pop("dimension_names", None)  # optional in v3, and null is not a valid value
    return {"zarr.json": _encode_v3(doc)}
