"""S3 requests without the botocore client: plain aiohttp GETs that botocore signs and parses.

The aiobotocore client costs ~0.8 ms of CPU per GET and ~1 ms per listing (its event hooks,
endpoint rules, request and response machinery), what a scan of many small documents cannot
afford. Once a first client GET has shown the URL layout botocore chose (endpoint, path or
virtual-host style, signing region), :class:`DirectS3` sends GETs and ListObjectsV2 pages to that
layout itself, still with botocore's pieces: its rest-xml serializer builds a listing's query
(``encoding-type=url`` set by botocore's own handler), ``S3SigV4Auth`` signs with the same
(refreshing) credentials, and the rest-xml parser with the ListObjectsV2 output shape reads the
answer, url-decoded by botocore's handler. Anything it does not expect is :class:`Fallback`:
the store sends that request, and later ones of its kind, through the client.

Only :mod:`cellmap_schemas.io._s3` imports this module, on first use of an ``s3://`` URL, so
botocore and aiohttp are imported at the top here.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yarl
from botocore.auth import S3SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.handlers import decode_list_object_v2, set_list_objects_encoding_type_url
from botocore.httpsession import ProxyConfiguration
from botocore.parsers import ResponseParserFactory
from botocore.serialize import create_serializer
from botocore.utils import get_environ_proxies, percent_encode_sequence

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._base import format_size, read_capped, too_large, translate_error
from cellmap_schemas.io._errors import Failure, Outcome, apply, rule_for
from cellmap_schemas.io._retry import Transient

__all__ = ["ERROR_BODY_LIMIT", "LISTING_LIMIT", "DirectS3", "Fallback", "Page", "page_of"]

ERROR_BODY_LIMIT = 1 << 16
"""Bytes of an error answer read for its ``<Code>``."""

LISTING_LIMIT = 16 << 20
"""Bytes of one listing page read at most: 1,000 keys of 1 KiB, url-encoded, are ~4 MiB."""

Page = tuple[list[str], list[str], str | None]
"""One ListObjectsV2 page: (common prefixes, keys, next continuation token)."""

_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str) -> ssl.SSLContext:
    """A TLS context verifying against ``cafile``, once per process: loading a CA bundle costs
    ~25 ms, a context serves any number of stores and connections."""
    return ssl.create_default_context(cafile=cafile)


class Fallback(Exception):
    """The direct path cannot serve this request: use the botocore client instead."""


def page_of(parsed: Mapping[str, Any]) -> Page:
    """The names and the next token of a ListObjectsV2 answer as botocore parsed it."""
    common = [c["Prefix"] for c in parsed.get("CommonPrefixes", ()) if "Prefix" in c]
    keys = [o["Key"] for o in parsed.get("Contents", ()) if "Key" in o]
    token = parsed.get("NextContinuationToken") if parsed.get("IsTruncated") else None
    return common, keys, token or None


def _listing_too_large(url: str, limit: int) -> StoreError:
    return StoreError(f"{url}: listing page larger than the {format_size(limit)} limit")


class DirectS3:
    """GETs of ``prefix + quoted key`` and listings of the bucket ``prefix`` belongs to.

    With ``credentials``, each request is signed by botocore's ``S3SigV4Auth`` for ``region``
    (frozen credentials are asked for each time, so refreshing ones stay fresh); without, the
    requests are unsigned. Answers map to values, ``None`` (missing), :class:`Transient`,
    :class:`StoreError`, or :class:`Fallback` for anything unexpected. ``list_operation`` is the
    client's ListObjectsV2 operation model: the serializer and parser work from it.
    """

    def __init__(
        self,
        prefix: str,
        *,
        bucket: str,
        region: str,
        signing_name: str,
        credentials: Any,
        list_operation: Any,
        concurrency: int,
        max_size: int,
        verify: bool | str | None = None,
        proxies: Mapping[str, str] | None = None,
        bounded: bool = False,
    ) -> None:
        self.prefix = prefix
        # botocore lists ``http://host/bucket?...`` (path style) or ``https://bucket.host/?...``
        path_style = urlsplit(prefix).path.endswith(f"/{quote(bucket, safe='')}/")
        self.bucket_url = prefix[:-1] if path_style else prefix
        self.region = region
        self.signing_name = signing_name
        self.credentials = credentials
        self.max_size = max_size
        # the Host header botocore would derive from each URL (twice per signature), once
        self._host = _host_from_url(prefix)
        self._signer: KeptKeySigV4 | None = None
        self._list_operation = list_operation
        self._serializer = create_serializer("rest-xml", include_validation=False)
        factory = ResponseParserFactory()
        factory.set_parser_defaults(timestamp_parser=str)  # LastModified is never read: as is
        self._parser = factory.create_parser("rest-xml")
        ssl_option: Any = True  # aiohttp's verifying context, made once per process
        if verify is False:
            ssl_option = False
        elif isinstance(verify, str):
            ssl_option = _tls_context(verify)
        # botocore's proxy rules (Config(proxies=...), else HTTPS_PROXY/NO_PROXY...), once.
        config = ProxyConfiguration(proxies=proxies or get_environ_proxies(prefix))
        self.proxy = config.proxy_url_for(prefix)
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_option)
        # trust_env off: it costs two thread hops per request (netrc, proxy variables); the proxy
        # is looked up once above instead. auto_decompress off: the object's bytes, as botocore.
        # ``bounded``: the caller times every attempt out itself, so aiohttp's own 300 s timer
        # (two timer handles and task lookups a request) is only kept as a backstop otherwise.
        timeout = aiohttp.ClientTimeout() if bounded else aiohttp.client.DEFAULT_TIMEOUT
        self.session = aiohttp.ClientSession(
            connector=connector, trust_env=False, auto_decompress=False, timeout=timeout
        )

    async def get(self, key: str, url: str, *, anonymous_hint: bool = False) -> bytes | None:
        """One object's bytes, or ``None`` if it is missing."""
        target = self.prefix + quote(key, safe="/~")
        status, body = await self._request(target, url, {}, self.max_size, too_large)
        if status == 200:
            return body
        return self._failed(status, body, url, anonymous_hint)

    async def list_page(
        self, params: dict[str, Any], url: str, *, anonymous_hint: bool = False
    ) -> Page | None:
        """One ListObjectsV2 page for the client's ``params`` (``Bucket``, ``Prefix``...), or
        ``None`` if the prefix is missing; an answer botocore cannot read as a listing is
        :class:`Fallback`."""
        context: dict[str, Any] = {}
        params = dict(params)
        set_list_objects_encoding_type_url(params=params, context=context)  # encoding-type=url
        request = self._serializer.serialize_to_request(params, self._list_operation)
        # the operation's own query (``list-type=2``), then the parameters, as botocore joins them
        fixed, encoded = request["url_path"].partition("?")[2], request["query_string"]
        query = "&".join(q for q in (fixed, encoded and percent_encode_sequence(encoded)) if q)
        target = f"{self.bucket_url}?{query}" if query else self.bucket_url
        headers = {k: str(v) for k, v in request["headers"].items()}
        status, body = await self._request(target, url, headers, LISTING_LIMIT, _listing_too_large)
        if status != 200:
            return self._failed(status, body, url, anonymous_hint)
        try:
            answer = {"status_code": 200, "headers": {}, "body": body}
            parsed = self._parser.parse(answer, self._list_operation.output_shape)
        except Exception as exc:  # not XML, odd values: the client words it
            raise Fallback from exc
        if "IsTruncated" not in parsed:  # S3 always sends it: this is no ListBucketResult
            raise Fallback
        decode_list_object_v2(parsed=parsed, context=context)
        return page_of(parsed)

    async def _request(
        self,
        target: str,
        url: str,
        headers: dict[str, str],
        limit: int,
        too_big: Callable[[str, int], StoreError],
    ) -> tuple[int, bytes]:
        """One GET of ``target``, signed if there are credentials: (status, body), the body
        read up to ``limit`` (``too_big`` past it), an error answer's up to ERROR_BODY_LIMIT."""
        if self.credentials is not None:
            headers = await self._signed(target, headers)
        try:
            async with self.session.get(
                yarl.URL(target, encoded=True),
                headers=headers,
                allow_redirects=False,
                proxy=self.proxy,
            ) as response:
                if response.status != 200:
                    return response.status, await response.content.read(ERROR_BODY_LIMIT)
                length = response.content_length
                if length is None:
                    read = functools.partial(response.content.read, 1 << 16)
                    try:
                        return 200, await read_capped(read, limit, url)
                    except StoreError:
                        raise too_big(url, limit) from None
                if length > limit:
                    response.close()
                    raise too_big(url, limit)
                return 200, await response.read()  # no more than the length it announced
        except (StoreError, Transient):
            raise
        except Exception as exc:
            translate_error(exc, url)  # raises Transient or StoreError for transport errors
            raise Fallback from exc  # an HTTP-level error we did not ask for: let botocore try

    async def _signed(self, target: str, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` and botocore's signature headers for a GET of ``target``; the Host
        header is set before signing, and sent as signed."""
        request = _Get(method="GET", url=target, headers={"host": self._host, **headers})
        frozen = await _frozen(self.credentials)
        signer = self._signer
        if signer is None or signer.credentials != frozen:  # refreshed credentials: a new key
            signer = self._signer = KeptKeySigV4(frozen, self.signing_name, self.region)
        signer.add_auth(request)
        return dict(request.headers.items())

    @staticmethod
    def _failed(status: int, body: bytes, url: str, anonymous_hint: bool) -> None:
        """Map an error answer: ``None`` (missing), or raise Transient/StoreError/Fallback."""
        match = _ERROR_CODE.search(body)
        code = match.group(1).decode("utf-8", "replace") if match else ""
        failure = Failure(status=status, code=code, context={"anonymous": anonymous_hint})
        rule = rule_for("s3-direct", failure)
        if rule.outcome is Outcome.DEFER:  # NoSuchBucket, odd statuses: the client path words it
            raise Fallback
        apply(rule, failure, url)

    async def aclose(self) -> None:
        await self.session.close()


class _Get(AWSRequest):  # type: ignore[misc]
    """A request without a body. botocore's signer asks for the body to hash it (an endpoint
    over plain HTTP signs the payload), and ``AWSRequest.body`` prepares the whole request to
    answer: a fifth of the signing's time, for ``None``."""

    @property
    def body(self) -> None:
        return None


class KeptKeySigV4(S3SigV4Auth):  # type: ignore[misc]
    """botocore's ``S3SigV4Auth``, keeping its signing key for the day.

    botocore derives the key from the secret with four HMACs for every request; it depends only
    on the secret (one signer holds one set of credentials), the day, region and service, so
    this signer derives it once a day. The rest (canonical request, string to sign, headers) is
    botocore's code.
    """

    _kept: tuple[str, bytes] | None = None

    def signature(self, string_to_sign: str, request: Any) -> str:
        day = request.context["timestamp"][0:8]
        kept = self._kept
        if kept is None or kept[0] != day:
            key = self._sign(f"AWS4{self.credentials.secret_key}".encode(), day)
            for part in (self._region_name, self._service_name, "aws4_request"):
                key = self._sign(key, part)
            kept = self._kept = (day, key)
        return str(self._sign(kept[1], string_to_sign, hex=True))


async def _frozen(credentials: Any) -> Any:
    frozen = credentials.get_frozen_credentials()
    if hasattr(frozen, "__await__"):
        frozen = await frozen
    return frozen
