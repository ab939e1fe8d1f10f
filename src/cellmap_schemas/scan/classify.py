"""Which models apply to a node, and whether the node conforms to them.

A model applies to a node of its kind whose attributes look like the model's convention
(:func:`cellmap_schemas.registry.looks_like`: they share at least one attribute key path).
Conventions overlap: a COSEM group carries ``multiscales`` (the OME-NGFF 0.4 key) and the four
Neuroglancer keys; a crop's class group is also an OME-NGFF image. So every registered model
competes for a node, and the node is judged by the ones it looks *most* like (:func:`match`):
a COSEM group by ``multiscale.cosem.Group``, not by OME-NGFF 0.4, and an OME-NGFF 0.4 image by
OME-NGFF, not by COSEM, even when ``--model multiscale.cosem.Group`` is the only model asked for
(the image is then ``not_applicable``). When a node matches several models equally well, it is
``valid`` if it conforms to any of them; ``results`` shows each verdict.

With ``--model`` (repeatable) only the named models judge; without it, all of them.
Validation works on the spec dicts the crawler built from documents it already decoded: no I/O
and no second JSON decode here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec

from cellmap_schemas.base import join_loc
from cellmap_schemas.errors import ValidationError
from cellmap_schemas.registry import MODELS, close_matches, signature

__all__ = [
    "Classifier",
    "ErrorItem",
    "Kind",
    "ModelResult",
    "Status",
    "UnknownModelError",
    "match",
]

Kind = Literal["array", "group"]
Status = Literal["valid", "invalid", "unreadable", "not_applicable"]


class ErrorItem(msgspec.Struct, frozen=True):
    """One problem: where (``loc``, a readable path such as ``attributes.scales[1]``) and what."""

    loc: str
    msg: str


class ModelResult(msgspec.Struct, frozen=True):
    """The verdict of one model on one node."""

    valid: bool
    errors: tuple[ErrorItem, ...] = ()


_VALID = ModelResult(valid=True)


class UnknownModelError(KeyError):
    """A model name that is not registered; the message suggests close matches."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        super().__init__(name)

    def __str__(self) -> str:
        more = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown model {self.name!r}{more}"


class Classifier:
    """The models of one scan, ready to judge nodes.

    Parameters
    ----------
    names
        CLI model names (``multiscale.cosem.Group``); ``None`` or empty: every registered model.

    Raises
    ------
    UnknownModelError
        A name is not registered.
    """

    def __init__(self, names: Iterable[str] | None = None) -> None:
        requested = list(dict.fromkeys(names or ()))
        for name in requested:
            if name not in MODELS:
                raise UnknownModelError(name, close_matches(name))
        self.explicit = bool(requested)
        self.names: tuple[str, ...] = tuple(requested or MODELS)
        wanted = set(self.names)
        # Every registered model competes for a node, so that a node is never judged by a
        # requested model it only resembles (an OME-NGFF image shares `multiscales` with COSEM).
        self._all: dict[str, tuple[tuple[str, type[Any], bool], ...]] = {
            kind: tuple(
                (name, info.load(), name in wanted)
                for name, info in MODELS.items()
                if info.kind == kind
            )
            for kind in ("array", "group")
        }
        self._wanted = {kind: any(w for *_, w in models) for kind, models in self._all.items()}
        # Which models judge a node depends only on which signature paths its attributes hold:
        # remember the answer per such shape (a bucket has few shapes and many nodes).
        self._tree = _prefix_tree(
            path
            for models in self._all.values()
            for _, model, _ in models
            for path in _paths(model)
        )
        self._cache: dict[tuple[str, tuple[Any, ...]], tuple[tuple[str, type[Any]], ...]] = {}

    def has_models(self, kind: Kind) -> bool:
        """Whether any model of the scan is of this kind (else nodes of the kind need no work)."""
        return self._wanted.get(kind, False)

    def applicable(self, kind: Kind, attributes: Any) -> tuple[tuple[str, type[Any]], ...]:
        """The ``(name, model)`` pairs a node is judged by.

        Of every registered model of the node's kind whose convention its attributes look like,
        those it looks most like (see :func:`match`), restricted to the models of the scan.
        """
        if not self._wanted.get(kind) or not (
            type(attributes) is dict or isinstance(attributes, Mapping)
        ):
            return ()
        key = (kind, _shape(attributes, self._tree))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._most_like(kind, attributes)
        return found

    def _most_like(
        self, kind: Kind, attributes: Mapping[str, Any]
    ) -> tuple[tuple[str, type[Any]], ...]:
        best: list[tuple[str, type[Any], bool]] = []
        best_score: tuple[float, ...] = (0, 0.0, 0)
        for entry in self._all[kind]:
            score = match(entry[1], attributes)
            if score > best_score:
                best, best_score = [entry], score
            elif score == best_score and score[0]:
                best.append(entry)
        return tuple((name, model) for name, model, wanted in best if wanted)

    def judge(
        self, models: Sequence[tuple[str, type[Any]]], spec: Mapping[str, Any]
    ) -> tuple[Status, dict[str, ModelResult]]:
        """Validate a node's spec dict against each applicable model."""
        if not models:
            return "not_applicable", {}
        results = {name: _validate(model, spec) for name, model in models}
        return self._status(results), results

    def judge_failed_members(
        self, models: Sequence[tuple[str, type[Any]]], failures: Mapping[str, str]
    ) -> tuple[Status, dict[str, ModelResult]]:
        """A group with unreadable members cannot conform: each model fails with their errors."""
        if not models:
            return "not_applicable", {}
        errors = tuple(
            ErrorItem(_member_loc(name), f"member unreadable: {reason}")
            for name, reason in sorted(failures.items())
        )
        result = ModelResult(valid=False, errors=errors)
        return "invalid", {name: result for name, _ in models}

    @staticmethod
    def _status(results: Mapping[str, ModelResult]) -> Status:
        # several models only when the node looks equally like each: conforming to one is enough
        return "valid" if any(r.valid for r in results.values()) else "invalid"


