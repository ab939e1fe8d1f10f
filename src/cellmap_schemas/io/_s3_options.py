"""One reading of S3 storage options and the AWS environment, for the reader and the writer.

Options use s3fs's names (``endpoint_url``, ``client_kwargs``, ``anon``, ``key`` / ``secret`` /
``token``, ``profile``, ``region_name``), so options written for s3fs work with both the
aiobotocore reader (``io/_s3.py``) and the tensorstore writer (``io/_tensorstore.py``); a setting
inside ``client_kwargs`` wins over the top-level one, and the environment
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``) comes last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["S3Settings", "s3_settings"]

_CREDENTIALS = {
    "aws_access_key_id": ("key", "username"),
    "aws_secret_access_key": ("secret", "password"),
    "aws_session_token": ("token",),
}


@dataclass(frozen=True)
class S3Settings:
    """Where the S3 endpoint is and who talks to it; ``None`` means "not set anywhere"."""

    endpoint: str | None
    region: str | None
    anon: bool | None
    """``True``/``False`` when the options say so; ``None``: unsigned only without credentials."""
    profile: str | None
    key: str | None
    secret: str | None
    token: str | None


def _client_kwargs(options: Mapping[str, Any]) -> Mapping[str, Any]:
    kwargs = options.get("client_kwargs")
    return kwargs if isinstance(kwargs, Mapping) else {}


def _first(*values: Any) -> str | None:
    return next((str(v) for v in values if v), None)


def s3_settings(options: Mapping[str, Any]) -> S3Settings:
    """The S3 settings that ``options`` and the environment give."""
    client = _client_kwargs(options)
    creds = {
        name: _first(client.get(name), *(options.get(alias) for alias in aliases))
        for name, aliases in _CREDENTIALS.items()
    }
    return S3Settings(
        endpoint=_first(
            client.get("endpoint_url"),
            options.get("endpoint_url"),
            os.environ.get("AWS_ENDPOINT_URL_S3"),
            os.environ.get("AWS_ENDPOINT_URL"),
        ),
        region=_first(
            client.get("region_name"),
            options.get("region_name"),
            os.environ.get("AWS_REGION"),
            os.environ.get("AWS_DEFAULT_REGION"),
        ),
        anon=bool(options["anon"]) if "anon" in options else None,
        profile=_first(options.get("profile")),
        key=creds["aws_access_key_id"],
        secret=creds["aws_secret_access_key"],
        token=creds["aws_session_token"],
    )
