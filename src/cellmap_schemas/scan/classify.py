"""Which models apply to a node, and whether the node conforms to them.

A model applies to a node of its kind whose attributes look like the model's convention
(:func:`cellmap_schemas.registry.looks_like`: they share at least one attribute key path).
Conventions overlap: a COSEM group carries ``multiscales`` (the OME-NGFF 0.4 key) and the four
Neuroglancer keys, a crop's class group is also an OME-NGFF image. A node is therefore judged by
the models it looks *most* like: those covering the most top-level attribute keys of the node,
then the most key paths. A COSEM group is judged as ``multiscale.cosem.Group``, not as an
OME-NGFF image it was never meant to be; an OME-NGFF 0.4 image, which shares only
``multiscales`` with COSEM, is judged by both and is ``valid`` when it conforms to either.

The candidates are the models named with ``--model`` or, without it, every registered model.
Validation works on the spec dicts the crawler built from documents it already decoded: no I/O
and no second JSON decode here.
"""

from __future__ import annotations

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
        self._by_kind: dict[str, tuple[tuple[str, type[Any]], ...]] = {
            kind: tuple(
                (name, MODELS[name].load()) for name in self.names if MODELS[name].kind == kind
            )
            for kind in ("array", "group")
        }

    def has_models(self, kind: Kind) -> bool:
        """Whether any model of the scan is of this kind (else nodes of the kind need no work)."""
        return bool(self._by_kind[kind])

    def applicable(self, kind: Kind, attributes: Any) -> tuple[tuple[str, type[Any]], ...]:
        """The ``(name, model)`` pairs the node is judged by: of the models whose convention
        its attributes look like, those it looks most like."""
        models = self._by_kind.get(kind, ())
        if not models or not isinstance(attributes, Mapping):
            return ()
        best: list[tuple[str, type[Any]]] = []
        best_score = (0, 0)
        for name, model in models:
            score = _score(model, attributes)
            if score > best_score:
                best, best_score = [(name, model)], score
            elif score == best_score and score[1]:
                best.append((name, model))
        return tuple(best)

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
            ErrorItem(join_loc("members", name), f"member unreadable: {reason}")
            for name, reason in sorted(failures.items())
        )
        result = ModelResult(valid=False, errors=errors)
        return "invalid", {name: result for name, _ in models}

    @staticmethod
    def _status(results: Mapping[str, ModelResult]) -> Status:
        # several models only when the node looks equally like each: conforming to one is enough
        return "valid" if any(r.valid for r in results.values()) else "invalid"


def _score(model: type[Any], attributes: Mapping[str, Any]) -> tuple[int, int]:
    """How much of a node's attributes a model's convention covers: (top-level keys, paths)."""
    present = [path for path in signature(model) if _has(attributes, path)]
    return len({path[0] for path in present}), len(present)


def _has(attrs: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(attrs, Mapping) or key not in attrs:
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
