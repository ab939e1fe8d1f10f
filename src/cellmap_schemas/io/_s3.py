"""S3 backend: s3fs builds the aiobotocore client, which we then call directly.

s3fs honours every fsspec storage option and the standard AWS configuration (``AWS_PROFILE``,
``AWS_ENDPOINT_URL(_S3)``, ``FSSPEC_S3_ENDPOINT_URL``, credential files), so it builds the client.
Reads skip s3fs's ``_cat_file``, which sends a HEAD before each GET: one ``get_object`` per read,
and a HEAD-less read also works on buckets whose policy grants only ``GetObject``. Retries are
ours (botocore's are switched off) so that ``retries``/``timeout`` mean the same for every
backend. s3fs and aiobotocore are imported here only, on first use of an ``s3://`` URL.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

import anyio

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
    """A prefix in an S3 bucket (or an S3-compatible service).

    The first successful GET goes through the botocore client; it teaches the store the URL
    layout (endpoint, path or virtual-host style, signing region) that botocore resolved. Later
    GETs are plain aiohttp requests to that layout, signed here with SigV4 when the store has
    credentials: about a third of the client CPU per request. Anything the direct path does not
    expect (redirects, signature problems, odd statuses) sends the store back to the client.
    """

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
        self.direct: DirectGet | None = None
        self._retired: list[DirectGet] = []
        self._learn = not self._get_kw and not getattr(fs, "version_aware", False)
        self._sent: tuple[str, str | None] | None = None
        # The first GET goes alone, so that it can teach the direct path to all the others.
        self._first_started = False
        self._first_done = anyio.Event()
        # Listings go direct too, unless extra parameters (RequestPayer...) apply.
        self._direct_list = set(self._list_kw) <= {"MaxKeys"}
        if self._learn:
            client.meta.events.register("before-send.s3.GetObject", self._capture)

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _capture(self, request: Any, **_: Any) -> None:
        auth = request.headers.get("Authorization")
        if isinstance(auth, bytes):
            auth = auth.decode("latin-1")
        self._sent = (str(request.url), auth)

    async def get(self, key: str) -> bytes | None:
        url = self.url_of(key)
        s3_key = self._key(key)

        async def attempt() -> bytes | None:
            direct = self.direct
            if direct is not None:
                try:
                    return await direct.get(s3_key, url, anonymous_hint=self.anonymous)
                except _Fallback:
                    self._learn = False
                    if self.direct is direct:  # other requests may still use it: close at exit
                        self.direct = None
                        self._retired.append(direct)
            try:
                response = await self.client.get_object(
                    Bucket=self.bucket, Key=s3_key, **self._get_kw
                )
                body = response["Body"]
                try:
                    data = bytes(await body.read())
                finally:
                    body.close()
            except Exception as exc:
                self._translate(exc, url)  # raises unless the key is missing
                data = None
            if self._learn and self.direct is None:
                try:
                    await self._start_direct(s3_key)
                except Exception:  # an optimisation only: never let it fail a read
                    self._learn = False
            return data

        if not self._first_started:
            self._first_started = True
            try:
                async with self._limiter:
                    return await retrying(
                        attempt,
                        url=url,
                        retries=self.retries,
                        timeout=self.timeout,
                        on_attempt=self._count,
                    )
            finally:
                self._first_done.set()
        await self._first_done.wait()
        async with self._limiter:
            return await retrying(
                attempt, url=url, retries=self.retries, timeout=self.timeout, on_attempt=self._count
            )

    async def _start_direct(self, s3_key: str) -> None:
        """Set up :class:`DirectGet` from the request botocore just sent for ``s3_key``."""
        sent, self._sent = self._sent, None
        if sent is None:
            return
        sent_url, authorization = sent
        base = sent_url.split("?", 1)[0]
        encoded = quote(s3_key, safe="/~")
        if not base.endswith("/" + encoded):
            return  # another request's capture, or a layout we do not understand: next time
        prefix = base[: len(base) - len(encoded)]
        region = None
        credentials = None
        if authorization:
            match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request", authorization)
            if not match or not authorization.startswith("AWS4-HMAC-SHA256"):
                self._learn = False
                return
            region = match.group(1)
            credentials = await self._credentials()
            if credentials is None:
                self._learn = False
                return
        try:
            direct = DirectGet(
                prefix,
                region=region,
                credentials=credentials,
                concurrency=self.concurrency,
                verify=self._verify(),
                proxies=self.fs.config_kwargs.get("proxies"),
            )
        except ImportError:  # pragma: no cover - aiohttp comes with s3fs
            self._learn = False
            return
        if self.direct is None:
            self.direct = direct
        else:
            await direct.aclose()

    async def _credentials(self) -> Any:
        fs = self.fs
        if fs.key and fs.secret:
            from botocore.credentials import Credentials

            return Credentials(fs.key, fs.secret, fs.token)
        session = getattr(fs, "session", None)
        return await session.get_credentials() if session is not None else None

    def _verify(self) -> bool | str | None:
        verify = self.fs.client_kwargs.get("verify")
        if verify is None and self.fs.session is not None:
            verify = self.fs.session.get_config_variable("ca_bundle")
        return verify

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        url = self.url_of(key)
        prefix = self._key(key)
        prefix = f"{prefix}/" if prefix else ""
        dirs: list[str] = []
        files: list[str] = []
        token: str | None = None
        while True:
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
            for name in common:
                name = name[len(prefix) :].rstrip("/")
                if name:
                    dirs.append(name)
            for name in keys:
                name = name[len(prefix) :]
                if name and "/" not in name:
                    files.append(name)
            if not token:
                break
        return sorted(set(dirs)), sorted(set(files))

    async def _list_page(
        self, prefix: str, token: str | None, url: str
    ) -> tuple[list[str], list[str], str | None] | None:
        """One attempt at one listing page: direct when possible, else through botocore."""
        direct = self.direct
        if direct is not None and self._direct_list:
            try:
                return await direct.list_page(
                    prefix,
                    token,
                    url,
                    max_keys=self._list_kw.get("MaxKeys"),
                    anonymous_hint=self.anonymous,
                )
            except _Fallback:
                self._direct_list = False
            except ElementTree.ParseError:
                self._direct_list = False
        kw = dict(self._list_kw, Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        if token:
            kw["ContinuationToken"] = token
        try:
            page = await self.client.list_objects_v2(**kw)
        except Exception as exc:
            return self._translate(exc, url)
        common = [c["Prefix"] for c in page.get("CommonPrefixes", ())]
        keys = [o["Key"] for o in page.get("Contents", ())]
        next_token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return common, keys, next_token

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
        direct, self.direct = self.direct, None
        retired, self._retired = self._retired, []
        client, self.client = self.client, None
        try:
            for d in [direct, *retired]:
                if d is not None:
                    await d.aclose()
        finally:
            if client is not None:
                await client.close()


class _Fallback(Exception):
    """The direct path cannot serve this request: use the botocore client from now on."""


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class DirectGet:
    """S3 GETs as plain aiohttp requests to ``prefix + quoted key``.

    ``region``/``credentials`` set: each request is signed with SigV4 (see :func:`sigv4_headers`);
    both ``None``: unsigned (anonymous) requests. Responses map to bytes, ``None`` (missing),
    :class:`Transient`, :class:`StoreError`, or :class:`_Fallback` for anything unexpected.
    """

    def __init__(
        self,
        prefix: str,
        *,
        region: str | None,
        credentials: Any,
        concurrency: int,
        verify: bool | str | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        import aiohttp
        import yarl

        self.prefix = prefix
        self.region = region
        self.credentials = credentials
        self._url_type = yarl.URL
        if verify is False:
            ssl_option: Any = False
        else:
            ssl_option = ssl.create_default_context(
                cafile=verify if isinstance(verify, str) else None
            )
        self.proxy = _env_proxy(prefix) if proxies is None else _config_proxy(prefix, proxies)
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_option)
        # trust_env off: it costs two thread hops per request (netrc, proxy variables); the proxy
        # is looked up once above instead. auto_decompress off: the object's bytes, as botocore.
        self.session = aiohttp.ClientSession(
            connector=connector, trust_env=False, auto_decompress=False
        )

    async def get(self, key: str, url: str, *, anonymous_hint: bool = False) -> bytes | None:
        status, body = await self._send(self.prefix + quote(key, safe="/~"), url)
        if status == 200:
            return body
        return self._failed(status, body, url, anonymous_hint)

    async def list_page(
        self,
        prefix: str,
        token: str | None,
        url: str,
        *,
        max_keys: int | None = None,
        anonymous_hint: bool = False,
    ) -> tuple[list[str], list[str], str | None] | None:
        """One ListObjectsV2 page below ``prefix``: (common prefixes, keys, next token).

        ``None`` when the answer is 404 without ``NoSuchBucket`` (nothing there).
        """
        params = {"delimiter": "/", "encoding-type": "url", "list-type": "2", "prefix": prefix}
        if token:
            params["continuation-token"] = token
        if max_keys is not None:
            params["max-keys"] = str(max_keys)
        # The canonical query (sorted, strictly encoded) is also the one sent.
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
        )
        status, body = await self._send(f"{self.bucket_url}?{query}", url)
        if status != 200:
            return self._failed(status, body, url, anonymous_hint)
        return _parse_listing(body)

    @property
    def bucket_url(self) -> str:
        """The bucket's own URL: ``prefix`` without the slash after a path-style bucket."""
        parts = urlsplit(self.prefix)
        if parts.path.rstrip("/"):
            return self.prefix.rstrip("/")
        return self.prefix

    async def _send(self, target: str, url: str) -> tuple[int, bytes]:
        headers: dict[str, str] = {}
        if self.credentials is not None:
            frozen = await _frozen(self.credentials)
            headers = sigv4_headers(
                "GET",
                target,
                region=self.region or "us-east-1",
                access_key=frozen.access_key,
                secret_key=frozen.secret_key,
                token=frozen.token,
                amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            )
        try:
            async with self.session.get(
                self._url_type(target, encoded=True),
                headers=headers,
                allow_redirects=False,
                proxy=self.proxy,
            ) as response:
                return response.status, await response.read()
        except Exception as exc:
            from cellmap_schemas.io.store import translate_error

            translate_error(exc, url)  # raises Transient or StoreError for transport errors
            raise _Fallback from exc  # an HTTP-level error we did not ask for: let botocore try

    @staticmethod
    def _failed(status: int, body: bytes, url: str, anonymous_hint: bool) -> None:
        """Map an error answer: ``None`` (missing), or raise Transient/StoreError/_Fallback."""
        match = _ERROR_CODE.search(body)
        code = match.group(1).decode("utf-8", "replace") if match else ""
        if status == 404:
            if code == "NoSuchBucket":
                raise _Fallback  # the client path words this error
            return None
        if status == 403 and code in ("AccessDenied", "AllAccessDisabled", ""):
            hint = " with anonymous access: no AWS credentials found" if anonymous_hint else ""
            raise StoreError(f"{url}: access denied (403){hint}")
        if status == 429 or status >= 500:
            raise Transient(f"{code or 'server error'} ({status})")
        raise _Fallback

    async def aclose(self) -> None:
        await self.session.close()


