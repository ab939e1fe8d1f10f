"""What the types of a model can hold: the questions the diagnosis and the warnings walk ask of
a type tree, answered once per type from the struct fields (``msgspec.structs.fields``,
memoised: it evaluates annotations on every call)."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, NamedTuple

import msgspec
import msgspec.inspect

from cellmap_schemas.rules import Rule

__all__ = [
    "Shape",
    "can_warn",
    "class_can_warn",
    "declared_as",
    "fields",
    "holders",
    "is_struct",
    "may_hold",
    "shape",
    "strip",
    "tagged",
    "within_length",
]


def strip(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` wrappers."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def is_struct(tp: Any) -> bool:
    """Whether ``tp`` is a struct type (a generic alias of one included)."""
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, msgspec.Struct)


_FIELDS: dict[Any, tuple[msgspec.structs.FieldInfo, ...]] = {}


def fields(tp: Any) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``msgspec.structs.fields``, memoised: it re-evaluates annotations on every call."""
    found = _FIELDS.get(tp)
    if found is None:
        found = _FIELDS[tp] = msgspec.structs.fields(tp)
    return found


_HOLDERS: dict[tuple[type, bool], tuple[tuple[str, str], ...]] = {}


def holders(cls: type, warnings: bool = False) -> tuple[tuple[str, str], ...]:
    """The fields of a struct class (name, encoded name) whose type can hold a struct (with
    ``warnings``: a struct that declares warnings): the only ones a walk for rules must enter
    (numbers, strings and lists of them hold no rules)."""
    key = (cls, warnings)
    found = _HOLDERS.get(key)
    if found is None:
        found = _HOLDERS[key] = tuple(
            (f.name, f.encode_name) for f in fields(cls) if may_hold(f.type, warnings, set())
        )
    return found


def may_hold(tp: Any, warnings: bool, seen: set[int]) -> bool:
    """Whether a value of type ``tp`` can hold a struct (that may warn, with ``warnings``)."""
    if id(tp) in seen:
        return False
    seen.add(id(tp))
    tp = strip(tp)
    if tp is Any or isinstance(tp, typing.TypeVar):
        return True
    if hasattr(tp, "__cellmap_dispatch__") or isinstance(tp, typing.ForwardRef | str):
        return True
    if is_struct(tp):
        if not warnings:
            return True
        cls = typing.get_origin(tp) or tp
        return (
            bool(getattr(cls, "_warns", False))
            or any(may_hold(f.type, warnings, seen) for f in fields(cls))
            or any(may_hold(a, warnings, seen) for a in typing.get_args(tp))
        )
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return False
    args = typing.get_args(tp)
    if not args and origin is not None:
        return True  # a bare container (``list``, ``dict``): anything inside
    return any(may_hold(a, warnings, seen) for a in args if a is not Ellipsis)


def can_warn(tp: Any) -> bool:
    """Whether a value msgspec converted to ``tp`` can hold a struct that declares warnings
    (``_warns``): through struct fields, containers, unions and dispatched members; never
    through ``Any`` or a bare container, which msgspec fills with builtins. Memoised per type
    (the warnings walks ask it of every field they pass)."""
    try:
        known = _CAN_WARN.get(tp)
    except TypeError:  # an unhashable type: answered every time
        return _can_warn(tp, set())
    if known is None:
        known = _CAN_WARN[tp] = _can_warn(tp, set())
    return known


_CAN_WARN: dict[Any, bool] = {}


def _can_warn(tp: Any, seen: set[int]) -> bool:
    if id(tp) in seen:
        return False
    seen.add(id(tp))
    tp = strip(tp)
    members = getattr(tp, "__cellmap_members__", None)
    if members is not None:
        return any(_can_warn(m, seen) for m in members)
    if is_struct(tp):
        cls = typing.get_origin(tp) or tp
        # an alias's fields carry its parameters
        return bool(getattr(cls, "_warns", False)) or any(
            _can_warn(f.type, seen) for f in fields(tp)
        )
    if typing.get_origin(tp) is typing.Literal:
        return False
    return any(_can_warn(a, seen) for a in typing.get_args(tp) if a is not Ellipsis)


_CLASS_CAN_WARN: dict[type, bool] = {}


def class_can_warn(cls: type) -> bool:
    """:func:`can_warn` of a value's class; a generic class always may (its instance's
    parameters, which the class does not show, may be structs that warn)."""
    known = _CLASS_CAN_WARN.get(cls)
    if known is None:
        known = _CLASS_CAN_WARN[cls] = bool(getattr(cls, "__parameters__", ())) or can_warn(cls)
    return known


def declared_as(tp: Any, cls: type) -> Any:
    """The alternative of the declared type ``tp`` that msgspec built an instance of ``cls``
    from (``tp`` itself, a member of a union, or of an "array or group" type), with its
    parameters; ``None`` when it cannot be told (a generic class declared without them, or a
    subclass), and the value's own fields are then the only guide."""
    tp = strip(tp)
    alternatives = getattr(tp, "__cellmap_members__", None)
    if alternatives is None:
        alternatives = typing.get_args(tp) if typing.get_origin(tp) in _UNIONS else (tp,)
    for alt in alternatives:
        alt = strip(alt)
        origin = typing.get_origin(alt) or alt
        if origin is cls:
            if alt is cls and cls.__dict__.get("__parameters__"):
                return None  # a generic class without its parameters: they are unknown here
            return alt
    return None


_UNIONS = (typing.Union, types.UnionType)


_LENGTHS: dict[Any, tuple[int | None, int | None]] = {}


def within_length(obj: Any, tp: Any) -> bool:
    """Whether ``obj`` meets the length constraints of an ``Annotated`` container type (the
    only constraints msgspec puts on containers), read from ``msgspec.inspect``."""
    bounds = _LENGTHS.get(tp)
    if bounds is None:
        info = msgspec.inspect.type_info(tp)
        bounds = _LENGTHS[tp] = (
            getattr(info, "min_length", None),
            getattr(info, "max_length", None),
        )
    low, high = bounds
    return (low is None or len(obj) >= low) and (high is None or len(obj) <= high)


def tagged(structs: list[Any], obj: Any) -> Any:
    """The member of a tagged union of structs that ``obj``'s tag names, if any."""
    if not isinstance(obj, dict):
        return None
    for st in structs:
        config = (typing.get_origin(strip(st)) or strip(st)).__struct_config__
        if config.tag_field is not None and obj.get(config.tag_field) == config.tag:
            return st
    return None


class Shape(NamedTuple):
    """What the walk asks of a type at every node that fails, answered once per type."""

    tp: Any
    inner: Any  # without Annotated
    origin: Any
    args: tuple[Any, ...]
    cls: Any  # the struct class of a struct type (generic aliases included), else None
    rule: Rule | None  # its schema rule


_SHAPES: dict[int, Shape] = {}


def shape(tp: Any) -> Shape:
    # by id, holding the type: typing objects hash slowly (recursively); ids are not reused
    # while the entry keeps its type alive
    found = _SHAPES.get(id(tp))
    if found is not None and found.tp is tp:
        return found
    inner = strip(tp)
    origin = typing.get_origin(inner)
    cls = origin or inner
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        cls = None
    rule = getattr(cls, "_schema_rule", None)
    if len(_SHAPES) >= 4096:  # types built on the fly must not grow it without bound
        _SHAPES.clear()
    found = _SHAPES[id(tp)] = Shape(
        tp, inner, origin, typing.get_args(inner), cls, rule if isinstance(rule, Rule) else None
    )
    return found
