"""The Struct base every model derives from, and helpers shared by the spec modules.

Validation has two speeds. The fast path is one ``msgspec`` decode: types are checked by msgspec's
C code and cross-field rules run in ``__post_init__``, raising on the first problem. Valid
documents (nearly all of them in a scan) never leave it. Only when it fails does the slow path
run: it walks the document against the type and collects *every* problem with a readable ``loc``,
so a user sees all failing members of a group at once.

Models declare cross-field rules by overriding :meth:`Base._problems`, a generator of
:class:`~cellmap_schemas.rules.Problem` triples (``RULE(loc, msg)``, ``loc`` relative to the
struct), and call :func:`enforce_rules` from ``__post_init__``. Type and shape problems found
by msgspec are attributed to the ``_schema_rule`` of the innermost struct they occur in. Rules
of severity ``warning`` never fail the fast path; :func:`judge` collects them for models whose
type tree holds a struct that declares ``_warns = True``.
"""

from __future__ import annotations

import re
import threading
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Self, TypeVar, Union, cast

import msgspec

from cellmap_schemas._chunks import auto_chunks, normalize_chunks, structure_equal
from cellmap_schemas._chunks import structure_group_equal as structure_group_equal
from cellmap_schemas.errors import ValidationError
from cellmap_schemas.rules import Problem, Rule, define, severity_of

__all__ = [
    "SCHEMA",
    "Base",
    "NonNegativeInt",
    "PositiveInt",
    "auto_chunks",
    "enforce_rules",
    "judge",
    "normalize_chunks",
    "structure_equal",
    "structure_group_equal",
]

PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]

T = TypeVar("T")


class _Mode(threading.local):
    # While True, ``enforce_rules`` lets documents through so the slow path can build partially
    # valid trees and ask each struct for all of its problems. Thread-local: a diagnosis in one
    # thread must never relax validation in another.
    collect = False


_mode = _Mode()


def enforce_rules(self: Base) -> None:
    """``__post_init__`` for structs with cross-field rules: raise on the first error.

    Warnings (SHOULD rules) never fail a document; :func:`judge` collects them.
    """
    if _mode.collect:
        return
    for problem in self._problems():
        rule, loc, msg = _as_problem(problem, self)
        if severity_of(rule) == "error":
            raise ValueError(f"{msg} (at `{loc}`)" if loc else msg)


def _as_problem(problem: Problem | tuple[str, str], value: Any) -> Problem:
    """A rule's finding; a plain ``(loc, msg)`` pair (models written before rule IDs) is an
    error of the struct's schema rule."""
    if isinstance(problem, Problem):
        return problem
    if len(problem) == 3:  # a plain (rule, loc, msg) tuple
        return Problem(*problem)
    loc, msg = problem
    rule = getattr(value, "_schema_rule", None) or SCHEMA
    return Problem(rule.id, loc, msg)


SCHEMA = define(
    "ZARR001",
    "error",
    "the document has the fields and types of its format's specification",
    "Zarr v2 / v3 specifications; N5 specification",
)


# A hook that lets a field hold one of several untagged structs (for example "array or group"),
# which msgspec cannot tell apart on its own. Types that define ``__cellmap_dispatch__`` are
# treated as custom types by msgspec; the hook picks the concrete struct from the document.
def _dec_hook(tp: type, obj: Any) -> Any:
    dispatch = getattr(tp, "__cellmap_dispatch__", None)
    if dispatch is None:
        raise NotImplementedError(f"cannot decode {tp!r}")
    if isinstance(obj, msgspec.Struct):
        return obj
    return msgspec.convert(obj, dispatch(obj), dec_hook=_dec_hook)


# msgspec only decodes real generic aliases, so the parametrised model must be one.
class _ModelAlias(typing._GenericAlias, _root=True):  # type: ignore[name-defined,call-arg,misc]
    """``Model[Params]``: validation classmethods called on it validate with the parameters.

    A plain generic alias forwards ``ArraySpec[MyAttrs].model_validate`` to ``ArraySpec``,
    where the attributes would be ``Any`` and silently pass unvalidated.
    """

    def model_validate(self, obj: Any) -> Any:
        return validate(obj, self)

    def model_validate_json(self, data: bytes | str) -> Any:
        return validate_json(data, self)

    def model_json_schema(self) -> dict[str, Any]:
        return json_schema(self)


