"""Rules on structs: how the fast path enforces them, and the slow path that collects them all.

The fast path is one msgspec decode, in which :func:`enforce_rules` (the last step of each
struct's ``__post_init__``) raises a :class:`RuleViolation` on the first error. When it fails,
:func:`diagnose` walks the document against the type to collect *every* problem:

- it tries the fast decode at each node; where a type, a missing field or a rule stops it, it
  descends into the node (struct fields, items, tagged union members) and builds the node from
  its parts the way a decode that did not stop at rules would (*leniently*): a struct whose
  ``__post_init__`` raises a :class:`RuleViolation` is kept as the exception carries it;
- a node built so has the rules of its tree as problems, collected once, from the outermost
  node built; a node that cannot be built has its failing parts, worded from msgspec's message,
  and the rules of the parts that could.

Nothing here depends on state outside the call: collecting is a separate function, not a mode.
"""

from __future__ import annotations

import contextvars
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, Union

import msgspec

from cellmap_schemas._locations import Path as _Path
from cellmap_schemas._locations import join_loc
from cellmap_schemas._locations import loc_of as _loc_of
from cellmap_schemas._locations import msgspec_error as _msgspec_error
from cellmap_schemas._locations import prefix as _prefix
from cellmap_schemas._locations import split_msgspec as _split_msgspec
from cellmap_schemas._typetree import can_warn as _can_warn
from cellmap_schemas._typetree import class_can_warn as _class_can_warn
from cellmap_schemas._typetree import declared_as as _declared_as
from cellmap_schemas._typetree import fields as _fields
from cellmap_schemas._typetree import holders as _holders
from cellmap_schemas._typetree import is_struct as _is_struct
from cellmap_schemas._typetree import shape as _shape_of
from cellmap_schemas._typetree import strip as _strip
from cellmap_schemas._typetree import tagged as _tagged
from cellmap_schemas._typetree import within_length as _within_length
from cellmap_schemas.rules import Problem, Rule, define, severity_of

__all__ = [
    "SCHEMA",
    "RuleViolation",
    "collect_rules",
    "collect_warnings",
    "collect_warnings_of",
    "dec_hook",
    "diagnose",
    "enforce_rules",
    "join_loc",
]

SCHEMA = define(
    "ZARR001",
    "error",
    "the document has the fields and types of its format's specification",
    "Zarr v2 / v3 specifications; N5 specification",
)


class RuleViolation(ValueError):
    """The first error-severity rule a struct breaks, raised by :func:`enforce_rules`.

    It carries the struct, fully built (every field set, ``__post_init__`` done up to its rule
    check), and the finding: the collecting walk keeps the struct to ask it for *all* its
    problems. msgspec keeps this exception as the ``__cause__`` of the ValidationError it raises,
    which tells the walk that a rule, not a type, stopped the decode.
    """

    def __init__(self, message: str, instance: Any = None, problem: Problem | None = None):
        super().__init__(message)
        self.instance = instance
        self.problem = problem


def enforce_rules(self: Any) -> None:
    """The last step of ``__post_init__`` for structs with cross-field rules: raise on the
    first error (a :class:`RuleViolation`).

    Warnings (SHOULD rules) never fail a document; ``base.judge`` collects them.
    """
    for problem in self._problems():
        found = as_problem(problem, self)
        if severity_of(found.rule) == "error":
            broken = _LENIENT.get()  # only on this path: a struct that passes never asks
            if broken is not None:  # a lenient conversion: keep the struct, go on
                broken[id(self)] = self
                return
            loc, msg = found.loc, found.msg
            raise RuleViolation(f"{msg} (at `{loc}`)" if loc else msg, self, found)


_LENIENT: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "lenient", default=None
)
"""While :func:`_built_leniently` converts: where :func:`enforce_rules` puts the structs that
break an error rule, by id, instead of raising."""


