"""Reading hierarchies from storage: URL parsing and async stores.

Importing this package imports neither fsspec nor s3fs; they load when a store is opened.
"""

from cellmap_schemas.io.store import Store, open_store
from cellmap_schemas.io.url import Location, parse_storage_options, parse_url

__all__ = ["Location", "Store", "open_store", "parse_storage_options", "parse_url"]