class Base(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every model.

    ``frozen``: specs are values (hashable when their contents are, safe to share between tasks).
    ``kw_only``: subclasses may add required fields after defaulted ones, and construction reads
    like the JSON it models. Unknown keys are ignored unless a model sets
    ``forbid_unknown_fields=True``, as the original does for a few annotation models.

    The ``model_*`` methods give users of the pydantic original the surface they already know.
    """

    _decoders: ClassVar[dict[Any, msgspec.json.Decoder[Any]]] = {}
    _schema_rule: ClassVar[Rule | None] = None
    """The rule a type or shape problem inside this struct breaks (set per convention; None:
    the enclosing struct's)."""
    _warns: ClassVar[bool] = False
    """Whether ``_problems`` may yield warnings (then :func:`judge` collects them on success)."""

    def __class_getitem__(cls, params: Any) -> Any:
        alias = super().__class_getitem__(params)  # type: ignore[misc]
        if type(alias) is typing._GenericAlias:  # type: ignore[attr-defined]
            return _ModelAlias(alias.__origin__, alias.__args__)
        return alias

    def _problems(self) -> Iterator[Problem]:
        """Cross-field rules, as :class:`Problem` triples with ``loc`` relative to this struct."""
        return iter(())

    @classmethod
    def _tree_problems(cls, spec: Mapping[str, Any], fmt: str) -> Iterator[Problem]:
        """Rules across a node and its members that no single document shows (the levels of a
        pyramid), run by the verdicts engine on the node's spec dict, valid or not."""
        return iter(())

    # ---- validation -------------------------------------------------------------------------
    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """Validate Python data (dicts, lists, scalars, or an instance) as this model."""
        return validate(obj, cls)

    @classmethod
    def model_validate_json(cls, data: bytes | str) -> Self:
        """Decode and validate a JSON document as this model."""
        # Inlined fast path (a scan calls this once per document): the cached decoder and no
        # further frames. Any failure goes through validate_json, which words it.
        dec = Base._decoders.get(cls)
        if dec is not None:
            try:
                return cast(Self, dec.decode(data))
            except msgspec.DecodeError:
                pass
        return validate_json(data, cls)

    # ---- serialisation ----------------------------------------------------------------------
    def model_dump(self, *, exclude: Exclude = None) -> dict[str, Any]:
        """This model as plain Python data; tuple fields stay tuples, structs become dicts."""
        return _dump_struct(self, _normalize_exclude(exclude))

    def model_dump_json(self, *, indent: int | None = None) -> str:
        """This model as a JSON string that :meth:`model_validate_json` reads back equal."""
        raw = msgspec.json.encode(self)
        if indent is not None:
            raw = msgspec.json.format(raw, indent=indent)
        return raw.decode()

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with the fields in ``update`` replaced (not re-validated, as in pydantic)."""
        return msgspec.structs.replace(self, **(update or {}))

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of this model."""
        return json_schema(cls)


def _schema_hook(tp: Any) -> dict[str, Any]:
    # "Array or group" members (see spec.zarr_v2.either) are chosen from the document at decode
    # time; in a schema they are objects described by the type's docstring.
    if hasattr(tp, "__cellmap_dispatch__"):
        return {"type": "object", "description": tp.__doc__ or ""}
    raise NotImplementedError(f"no JSON schema for {tp!r}")


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a model (or any type msgspec supports)."""
    return msgspec.json.schema(tp, schema_hook=_schema_hook)


# ---- public validation entry points ----------------------------------------------------------
def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    dec = Base._decoders.get(tp)
    if dec is None:
        dec = Base._decoders[tp] = msgspec.json.Decoder(tp, dec_hook=_dec_hook)
    return dec


def _title(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def validate(obj: Any, tp: type[T] | Any) -> T:
    """Validate Python data against ``tp`` (a model class or any msgspec-supported type)."""
    if isinstance(tp, type) and isinstance(obj, tp):
        return cast(T, obj)
    if isinstance(obj, msgspec.Struct):  # another model's instance: judge its content
        obj = msgspec.to_builtins(obj)
    try:
        return msgspec.convert(obj, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        pass
    raise ValidationError(_errors(diagnose(obj, tp)), title=_title(tp)) from None


def _errors(problems: Iterable[Problem]) -> list[Problem]:
    found = [p for p in problems if severity_of(p.rule) == "error"]
    return found or [SCHEMA("", "document does not match the model")]


def judge(obj: Any, tp: Any) -> tuple[Any, list[Problem]]:
    """Validate ``obj`` against ``tp`` and report every problem, warnings included.

    Returns the converted value (``None`` when an error was found) and the problems: errors
    (the document is invalid) and warnings (it is valid but breaks a SHOULD). One fast msgspec
    pass for valid documents; the collecting walk only when that fails or the model may warn.
    """
    try:
        value = msgspec.convert(obj, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        problems = diagnose(obj, tp)
        if any(severity_of(p.rule) == "error" for p in problems):
            return None, problems
        # only warnings found: the fast path failed for a reason the walk did not see
        return None, [*problems, SCHEMA("", "document does not match the model")]
    if not may_warn(tp):
        return value, []
    found: list[Problem] = []
    _collect_rules(value, "", found)
    return value, found


def may_warn(tp: Any) -> bool:
    """Whether any struct a model's documents can hold declares warning rules."""
    key = tp
    known = _MAY_WARN.get(key)
    if known is None:
        known = _MAY_WARN[key] = _any_warning_struct(msgspec.inspect.type_info(tp), set())
    return known


_MAY_WARN: dict[Any, bool] = {}


def _any_warning_struct(info: Any, seen: set[int]) -> bool:
    if id(info) in seen:
        return False
    seen.add(id(info))
    mi = msgspec.inspect
    if isinstance(info, mi.StructType):
        if getattr(info.cls, "_warns", False):
            return True
        return any(_any_warning_struct(f.type, seen) for f in info.fields)
    if isinstance(info, mi.CustomType):
        members = getattr(info.cls, "__cellmap_members__", ())
        return any(_any_warning_struct(mi.type_info(m), seen) for m in members)
    for attr in ("item_type", "value_type", "types", "item_types"):
        sub = getattr(info, attr, None)
        if sub is None:
            continue
        subs = sub if isinstance(sub, tuple) else (sub,)
        if any(_any_warning_struct(t, seen) for t in subs):
            return True
    return False


def validate_json(data: bytes | str, tp: type[T] | Any) -> T:
    """Decode a JSON document and validate it against ``tp``."""
    try:
        return cast(T, _decoder(tp).decode(data))
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise ValidationError([SCHEMA("", f"invalid JSON: {exc}")], title=_title(tp)) from None
    problems = diagnose(msgspec.json.decode(data), tp)
    raise ValidationError(_errors(problems), title=_title(tp)) from None


# ---- the slow path: collect every problem -----------------------------------------------------
_INVALID: Any = object()
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.S)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join_loc(loc: str, key: str | int) -> str:
    """Extend a readable path: ``a.b`` for identifier keys, ``a[0]`` and ``a["x.y"]`` otherwise."""
    if isinstance(key, int):
        return f"{loc}[{key}]"
    if _IDENT.match(key):
        return f"{loc}.{key}" if loc else key
    return f'{loc}["{key}"]'


def _split_msgspec(exc: Exception, loc: str) -> tuple[str, str]:
    text = str(exc)
    m = _MSGSPEC_PATH.match(text)
    # A top-level error (e.g. a union member's missing tag) carries no path; it is at ``loc``.
    path, msg = (m["path"], m["msg"]) if m else ("", text)
    # msgspec renders dict keys as `[...]`; drop that part, the walker already descended.
    path = path.replace("[...]", "")
    if path.startswith("."):
        path = path[1:]
    full = f"{loc}.{path}" if loc and path and not path.startswith("[") else f"{loc}{path}"
    missing = re.match(r"Object missing required field `(.+)`$", msg)
    if missing:
        return join_loc(full, missing[1]), "field required"
    rule = re.match(r"^(?P<msg>.*) \(at `(?P<sub>[^`]+)`\)$", msg, re.S)
    if rule:
        return (f"{full}.{rule['sub']}" if full else rule["sub"]), rule["msg"]
    return full, msg


def diagnose(obj: Any, tp: Any) -> list[Problem]:
    """Every problem of ``obj`` as an instance of ``tp`` (errors and warnings)."""
    problems: list[Problem] = []
    previous = _mode.collect
    _mode.collect = True
    try:
        _walk(obj, tp, "", problems, _rule_of(tp, SCHEMA))
    finally:
        _mode.collect = previous
    if not problems:  # should not happen; never claim a document invalid without a reason
        problems.append(SCHEMA("", "document does not match the model"))
    return problems


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_struct(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, msgspec.Struct)


def _rule_of(tp: Any, default: Rule) -> Rule:
    """The schema rule of a struct type (generic aliases included), else ``default``."""
    origin = typing.get_origin(_strip(tp)) or _strip(tp)
    rule = getattr(origin, "_schema_rule", None) if isinstance(origin, type) else None
    return rule if isinstance(rule, Rule) else default


def _walk(obj: Any, tp: Any, loc: str, problems: list[Problem], rule: Rule) -> Any:
    """Convert ``obj`` to ``tp``; on failure descend to find every failing leaf."""
    try:
        value = msgspec.convert(obj, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        first = exc
    else:
        _collect_rules(value, loc, problems)
        return value

    inner = _strip(tp)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)

    if hasattr(inner, "__cellmap_dispatch__") and isinstance(obj, dict):
        return _walk(obj, inner.__cellmap_dispatch__(obj), loc, problems, rule)
    if _is_struct(inner) and isinstance(obj, dict):
        return _walk_struct(obj, inner, loc, problems, first, _rule_of(inner, rule))
    if origin in (Union, types.UnionType) and obj is not None:
        candidates = [a for a in args if a is not type(None)]
        structs = [a for a in candidates if _is_struct(_strip(a))]
        if len(candidates) == 1 or (len(structs) == 1 and isinstance(obj, dict)):
            return _walk(obj, (structs or candidates)[0], loc, problems, rule)
        tagged = _by_tag(structs, obj)
        if tagged is not None:
            return _walk(obj, tagged, loc, problems, rule)
    if inner is not tp and inner is not Any and (origin or _is_struct(inner)):
        # Annotated container: report problems of the items before the constraint itself.
        before = len(problems)
        value = _walk(obj, inner, loc, problems, rule)
        if len(problems) == before:
            problems.append(rule(*_split_msgspec(first, loc)))
        return _INVALID
    if origin in (list, tuple, Sequence) and isinstance(obj, list):
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            if len(obj) != len(args):
                problems.append(rule(loc, f"expected {len(args)} items, got {len(obj)}"))
                return _INVALID
            item_types: Iterable[Any] = args
        else:
            item_types = [args[0] if args else Any] * len(obj)
        items = [
            _walk(o, t, join_loc(loc, i), problems, rule)
            for i, (o, t) in enumerate(zip(obj, item_types, strict=False))
        ]
        return _INVALID if any(i is _INVALID for i in items) else items
    if origin in (dict, Mapping) and isinstance(obj, dict):
        kt, vt = args if args else (Any, Any)
        bad = False
        for k, v in obj.items():
            try:
                msgspec.convert(k, kt)
            except msgspec.ValidationError as exc:
                problems.append(rule(join_loc(loc, str(k)), f"invalid key: {exc}"))
                bad = True
                continue
            bad |= _walk(v, vt, join_loc(loc, str(k)), problems, rule) is _INVALID
        return _INVALID if bad else obj
    problems.append(rule(*_split_msgspec(first, loc)))
    return _INVALID


def _by_tag(structs: list[Any], obj: Any) -> Any:
    """The member of a tagged union of structs that ``obj``'s tag names, if any."""
    if not isinstance(obj, dict):
        return None
    for st in structs:
        config = (typing.get_origin(_strip(st)) or _strip(st)).__struct_config__
        if config.tag_field is not None and obj.get(config.tag_field) == config.tag:
            return st
    return None


def _walk_struct(
    obj: dict[str, Any],
    tp: Any,
    loc: str,
    problems: list[Problem],
    first: msgspec.ValidationError,
    rule: Rule,
) -> Any:
    info = _fields(tp)
    cls = typing.get_origin(tp) or tp
    config = cls.__struct_config__
    before = len(problems)
    kwargs: dict[str, Any] = {}
    known = set()
    tag_field = config.tag_field
    for f in info:
        known.add(f.encode_name)
        sub = join_loc(loc, f.encode_name)
        if f.encode_name in obj:
            kwargs[f.name] = _walk(obj[f.encode_name], f.type, sub, problems, rule)
        elif f.required:
            problems.append(rule(sub, "field required"))
    if tag_field is not None:
        known.add(tag_field)
    if config.forbid_unknown_fields:
        problems.extend(
            rule(join_loc(loc, k), "unknown field (this model forbids extra keys)")
            for k in obj
            if k not in known
        )
    if len(problems) > before:
        return _INVALID
    try:
        value = cls(**kwargs)
    except (TypeError, ValueError):
        problems.append(rule(*_split_msgspec(first, loc)))
        return _INVALID
    # Fields converted one by one, yet the whole did not: a struct-level rule or constraint.
    own = list(_struct_problems(value, loc))
    problems.extend(own)
    if not any(severity_of(p.rule) == "error" for p in own):
        problems.append(rule(*_split_msgspec(first, loc)))
    return _INVALID


_FIELDS: dict[Any, tuple[msgspec.structs.FieldInfo, ...]] = {}


def _fields(tp: Any) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``msgspec.structs.fields``, memoised: it re-evaluates annotations on every call."""
    found = _FIELDS.get(tp)
    if found is None:
        found = _FIELDS[tp] = msgspec.structs.fields(tp)
    return found


def _prefix(loc: str, sub: str) -> str:
    if not loc:
        return sub
    if sub and not sub.startswith("["):
        return f"{loc}.{sub}"
    return f"{loc}{sub}"


def _struct_problems(value: Base, loc: str) -> Iterator[Problem]:
    problems = getattr(value, "_problems", None)
    if problems is None:
        return
    for problem in problems():
        rule, sub, msg = _as_problem(problem, value)
        yield Problem(rule, _prefix(loc, sub), msg)


def _collect_rules(value: Any, loc: str, problems: list[Problem]) -> None:
    """Run every struct's rules in a converted tree (bottom-up, as decoding does)."""
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            _collect_rules(getattr(value, name), join_loc(loc, _encode_name(value, name)), problems)
        problems.extend(_struct_problems(value, loc))  # type: ignore[arg-type]
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, (msgspec.Struct, list, tuple, dict)):
                _collect_rules(item, join_loc(loc, i), problems)
    elif isinstance(value, dict):
        for k, item in value.items():
            if isinstance(item, (msgspec.Struct, list, tuple, dict)):
                _collect_rules(item, join_loc(loc, str(k)), problems)