def as_problem(problem: Problem | tuple[str, str], value: Any) -> Problem:
    """A rule's finding; a plain ``(loc, msg)`` pair (models written before rule IDs) is an
    error of the struct's schema rule."""
    if isinstance(problem, Problem):
        return problem
    if len(problem) == 3:  # a plain (rule, loc, msg) tuple
        return Problem(*problem)
    loc, msg = problem
    rule = getattr(value, "_schema_rule", None) or SCHEMA
    return Problem(rule.id, loc, msg)


# A hook that lets a field hold one of several untagged structs (for example "array or group"),
# which msgspec cannot tell apart on its own. Types that define ``__cellmap_dispatch__`` are
# treated as custom types by msgspec; the hook picks the concrete struct from the document.
def dec_hook(tp: type, obj: Any) -> Any:
    dispatch = getattr(tp, "__cellmap_dispatch__", None)
    if dispatch is None:
        raise NotImplementedError(f"cannot decode {tp!r}")
    if isinstance(obj, msgspec.Struct):
        return obj
    return msgspec.convert(obj, dispatch(obj), dec_hook=dec_hook)


E = TypeVar("E", bound=BaseException)


class _Walk:
    """What the running :func:`diagnose` knows of the structs it built, by id: those msgspec
    converted whole (``clean``: every rule inside passed; kept with the type it was converted
    to, or ``None`` when that does not tell what it holds), those built past a broken rule
    (``broken``), and the values a lenient conversion built whole (``built``: the broken
    structs inside are in ``broken``). Each is held until the walk ends, so that no other
    object takes its id."""

    __slots__ = ("broken", "built", "clean")

    def __init__(self) -> None:
        self.broken: dict[int, Any] = {}
        self.built: dict[int, Any] = {}
        self.clean: dict[int, tuple[Any, Any]] = {}


_WALK: contextvars.ContextVar[_Walk | None] = contextvars.ContextVar("walk", default=None)


# ---- the slow path ------------------------------------------------------------------------------
_INVALID: Any = object()
"""What the walk returns for a node a decode that does not stop at rules would refuse."""


def diagnose(obj: Any, tp: Any, failed: msgspec.ValidationError | None = None) -> list[Problem]:
    """Every problem of ``obj`` as an instance of ``tp`` (errors and warnings).

    ``failed``: the error of converting ``obj`` to ``tp`` when the caller already tried (the
    walk then starts from it rather than converting the whole document again).
    """
    problems: list[Problem] = []
    token = _WALK.set(_Walk())
    try:
        rule = _rule_of(tp, SCHEMA)
        value = _lenient(obj, tp, "", problems, rule, failed and _untraced(failed))
        if value is not _INVALID:
            collect_rules(value, "", problems)
    finally:
        _WALK.reset(token)
    if not problems:  # should not happen; never claim a document invalid without a reason
        problems.append(SCHEMA("", "document does not match the model"))
    return problems


def _rule_of(tp: Any, default: Rule) -> Rule:
    """The schema rule of a struct type (generic aliases included), else ``default``."""
    return _shape_of(tp).rule or default


# A part of a node the walk went into: its value (or _INVALID), the problems found when it is
# invalid, and its loc. A node that fails reports its parts in order: the rules of the valid
# ones, the problems of the others.
_Part = tuple[Any, list[Problem], str]


def _report(parts: list[_Part], problems: list[Problem]) -> None:
    for value, found, loc in parts:
        if value is _INVALID:
            problems.extend(found)
        else:
            collect_rules(value, loc, problems)


def _untraced(exc: E) -> E:
    """``exc`` and its causes without tracebacks: kept in a local, an exception's traceback
    holds the frame that holds it, a cycle only the cyclic collector frees (with every spec
    dict those frames reach); the walk needs only the messages."""
    seen: BaseException | None = exc
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return exc


