"""S3 backend on botocore: its credential chain, endpoint rules, signer, serializer and parser.

The aiobotocore client does everything botocore knows best: the credential chain (variables,
profiles, SSO, container and instance roles, each refreshed before it expires), endpoint
resolution (``AWS_ENDPOINT_URL(_S3)``, regions, path or virtual-host style), and errors. Its
per-request cost (~0.8 ms of CPU per GET, ~1 ms per listing) is what a scan of many small
documents cannot afford, so after the first GET taught the store the URL layout botocore chose,
GETs and listings are plain aiohttp requests to that layout, built, signed and parsed by
botocore's own pieces (:mod:`cellmap_schemas.io._s3_direct`) with the same (refreshing)
credentials. Anything the direct path does not expect goes back to the client. Retries are ours
(botocore's are off) so ``retries``/``timeout`` mean the same for every backend. botocore is
imported on first use of an ``s3://`` URL only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import anyio

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._base import Store, read_capped, too_large
from cellmap_schemas.io._errors import translate
from cellmap_schemas.io._retry import retrying
from cellmap_schemas.io._s3_direct import DirectS3, Fallback, Page, page_of
from cellmap_schemas.io._s3_options import s3_settings
from cellmap_schemas.io.url import Location, join_key, redact

__all__ = ["MAX_LIST_PAGES", "S3Store", "open_s3"]

MAX_LIST_PAGES = 100_000
"""Most ListObjectsV2 pages one ``list_dir`` follows (100 million keys at S3's 1,000 a page)."""

# s3fs's option names for explicit credentials -> botocore's.
_SIGV4 = frozenset({"s3v4", "v4"})

_LOADERS: dict[str, Any] = {}


def _shared_loader(session: Any) -> Any:
    """One botocore data loader per data path for the whole process.

    A fresh session would parse botocore's endpoint and S3 model JSON again (about 0.1-0.5 s per
    store); the loader caches them, and holds only immutable data, so sharing it across sessions,
    event loops and threads is safe.
    """
    from botocore.loaders import create_loader

    data_path = session.get_config_variable("data_path") or ""
    loader = _LOADERS.get(data_path)
    if loader is None:
        loader = _LOADERS[data_path] = create_loader(data_path or None)
    return loader


def _error(url: str, detail: object) -> StoreError:
    """A one-line StoreError; whatever it quotes passes through :func:`redact`."""
    return StoreError(redact(f"{url}: {detail}".replace("\n", " ")))


async def open_s3(location: Location, **kw: Any) -> S3Store:
    """Build the aiobotocore client (and find credentials) inside the running loop.

    Storage options are s3fs's names (``anon``, ``key``/``secret``/``token``, ``profile``,
    ``endpoint_url``, ``client_kwargs``, ``config_kwargs``, ``requester_pays``,
    ``s3_additional_kwargs``, ``session``, ``use_ssl``; also ``region_name``), so options
    written for s3fs still work.
    """
    try:
        import aiobotocore.session
        import botocore
        import botocore.exceptions
        from aiobotocore.config import AioConfig
        from aiobotocore.credentials import AioCredentials
    except ImportError as exc:  # pragma: no cover - aiobotocore is a dependency
        raise _error(location.url, f"S3 support needs aiobotocore ({exc})") from exc

    url = location.url
    # Other names pass unread, as s3fs let them: the same options also reach the writers
    # (``retries``, ``fsync``) and s3fs's cache settings mean nothing here.
    options = dict(location.storage_options)
    timeout = kw.get("timeout")
    settings = s3_settings(options)  # the writer's reading of the same options
    client_kwargs = dict(options.get("client_kwargs") or {})
    for name, value in (
        ("endpoint_url", settings.endpoint),
        ("region_name", settings.region),
        ("aws_access_key_id", settings.key),
        ("aws_secret_access_key", settings.secret),
        ("aws_session_token", settings.token),
    ):
        if value:
            client_kwargs[name] = value
    if "use_ssl" in options:
        client_kwargs.setdefault("use_ssl", bool(options["use_ssl"]))
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
    config.setdefault("max_pool_connections", kw.get("concurrency", 64))
    if timeout is not None:
        config.setdefault("connect_timeout", timeout)
        config.setdefault("read_timeout", timeout)
    extra = dict(options.get("s3_additional_kwargs") or {})
    if options.get("requester_pays"):
        extra.setdefault("RequestPayer", "requester")

    stack = contextlib.AsyncExitStack()
    try:
        session = options.get("session")
        if session is None:
            session = aiobotocore.session.AioSession(profile=settings.profile)
            session.register_component("data_loader", _shared_loader(session))
        key = client_kwargs.get("aws_access_key_id")
        secret = client_kwargs.get("aws_secret_access_key")
        credentials: Any = None
        if settings.anon is not None:
            anonymous = settings.anon
        else:
            anonymous = not (key and secret) and await session.get_credentials() is None
        if anonymous:
            config["signature_version"] = botocore.UNSIGNED
        elif key and secret:
            credentials = AioCredentials(key, secret, client_kwargs.get("aws_session_token"))
        else:
            # botocore's chain, the same object the client signs with: refreshed when it expires
            credentials = await session.get_credentials()
        client = await stack.enter_async_context(
            session.create_client("s3", config=AioConfig(**config), **client_kwargs)
        )
    except botocore.exceptions.BotoCoreError as exc:
        await stack.aclose()
        raise _error(url, f"cannot set up S3 access: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:
        await stack.aclose()
        raise _error(url, f"bad storage options: {exc}") from None
    verify = client_kwargs.get("verify")
    if verify is None:
        verify = session.get_config_variable("ca_bundle")
    return S3Store(
        location,
        client,
        stack,
        anonymous=anonymous,
        credentials=credentials,
        extra=extra,
        verify=verify,
        proxies=config.get("proxies"),
        **kw,
    )


class S3Store(Store):
    """A prefix in an S3 bucket (or an S3-compatible service).

    The first successful GET goes through the botocore client; it teaches the store the URL
    layout (endpoint, path or virtual-host style, signing region) that botocore resolved. Later
    GETs and listings are plain aiohttp requests to that layout (``direct``), signed by
    botocore's signer when the store has credentials. Anything the direct path does not expect
    (redirects, odd statuses, an answer that is no listing) goes back to the client for good: a
    GET's surprise sends every request there, a listing's only the listings.
    """

    def __init__(
        self,
        location: Location,
        client: Any,
        stack: contextlib.AsyncExitStack,
        *,
        anonymous: bool,
        credentials: Any,
        extra: Mapping[str, Any],
        verify: bool | str | None = None,
        proxies: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(location, **kw)
        self.client = client
        self._stack = stack
        self.anonymous = anonymous
        self.credentials = credentials
        self.max_list_pages = MAX_LIST_PAGES
        self._verify = verify
        self._proxies = proxies
        self.bucket, _, self.prefix = location.path.partition("/")
        # request-wide extras (RequestPayer, SSE-C keys, MaxKeys...), each where it applies
        model = client.meta.service_model
        self._get_kw = _applicable(extra, model.operation_model("GetObject"))
        self._list_kw = _applicable(extra, model.operation_model("ListObjectsV2"))
        self.direct: DirectS3 | None = None
        self._retired: list[DirectS3] = []
        self._learn = not self._get_kw  # extras would have to be sent as headers: client only
        self._list_direct = True  # until a listing answer surprises the direct path
        self._sent: tuple[str, str, str, Any] | None = None
        # The first GET goes alone, so that it can teach the direct path to all the others.
        self._first_started = False
        self._first_done = anyio.Event()
        if self._learn:
            client.meta.events.register("before-sign.s3.GetObject", self._capture)

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _capture(
        self, request: Any, signing_name: str, region_name: str, signature_version: Any, **_: Any
    ) -> None:
        """Remember the URL, region and signature botocore chose (its ``before-sign`` event)."""
        signing = request.context.get("signing", {})
        region = signing.get("region") or region_name
        name = signing.get("signing_name") or signing_name
        self._sent = (str(request.url), region, name, signature_version)

    async def get(self, key: str) -> bytes | None:
        url = self.url_of(key)
        s3_key = self._key(key)

        async def attempt() -> bytes | None:
            direct = self.direct
            if direct is not None:
                try:
                    return await direct.get(s3_key, url, anonymous_hint=self.anonymous)
                except Fallback:
                    self._learn = False
                    if self.direct is direct:  # other requests may still use it: close at exit
                        self.direct = None
                        self._retired.append(direct)
            data = await self._client_get(s3_key, url)
            if self._learn and self.direct is None:
                try:
                    await self._start_direct(s3_key)
                except Exception:  # an optimisation only: never let it fail a read
                    self._learn = False
            return data

        async def run() -> bytes | None:
            async with self._limiter:
                return await retrying(
                    attempt,
                    url=url,
                    retries=self.retries,
                    timeout=self.timeout,
                    on_attempt=self._count,
                )

        if not self._first_started:
            self._first_started = True
            try:
                return await run()
            finally:
                self._first_done.set()
        if not self._first_done.is_set():  # anyio's wait() yields even when it is set
            await self._first_done.wait()
        return await run()

    async def _client_get(self, s3_key: str, url: str) -> bytes | None:
        """One GET through botocore; the body is read up to the size limit, no further."""
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=s3_key, **self._get_kw)
            body = response["Body"]
            try:
                length = response.get("ContentLength")
                if length is not None and length > self.max_document_size:
                    raise too_large(url, self.max_document_size)
                return await read_capped(
                    functools.partial(body.read, 1 << 16), self.max_document_size, url
                )
            finally:
                body.close()
        except StoreError:
            raise
        except Exception as exc:
            self._translate(exc, url)  # raises unless the key is missing
            return None

    async def _start_direct(self, s3_key: str) -> None:
        """Set up :class:`DirectS3` from the request botocore just signed for ``s3_key``."""
        import botocore

        sent, self._sent = self._sent, None
        if sent is None:
            return
        sent_url, region, signing_name, version = sent
        base = sent_url.split("?", 1)[0]
        encoded = quote(s3_key, safe="/~")
        if not base.endswith("/" + encoded):
            return  # another request's capture, or a layout we do not understand: next time
        if version is botocore.UNSIGNED:
            credentials = None
        elif version in _SIGV4 and self.credentials is not None:
            credentials = self.credentials
        else:  # SigV4a, S3 Express sessions...: the client's business
            self._learn = False
            return
        direct = DirectS3(
            base[: len(base) - len(encoded)],
            bucket=self.bucket,
            region=region,
            signing_name=signing_name,
            credentials=credentials,
            list_operation=self.client.meta.service_model.operation_model("ListObjectsV2"),
            concurrency=self.concurrency,
            max_size=self.max_document_size,
            verify=self._verify,
            proxies=self._proxies,
            bounded=self.timeout is not None,
        )
        if self.direct is None:
            self.direct = direct
        else:
            await direct.aclose()

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        """One level below ``key``, page by page (botocore builds and parses each).

        The server controls the pages: a token it already sent, or more than
        ``max_list_pages`` pages, ends the listing with a StoreError instead of a loop.
        """
        url = self.url_of(key)
        prefix = self._key(key)
        prefix = f"{prefix}/" if prefix else ""
        dirs: set[str] = set()
        files: set[str] = set()
        token: str | None = None
        seen: set[str] = set()
        for _ in range(self.max_list_pages):
            async with self._limiter:
                page = await retrying(
                    functools.partial(self._list_page, prefix, token, url),
                    url=url,
                    retries=self.retries,
                    timeout=self.timeout,
                    on_attempt=self._count,
                )
            if page is None:
                break
            common, keys, token = page
            dirs.update(d for d in (n[len(prefix) :].rstrip("/") for n in common) if d)
            files.update(f for f in (n[len(prefix) :] for n in keys) if f and "/" not in f)
            if not token:
                break
            if token in seen:
                raise _error(
                    url,
                    f"listing stopped after {len(seen) + 1} pages: the server sent the same "
                    "continuation token twice",
                )
            seen.add(token)
        else:
            raise _error(url, f"listing stopped after {self.max_list_pages} pages (the limit)")
        return sorted(dirs), sorted(files)

    async def _list_page(self, prefix: str, token: str | None, url: str) -> Page | None:
        """One attempt at one ListObjectsV2 page, direct if it can be, else by the client."""
        params = dict(self._list_kw, Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        if token:
            params["ContinuationToken"] = token
        direct = self.direct
        if direct is not None and self._list_direct:
            try:
                return await direct.list_page(params, url, anonymous_hint=self.anonymous)
            except Fallback:
                self._list_direct = False
        try:
            page = await self.client.list_objects_v2(**params)
        except Exception as exc:
            self._translate(exc, url)  # raises unless the prefix is missing
            return None
        return page_of(page)

    def _translate(self, exc: Exception, url: str) -> None:
        """Botocore's and aiohttp's exceptions -> ``None`` (missing), Transient or StoreError:
        the ``s3`` rows of the table in :mod:`cellmap_schemas.io._errors`."""
        translate(exc, url, "s3", bucket=self.bucket, anonymous=self.anonymous)

    async def aclose(self) -> None:
        direct, self.direct = self.direct, None
        retired, self._retired = self._retired, []
        try:
            for d in [direct, *retired]:
                if d is not None:
                    await d.aclose()
        finally:
            await self._stack.aclose()


def _applicable(extra: Mapping[str, Any], operation: Any) -> dict[str, Any]:
    """The entries of ``extra`` that ``operation`` takes (as s3fs filters its extras)."""
    members = operation.input_shape.members if operation.input_shape is not None else {}
    return {k: v for k, v in extra.items() if k in members and k not in ("Bucket", "Key")}