def _encode_name(value: msgspec.Struct, name: str) -> str:
    encode = value.__struct_encode_fields__
    return encode[value.__struct_fields__.index(name)]


# ---- dumping ---------------------------------------------------------------------------------
Exclude = str | Iterable[str] | Mapping[str, Any] | None


def _normalize_exclude(exclude: Exclude) -> Mapping[str, Any]:
    if exclude is None:
        return {}
    if isinstance(exclude, str):
        return {exclude: True}
    if isinstance(exclude, Mapping):
        return exclude
    return dict.fromkeys(exclude, True)


def _nested_exclude(sub: Any) -> Mapping[str, Any] | None:
    """What to exclude below a key: pydantic allows a dict or a set there (``{"a": {"b"}}``)."""
    return None if sub is None or sub is False else _normalize_exclude(sub)


def _dump(value: Any, exclude: Mapping[str, Any] | None = None) -> Any:
    if isinstance(value, msgspec.Struct):
        return _dump_struct(value, exclude or {})
    if isinstance(value, tuple):
        return tuple(_dump(v) for v in value)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = (exclude or {}).get(k)
            if sub is True:
                continue
            out[k] = _dump(v, _nested_exclude(sub))
        return out
    return value


def _dump_struct(value: msgspec.Struct, exclude: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    config = value.__struct_config__
    if config.tag_field is not None:
        out[config.tag_field] = config.tag
    for name, key in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
        sub = exclude.get(name, exclude.get(key))
        if sub is True:
            continue
        out[key] = _dump(getattr(value, name), _nested_exclude(sub))
    return out