def _lenient(
    obj: Any,
    tp: Any,
    loc: str,
    problems: list[Problem],
    rule: Rule,
    failed: msgspec.ValidationError | None = None,
) -> Any:
    """``obj`` as ``tp``, built as a decode that does not stop at rules would build it, or
    ``_INVALID``. A node built is not asked for its rules here (its caller collects them, once,
    from the outermost node built); a node refused has its problems added to ``problems``.
    ``failed``: how converting ``obj`` to ``tp`` already failed, if it was tried."""
    if failed is not None:
        first = failed
    else:
        try:
            value = msgspec.convert(obj, tp, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            first = _untraced(exc)
        else:
            walk = _WALK.get()
            if walk is not None and isinstance(value, _NESTED):
                walk.clean[id(value)] = (value, tp)
            return value
    # A rule, not a type, stopped the decode: a lenient decode may still succeed.
    ruled = isinstance(first.__cause__, RuleViolation)

    shape = _shape_of(tp)
    inner, origin, args = shape.inner, shape.origin, shape.args

    if ruled:
        # Only rules stopped it so far: built past them in one conversion, unless a type
        # error lies beyond the first broken rule (then the parts are walked one by one).
        built = _built_but_ruled(first, inner) if inner is tp and shape.cls else None
        if built is None:
            built = _built_leniently(obj, tp)
        if built is not _INVALID:
            return built
    if hasattr(inner, "__cellmap_dispatch__") and isinstance(obj, dict):
        return _lenient(obj, inner.__cellmap_dispatch__(obj), loc, problems, rule)
    if shape.cls is not None and isinstance(obj, dict):
        return _lenient_struct(obj, inner, loc, problems, first, shape.rule or rule)
    if origin in (Union, types.UnionType) and obj is not None:
        candidates = [a for a in args if a is not type(None)]
        structs = [a for a in candidates if _is_struct(_strip(a))]
        if len(candidates) == 1 or (len(structs) == 1 and isinstance(obj, dict)):
            return _lenient(obj, (structs or candidates)[0], loc, problems, rule)
        tagged = _tagged(structs, obj)
        if tagged is not None:
            return _lenient(obj, tagged, loc, problems, rule)
    if inner is not tp and inner is not Any and (origin or _is_struct(inner)):
        # Annotated container: report problems of the items before the constraint itself.
        found: list[Problem] = []
        value = _lenient(obj, inner, loc, found, rule)
        if value is not _INVALID:
            if _within_length(obj, tp):
                return value
            collect_rules(value, loc, found)
        problems.extend(found)
        if not found:
            problems.append(rule(*_split_msgspec(first, loc)))
        return _INVALID
    # A decode accepts a tuple for a sequence; the walk descends one only when a rule stopped
    # the decode (then the decode of its items may succeed), else it reports msgspec's error.
    if origin in (list, tuple, Sequence) and (
        isinstance(obj, list) or (ruled and isinstance(obj, tuple))
    ):
        return _lenient_items(obj, origin, args, loc, problems, rule)
    if origin in (dict, Mapping) and isinstance(obj, dict):
        return _lenient_dict(obj, args, loc, problems, rule)
    if ruled:  # no way into the node: report the rule that stopped the decode, where it broke
        path, _ = _msgspec_error(first)
        broken = first.__cause__.problem  # type: ignore[union-attr]
        problems.append(Problem(broken.rule, _prefix(_prefix(loc, path), broken.loc), broken.msg))
        return _INVALID
    problems.append(rule(*_split_msgspec(first, loc)))
    return _INVALID


def _built_but_ruled(exc: msgspec.ValidationError, tp: Any) -> Any:
    """The struct a decode built whole before its own rules refused it (a rule across its
    fields, such as a group's levels against its members), or ``None``.

    Every field was converted, so every struct inside passed its rules: the walk takes the
    struct as a lenient decode would build it, without converting its fields one by one.
    """
    cause = exc.__cause__
    assert isinstance(cause, RuleViolation)
    instance = cause.instance
    if type(instance) is not (typing.get_origin(tp) or tp) or _msgspec_error(exc)[0]:
        return None  # refused deeper down, or by a struct of another type
    walk = _WALK.get()
    if walk is not None:
        walk.broken[id(instance)] = instance
        declared = _declared_as(tp, type(instance))
        for f in _fields(declared) if declared is not None else ():
            value = getattr(instance, f.name)
            if isinstance(value, _NESTED):
                walk.clean[id(value)] = (value, f.type)
    return instance


def _built_leniently(obj: Any, tp: Any) -> Any:
    """``obj`` as ``tp`` converted with the rules kept but not enforced (the structs that break
    one are noted as broken), or ``_INVALID`` when a type, a missing field or a constraint
    refuses it: a decode that does not stop at rules, in one msgspec pass instead of one per
    field."""
    broken: dict[int, Any] = {}
    token = _LENIENT.set(broken)
    try:
        value = msgspec.convert(obj, tp, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        _untraced(exc)
        return _INVALID
    finally:
        _LENIENT.reset(token)
    walk = _WALK.get()
    if walk is not None:
        walk.broken.update(broken)
        if isinstance(value, _NESTED):
            walk.built[id(value)] = value
    return value


def _lenient_items(
    obj: Sequence[Any],
    origin: Any,
    args: tuple[Any, ...],
    loc: str,
    problems: list[Problem],
    rule: Rule,
) -> Any:
    if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        if len(obj) != len(args):
            problems.append(rule(loc, f"expected {len(args)} items, got {len(obj)}"))
            return _INVALID
        item_types: Iterable[Any] = args
    else:
        item_types = [args[0] if args else Any] * len(obj)
    parts: list[_Part] = []
    for i, (o, t) in enumerate(zip(obj, item_types, strict=False)):
        sub, found = join_loc(loc, i), list[Problem]()
        parts.append((_lenient(o, t, sub, found, rule), found, sub))
    items = [value for value, _, _ in parts]
    if any(i is _INVALID for i in items):
        _report(parts, problems)
        return _INVALID
    return tuple(items) if origin is tuple else items  # what the decode builds


def _lenient_dict(
    obj: dict[Any, Any], args: tuple[Any, ...], loc: str, problems: list[Problem], rule: Rule
) -> Any:
    kt, vt = args if args else (Any, Any)
    out: dict[Any, Any] = {}
    parts: list[_Part] = []
    bad = False
    plain_keys = kt is str or kt is Any
    for k, v in obj.items():
        sub, found = join_loc(loc, str(k)), list[Problem]()
        if plain_keys and type(k) is str:
            key = k  # what converting it would give
        else:
            try:
                key = msgspec.convert(k, kt)
            except msgspec.ValidationError as exc:
                parts.append((_INVALID, [rule(sub, f"invalid key: {exc}")], sub))
                bad = True
                continue
        out[key] = item = _lenient(v, vt, sub, found, rule)
        parts.append((item, found, sub))
        bad |= item is _INVALID
    if bad:
        _report(parts, problems)
        return _INVALID
    return out


def _build(cls: type[Any], kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)`` as a decode that does not stop at rules builds it: a broken rule leaves
    the struct (rules run last in ``__post_init__``); ``_INVALID`` if it cannot be built."""
    try:
        return cls(**kwargs)
    except RuleViolation as exc:
        if type(exc.instance) is cls:  # not one raised by another struct built along the way
            walk = _WALK.get()
            if walk is not None:
                walk.broken[id(exc.instance)] = exc.instance
            return exc.instance
    except (TypeError, ValueError):
        pass
    return _INVALID


def _lenient_struct(
    obj: dict[str, Any],
    tp: Any,
    loc: str,
    problems: list[Problem],
    first: msgspec.ValidationError,
    rule: Rule,
) -> Any:
    cls = _shape_of(tp).cls
    config = cls.__struct_config__
    kwargs: dict[str, Any] = {}
    parts: list[_Part] = []
    known = set()
    complete = True  # every field converts and none is missing
    for f in _fields(tp):
        known.add(f.encode_name)
        sub = join_loc(loc, f.encode_name)
        if f.encode_name in obj:
            found: list[Problem] = []
            kwargs[f.name] = value = _lenient(obj[f.encode_name], f.type, sub, found, rule)
            parts.append((value, found, sub))
            complete = complete and value is not _INVALID
        elif f.required:
            parts.append((_INVALID, [rule(sub, "field required")], sub))
            complete = False
    tag_field = config.tag_field
    tagged = tag_field is None or obj.get(tag_field, config.tag) == config.tag
    if tag_field is not None:
        known.add(tag_field)
    extra: list[Problem] = []
    if config.forbid_unknown_fields:
        extra = [
            rule(join_loc(loc, k), "unknown field (this model forbids extra keys)")
            for k in obj
            if k not in known
        ]
    value = _build(cls, kwargs) if complete else _INVALID
    if value is not _INVALID and tagged and not extra:
        return value  # a lenient decode builds it; its rules are collected from the tree
    before = len(problems)
    _report(parts, problems)
    problems.extend(extra)
    if any(severity_of(p.rule) == "error" for p in problems[before:]):
        return _INVALID
    # only warnings in the parts: what refused the node is in the node itself
    if value is _INVALID:
        problems.append(rule(*_split_msgspec(first, loc)))
        return _INVALID
    # Fields converted one by one, yet the whole did not: a struct-level rule or constraint.
    own = list(_struct_problems(value, loc))
    problems.extend(own)
    if not any(severity_of(p.rule) == "error" for p in own):
        problems.append(rule(*_split_msgspec(first, loc)))
    return _INVALID


def _struct_problems(value: Any, loc: str) -> Iterator[Problem]:
    problems = getattr(value, "_problems", None)
    if problems is None:
        return
    for problem in problems():
        rule, sub, msg = as_problem(problem, value)
        yield Problem(rule, _prefix(loc, sub), msg)


_NESTED = (msgspec.Struct, list, tuple, dict)


def _nested(value: Any, loc: str, warnings: bool) -> Iterator[tuple[Any, str]]:
    """The children of a converted value that can hold structs, with their locations (for a
    struct, only the fields whose type can hold one; that may warn, with ``warnings``)."""
    if isinstance(value, msgspec.Struct):
        pairs: Iterable[tuple[Any, str | int]] = (
            (getattr(value, name), encoded) for name, encoded in _holders(type(value), warnings)
        )
    elif isinstance(value, (list, tuple)):
        pairs = ((item, i) for i, item in enumerate(value))
    elif isinstance(value, dict):
        pairs = ((item, str(k)) for k, item in value.items())
    else:
        return
    for item, key in pairs:
        if isinstance(item, _NESTED):
            yield item, join_loc(loc, key)


def collect_rules(value: Any, loc: str, problems: list[Problem]) -> None:
    """Run every struct's rules in a converted tree (bottom-up, as decoding does).

    Inside :func:`diagnose`, a struct that was built is known to pass its error rules (its
    ``__post_init__`` checked them) unless the walk built it past a broken rule: only those, and
    the structs that can warn, are asked for their findings.
    """
    walk = _WALK.get()
    if walk is not None and id(value) in walk.built:
        _rules_of_built(value, loc, walk.broken, problems)
        return
    clean = walk.clean.get(id(value)) if walk is not None else None
    if clean is not None:  # converted whole: no rule in it is broken, only warnings to find
        if clean[1] is None:
            collect_warnings(value, loc, problems)
        else:
            collect_warnings_of(value, clean[1], loc, problems)
        return
    for item, sub in _nested(value, loc, warnings=False):
        collect_rules(item, sub, problems)
    if isinstance(value, msgspec.Struct):
        asked = walk is None or id(value) in walk.broken or getattr(value, "_warns", False)
        if asked and hasattr(value, "_problems"):
            problems.extend(_struct_problems(value, loc))


def _rules_of_built(value: Any, path: _Path, broken: Mapping[int, Any], out: list[Problem]) -> None:
    """:func:`collect_rules` of a value a lenient conversion built (the same structs asked, in
    the same order): every struct in it passed its error rules but those in ``broken``, so
    only they and the structs that can warn are asked; a loc is worded only for them."""
    if isinstance(value, msgspec.Struct):
        for name, key in _holders(type(value), False):
            item = getattr(value, name)
            if isinstance(item, _NESTED):
                _rules_of_built(item, (path, key), broken, out)
        asked = id(value) in broken or getattr(value, "_warns", False)
        if asked and hasattr(value, "_problems"):
            out.extend(_struct_problems(value, _loc_of(path)))
    elif isinstance(value, dict):
        for k, item in value.items():
            if isinstance(item, _NESTED):
                _rules_of_built(item, (path, str(k)), broken, out)
    else:
        for i, item in enumerate(value):
            if isinstance(item, _NESTED):
                _rules_of_built(item, (path, i), broken, out)


def collect_warnings(value: Any, loc: str, problems: list[Problem]) -> None:
    """The rules of the structs that declare warnings (``_warns``) in a converted tree.

    For a document the fast path accepted: its errors are already known to be none (the fast
    and worded forms of every rule agree, which ``tests/test_fast_paths.py`` checks), so only
    the structs that can warn are asked, and scalars are never visited.
    """
    if isinstance(value, msgspec.Struct) and not _class_can_warn(type(value)):
        return  # nothing below it declares warnings (a COSEM or Neuroglancer spec)
    for item, sub in _nested(value, loc, warnings=True):
        collect_warnings(item, sub, problems)
    if isinstance(value, msgspec.Struct) and getattr(value, "_warns", False):
        problems.extend(_struct_problems(value, loc))


def collect_warnings_of(value: Any, tp: Any, loc: str, problems: list[Problem]) -> None:
    """:func:`collect_warnings` of a value msgspec converted from plain data to ``tp``, guided
    by the type: a part whose declared type cannot hold a struct that warns is never entered
    (``Any`` holds plain data, so attributes of no declared type are skipped whole); where the
    type does not tell (a generic class without its parameters), the value's own walk goes on.
    """
    if not _can_warn(tp):
        return
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType) and not isinstance(value, msgspec.Struct):
        others = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(others) != 1:  # which of several containers: the value's own walk decides
            collect_warnings(value, loc, problems)
            return
        tp = _strip(others[0])
    if isinstance(value, msgspec.Struct):
        declared = _declared_as(tp, type(value))
        if declared is None:
            collect_warnings(value, loc, problems)
            return
        for f in _fields(declared):
            if _can_warn(f.type):
                item = getattr(value, f.name)
                collect_warnings_of(item, f.type, join_loc(loc, f.encode_name), problems)
        if getattr(value, "_warns", False):
            problems.extend(_struct_problems(value, loc))
        return
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    if isinstance(value, dict) and len(args) == 2:
        for k, item in value.items():
            collect_warnings_of(item, args[1], join_loc(loc, str(k)), problems)
    elif isinstance(value, list | tuple) and args:
        origin = typing.get_origin(tp)
        positional = origin is tuple and Ellipsis not in typing.get_args(tp)
        if positional and len(args) != len(value):
            collect_warnings(value, loc, problems)
            return
        for i, item in enumerate(value):
            collect_warnings_of(
                item, args[i] if positional else args[0], join_loc(loc, i), problems
            )
    elif isinstance(value, _NESTED):  # a union of containers, or any other shape: by value
        collect_warnings(value, loc, problems)