def match(model: type[Any], attributes: Mapping[str, Any]) -> tuple[int, float, int]:
    """How well a node's attributes match a model's convention; higher is better, 0 none.

    ``(top-level keys in common, share of the convention's key paths present, paths present)``:
    a COSEM group (five keys) beats Neuroglancer (four of them) and OME-NGFF 0.4 (one); an
    OME-NGFF 0.4 image (``multiscales``: all of OME-NGFF's paths, a fifth of COSEM's) is judged
    as OME-NGFF.
    """
    paths = _paths(model)
    if not paths:
        return (0, 0.0, 0)
    tops: set[str] = set()
    present = 0
    for path in paths:
        if _has(attributes, path):
            tops.add(path[0])
            present += 1
    return len(tops), present / len(paths), present


@functools.cache
def _paths(model: type[Any]) -> tuple[tuple[str, ...], ...]:
    return tuple(sorted(signature(model)))


_Tree = tuple[tuple[str, "_Tree"], ...]


def _prefix_tree(paths: Iterable[tuple[str, ...]]) -> _Tree:
    """The key paths as a tree: ``(("axes", ()), ("ome", (("version", ()), ...)), ...)``."""
    nested: dict[str, Any] = {}
    for path in paths:
        node = nested
        for key in path:
            node = node.setdefault(key, {})

    def freeze(node: dict[str, Any]) -> _Tree:
        return tuple((k, freeze(v)) for k, v in sorted(node.items()))

    return freeze(nested)


def _shape(attrs: Mapping[str, Any], tree: _Tree) -> tuple[Any, ...]:
    """Which of the tree's key paths ``attrs`` holds (what :func:`match` depends on)."""
    out: list[Any] = []
    for key, sub in tree:
        if key in attrs:
            if sub:
                value = attrs[key]
                inner = _shape(value, sub) if isinstance(value, Mapping) else None
                out.append((key, inner))
            else:
                out.append(key)
    return tuple(out)


def _member_loc(path: str) -> str:
    """``mito/s0`` -> ``members.mito.members.s0``."""
    loc = ""
    for name in path.split("/"):
        loc = join_loc(join_loc(loc, "members"), name)
    return loc


def _has(attrs: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        # decoded JSON: dicts; the Mapping check only for other callers' mappings
        if not (type(attrs) is dict or isinstance(attrs, Mapping)) or key not in attrs:
            return False
        attrs = attrs[key]
    return True


def _validate(model: type[Any], spec: Mapping[str, Any]) -> ModelResult:
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        return ModelResult(
            valid=False, errors=tuple(ErrorItem(loc, msg) for loc, msg in exc.problems)
        )
    except (msgspec.ValidationError, ValueError, TypeError, KeyError, RecursionError) as exc:
        # a model must never crash the scan; report what it raised as the reason
        return ModelResult(valid=False, errors=(ErrorItem("", f"{type(exc).__name__}: {exc}"),))
    return _VALID
