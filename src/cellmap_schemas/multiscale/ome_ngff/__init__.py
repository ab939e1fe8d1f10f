"""OME-NGFF multiscale images: :mod:`.v04` (Zarr v2 ``.zattrs``) and :mod:`.v05` (Zarr v3 ``ome``).

Import the version module you need; this package imports neither, so the CLI pays only for the
models it uses.
"""
