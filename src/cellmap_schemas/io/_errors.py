"""One table from storage failures to outcomes, shared by every backend.

A backend meets foreign failures: ``OSError`` from the disk, aiohttp's exceptions, botocore's,
an S3 error answer read by hand. Each is reduced to a :class:`Failure` (its exception kinds,
errno, HTTP status, S3 error code), and the first row of :data:`RULES` that matches it and the
backend's scope decides the outcome: the key is missing (``None``), the failure is
:class:`~cellmap_schemas.io._retry.Transient` (worth another attempt), or it is a
:class:`~cellmap_schemas.errors.StoreError` whose one-line wording the row fixes. One table keeps
"access denied (403)" worded alike whichever backend met it; a new backend adds rows (and a
scope), not another ladder of ``isinstance`` checks.

Exception kinds are class names (``"PermissionError"``, ``"aiohttp.ClientResponseError"``,
``"botocore.ClientError"``: the top package and the class), read from the exception's MRO, so
this module imports neither aiohttp nor botocore. The row chosen for a failure depends only on
its type, errno, status, code and whether it is a permanent DNS failure, so it is cached: a
missing key (the common failure of a scan) costs a dict lookup.
"""

from __future__ import annotations

import enum
import errno
import re
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._retry import Transient
from cellmap_schemas.io.url import redact

__all__ = [
    "RULES",
    "Failure",
    "Outcome",
    "Rule",
    "Scope",
    "apply",
    "describe_error",
    "dns_failure",
    "rule_for",
    "translate",
]

Scope = Literal["local", "remote", "s3", "s3-direct"]
"""Who asks: ``local`` (os calls, no retries), ``remote`` (fsspec, aiohttp: retried),
``s3`` (the botocore client, then the remote rows), ``s3-direct`` (an S3 error answer read by
the direct GET path, which hands anything unsure back to the client)."""


class Outcome(enum.Enum):
    """What a failure becomes."""

    MISSING = "missing"  # the key is absent: None, not an error
    TRANSIENT = "transient"  # retry; the wording is the cause the last attempt reports
    ERROR = "error"  # a StoreError: "<url>: <wording>"
    DEFER = "defer"  # s3-direct only: let the botocore client read the key and decide


@dataclass(frozen=True)
class Rule:
    """One row: every criterion given must hold (each is "any of"); an empty one matches all.

    ``wording`` is a :meth:`str.format` template over :meth:`Failure.fields`.
    """

    scopes: frozenset[str]
    outcome: Outcome
    wording: str = ""
    kinds: frozenset[str] = frozenset()
    errnos: frozenset[int] = frozenset()
    statuses: Collection[int] = ()
    codes: frozenset[str] | None = None
    dns: bool | None = None

    def matches(self, scope: str, failure: Failure) -> bool:
        return (
            scope in self.scopes
            and (not self.kinds or not self.kinds.isdisjoint(failure.kinds))
            and (not self.errnos or failure.errno in self.errnos)
            and (not self.statuses or failure.status in self.statuses)
            and (self.codes is None or failure.code in self.codes)
            and (self.dns is None or self.dns == (failure.dns is not None))
        )


_ANONYMOUS_HINT = " with anonymous access: no AWS credentials found"

_KINDS_OF: dict[type, frozenset[str]] = {}

_DNS_KINDS = frozenset(
    {
        "aiohttp.ClientConnectorError",
        "botocore.EndpointConnectionError",
        "botocore.ConnectionClosedError",
    }
)


def kinds_of(cls: type) -> frozenset[str]:
    """``{"PermissionError", "OSError", ...}``, ``{"aiohttp.ClientResponseError", ...}``."""
    kinds = _KINDS_OF.get(cls)
    if kinds is None:
        kinds = _KINDS_OF[cls] = frozenset(
            c.__name__
            if c.__module__ == "builtins"
            else f"{c.__module__.split('.')[0]}.{c.__name__}"
            for c in cls.__mro__
        )
    return kinds


