"""The one validation engine: which models judge a node, and each model's verdict on it.

``check``, ``scan``, ``inspect``, ``Model.from_url`` and the Python API all reach a verdict
through :func:`judge_node`: the storage format and kind the model describes (``FMT`` rules),
the document rules of the model (its ``_problems`` and schema), and the members of a group that
could not be read (``MEM001``), every problem reported, none hiding another.

Which models judge a node is decided by :class:`Verdicts` from the markers of
:mod:`cellmap_schemas.registry`:

- without models asked for, a node is judged by every model of its kind whose markers it carries
  (a COSEM group gets a COSEM and a Neuroglancer verdict);
- with models asked for, a node of a model's kind is judged by it when it carries one of its
  markers or shares an attribute key with its schema (``--model multiscale.ome_ngff.v04.Group``
  judges a COSEM group, which has ``multiscales``, and finds it invalid);
- ``force`` judges the node by the models asked for whatever it carries (``check URL MODEL``).

A node is ``valid`` when it conforms to every model that judged it. Errors (MUST) make it
invalid; warnings (SHOULD) do not, unless ``strict``. ``select`` / ``ignore`` keep or drop
rules by ID or prefix before the verdict is taken.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from cellmap_schemas import base
from cellmap_schemas.formats import FORMAT_NAMES, Format, Kind
from cellmap_schemas.registry import (
    MODELS,
    ModelInfo,
    carries_markers,
    info_of,
    looks_like,
    resolve,
    signature,
)
from cellmap_schemas.rules import RULES, Problem, Severity, define, matches, severity_of

__all__ = [
    "Change",
    "Finding",
    "ModelResult",
    "NodeResult",
    "Options",
    "Status",
    "Verdicts",
    "family_problems",
    "judge_node",
    "member_loc",
]

Status = Literal["valid", "invalid", "unreadable", "not_applicable"]

FORMAT = define(
    "FMT001",
    "error",
    "the node is stored in the format the model describes (N5, Zarr v2 or Zarr v3)",
    "the model's convention: Neuroglancer N5 and COSEM on N5; OME-NGFF 0.4 on Zarr v2 (or N5 "
    "read as Zarr v2), 0.5 on Zarr v3",
)
KIND = define(
    "FMT002", "error", "the node is the kind (array or group) the model describes", "the model"
)
MEMBER_UNREADABLE = define(
    "MEM001",
    "error",
    "every member the model looks at can be read",
    "a group cannot be said to conform while a member it holds cannot be read",
)
INTERNAL = define(
    "MEM002",
    "error",
    "the model could judge the document (a failure here is a bug, reported as the reason)",
    "cellmap-schemas",
)


class Finding(msgspec.Struct, frozen=True):
    """One problem in a report: the rule, its severity, where (``loc``) and what."""

    rule: str
    severity: Severity
    loc: str
    msg: str


class ModelResult(msgspec.Struct, frozen=True):
    """The verdict of one model on one node."""

    valid: bool
    errors: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()


_VALID = ModelResult(valid=True)


Change = Literal["new_failure", "fixed", "still_failing", "unchanged", "new"]
"""How a node fared against a ``--baseline`` report."""


class NodeResult(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="node"):
    """One node's record, the same in every format.

    ``dataset`` is the node's dataset (the first path component, or the root container);
    ``path`` is relative to the scanned root, ``/``-separated, without a leading slash (the
    root itself is ``""``).
    ``kind`` and ``format`` are ``None`` only when an unreadable node gave no clue. ``results``
    has one entry per model that judged the node; ``error`` says why an ``unreadable`` node could
    not be read. Messages name locations relative to the root. ``change`` is set against a
    ``--baseline`` report only.
    """

    dataset: str = ""
    path: str
    kind: Kind | None
    format: Format | None
    status: Status
    results: dict[str, ModelResult] = {}
    error: str | None = None
    change: Change | None = None

    @property
    def failing(self) -> bool:
        """Invalid or unreadable: what fails a scan."""
        return self.status in ("invalid", "unreadable")


@dataclass(frozen=True, slots=True)
class Options:
    """What turns findings into a verdict.

    ``strict``: warnings fail the node too. ``select``: keep only rules whose ID starts with
    one of these; ``ignore``: drop those. Both take IDs or prefixes (``OME``, ``COSEM00``).
    """

    strict: bool = False
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def keeps(self, rule: str) -> bool:
        """Whether a finding of ``rule`` counts."""
        if self.select and not matches(rule, self.select):
            return False
        return not (self.ignore and matches(rule, self.ignore))


DEFAULT = Options()


# ---- one model, one node ---------------------------------------------------------------------
@functools.cache
def _family(model: Any) -> tuple[tuple[Format, ...] | None, Kind | None]:
    """The formats and kind a model class describes (None: any)."""
    from cellmap_schemas.n5_wrap import N5ArraySpec, N5GroupSpec
    from cellmap_schemas.spec.zarr_v2 import ArraySpec, GroupSpec
    from cellmap_schemas.spec.zarr_v3 import ArraySpecV3, GroupSpecV3

    origin = getattr(model, "__origin__", model)
    if not isinstance(origin, type):
        return None, None
    kind: Kind | None = None
    if issubclass(origin, ArraySpec | ArraySpecV3):
        kind = "array"
    elif issubclass(origin, GroupSpec | GroupSpecV3):
        kind = "group"
    if issubclass(origin, ArraySpecV3 | GroupSpecV3):
        return ("zarr3",), kind
    if issubclass(origin, N5ArraySpec | N5GroupSpec):
        return ("n5",), kind
    if issubclass(origin, ArraySpec | GroupSpec):
        return ("n5", "zarr2"), kind
    return None, kind


@functools.cache
def _name(model: Any) -> str:
    info = info_of(model) if isinstance(model, type) else None
    if info is not None:
        return info.name
    module = getattr(model, "__module__", "").removeprefix("cellmap_schemas.")
    return f"{module}.{getattr(model, '__qualname__', model)}"


def family_problems(model: Any, fmt: Format, kind: Kind) -> list[Problem]:
    """Findings when a node is not stored in the format, or is not the kind, a model describes.

    Without this a Zarr v3 group would pass as a v2 group model (its keys are a superset), a
    Zarr group as an N5 model (the original refused non-N5 stores for those), and an array as a
    group model whose rules happen not to look at members.
    """
    formats, model_kind = _family(model)
    out: list[Problem] = []
    if model_kind is not None and kind != model_kind:
        what = "an array" if kind == "array" else "a group"
        out.append(KIND("", f"is {what}; {_name(model)} describes {model_kind}s"))
    if formats is not None and fmt not in formats:
        wanted = " / ".join(FORMAT_NAMES[f] for f in formats)
        article = "an" if fmt == "n5" else "a"
        msg = f"is {article} {FORMAT_NAMES[fmt]} node; {_name(model)} describes {wanted} nodes"
        out.append(FORMAT("", msg))
    return out


@functools.cache
def _family_of(model: Any, fmt: Format, kind: Kind) -> tuple[tuple[Problem, ...], bool]:
    """:func:`family_problems` of a model, format and kind (a handful of combinations in a
    scan, so kept), and whether the node is of the wrong kind (then no rule of the model runs).
    """
    problems = tuple(family_problems(model, fmt, kind))
    return problems, any(p.rule == KIND.id for p in problems)


def member_loc(path: str) -> str:
    """``mito/s0`` -> ``members.mito.members.s0``."""
    loc = ""
    for name in path.split("/"):
        loc = base.join_loc(base.join_loc(loc, "members"), name)
    return loc


def judge_node(
    model: type[Any],
    spec: Mapping[str, Any],
    fmt: Format,
    kind: Kind,
    *,
    failures: Mapping[str, str] | None = None,
    options: Options = DEFAULT,
) -> ModelResult:
    """The verdict of ``model`` on one node: the only function that decides one.

    Parameters
    ----------
    model
        A model class (``multiscale.cosem.Group``; any spec or struct type works).
    spec
        The node's spec dict (members filled to the depth the model looks at).
    fmt, kind
        The node's storage format and kind.
    failures
        Members (paths relative to the node) that could not be read, with the reason.
    options
        Strictness and rule selection.
    """
    key: Any = model  # model classes and generic aliases are hashable
    family, wrong_kind = _family_of(key, fmt, kind)
    problems = list(family)
    if not wrong_kind:
        try:
            _, found = base.judge(spec, model)
            tree = getattr(model, "_tree_problems", None)
            if tree is not None:
                found.extend(tree(spec, fmt))
        except (
            msgspec.ValidationError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            RecursionError,
        ) as exc:  # fmt: skip
            # a model must never crash a scan; report what it raised as the reason
            found = [INTERNAL("", f"{type(exc).__name__}: {exc}")]
        problems.extend(found)
    if failures:
        problems = _without_missing(problems, failures)
        for path, reason in sorted(failures.items()):
            problems.append(MEMBER_UNREADABLE(member_loc(path), f"member unreadable: {reason}"))
    if not problems:
        return _VALID
    return result_of(problems, options)


def _without_missing(problems: list[Problem], failures: Mapping[str, str]) -> list[Problem]:
    """Drop "member missing" findings about members that exist but could not be read: their
    read failure (``MEM001``) is the one problem to report for them."""
    names = {path.split("/", 1)[0] for path in failures}
    quoted = tuple(repr(n) for n in names)
    locs = tuple(member_loc(n) for n in names)

    def about_unreadable(p: Problem) -> bool:
        rule = RULES.get(p.rule)
        if rule is None or not rule.on_missing_member:
            return False
        return p.loc in locs or any(q in p.msg for q in quoted)

    return [p for p in problems if not about_unreadable(p)]


def result_of(problems: Iterable[Problem], options: Options = DEFAULT) -> ModelResult:
    """Findings sorted into errors and warnings, and the verdict they give."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for rule, loc, msg in problems:
        if not options.keeps(rule):
            continue
        severity = severity_of(rule)
        (errors if severity == "error" else warnings).append(Finding(rule, severity, loc, msg))
    valid = not errors and not (options.strict and warnings)
    if valid and not warnings:
        return _VALID
    return ModelResult(valid=valid, errors=tuple(errors), warnings=tuple(warnings))


