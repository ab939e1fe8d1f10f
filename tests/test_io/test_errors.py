"""The error-mapping table: every scope has an answer for everything, and the rows that word
the common failures say what the backends always said."""

from __future__ import annotations

import errno
import os

import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io._errors import RULES, Failure, Outcome, Scope, rule_for, translate
from cellmap_schemas.io._retry import Transient

SCOPES: tuple[Scope, ...] = ("local", "remote", "s3", "s3-direct")
URL = "s3://b/k"


def outcome(exc: BaseException, scope: Scope = "remote", **context: object) -> str | None:
    """ "missing", "transient: <cause>" or the StoreError's message."""
    try:
        translate(exc, URL, scope, **context)
    except Transient as t:
        return f"transient: {t.cause}"
    except StoreError as e:
        return str(e)
    return None


def client_error(code: str, status: int, message: str = "") -> BaseException:
    from botocore.exceptions import ClientError

    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize("scope", SCOPES)
def test_every_scope_has_a_last_resort(scope: Scope) -> None:
    rule = rule_for(scope, Failure.of(RuntimeError("odd")))
    assert rule.outcome is (Outcome.DEFER if scope == "s3-direct" else Outcome.ERROR)
    assert not (rule.kinds or rule.errnos or rule.statuses or rule.codes)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{sorted(r.scopes)}:{r.wording}")
def test_every_wording_formats(rule: object) -> None:
    fields = Failure.of(ValueError("x"), bucket="b", anonymous=True).fields()
    assert "\n" not in rule.wording.format(**fields)


def test_os_errors() -> None:
    denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    assert outcome(denied, "local") == f"{URL}: access denied (Permission denied)"
    loop = OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    assert outcome(loop, "local") == f"{URL}: too many levels of symbolic links"
    for missing in (
        FileNotFoundError(errno.ENOENT, "x"),
        IsADirectoryError(),
        NotADirectoryError(),
    ):
        assert outcome(missing, "local") is None and outcome(missing, "remote") is None
    timed_out = TimeoutError(errno.ETIMEDOUT, "Connection timed out")
    assert outcome(timed_out, "local") == f"{URL}: Connection timed out"  # no retries locally
    assert outcome(timed_out, "remote") == "transient: timed out"
    assert outcome(ValueError("a\n  b"), "local") == f"{URL}: ValueError: a b"


def test_a_worded_error_passes_unchanged() -> None:
    error = StoreError("already: worded")
    with pytest.raises(StoreError) as info:
        translate(error, URL, "s3")
    assert info.value is error


def test_s3_client_errors() -> None:
    assert outcome(client_error("NoSuchKey", 404), "s3") is None
    assert outcome(client_error("NoSuchBucket", 404), "s3", bucket="b") == (
        f"{URL}: bucket 'b' does not exist"
    )
    assert outcome(client_error("SignatureDoesNotMatch", 403), "s3") == (
        f"{URL}: credentials rejected (SignatureDoesNotMatch)"
    )
    assert outcome(client_error("AccessDenied", 403), "s3", anonymous=True) == (
        f"{URL}: access denied (403) with anonymous access: no AWS credentials found"
    )
    assert outcome(client_error("SlowDown", 503), "s3") == "transient: SlowDown (503)"
    assert outcome(client_error("", 500), "s3") == "transient: server error (500)"
    assert outcome(client_error("InvalidArgument", 400, "bad\nrange"), "s3") == (
        f"{URL}: InvalidArgument (400) bad range"
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "NoSuchKey", Outcome.MISSING),
        (404, "NoSuchBucket", Outcome.DEFER),  # the client words it, naming the bucket
        (400, "InvalidToken", Outcome.ERROR),
        (403, "", Outcome.ERROR),
        (403, "RequestTimeTooSkewed", Outcome.DEFER),
        (503, "SlowDown", Outcome.TRANSIENT),
        (301, "PermanentRedirect", Outcome.DEFER),
    ],
)
def test_s3_direct_answers(status: int, code: str, expected: Outcome) -> None:
    assert rule_for("s3-direct", Failure(status=status, code=code)).outcome is expected


def test_aiohttp_errors() -> None:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL as Yarl

    info = aiohttp.RequestInfo(Yarl("http://h/k"), "GET", CIMultiDictProxy(CIMultiDict()))

    def answer(status: int) -> BaseException:
        return aiohttp.ClientResponseError(info, (), status=status, message="Why")

    assert outcome(answer(404)) is None and outcome(answer(410)) is None
    assert outcome(answer(403)) == f"{URL}: access denied (403)"
    assert outcome(answer(503)) == "transient: server error (503 Why)"
    assert outcome(answer(418)) == f"{URL}: HTTP 418 Why"
    assert outcome(answer(404), "s3") is None  # the S3 scope falls through to the HTTP rows
