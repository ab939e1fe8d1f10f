"""What the HTML report embeds: the nodes of a scan as compact records, and the aggregates the
page renders on the server side (rule counts, problems per dataset, images, changes).

Compact node records (``D.nodes`` in the page), in path order so a parent precedes its children::

    [parent, name, dataset, kind, format, status, results, error, change]

``parent`` is the index of the nearest ancestor node (-1 for none) and ``name`` the path below
it; ``kind`` / ``format`` / ``status`` / ``dataset`` index ``D.kinds`` / ``D.fmts`` /
``D.statuses`` / ``D.ds`` (-1: none); ``results`` is ``[[model, valid, errors, warnings]]``
with findings ``[rule, loc, msg]`` (``model`` and ``rule`` index ``D.models`` and ``D.rules``).
Trailing empty fields are dropped.
"""

from __future__ import annotations

import html
import importlib.resources
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec

__all__ = ["NEUROGLANCER", "Collector", "neuroglancer_url"]

NEUROGLANCER = "https://neuroglancer-demo.appspot.com/#!"
"""The public Neuroglancer viewer the image links open (the state follows ``#!``)."""

STATUSES = ("valid", "invalid", "unreadable", "not_applicable")
KINDS = ("group", "array")
_REMOTE = ("s3://", "gs://", "http://", "https://")
_RULE_CAP = 100
"""Occurrences of one rule rendered on the server side (the script shows the rest)."""
PROBLEM_CAP = 200
"""Problem nodes of one dataset rendered on the server side."""
IMAGE_CAP = 100
CHANGE_CAP = 500
_UNCHANGED = frozenset({"", "unchanged", "same", "none", "still_failing"})
SYMBOL = {"valid": "✓", "invalid": "✗", "unreadable": "⚠", "not_applicable": "\u2013"}
WORD = {
    "valid": "valid",
    "invalid": "invalid",
    "unreadable": "unreadable",
    "not_applicable": "not judged",
}
VERDICT_LOOK = {
    "conforms": ("v-conforms", "✓"),
    "fails": ("v-fails", "✗"),
    "nothing judged": ("v-nothing", "\u2013"),
}
"""CSS class and symbol of a verdict: the word is always shown too, never colour alone."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_WS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_SAFE = "!~*'()"
"""What ``encodeURIComponent`` leaves alone besides letters, digits and ``-_.``: the page's
script builds the same links as this module."""
_HEADER_KEYS = (
    "tool_version", "started_at", "finished_at", "options", "interrupted", "baseline", "resumed",
)  # fmt: skip
CHANGE_ORDER = {"new_failure": 0, "fixed": 1, "new": 2}
"""How the changes since a baseline are listed: new failures first. ``still_failing`` is
counted, not listed (those nodes are in the problems of their dataset)."""


def _visible(text: str, *, whitespace: bool = False) -> str:
    """Control characters (terminal escapes) as ``\\x1b``, so a name cannot hide or mislead."""
    pattern = _CONTROL_WS if whitespace else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def esc(value: Any, *, whitespace: bool = False) -> str:
    """Escaped text of any value from the data (names and messages may hold ``<script>``)."""
    return html.escape(_visible(str(value), whitespace=whitespace), quote=True)


def esc_path(path: str) -> str:
    """An escaped node path; the root itself is ``.``."""
    return esc(path or ".", whitespace=True)


def short_model(model: str) -> str:
    """``multiscale.cosem.Group`` -> ``cosem.Group`` (the full names are in the header)."""
    parts = model.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else model


def is_image_model(model: str) -> bool:
    """Models whose valid nodes Neuroglancer can open as an image (a multiscale group)."""
    if model == "neuroglancer.Multiscale":
        return True
    return model.startswith("multiscale.") and (
        model.endswith(".Group") or model.endswith(".ImageLabelGroup")
    )


def neuroglancer_url(root: str, path: str, fmt: str | None) -> str | None:
    """A link opening the multiscale group at ``root/path`` in Neuroglancer, or None.

    Only for storage Neuroglancer reads itself (``s3://``, ``gs://``, ``http(s)://``; it maps
    ``s3://bucket/key`` to the bucket's public endpoint). The source is ``n5://`` for N5 and
    ``zarr://`` (Zarr v2 or v3, OME-NGFF) otherwise.
    """
    if not root.startswith(_REMOTE):
        return None
    url = root.rstrip("/")
    if path:
        url += "/" + "/".join(quote(seg, safe=_URL_SAFE) for seg in path.split("/"))
    scheme = "n5://" if fmt == "n5" else "zarr://"
    name = path.rsplit("/", 1)[-1] if path else url.rsplit("/", 1)[-1]
    state = {"layers": [{"type": "image", "source": scheme + url, "name": name}]}
    text = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
    return NEUROGLANCER + quote(text, safe=_URL_SAFE)


def asset(name: str) -> str:
    text = importlib.resources.files("cellmap_schemas._scan").joinpath(name).read_text("utf-8")
    return text.replace("</", "<\\/") if name.endswith(".js") else text


def embed(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` can close or open a tag."""
    raw = msgspec.json.encode(data).decode("utf-8", "replace")
    return (
        raw.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _rule_fields(rule: Any) -> dict[str, str]:
    """A rule from :func:`cellmap_schemas.rules.all_rules` or a mapping, as a dict."""
    if isinstance(rule, Mapping):
        return {k: str(rule.get(k, "")) for k in ("id", "severity", "summary", "source")}
    return {k: str(getattr(rule, k, "")) for k in ("id", "severity", "summary", "source")}


def _default_rules() -> list[dict[str, str]]:
    from cellmap_schemas.rules import all_rules

    return [_rule_fields(r) for r in all_rules()]


def tool_version() -> str:
    from cellmap_schemas.__about__ import __version__

    return __version__


def verdict_of(d: Mapping[str, Any]) -> str:
    """``conforms``, ``fails`` or ``nothing judged``: a dataset where no model applied (and
    nothing was unreadable) does not conform to anything, but fails nothing either."""
    if d.get("conforms"):
        return "conforms"
    if d.get("invalid") or d.get("unreadable"):
        return "fails"
    return "nothing judged"


def share_valid(d: Mapping[str, Any]) -> float | None:
    judged = int(d.get("valid", 0)) + int(d.get("invalid", 0)) + int(d.get("unreadable", 0))
    return None if judged == 0 else int(d.get("valid", 0)) / judged


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def text_of(value: Any) -> str:
    """Any header value (option lists, nested baseline fields) as one line of text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(text_of(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {text_of(v)}" for k, v in value.items()) or "—"
    if value is None:
        return "—"
    return str(value)


class Collector:
    """The nodes of a report (added in path order) and what the page says about them."""

    def __init__(
        self, report: Mapping[str, Any], rules: Sequence[Mapping[str, str]] | None
    ) -> None:
        # the header lives in ``summary`` (the json document); older reports kept root, models
        # and datasets beside it, and a ``header`` object is read too
        summary: Mapping[str, Any] = report.get("summary") or {}
        header = report.get("header")
        meta: dict[str, Any] = dict(header) if isinstance(header, Mapping) else {}
        for source in (summary, report):
            meta.update({k: source[k] for k in _HEADER_KEYS if source.get(k) is not None})
        self.meta = meta

        def pick(key: str) -> Any:
            return report[key] if key in report else summary.get(key) or ()

        self.root = str(pick("root") or "")
        self.remote = self.root.startswith(_REMOTE)
        self.models = [str(m) for m in pick("models")]
        self.summary = summary
        self.datasets: list[dict[str, Any]] = [dict(d) for d in pick("datasets")]
        self._ds_index = {str(d.get("name", "")): i for i, d in enumerate(self.datasets)}
        self._synthetic: set[int] = set()
        table = _default_rules() if rules is None else [_rule_fields(r) for r in rules]
        self.rule_table = {r["id"]: r for r in table}
        self._model_index: dict[str, int] = {}
        self.model_names: list[str] = []
        for m in self.models:
            self._model(m)
        self._rule_index: dict[str, int] = {}
        self.rule_ids: list[str] = []
        self._fmt_index: dict[str, int] = {}
        self.fmts: list[str] = []
        self._paths: dict[str, int] = {}
        self.nodes: list[list[Any]] = []
        self.paths: list[str] = []
        # per rule index: [nodes, findings, occurrences (capped)]
        self.rule_stats: dict[int, list[Any]] = {}
        self.problems: dict[int, list[int]] = {}
        self.images: dict[int, list[int]] = {}
        self.changes: list[int] = []
        self.change_counts: dict[str, int] = {}
        self.findings_of: dict[int, list[tuple[str, str, str, str, list[str]]]] = {}
        self.has_change = False

    # ---- interning ------------------------------------------------------------------------
    def _model(self, name: str) -> int:
        i = self._model_index.get(name)
        if i is None:
            i = self._model_index[name] = len(self.model_names)
            self.model_names.append(name)
        return i

    def _rule(self, rule_id: str) -> int:
        i = self._rule_index.get(rule_id)
        if i is None:
            i = self._rule_index[rule_id] = len(self.rule_ids)
            self.rule_ids.append(rule_id)
        return i

    def _fmt(self, fmt: str | None) -> int:
        if fmt is None:
            return -1
        i = self._fmt_index.get(fmt)
        if i is None:
            i = self._fmt_index[fmt] = len(self.fmts)
            self.fmts.append(fmt)
        return i

    def _dataset(self, node: Mapping[str, Any], dataset: str | None) -> int:
        name = node.get("dataset") or dataset
        path = str(node.get("path", ""))
        if name is None:
            head = path.split("/", 1)[0]
            if head in self._ds_index:
                name = head
            elif len(self.datasets) == 1:
                name = self.datasets[0].get("name", "")
            else:
                name = head or self.root.rstrip("/").rsplit("/", 1)[-1]
        name = str(name)
        i = self._ds_index.get(name)
        if i is None:
            # a node of a dataset the summary does not list: count it here
            i = self._ds_index[name] = len(self.datasets)
            self.datasets.append({"name": name, "nodes": 0, "valid": 0, "invalid": 0,
                                  "unreadable": 0, "warnings": 0, "conforms": False})  # fmt: skip
            self._synthetic.add(i)
        if i in self._synthetic:
            d = self.datasets[i]
            d["nodes"] += 1
            status = node.get("status")
            if status in ("valid", "invalid", "unreadable"):
                d[status] += 1
        return i

    # ---- nodes ----------------------------------------------------------------------------
    def add(self, node: Mapping[str, Any], dataset: str | None = None) -> None:
        """One node, after every node whose path sorts before its own."""
        path = str(node.get("path", ""))
        parent, name = -1, path
        probe = path
        while probe:
            cut = probe.rfind("/")
            probe = probe[:cut] if cut > 0 else ""
            j = self._paths.get(probe)
            if j is not None:
                parent, name = j, path[len(probe) + 1 :] if probe else path
                break
        idx = len(self.nodes)
        self._paths[path] = idx
        self.paths.append(path)
        ds = self._dataset(node, dataset)
        kind = node.get("kind")
        status = str(node.get("status", "unreadable"))
        fmt = node.get("format")
        results: list[list[Any]] = []
        seen: dict[tuple[str, str, str, str], list[str]] = {}
        warned = False
        image = False
        for model, result in (node.get("results") or {}).items():
            m = self._model(str(model))
            valid = bool(result.get("valid"))
            entry: list[Any] = [m, 1 if valid else 0]
            lists: list[list[list[Any]]] = []
            for key, default in (("errors", "error"), ("warnings", "warning")):
                found: list[list[Any]] = []
                for f in result.get(key) or ():
                    rule = str(f.get("rule", ""))
                    loc = str(f.get("loc", ""))
                    msg = str(f.get("msg", ""))
                    found.append([self._rule(rule), loc, msg])
                    sev = str(f.get("severity") or default)
                    seen.setdefault((rule, sev, loc, msg), []).append(str(model))
                    if key == "warnings":
                        warned = True
                lists.append(found)
            if lists[1]:
                entry += lists
            elif lists[0]:
                entry.append(lists[0])
            results.append(entry)
            image = image or (valid and is_image_model(str(model)))
        error = node.get("error")
        change = node.get("change")
        record: list[Any] = [
            parent, name, ds,
            KINDS.index(kind) if kind in KINDS else -1,
            self._fmt(fmt),
            STATUSES.index(status) if status in STATUSES else 2,
            results or 0,
            error if error is not None else 0,
            change,
        ]  # fmt: skip
        while record[-1] in (None, 0) and len(record) > 6:
            record.pop()
        self.nodes.append(record)
        if seen:
            self.findings_of[idx] = [(r, s, lc, ms, mods) for (r, s, lc, ms), mods in seen.items()]
            per_node: set[int] = set()
            for rule, _sev, loc, msg, mods in self.findings_of[idx]:
                r = self._rule(rule)
                st = self.rule_stats.setdefault(r, [0, 0, [], _sev])
                st[1] += 1
                if r not in per_node:
                    per_node.add(r)
                    st[0] += 1
                if len(st[2]) < _RULE_CAP:
                    st[2].append((idx, loc, msg, mods))
        if status in ("invalid", "unreadable") or warned:
            self.problems.setdefault(ds, []).append(idx)
        if self.remote and status == "valid" and kind == "group" and image:
            self.images.setdefault(ds, []).append(idx)
        if change is not None:
            self.has_change = True
            word = change if isinstance(change, str) else text_of(change)
            if word.lower() not in _UNCHANGED:
                self.change_counts[word] = self.change_counts.get(word, 0) + 1
                self.changes.append(idx)