def _parse_listing(body: bytes) -> tuple[list[str], list[str], str | None]:
    """Common prefixes, keys and the continuation token of a ListObjectsV2 answer."""
    root = ElementTree.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    prefixes = [unquote_plus(e.text or "") for e in root.iterfind(f"{ns}CommonPrefixes/{ns}Prefix")]
    keys = [unquote_plus(e.text or "") for e in root.iterfind(f"{ns}Contents/{ns}Key")]
    truncated = (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    return prefixes, keys, token or None


def _env_proxy(url: str) -> str | None:
    """The proxy the standard variables (``HTTPS_PROXY``, ``NO_PROXY``...) give for ``url``."""
    import urllib.request

    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass_environment(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _config_proxy(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy botocore's ``Config(proxies=...)`` gives for ``url``."""
    parts = urlsplit(url)
    return proxies.get(f"{parts.scheme}://{parts.hostname}") or proxies.get(parts.scheme)


async def _frozen(credentials: Any) -> Any:
    frozen = credentials.get_frozen_credentials()
    if hasattr(frozen, "__await__"):
        frozen = await frozen
    return frozen


def sigv4_headers(
    method: str,
    url: str,
    *,
    region: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    amz_date: str,
) -> dict[str, str]:
    """Headers that sign a body-less S3 request with AWS Signature Version 4.

    ``url`` must be sent exactly as given (already percent-encoded, no query string); S3 takes
    the path as its canonical URI without encoding it again.
    """
    parts = urlsplit(url)
    headers = {
        "host": parts.netloc,
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": amz_date,
    }
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    signed = ";".join(names)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{headers[name]}\n" for name in names),
            signed,
            EMPTY_SHA256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _signing_key(secret_key, amz_date[:8], region)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    del headers["host"]  # aiohttp sends it from the URL
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return headers


@functools.lru_cache(maxsize=16)
def _signing_key(secret_key: str, date: str, region: str) -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _extra_kwargs(fs: Any, method: Any) -> dict[str, Any]:
    kw: Mapping[str, Any] = fs._get_s3_method_kwargs(method, Bucket="b", Key="k")
    return {k: v for k, v in kw.items() if k not in ("Bucket", "Key")}