# ---- which models judge a node ------------------------------------------------------------------
class Verdicts:
    """The models of one scan or check, ready to judge nodes.

    Parameters
    ----------
    names
        Model names (``multiscale.cosem.Group``); ``None`` or empty: every registered model,
        each judging the nodes that carry its markers.
    options
        Strictness and rule selection.
    force
        Judge by the models asked for whatever a node carries (``check URL MODEL``).

    Raises
    ------
    UnknownModelError
        A name is not registered (raised before any I/O).
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        options: Options = DEFAULT,
        force: bool = False,
    ) -> None:
        requested = [resolve(n) for n in dict.fromkeys(names or ())]
        self.explicit = bool(requested)
        self.force = force and self.explicit
        self.options = options
        infos = requested or [i for i in MODELS.values() if i.default]
        self.names: tuple[str, ...] = tuple(i.name for i in infos)
        self._models: dict[str, tuple[tuple[ModelInfo, type[Any]], ...]] = {
            kind: tuple((i, i.load()) for i in infos if i.kind == kind or self.force)
            for kind in ("array", "group")
        }
        # the first key of every marker (and, asked for by name, of every schema path): a node
        # whose attributes hold none of them cannot carry the model's markers (the common case)
        self._first_keys = {
            i.name: frozenset(p[0] for p in i.marker_paths)
            | (frozenset(p[0] for p in signature(i.load())) if self.explicit else frozenset())
            for models in self._models.values()
            for i, m in models
        }
        # models whose every marker is one top-level key: sharing a first key is carrying one
        self._flat = frozenset(
            i.name
            for models in self._models.values()
            for i, _ in models
            if not self.explicit and all(len(p) == 1 for p in i.marker_paths)
        )

    def has_models(self, kind: Kind) -> bool:
        """Whether any model may judge a node of this kind (else such nodes need no work)."""
        return bool(self._models[kind])

    def applicable(self, kind: Kind, attributes: Any) -> tuple[tuple[str, type[Any]], ...]:
        """The ``(name, model)`` pairs that judge a node of ``kind`` with these attributes."""
        models = self._models[kind]
        if self.force:
            return tuple((i.name, m) for i, m in models)
        if not models or not (type(attributes) is dict or isinstance(attributes, Mapping)):
            return ()
        first = self._first_keys
        flat = self._flat
        found = []
        for i, m in models:
            if first[i.name].isdisjoint(attributes):
                continue
            if (
                i.name in flat
                or carries_markers(i, attributes)
                or (self.explicit and signature(i.load()) and looks_like(m, attributes))
            ):
                found.append((i.name, m))
        return tuple(found)

    def judge(
        self,
        models: Iterable[tuple[str, type[Any]]],
        spec: Mapping[str, Any],
        fmt: Format,
        kind: Kind,
        failures: Mapping[str, str] | None = None,
    ) -> tuple[Status, dict[str, ModelResult]]:
        """Each model's verdict on a node, and the node's status."""
        results = {
            name: judge_node(model, spec, fmt, kind, failures=failures, options=self.options)
            for name, model in models
        }
        if not results:
            return "not_applicable", results
        return ("valid" if all(r.valid for r in results.values()) else "invalid"), results

    def amend(
        self, results: Mapping[str, ModelResult], name: str, across: Iterable[Problem]
    ) -> tuple[Status, dict[str, ModelResult]]:
        """The verdicts of a node once the rules across nodes (``CROP101``: a crop against
        its image, known only when the walk is over) add their findings to model ``name``'s."""
        out = dict(results)
        found = list(across)
        if found:
            r = results[name]
            kept = (Problem(f.rule, f.loc, f.msg) for f in (*r.errors, *r.warnings))
            out[name] = result_of([*kept, *found], self.options)
        if not out:
            return "not_applicable", out
        return ("valid" if all(r.valid for r in out.values()) else "invalid"), out