@dataclass(frozen=True)
class Failure:
    """The facts of one failure that the table reads, and the exception they came from."""

    kinds: frozenset[str] = frozenset()
    errno: int | None = None
    status: int | None = None
    code: str = ""
    dns: str | None = None  # "cannot resolve host ..." for a permanent name-resolution failure
    exc: BaseException | None = None
    context: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, exc: BaseException, **context: object) -> Failure:
        """The facts of ``exc``; ``context`` adds wording fields (``bucket``, ``anonymous``)."""
        kinds = kinds_of(type(exc))
        status: int | None = None
        code = ""
        if "botocore.ClientError" in kinds:
            response: Mapping[str, Any] = getattr(exc, "response", None) or {}
            code = str(response.get("Error", {}).get("Code", ""))
            metadata = response.get("ResponseMetadata", {})
            status = int(metadata.get("HTTPStatusCode", 0) or 0)
        elif "aiohttp.ClientResponseError" in kinds:
            status = getattr(exc, "status", None)
        dns = None
        if not _DNS_KINDS.isdisjoint(kinds):
            botocore = "botocore.BotoCoreError" in kinds
            nested = getattr(exc, "kwargs", {}).get("error") if botocore else None
            dns = dns_failure(nested if isinstance(nested, BaseException) else exc)
        number = exc.errno if isinstance(exc, OSError) else None
        return cls(kinds, number, status, code, dns, exc, context)

    def key(self, scope: str) -> tuple[object, ...]:
        return (scope, self.kinds, self.errno, self.status, self.code, self.dns is not None)

    def fields(self) -> dict[str, object]:
        """Values for a rule's wording."""
        exc = self.exc
        text = str(exc).replace("\n", " ") if exc is not None else ""
        name = type(exc).__name__ if exc is not None else ""
        words = " ".join(text.split())
        message: object = getattr(exc, "message", None) or ""
        endpoint = ""
        if exc is not None and "botocore.ClientError" in self.kinds:
            message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        elif exc is not None and "botocore.BotoCoreError" in self.kinds:
            raw = str(getattr(exc, "kwargs", {}).get("endpoint_url", ""))
            endpoint = (urlsplit(raw).netloc or "endpoint").rpartition("@")[2]
        anonymous = bool(self.context.get("anonymous"))
        return {
            "text": text,
            "type": name,
            "detail": f"{name}: {words}" if words else name,
            "strerror": getattr(exc, "strerror", None) or text,
            "status": self.status,
            "code": self.code,
            "label": self.code or "server error",
            "message": message,
            "host": getattr(exc, "host", None),
            "port": getattr(exc, "port", None),
            "endpoint": endpoint,
            "dns": self.dns or "",
            "bucket": self.context.get("bucket", ""),
            "anonymous_hint": _ANONYMOUS_HINT if anonymous else "",
        }


def _rule(scopes: str, outcome: Outcome, wording: str = "", *kinds: str, **criteria: Any) -> Rule:
    return Rule(frozenset(scopes.split()), outcome, wording, frozenset(kinds), **criteria)


MISSING, TRANSIENT, ERROR, DEFER = Outcome
ALL = "local remote s3"
REMOTE = "remote s3"
SERVER_ERRORS = range(500, 1000)

