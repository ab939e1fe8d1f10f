"""Spec details owned by the foundation: v3 fill values, JSON schemas of array-or-group members."""

from __future__ import annotations

import numpy as np

from cellmap_schemas import NodeExistsError
from cellmap_schemas.multiscale import neuroglancer_n5
from cellmap_schemas.spec import ArraySpecV3, GroupSpec


def test_v3_from_array_fill_value_follows_the_dtype() -> None:
    assert ArraySpecV3.from_array(np.zeros(3, dtype=bool)).fill_value is False
    assert ArraySpecV3.from_array(np.zeros(3, dtype="f4")).fill_value == 0.0
    assert isinstance(ArraySpecV3.from_array(np.zeros(3, dtype="f4")).fill_value, float)
    assert ArraySpecV3.from_array(np.zeros(3, dtype="u1"), fill_value=7).fill_value == 7


def test_json_schema_of_models_with_array_or_group_members() -> None:
    for model in (GroupSpec, neuroglancer_n5.Group):
        schema = model.model_json_schema()
        members = schema["$defs"][model.__name__]["properties"]["members"]
        assert members["additionalProperties"]["type"] == "object"


def test_node_exists_error_is_exported() -> None:
    assert issubclass(NodeExistsError, FileExistsError)
