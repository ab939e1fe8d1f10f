"""S3 backend: s3fs builds the aiobotocore client, which we then call directly.

s3fs honours every fsspec storage option and the standard AWS configuration (``AWS_PROFILE``,
``AWS_ENDPOINT_URL(_S3)``, ``FSSPEC_S3_ENDPOINT_URL``, credential files), so it builds the client.
Reads skip s3fs's ``_cat_file``, which sends a HEAD before each GET: one ``get_object`` per read,
and a HEAD-less read also works on buckets whose policy grants only ``GetObject``. Retries are
ours (botocore's are switched off) so that ``retries``/``timeout`` mean the same for every
backend. s3fs and aiobotocore are imported here only, on first use of an ``s3://`` URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._retry import Transient, retrying
from cellmap_schemas.io.store import Store, dns_failure
from cellmap_schemas.io.url import Location, join_key

__all__ = ["S3Store", "open_s3"]

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)
_CREDENTIAL_OPTIONS = ("key", "secret", "token", "username", "password")

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


async def open_s3(location: Location, **kw: Any) -> S3Store:
    """Build the s3fs filesystem and its client inside the running loop."""
    try:
        import aiobotocore.session
        import botocore.exceptions
        from s3fs import S3FileSystem
    except ImportError as exc:  # pragma: no cover - s3fs is a dependency
        raise StoreError(f"{location.url}: S3 support needs s3fs ({exc})") from exc

    options = dict(location.storage_options)
    timeout = kw.get("timeout")
    config = dict(options.pop("config_kwargs", None) or {})
    config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
    config.setdefault("max_pool_connections", kw.get("concurrency", 64))
    if timeout is not None:
        config.setdefault("connect_timeout", timeout)
        config.setdefault("read_timeout", timeout)
    anonymous = bool(options.get("anon", False))
    try:
        if options.get("session") is None:
            session = aiobotocore.session.AioSession(profile=options.pop("profile", None))
            session.register_component("data_loader", _shared_loader(session))
            options["session"] = session
            if "anon" not in options and not any(options.get(k) for k in _CREDENTIAL_OPTIONS):
                # botocore's chain: variables, profile files, SSO, container and instance roles
                anonymous = await session.get_credentials() is None
        options["anon"] = anonymous
        fs = S3FileSystem(
            asynchronous=True, skip_instance_cache=True, config_kwargs=config, **options
        )
        client = await fs.set_session()
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreError(f"{location.url}: cannot set up S3 access: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise StoreError(f"{location.url}: bad storage options: {exc}") from exc
    return S3Store(location, fs, client, anonymous=anonymous, **kw)


class S3Store(Store):
    """A prefix in an S3 bucket (or an S3-compatible service)."""

    def __init__(
        self, location: Location, fs: Any, client: Any, *, anonymous: bool, **kw: Any
    ) -> None:
        super().__init__(location, **kw)
        self.fs = fs
        self.client = client
        self.anonymous = anonymous
        self.bucket, _, self.prefix = location.path.partition("/")
        # s3fs's request-wide extras (requester_pays, s3_additional_kwargs), filtered per method.
        self._get_kw = _extra_kwargs(fs, client.get_object)
        self._list_kw = _extra_kwargs(fs, client.list_objects_v2)

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    async def get(self, key: str) -> bytes | None:
        url = self.url_of(key)
        s3_key = self._key(key)

        async def attempt() -> bytes | None:
            try:
                response = await self.client.get_object(
                    Bucket=self.bucket, Key=s3_key, **self._get_kw
                )
                body = response["Body"]
                try:
                    return bytes(await body.read())
                finally:
                    body.close()
            except Exception as exc:
                return self._translate(exc, url)

        async with self._limiter:
            return await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        url = self.url_of(key)
        prefix = self._key(key)
        prefix = f"{prefix}/" if prefix else ""
        dirs: list[str] = []
        files: list[str] = []
        token: str | None = None
        while True:
            page_kw = dict(self._list_kw, Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            if token:
                page_kw["ContinuationToken"] = token

            async def attempt(kw: dict[str, Any] = page_kw) -> dict[str, Any] | None:
                try:
                    return await self.client.list_objects_v2(**kw)
                except Exception as exc:
                    return self._translate(exc, url)

            async with self._limiter:
                page = await retrying(
                    attempt,
                    url=url,
                    retries=self.retries,
                    timeout=self.timeout,
                    on_attempt=self._count,
                )
            if page is None:
                break
            for common in page.get("CommonPrefixes", ()):
                name = common["Prefix"][len(prefix) :].rstrip("/")
                if name:
                    dirs.append(name)
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(prefix) :]
                if name and "/" not in name:
                    files.append(name)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return sorted(set(dirs)), sorted(set(files))

    def _translate(self, exc: Exception, url: str) -> None:
        """Botocore's and aiohttp's exceptions -> ``None`` (missing), Transient or StoreError."""
        import botocore.exceptions as bx

        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _MISSING or (status == 404 and code != "NoSuchBucket"):
                return None
            if code == "NoSuchBucket":
                raise StoreError(f"{url}: bucket {self.bucket!r} does not exist") from None
            if code in _DENIED or status == 403:
                hint = " with anonymous access: no AWS credentials found" if self.anonymous else ""
                raise StoreError(f"{url}: access denied (403){hint}") from None
            if code in _BAD_CREDENTIALS:
                raise StoreError(f"{url}: credentials rejected ({code})") from None
            if code in _TRANSIENT or status >= 500 or status == 429:
                raise Transient(f"{code or 'server error'} ({status})")
            message = error.get("Message") or ""
            raise StoreError(f"{url}: {code} ({status}) {message}".rstrip()) from None
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
            cause = dns_failure(exc.kwargs.get("error") or exc)
            if cause is not None:
                raise StoreError(f"{url}: {cause}") from None
            endpoint = urlsplit(str(exc.kwargs.get("endpoint_url", ""))).netloc or "endpoint"
            raise Transient(f"cannot connect to {endpoint}")
        if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
            raise Transient("timed out")
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            raise StoreError(f"{url}: {exc}") from None
        if isinstance(exc, bx.HTTPClientError | bx.ResponseStreamingError):
            raise Transient(f"connection failed ({exc})")
        if isinstance(exc, bx.BotoCoreError):
            raise StoreError(f"{url}: {exc}") from None
        from cellmap_schemas.io.store import translate_error

        return translate_error(exc, url)

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()


def _extra_kwargs(fs: Any, method: Any) -> dict[str, Any]:
    kw: Mapping[str, Any] = fs._get_s3_method_kwargs(method, Bucket="b", Key="k")
    return {k: v for k, v in kw.items() if k not in ("Bucket", "Key")}
