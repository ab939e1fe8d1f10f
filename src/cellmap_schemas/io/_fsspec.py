"""The fsspec backend: every protocol without a store of its own (``gs://``, ``http(s)://``,
``memory://``, ``file://`` with storage options...).

Async filesystems are awaited, sync ones run in a worker thread. ``http(s)`` bodies are streamed
from the filesystem's own aiohttp session, so that the size limit holds (``cat_file`` would read
any body whole).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import anyio

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._base import Store, read_capped, too_large, translate_error
from cellmap_schemas.io._retry import retrying
from cellmap_schemas.io.url import Location, join_key, redact

__all__ = ["FsspecStore"]

_CHUNK = 1 << 16


class FsspecStore(Store):
    """Any fsspec filesystem: async ones are awaited, sync ones run in a worker thread."""

    def __init__(self, location: Location, fs: Any, **kw: Any) -> None:
        super().__init__(location, **kw)
        self.fs = fs
        self._root: str = fs._strip_protocol(location.url)
        self._session: Any = None

    @classmethod
    async def open(cls, location: Location, **kw: Any) -> FsspecStore:
        """Build the filesystem inside the running loop, as fsspec asks for async use."""
        try:
            import fsspec

            fs_cls = fsspec.get_filesystem_class(location.protocol)
            # drivers log their retries as warnings; our error names the URL once, on one line
            logging.getLogger(fs_cls.__module__.split(".")[0]).setLevel(logging.ERROR)
            options = dict(location.storage_options)
            if fs_cls.async_impl:
                options.setdefault("asynchronous", True)
            fs = fs_cls(skip_instance_cache=True, **options)
        except Exception as exc:  # drivers raise anything from their constructors
            raise StoreError(redact(f"{location.url}: cannot open storage: {exc}")) from None
        store = cls(location, fs, **kw)
        if getattr(fs, "async_impl", False) and hasattr(fs, "set_session"):
            try:
                store._session = await fs.set_session()
            except Exception as exc:
                raise StoreError(redact(f"{location.url}: cannot open storage: {exc}")) from None
        return store

    @property
    def _async(self) -> bool:
        return bool(getattr(self.fs, "async_impl", False)) and bool(
            getattr(self.fs, "asynchronous", False)
        )

    @property
    def _http(self) -> bool:
        return self.location.protocol in ("http", "https")

    def _path(self, key: str) -> str:
        # keys are names, as on every other backend: over HTTP "#", "%", "?" must reach the
        # server as part of the name, so the key (not the root the user wrote) is quoted
        return join_key(self._root, quote(key, safe="/~") if self._http else key)

    async def _call(self, method: str, *args: Any) -> Any:
        if self._async:
            return await getattr(self.fs, f"_{method}")(*args)
        if self.location.protocol == "memory":  # no I/O: a thread would only cost time
            return getattr(self.fs, method)(*args)
        # abandon_on_cancel: a call stuck in the kernel (a dead mount) must not outlive the timeout
        return await anyio.to_thread.run_sync(
            lambda: getattr(self.fs, method)(*args), abandon_on_cancel=True
        )

    @property
    def _streams_http(self) -> bool:
        """An aiohttp-based HTTP filesystem, whose bodies :meth:`_http_get` streams itself."""
        return (
            self.location.protocol in ("http", "https")
            and self._session is not None
            and hasattr(self.fs, "encode_url")
        )

    async def _http_get(self, path: str, url: str) -> bytes | None:
        """One GET on fsspec's session: ``_cat_file`` would read any body whole, however big."""
        async with self._session.get(
            self.fs.encode_url(path), **getattr(self.fs, "kwargs", {})
        ) as response:
            if response.status in (404, 410):
                return None
            response.raise_for_status()
            length = response.content_length
            if length is not None and length > self.max_document_size:
                response.close()
                raise too_large(url, self.max_document_size)
            return await read_capped(
                functools.partial(response.content.read, _CHUNK), self.max_document_size, url
            )

    async def get(self, key: str) -> bytes | None:
        url = self.url_of(key)
        path = self._path(key)
        limit = self.max_document_size

        async def attempt() -> bytes | None:
            try:
                if self._streams_http:
                    return await self._http_get(path, url)
                if self.location.protocol == "file":  # fsspec would block on opening a FIFO
                    await anyio.to_thread.run_sync(_refuse_special, path, url)
                # a ranged read: one byte past the limit tells a larger document
                data = bytes(await self._call("cat_file", path, 0, limit + 1))
            except StoreError:
                raise
            except Exception as exc:
                translate_error(exc, url)  # raises unless the key is missing
                return None
            if len(data) > limit:
                raise too_large(url, limit)
            return data

        async with self._limiter:
            return await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        url = self.url_of(key)
        path = self._path(key)

        async def attempt() -> Sequence[Mapping[str, Any]] | None:
            try:
                found: Sequence[Mapping[str, Any]] = await self._call("ls", path, True)
            except Exception as exc:
                translate_error(exc, url)  # raises unless the key is missing
                return None
            return found

        async with self._limiter:
            entries = await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )
        dirs: set[str] = set()
        files: set[str] = set()
        for entry in entries or ():
            name = str(entry.get("name", "")).rstrip("/")
            child = name.rsplit("/", 1)[-1]
            if not child or name.rstrip("/") == path.rstrip("/"):
                continue
            if self._http:  # an index page's links are quoted: the name is what they quote
                child = unquote(child)
            (dirs if entry.get("type") == "directory" else files).add(child)
        return sorted(dirs), sorted(files - dirs)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            closing = session.close()
            if inspect.isawaitable(closing):
                await closing


def _refuse_special(path: str, url: str) -> None:
    """A local FIFO, socket or device is not a document: refuse it before anything opens it."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the read itself says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise StoreError(f"{url}: not a regular file")
