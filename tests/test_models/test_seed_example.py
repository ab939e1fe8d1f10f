"""The first example of the original's documentation runs unchanged and prints what it shows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

# Verbatim from the seed documentation page ("Example: creating an N5 hierarchy for Neuroglancer").
EXAMPLE = '''\
from cellmap_schemas.multiscale.neuroglancer_n5 import Group, PixelResolution, GroupMetadata
import numpy as np

# define a toy multiscale image
data = np.arange(16).reshape(4,4)
data_ds = data[::2, ::2]
arrays = data, data_ds
scales = (4.0, 5.0), (8.0, 10.0)
units = 'nm', 'nm'
axes = 'y','x'
units = 'nm','nm'
paths = 's0', 's1'

# the dimension_order parameter indicates that our axes and scales are in C order
# N5 metadata uses F order, and so those paramters will be flipped in the resulting
# metadata.
group_model = Group.from_arrays(
    arrays=arrays,
    paths = paths,
    scales=scales,
    axes=axes,
    units=units,
    dimension_order="C")

# print out the attributes of the group model
# note that the axes are flipped relative to their input order
print(group_model.model_dump(exclude='members'))
"""
{
    'zarr_version': 2,
    'attributes': {
        'axes': ('x', 'y'),
        'units': ('nm', 'nm'),
        'scales': ((1, 1), (2, 2)),
        'pixelResolution': {'dimensions': (5.0, 4.0), 'unit': 'nm'},
    },
}
"""

# print out the members of the group model
print(group_model.model_dump(exclude='attributes'))
"""
{
    'zarr_version': 2,
    'members': {
        's0': {
            'zarr_version': 2,
            'attributes': {'pixelResolution': {'dimensions': (5.0, 4.0), 'unit': 'nm'}},
            'shape': (4, 4),
            'chunks': (4, 4),
            'dtype': '<i8',
            'fill_value': 0,
            'order': 'C',
            'filters': None,
            'dimension_separator': '/',
            'compressor': None,
        },
        's1': {
            'zarr_version': 2,
            'attributes': {
                'pixelResolution': {'dimensions': (10.0, 8.0), 'unit': 'nm'}
            },
            'shape': (2, 2),
            'chunks': (4, 4),
            'dtype': '<i8',
            'fill_value': 0,
            'order': 'C',
            'filters': None,
            'dimension_separator': '/',
            'compressor': None,
        },
    },
}
"""
'''

# The two dictionaries the page shows, in the order and with the types (tuples) it shows.
EXPECTED_ATTRIBUTES = {
    "zarr_version": 2,
    "attributes": {
        "axes": ("x", "y"),
        "units": ("nm", "nm"),
        "scales": ((1, 1), (2, 2)),
        "pixelResolution": {"dimensions": (5.0, 4.0), "unit": "nm"},
    },
}

EXPECTED_MEMBERS = {
    "zarr_version": 2,
    "members": {
        "s0": {
            "zarr_version": 2,
            "attributes": {"pixelResolution": {"dimensions": (5.0, 4.0), "unit": "nm"}},
            "shape": (4, 4),
            "chunks": (4, 4),
            "dtype": "<i8",
            "fill_value": 0,
            "order": "C",
            "filters": None,
            "dimension_separator": "/",
            "compressor": None,
        },
        "s1": {
            "zarr_version": 2,
            "attributes": {"pixelResolution": {"dimensions": (10.0, 8.0), "unit": "nm"}},
            "shape": (2, 2),
            "chunks": (4, 4),
            "dtype": "<i8",
            "fill_value": 0,
            "order": "C",
            "filters": None,
            "dimension_separator": "/",
            "compressor": None,
        },
    },
}


def test_expected_output_is_the_one_on_the_page() -> None:
    # The page shows its output as string literals after each print; they must be ours.
    shown = [
        ast.literal_eval(node.value.value)
        for node in ast.parse(EXAMPLE).body
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    ]
    assert shown == [EXPECTED_ATTRIBUTES, EXPECTED_MEMBERS]


def test_seed_example_prints_exactly_the_documented_dictionaries(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE)
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    # repr equality pins key order and tuple-vs-list, not just equality of values
    assert lines == [repr(EXPECTED_ATTRIBUTES), repr(EXPECTED_MEMBERS)]