S3_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
S3_DENIED = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
S3_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
    }
)
S3_TRANSIENT = frozenset(
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

_CE = "botocore.ClientError"
_DENIED = "access denied (403){anonymous_hint}"

# fmt: off
RULES: tuple[Rule, ...] = (
    # -- an S3 error answer on the direct GET path (status and <Code> of the body) ------------
    _rule("s3-direct", DEFER, "", statuses={404}, codes=frozenset({"NoSuchBucket"})),
    _rule("s3-direct", MISSING, statuses={404}),
    _rule("s3-direct", ERROR, "credentials rejected ({code})", statuses={400, 403},
          codes=S3_BAD_CREDENTIALS),
    _rule("s3-direct", ERROR, _DENIED, statuses={403},
          codes=frozenset({"AccessDenied", "AllAccessDisabled", ""})),
    _rule("s3-direct", TRANSIENT, "{label} ({status})", statuses={429, *SERVER_ERRORS}),
    _rule("s3-direct", DEFER),
    # -- botocore's exceptions (the S3 client) ----------------------------------------------------
    _rule("s3", MISSING, "", _CE, codes=S3_MISSING),
    _rule("s3", ERROR, "bucket {bucket!r} does not exist", _CE, codes=frozenset({"NoSuchBucket"})),
    _rule("s3", MISSING, "", _CE, statuses={404}),
    # before the 403s: a refused signature is not a missing permission
    _rule("s3", ERROR, "credentials rejected ({code})", _CE, codes=S3_BAD_CREDENTIALS),
    _rule("s3", ERROR, _DENIED, _CE, codes=S3_DENIED),
    _rule("s3", ERROR, _DENIED, _CE, statuses={403}),
    _rule("s3", TRANSIENT, "{label} ({status})", _CE, codes=S3_TRANSIENT),
    _rule("s3", TRANSIENT, "{label} ({status})", _CE, statuses={429, *SERVER_ERRORS}),
    _rule("s3", ERROR, "{code} ({status}) {message}", _CE),
    _rule("s3", ERROR, "{dns}", "botocore.EndpointConnectionError",
          "botocore.ConnectionClosedError", dns=True),
    _rule("s3", TRANSIENT, "cannot connect to {endpoint}", "botocore.EndpointConnectionError",
          "botocore.ConnectionClosedError"),
    _rule("s3", TRANSIENT, "timed out", "botocore.ConnectTimeoutError",
          "botocore.ReadTimeoutError"),
    _rule("s3", ERROR, "{text}", "botocore.NoCredentialsError",
          "botocore.PartialCredentialsError"),
    _rule("s3", TRANSIENT, "connection failed ({text})", "botocore.HTTPClientError",
          "botocore.ResponseStreamingError"),
    _rule("s3", ERROR, "{text}", "botocore.BotoCoreError"),
    # -- the file system, local or behind fsspec --------------------------------------------------
    _rule(ALL, MISSING, "", "FileNotFoundError", "IsADirectoryError", "NotADirectoryError"),
    _rule(ALL, ERROR, "access denied ({strerror})", "PermissionError"),
    # -- HTTP (aiohttp, under fsspec's HTTP filesystem and the S3 direct path) --------------------
    _rule(REMOTE, MISSING, "", "aiohttp.ClientResponseError", statuses={404, 410}),
    _rule(REMOTE, ERROR, "access denied ({status})", "aiohttp.ClientResponseError",
          statuses={401, 403}),
    _rule(REMOTE, TRANSIENT, "server error ({status} {message})", "aiohttp.ClientResponseError",
          statuses={408, 429, *SERVER_ERRORS}),
    _rule(REMOTE, ERROR, "HTTP {status} {message}", "aiohttp.ClientResponseError"),
    _rule(REMOTE, ERROR, "{dns}", "aiohttp.ClientConnectorError", dns=True),
    _rule(REMOTE, TRANSIENT, "cannot connect to {host}:{port} ({strerror})",
          "aiohttp.ClientConnectorError"),
    _rule(REMOTE, TRANSIENT, "connection failed ({type}: {text})", "aiohttp.ClientError"),
    # -- the rest of OSError: remote timeouts and resets are retried; local ones are final ------
    _rule(REMOTE, TRANSIENT, "timed out", "TimeoutError"),
    _rule(REMOTE, TRANSIENT, "connection failed ({text})", "ConnectionError"),
    _rule(ALL, ERROR, "too many levels of symbolic links", errnos=frozenset({errno.ELOOP})),
    _rule(ALL, ERROR, "{strerror}", "OSError"),
    # -- anything else: a bug or a driver's own exception, named with its type -------------------
    _rule(ALL, ERROR, "{detail}"),
)
# fmt: on
"""The table: the first row whose scope and criteria match a failure decides its outcome."""

_CHOSEN: dict[tuple[object, ...], Rule] = {}
_MISSING_BY_TYPE: set[tuple[str, type, int | None]] = set()


def rule_for(scope: Scope, failure: Failure) -> Rule:
    """The first row of :data:`RULES` for ``failure`` in ``scope`` (cached by its facts)."""
    key = failure.key(scope)
    rule = _CHOSEN.get(key)
    if rule is None:
        rule = next(r for r in RULES if r.matches(scope, failure))
        if len(_CHOSEN) < 4096:
            _CHOSEN[key] = rule
    return rule


def apply(rule: Rule, failure: Failure, url: str) -> None:
    """Act on ``rule``: return for a missing key, else raise Transient or StoreError."""
    if rule.outcome is MISSING:
        return
    text = rule.wording.format(**failure.fields()).replace("\n", " ").rstrip()
    if rule.outcome is TRANSIENT:
        raise Transient(redact(text))
    if rule.outcome is DEFER:  # pragma: no cover - the direct path checks before applying
        raise ValueError("a deferred failure has no wording")
    raise StoreError(redact(f"{url}: {text}"))


def translate(exc: BaseException, url: str, scope: Scope = "remote", **context: object) -> None:
    """Map a foreign exception: ``None`` (missing), or raise :class:`Transient` /
    :class:`StoreError`. A ``StoreError`` (an ``OSError`` too) is already worded and passes
    unchanged, so that no message names its URL twice."""
    if isinstance(exc, StoreError):
        raise exc
    fast = (scope, type(exc), exc.errno if isinstance(exc, OSError) else None)
    if fast in _MISSING_BY_TYPE:  # a missing file or key: the common failure, kept cheap
        return
    failure = Failure.of(exc, **context)
    rule = rule_for(scope, failure)
    if rule.outcome is MISSING and failure.status is None and failure.dns is None:
        if len(_MISSING_BY_TYPE) < 1024:
            _MISSING_BY_TYPE.add(fast)
        return
    try:
        apply(rule, failure, url)
    except (StoreError, Transient) as mapped:
        # the wording is the whole story; the original may quote a secret the wording redacted
        raise mapped from None


def dns_failure(exc: BaseException) -> str | None:
    """ "cannot resolve host ..." when ``exc`` comes from a permanent name-resolution failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            if current.errno == socket.EAI_AGAIN:  # temporary: let the caller retry
                return None
            host = getattr(exc, "host", None)
            return f"cannot resolve host {host}" if host else "cannot resolve host"
        nested = getattr(current, "os_error", None)
        current = nested if isinstance(nested, BaseException) else current.__cause__
    return None


# Annotations tensorstore appends to messages: request ids, whole response bodies, the JSON spec
# and source locations. They bury the cause; the status and the HTTP code stay.
_NOISE = re.compile(
    r" \[(?:tensorstore_spec|source locations|x-amzn-requestid|x-amz-id-2|x-amz-request-id"
    r"|http_response_body)="
)


def describe_error(exc: BaseException) -> str:
    """The useful part of a tensorstore error message (the writers' one-line causes)."""
    text = str(exc)
    match = _NOISE.search(text)
    return (text[: match.start()] if match else text).strip() or type(exc).__name__
