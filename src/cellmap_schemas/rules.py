"""The rule table: every check a verdict can cite, with a stable ID, a severity and a source.

A rule is declared once, next to the model code that checks it::

    AXES_UNITS = define("NG003", "error", "units has one entry per axis", NG_SOURCE)

and the model's ``_problems`` generator yields ``AXES_UNITS(loc, msg)``: a :class:`Problem`
naming the rule. Severity lives in the table, not at the yield site, so ``--select`` /
``--ignore`` / ``--strict`` and the reports all read the same answer.

IDs are grouped by convention, like a linter's codes:

========  =====================================================================
``FMT``   the node's storage format and kind against the model's
``MEM``   members of a group that cannot be read
``ZARR``  Zarr v2 / v3 array and group documents (N5 ones in their Zarr v2 view)
``NG``    Neuroglancer N5 multiscale groups and arrays
``COSEM`` COSEM multiscale groups and arrays
``OME``   OME-NGFF 0.4 / 0.5 images, label images and ``labels`` groups
``CROP``  Cellmap annotation crops, class groups and class arrays
========  =====================================================================

This module imports only the standard library, so every model can import it. Rules are
declared in the model modules; :func:`all_rules` imports them all to list the whole table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "RULES",
    "Problem",
    "Rule",
    "Severity",
    "all_rules",
    "define",
    "markdown_table",
    "matches",
    "severity_of",
]

Severity = Literal["error", "warning"]


class Problem(NamedTuple):
    """One finding: which rule, where (a readable path in the document) and what."""

    rule: str
    loc: str
    msg: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A check with a stable ID.

    ``severity`` is ``error`` for what a specification says MUST (or a consumer cannot read
    without), ``warning`` for SHOULD and for conventions a reader tolerates. ``on_missing_member``
    marks the rules that fire when a member is absent: for a member that exists but cannot be
    read, the engine reports the read failure (``MEM001``) instead of these.
    """

    id: str
    severity: Severity
    summary: str
    source: str
    on_missing_member: bool = False

    def __call__(self, loc: str, msg: str) -> Problem:
        return Problem(self.id, loc, msg)


RULES: dict[str, Rule] = {}
"""Every declared rule by ID (filled as model modules are imported; see :func:`all_rules`)."""


def define(
    rule_id: str,
    severity: Severity,
    summary: str,
    source: str,
    *,
    on_missing_member: bool = False,
) -> Rule:
    """Declare a rule (once per ID; re-declaring the same rule is a no-op, another is a bug)."""
    rule = Rule(rule_id, severity, summary, source, on_missing_member)
    known = RULES.get(rule_id)
    if known is not None and known != rule:
        raise ValueError(f"rule {rule_id} is declared twice with different contents")
    RULES[rule_id] = rule
    return rule


def severity_of(rule_id: str) -> Severity:
    """The severity of a rule; an undeclared ID counts as an error (never hide a problem)."""
    rule = RULES.get(rule_id)
    return rule.severity if rule is not None else "error"


def matches(rule_id: str, patterns: tuple[str, ...]) -> bool:
    """Whether a rule ID is selected by any of ``patterns`` (IDs or prefixes: ``OME``, ``OME1``)."""
    return any(rule_id.startswith(p) for p in patterns)


_MODULES = (
    "cellmap_schemas.validation",
    "cellmap_schemas.spec.zarr_v2",
    "cellmap_schemas.spec.zarr_v3",
    "cellmap_schemas.n5_wrap",
    "cellmap_schemas.multiscale.neuroglancer_n5",
    "cellmap_schemas.multiscale.cosem",
    "cellmap_schemas.multiscale.ome_ngff.v04",
    "cellmap_schemas.multiscale.ome_ngff.v05",
    "cellmap_schemas.annotation",
    "cellmap_schemas.multiscale.pyramid",
    "cellmap_schemas.neuroglancer",
)


def all_rules() -> list[Rule]:
    """Every rule of every model, sorted by ID (imports the model modules)."""
    for name in _MODULES:
        importlib.import_module(name)
    return sorted(RULES.values(), key=lambda r: _sort_key(r.id))


def _sort_key(rule_id: str) -> tuple[str, int]:
    head = rule_id.rstrip("0123456789")
    tail = rule_id[len(head) :]
    return head, int(tail or 0)


def markdown_table(rules: list[Rule]) -> str:
    """The rule table as Markdown (``docs/rules.md`` holds it; a test keeps it current)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| rule | severity | what it checks | source |", "|---|---|---|---|"]
    lines += [f"| `{r.id}` | {r.severity} | {cell(r.summary)} | {cell(r.source)} |" for r in rules]
    return "\n".join(lines) + "\n"
