"""Models of multiscale image groups: Neuroglancer N5, COSEM, and OME-NGFF.

Each convention lives in its own module (``neuroglancer_n5``, ``cosem``, ``ome_ngff``); importing
this package imports none of them, so the CLI only pays for the models it uses.
"""
