"""Readable locations of problems (``a.b[0]["x.y"]``), and the one place that reads msgspec's
error text for its path."""

from __future__ import annotations

import re

import msgspec

__all__ = ["Path", "join_loc", "loc_of", "msgspec_error", "prefix", "split_msgspec"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join_loc(loc: str, key: str | int) -> str:
    """Extend a readable path: ``a.b`` for identifier keys, ``a[0]`` and ``a["x.y"]`` otherwise."""
    if isinstance(key, int):
        return f"{loc}[{key}]"
    if _IDENT.match(key):
        return f"{loc}.{key}" if loc else key
    return f'{loc}["{key}"]'


def prefix(loc: str, sub: str) -> str:
    """``sub`` (a path inside the value at ``loc``) as a path from the root."""
    if not loc:
        return sub
    if sub and not sub.startswith("["):
        return f"{loc}.{sub}"
    return f"{loc}{sub}"


# msgspec words a ValidationError as "<message> - at `$<path>`" ("<message>" alone at the root)
# and offers no structured form of either part (msgspec issues #264 and #1158 ask for one), so
# this is the one place that reads its text. The path renders dict keys as `[...]`; a missing
# field is "Object missing required field `<name>`".
_MSGSPEC_ERROR = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.S)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def msgspec_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """``(path, message)`` of a msgspec error; the path relative to the value converted, in
    :func:`join_loc` form, without the dict keys msgspec does not name."""
    text = str(exc)
    m = _MSGSPEC_ERROR.match(text)
    path, msg = (m["path"], m["msg"]) if m else ("", text)
    path = path.replace("[...]", "")  # the walk descends dicts itself; their keys are in loc
    return path.removeprefix("."), msg


def split_msgspec(exc: msgspec.ValidationError, loc: str) -> tuple[str, str]:
    """The ``(loc, msg)`` of a msgspec error met at ``loc``."""
    path, msg = msgspec_error(exc)
    full = prefix(loc, path)
    missing = _MISSING_FIELD.match(msg)
    if missing:
        return join_loc(full, missing["field"]), "field required"
    return full, msg


Path = str | tuple["Path", str | int]
"""Where a value lies: a loc, or (the parent's path, key); worded only when a rule speaks."""


def loc_of(path: Path) -> str:
    """The loc a :data:`Path` stands for."""
    keys: list[str | int] = []
    while not isinstance(path, str):
        path, key = path
        keys.append(key)
    for key in reversed(keys):
        path = join_loc(path, key)
    return path
