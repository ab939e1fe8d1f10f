"""The Struct base every model derives from, and helpers shared by the spec modules.

Validation has two speeds. The fast path is one ``msgspec`` decode: types are checked by msgspec's
C code and cross-field rules run in ``__post_init__``, raising on the first problem. Valid
documents (nearly all of them in a scan) never leave it. Only when it fails does the slow path
(:mod:`cellmap_schemas._diagnose`) run: it walks the document against the type and collects
*every* problem with a readable ``loc``, so a user sees all failing members of a group at once.

Models declare cross-field rules by overriding :meth:`Base._problems`, a generator of
:class:`~cellmap_schemas.rules.Problem` triples (``RULE(loc, msg)``, ``loc`` relative to the
struct), and call :func:`enforce_rules` as the last step of ``__post_init__`` (after any
normalisation of fields, such as :class:`~cellmap_schemas.annotation.CropGroup`'s). Type and
shape problems found by msgspec are attributed to the ``_schema_rule`` of the innermost struct
they occur in. Rules of severity ``warning`` never fail the fast path; :func:`judge` collects
them for models whose type tree holds a struct that declares ``_warns = True``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Self, TypeVar, cast

import msgspec

from cellmap_schemas._chunks import auto_chunks, normalize_chunks, structure_equal
from cellmap_schemas._chunks import structure_group_equal as structure_group_equal
from cellmap_schemas._diagnose import SCHEMA, RuleViolation, diagnose, enforce_rules, join_loc
from cellmap_schemas._diagnose import collect_warnings as _collect_warnings
from cellmap_schemas._diagnose import collect_warnings_of as _collect_warnings_of
from cellmap_schemas._diagnose import dec_hook as _dec_hook
from cellmap_schemas._typetree import can_warn as _can_warn
from cellmap_schemas.errors import ValidationError
from cellmap_schemas.rules import Problem, Rule, severity_of

__all__ = [
    "SCHEMA",
    "Base",
    "NonNegativeInt",
    "PositiveInt",
    "RuleViolation",
    "auto_chunks",
    "diagnose",
    "enforce_rules",
    "join_loc",
    "judge",
    "normalize_chunks",
    "structure_equal",
    "structure_group_equal",
]

PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]

T = TypeVar("T")


class _ModelAlias(types.GenericAlias):
    """``Model[Params]``: validation classmethods called on it validate with the parameters.

    ``typing.Generic`` makes ``ArraySpec[MyAttrs]`` an alias that forwards attribute access to
    ``ArraySpec``, where the attributes would be ``Any`` and silently pass unvalidated. This is
    the public, subclassable alias type instead: msgspec decodes any alias whose ``__origin__``
    is a Struct (keeping its cache in the alias's ``__dict__``), ``typing.get_origin`` and
    ``get_args`` read it, and only the methods below are looked up on the alias itself.
    """

    def __getattribute__(self, name: str) -> Any:
        if name in _ALIAS_METHODS:
            return object.__getattribute__(self, name)
        return super().__getattribute__(name)

    def __getitem__(self, params: Any) -> Any:  # ``Model[T][int]`` keeps the methods
        return _model_alias(super().__getitem__(params))

    def model_validate(self, obj: Any) -> Any:
        return validate(obj, self)

    def model_validate_json(self, data: bytes | str) -> Any:
        return validate_json(data, self)

    def model_json_schema(self) -> dict[str, Any]:
        return json_schema(self)


_ALIAS_METHODS = frozenset({"model_validate", "model_validate_json", "model_json_schema"})


def _model_alias(alias: Any) -> Any:
    origin = typing.get_origin(alias)
    return alias if origin is None else _ModelAlias(origin, typing.get_args(alias))


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
        return _model_alias(super().__class_getitem__(params))  # type: ignore[misc]

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
    except msgspec.ValidationError as exc:
        problems = diagnose(obj, tp, exc)
        if any(severity_of(p.rule) == "error" for p in problems):
            return None, problems
        # only warnings found: the fast path failed for a reason the walk did not see
        return None, [*problems, SCHEMA("", "document does not match the model")]
    if not may_warn(tp):
        return value, []
    found: list[Problem] = []
    if isinstance(obj, msgspec.Struct):  # an instance passed through: its fields may hold anything
        _collect_warnings(value, "", found)
    else:  # built from plain data: structs are only where the type declares them
        _collect_warnings_of(value, tp, "", found)
    return value, found


def may_warn(tp: Any) -> bool:
    """Whether any struct a model's documents can hold declares warning rules."""
    return _can_warn(tp)


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
