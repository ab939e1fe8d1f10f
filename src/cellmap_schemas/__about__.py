"""The package version: the one place it is written (``pyproject.toml`` reads it from here).

A constant, not ``importlib.metadata``: every scan report carries the version, and the metadata
lookup costs a command ~10-70 ms of imports (``email``, ``zipfile``...).
"""

__version__ = "0.9.0"
