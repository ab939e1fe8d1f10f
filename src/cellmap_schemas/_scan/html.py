"""The ``--format html`` report: one self-contained page (issue #13).

The page fetches nothing: its style and script are inlined (``report.css`` and ``report.js``
next to this module), a Content-Security-Policy forbids any request, and the scan's data is
embedded once, as compact JSON, for the script to sort, filter and draw trees from. What must be
readable without a script (the header, the dataset overview, the broken rules, each dataset's
problems) is rendered here, on the server side, with every string from the data escaped.

Compact node records (``D.nodes`` in the page), in path order so a parent precedes its children::

    [parent, name, dataset, kind, format, status, results, error, change]

``parent`` is the index of the nearest ancestor node (-1 for none) and ``name`` the path below
it; ``kind`` / ``format`` / ``status`` / ``dataset`` index ``D.kinds`` / ``D.fmts`` /
``D.statuses`` / ``D.ds`` (-1: none); ``results`` is ``[[model, valid, errors, warnings]]``
with findings ``[rule, loc, msg]`` (``model`` and ``rule`` index ``D.models`` and ``D.rules``).
Trailing empty fields are dropped.
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.resources
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any
from urllib.parse import quote

import msgspec

__all__ = ["NEUROGLANCER", "HtmlWriter", "neuroglancer_url", "render_html"]

NEUROGLANCER = "https://neuroglancer-demo.appspot.com/#!"
"""The public Neuroglancer viewer the image links open (the state follows ``#!``)."""

_STATUSES = ("valid", "invalid", "unreadable", "not_applicable")
_KINDS = ("group", "array")
_REMOTE = ("s3://", "gs://", "http://", "https://")
_RULE_CAP = 100
"""Occurrences of one rule rendered on the server side (the script shows the rest)."""
_PROBLEM_CAP = 200
"""Problem nodes of one dataset rendered on the server side."""
_IMAGE_CAP = 100
_CHANGE_CAP = 500
_UNCHANGED = frozenset({"", "unchanged", "same", "none"})
_SYMBOL = {"valid": "✓", "invalid": "✗", "unreadable": "⚠", "not_applicable": "\u2013"}
_WORD = {
    "valid": "valid",
    "invalid": "invalid",
    "unreadable": "unreadable",
    "not_applicable": "not judged",
}
_VERDICT_LOOK = {
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
_HEADER_KEYS = ("tool_version", "started_at", "finished_at", "options", "interrupted", "baseline")


def _visible(text: str, *, whitespace: bool = False) -> str:
    """Control characters (terminal escapes) as ``\\x1b``, so a name cannot hide or mislead."""
    pattern = _CONTROL_WS if whitespace else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _e(value: Any, *, whitespace: bool = False) -> str:
    """Escaped text of any value from the data (names and messages may hold ``<script>``)."""
    return html.escape(_visible(str(value), whitespace=whitespace), quote=True)


def _p(path: str) -> str:
    """An escaped node path; the root itself is ``.``."""
    return _e(path or ".", whitespace=True)


def _short(model: str) -> str:
    """``multiscale.cosem.Group`` -> ``cosem.Group`` (the full names are in the header)."""
    parts = model.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else model


def _is_image_model(model: str) -> bool:
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


def _asset(name: str) -> str:
    text = importlib.resources.files("cellmap_schemas._scan").joinpath(name).read_text("utf-8")
    return text.replace("</", "<\\/") if name.endswith(".js") else text


def _embed(data: Any) -> str:
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


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("cellmap-schemas")
    except Exception:
        return "unknown"


def _verdict(d: Mapping[str, Any]) -> str:
    """``conforms``, ``fails`` or ``nothing judged``: a dataset where no model applied (and
    nothing was unreadable) does not conform to anything, but fails nothing either."""
    if d.get("conforms"):
        return "conforms"
    if d.get("invalid") or d.get("unreadable"):
        return "fails"
    return "nothing judged"


def _share(d: Mapping[str, Any]) -> float | None:
    judged = int(d.get("valid", 0)) + int(d.get("invalid", 0)) + int(d.get("unreadable", 0))
    return None if judged == 0 else int(d.get("valid", 0)) / judged


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _text(value: Any) -> str:
    """Any header value (option lists, nested baseline fields) as one line of text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items()) or "—"
    if value is None:
        return "—"
    return str(value)


class _Page:
    """Collects nodes (in path order), then renders the page in chunks."""

    def __init__(
        self, report: Mapping[str, Any], rules: Sequence[Mapping[str, str]] | None
    ) -> None:
        header = report.get("header")
        meta: dict[str, Any] = dict(header) if isinstance(header, Mapping) else {}
        meta.update({k: report[k] for k in _HEADER_KEYS if k in report})
        self.meta = meta
        self.root = str(report.get("root", ""))
        self.remote = self.root.startswith(_REMOTE)
        self.models = [str(m) for m in report.get("models", ())]
        self.summary: Mapping[str, Any] = report.get("summary") or {}
        self.datasets: list[dict[str, Any]] = [dict(d) for d in report.get("datasets", ())]
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
            image = image or (valid and _is_image_model(str(model)))
        error = node.get("error")
        change = node.get("change")
        record: list[Any] = [
            parent, name, ds,
            _KINDS.index(kind) if kind in _KINDS else -1,
            self._fmt(fmt),
            _STATUSES.index(status) if status in _STATUSES else 2,
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
            word = change if isinstance(change, str) else _text(change)
            if word.lower() not in _UNCHANGED:
                self.change_counts[word] = self.change_counts.get(word, 0) + 1
                self.changes.append(idx)

    # ---- rendering ------------------------------------------------------------------------
    def chunks(self) -> Iterator[str]:
        """The page, a section at a time (so a writer never holds it whole)."""
        title = f"cellmap-schemas scan: {self.root}"
        yield (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<link rel="icon" href="data:,">\n'
            f"<title>{_e(title)}</title>\n<style>\n{_asset('report.css')}</style>\n</head>\n"
            '<body>\n<a class="skip" href="#overview">Skip to the dataset overview</a>\n<main>\n'
        )
        yield self._header()
        if self.has_change or self.meta.get("baseline"):
            yield self._changes()
        yield self._overview()
        yield self._rules()
        yield '<section id="datasets" aria-labelledby="datasets-h">\n'
        yield '<h2 id="datasets-h">Datasets</h2>\n'
        yield (
            '<p class="hint">Open a dataset for its problems'
            + (", its images in Neuroglancer" if self.remote else "")
            + " and its tree of groups and arrays.</p>\n"
        )
        for i in range(len(self.datasets)):
            yield self._dataset_section(i)
        yield "</section>\n</main>\n"
        data = {
            "root": self.root,
            "remote": self.remote,
            "ngl": NEUROGLANCER,
            "models": self.model_names,
            "img": [1 if _is_image_model(m) else 0 for m in self.model_names],
            "rules": self.rule_ids,
            "sev": [self.rule_table.get(r, {}).get("severity", "") for r in self.rule_ids],
            "fmts": self.fmts,
            "kinds": list(_KINDS),
            "statuses": list(_STATUSES),
            "ds": [str(d.get("name", "")) for d in self.datasets],
            "nodes": self.nodes,
        }
        yield '<script type="application/json" id="cs-data">'
        yield _embed(data)
        yield "</script>\n<script>\n"
        yield _asset("report.js")
        yield "</script>\n</body>\n</html>\n"

    def _header(self) -> str:
        s, meta = self.summary, self.meta
        out = ["<header>\n<h1>cellmap-schemas scan report</h1>\n"]
        if meta.get("interrupted"):
            why = meta["interrupted"]
            extra = f" ({_e(_text(why))})" if not isinstance(why, bool) else ""
            out.append(
                '<p class="banner interrupted" role="status"><strong>⚠ Interrupted:</strong> '
                f"the scan stopped before it finished{extra}; this report covers only the nodes "
                "read until then.</p>\n"
            )
        invalid, unreadable = int(s.get("invalid", 0)), int(s.get("unreadable", 0))
        if invalid or unreadable:
            verdict = (
                f'<strong class="v-fails">✗ fails</strong>: {_plural(invalid, "node")} invalid, '
                f"{unreadable} unreadable"
            )
        elif int(s.get("valid", 0)):
            verdict = (
                '<strong class="v-conforms">✓ conforms</strong>: no node invalid or unreadable'
            )
        else:
            verdict = '<strong class="v-nothing">\u2013 nothing judged</strong>: no model applied'
        rows: list[tuple[str, str]] = [("Root", f"<code>{_e(self.root)}</code>")]
        rows.append(("Verdict", verdict))
        if meta.get("started_at"):
            rows.append(("Started", _e(meta["started_at"])))
        if meta.get("finished_at"):
            rows.append(("Finished", _e(meta["finished_at"])))
        written = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append(("Report written", _e(written)))
        tool = meta.get("tool_version") or _tool_version()
        rows.append(("Tool", f"cellmap-schemas {_e(tool)}"))
        models = "".join(f"<li><code>{_e(m)}</code></li>" for m in self.models)
        rows.append(("Models", f'<ul class="inline">{models}</ul>' if models else "—"))
        options = meta.get("options")
        if isinstance(options, Mapping) and options:
            items = "".join(
                f"<li><code>{_e(k)}</code> = {_e(_text(v))}</li>" for k, v in options.items()
            )
            rows.append(("Options", f'<ul class="inline">{items}</ul>'))
        elif options:
            rows.append(("Options", _e(_text(options))))
        n = int(s.get("nodes", len(self.nodes)))
        rows.append((
            "Nodes",
            f"{n} ({_plural(int(s.get('groups', 0)), 'group')}, "
            f"{_plural(int(s.get('arrays', 0)), 'array')}) in "
            f"{_plural(int(s.get('datasets', len(self.datasets))), 'dataset')}",
        ))  # fmt: skip
        rows.append((
            "Totals",
            f"{_e(s.get('valid', 0))} valid, {invalid} invalid, {unreadable} unreadable, "
            f"{_e(s.get('warnings', 0))} with warnings",
        ))  # fmt: skip
        if "elapsed_s" in s:
            rows.append(("Elapsed", f"{float(s['elapsed_s']):.2f} s"))
        if "requests" in s:
            rows.append(("Requests", _e(s["requests"])))
        baseline = meta.get("baseline")
        if baseline:
            rows.append(("Baseline", self._baseline_line(baseline)))
        out.append('<dl class="meta">\n')
        for k, v in rows:
            out.append(f"<div><dt>{k}</dt><dd>{v}</dd></div>\n")
        out.append("</dl>\n</header>\n")
        return "".join(out)

    def _baseline_line(self, baseline: Any) -> str:
        if not isinstance(baseline, Mapping):
            return _e(_text(baseline))
        parts = []
        for key in ("root", "path", "file", "started_at", "tool_version"):
            if baseline.get(key):
                parts.append(f"{_e(key.replace('_', ' '))}: {_e(_text(baseline[key]))}")
        summary = baseline.get("summary")
        if isinstance(summary, Mapping):
            diffs = []
            for key in ("nodes", "valid", "invalid", "unreadable", "warnings"):
                if key in summary:
                    then, now = summary[key], self.summary.get(key)
                    delta = ""
                    if isinstance(then, int) and isinstance(now, int) and now != then:
                        delta = f" ({now - then:+d})"
                    diffs.append(f"{_e(key)} {_e(then)} → {_e(now)}{delta}")
            if diffs:
                parts.append("then → now: " + ", ".join(diffs))
        known = ("root", "path", "file", "started_at", "tool_version", "summary")
        rest = {k: v for k, v in baseline.items() if k not in known}
        if rest:
            parts.append(_e(_text(rest)))
        return "; ".join(parts) or "—"

    def _changes(self) -> str:
        out = ['<section id="changes" aria-labelledby="changes-h">\n']
        out.append('<h2 id="changes-h">What changed since the baseline</h2>\n')
        if not self.changes:
            out.append("<p>No node changed.</p>\n</section>\n")
            return "".join(out)
        counts = ", ".join(
            f"{_e(word)}: {n}"
            for word, n in sorted(self.change_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        out.append(f"<p>{_plural(len(self.changes), 'node')} changed ({counts}).</p>\n")
        out.append('<ul class="changes">\n')
        for idx in self.changes[:_CHANGE_CAP]:
            rec = self.nodes[idx]
            change = rec[8] if len(rec) > 8 else None
            word = change if isinstance(change, str) else _text(change)
            status = _STATUSES[rec[5]]
            out.append(
                f'<li><span class="change">{_e(word)}</span> '
                f'<a href="#p-{idx}"><code>{_p(self.paths[idx])}</code></a> '
                f"— now {self._badge(status)}</li>\n"
            )
        out.append("</ul>\n")
        if len(self.changes) > _CHANGE_CAP:
            out.append(f"<p>… and {len(self.changes) - _CHANGE_CAP} more.</p>\n")
        out.append("</section>\n")
        return "".join(out)

    @staticmethod
    def _badge(status: str) -> str:
        return (
            f'<span class="status s-{_e(status)}">{_SYMBOL.get(status, "?")} '
            f"{_e(_WORD.get(status, status))}</span>"
        )

    def _overview(self) -> str:
        out = ['<section id="overview" aria-labelledby="overview-h">\n']
        out.append('<h2 id="overview-h">Dataset overview</h2>\n')
        out.append(
            '<div class="controls" id="ov-controls" hidden>\n'
            '<label>Filter by name <input type="search" id="ov-filter" autocomplete="off" '
            'placeholder="part of a dataset name"></label>\n'
            '<label>Status <select id="ov-status">'
            '<option value="">all</option><option value="conforms">conforms</option>'
            '<option value="fails">fails</option>'
            '<option value="nothing judged">nothing judged</option>'
            '<option value="warnings">has warnings</option></select></label>\n'
            '<span id="ov-count" role="status" aria-live="polite"></span>\n</div>\n'
        )
        out.append(
            '<table id="ov-table">\n<caption>One row per dataset; the verdict says whether '
            "every judged node of it is valid; the share valid counts the valid nodes among those "
            "judged or unreadable.</caption>\n<thead><tr>"
            '<th scope="col" data-type="text">Dataset</th>'
            '<th scope="col" data-type="num">Nodes</th>'
            '<th scope="col" data-type="num">Valid</th>'
            '<th scope="col" data-type="num">Invalid</th>'
            '<th scope="col" data-type="num">Unreadable</th>'
            '<th scope="col" data-type="num">Warnings</th>'
            '<th scope="col" data-type="num">Share valid</th>'
            '<th scope="col" data-type="text">Verdict</th>'
            '<th scope="col" data-type="none">Per model (valid / judged)</th>'
            "</tr></thead>\n<tbody>\n"
        )
        for i, d in enumerate(self.datasets):
            verdict = _verdict(d)
            share = _share(d)
            warnings = int(d.get("warnings", 0))
            cls, symbol = _VERDICT_LOOK[verdict]
            if share is None:
                bar = '<span class="na">—</span>'
                share_v = -1.0
            else:
                pct = share * 100
                bar = (
                    f'<span class="bar" aria-hidden="true"><span style="width:{pct:.1f}%">'
                    f'</span></span> <span class="pct">{pct:.0f}%</span>'
                )
                share_v = share
            models = []
            for name, t in (d.get("models") or {}).items():
                bits = [f"{int(t.get('valid', 0))}/{int(t.get('judged', 0))}"]
                if t.get("invalid"):
                    bits.append(f"{int(t['invalid'])} invalid")
                if t.get("warnings"):
                    bits.append(f"{int(t['warnings'])} with warnings")
                models.append(
                    f'<li><span class="model">{_e(_short(str(name)))}</span> {", ".join(bits)}</li>'
                )
            name = str(d.get("name", ""))
            num = (int(d.get(k, 0)) for k in ("nodes", "valid", "invalid", "unreadable"))
            cells = "".join(f'<td data-v="{n}">{n}</td>' for n in num)
            out.append(
                f'<tr data-name="{_e(name)}" data-verdict="{verdict}" '
                f'data-warnings="{warnings}">'
                f'<th scope="row" data-v="{_e(name)}"><a href="#ds-{i}">{_p(name)}</a></th>'
                f'{cells}<td data-v="{warnings}">{warnings}</td>'
                f'<td data-v="{share_v:.6f}" class="share">{bar}</td>'
                f'<td data-v="{verdict}" class="{cls}">{symbol} {verdict}</td>'
                f'<td><ul class="models">{"".join(models) or "<li>none applied</li>"}</ul></td>'
                "</tr>\n"
            )
        out.append("</tbody>\n</table>\n</section>\n")
        return "".join(out)

    def _rules(self) -> str:
        out = ['<section id="rules" aria-labelledby="rules-h">\n']
        out.append('<h2 id="rules-h">Rules broken</h2>\n')
        fired = sorted(self.rule_stats.items(), key=lambda kv: (-kv[1][0], self.rule_ids[kv[0]]))
        if not fired:
            out.append("<p>No rule is broken: no error and no warning.</p>\n")
        else:
            out.append(
                f"<p>{_plural(len(fired), 'rule')} broken; open one for the nodes that break "
                "it.</p>\n"
            )
        for r, (n_nodes, n_findings, occ, sev) in fired:
            rule_id = self.rule_ids[r]
            info = self.rule_table.get(rule_id, {})
            severity = info.get("severity") or sev
            summary = info.get("summary") or "(not in the rule table)"
            out.append(
                f'<details class="rule" id="rule-{_e(rule_id)}" data-rule="{r}"><summary>'
                f'<code class="rid">{_e(rule_id)}</code> '
                f'<span class="sev sev-{_e(severity)}">{_e(severity)}</span> '
                f'<span class="count">{_plural(n_nodes, "node")}</span>'
                f"{f' ({n_findings} findings)' if n_findings != n_nodes else ''}"
                f' — <span class="summary">{_e(summary)}</span></summary>\n'
            )
            if info.get("source"):
                out.append(f'<p class="source">Source: {_e(info["source"])}</p>\n')
            out.append('<ul class="occ">\n')
            for idx, loc, msg, mods in occ:
                out.append(self._occurrence(idx, loc, msg, mods))
            out.append("</ul>\n")
            if n_findings > len(occ):
                out.append(
                    f'<p class="more-note">… and {n_findings - len(occ)} more. '
                    f'<button type="button" class="more" data-rule="{r}" hidden>'
                    f"Show all {n_findings}</button></p>\n"
                )
            out.append("</details>\n")
        quiet = [r for rid, r in self.rule_table.items() if rid not in self._rule_index]
        if quiet:
            out.append(
                f'<details class="quiet"><summary>{_plural(len(quiet), "other rule")} '
                'checked, none broken</summary>\n<table><thead><tr><th scope="col">Rule</th>'
                '<th scope="col">Severity</th><th scope="col">Summary</th></tr></thead><tbody>\n'
            )
            for r in quiet:
                out.append(
                    f"<tr><td><code>{_e(r['id'])}</code></td><td>{_e(r['severity'])}</td>"
                    f"<td>{_e(r['summary'])}</td></tr>\n"
                )
            out.append("</tbody></table>\n</details>\n")
        out.append("</section>\n")
        return "".join(out)

    def _occurrence(self, idx: int, loc: str, msg: str, mods: list[str]) -> str:
        models = ", ".join(_short(m) for m in mods)
        where = f" at <code>{_e(loc)}</code>" if loc else ""
        return (
            f'<li><a href="#p-{idx}"><code>{_p(self.paths[idx])}</code></a> '
            f'<span class="model">({_e(models)})</span>{where}: '
            f'<span class="msg">{_e(msg)}</span></li>\n'
        )

    def _findings(self, idx: int) -> str:
        rec = self.nodes[idx]
        items = []
        if len(rec) > 7 and rec[7]:
            items.append(
                f'<li><span class="sev sev-error">unreadable</span> '
                f'<span class="msg">{_e(rec[7])}</span></li>'
            )
        for rule, sev, loc, msg, mods in self.findings_of.get(idx, ()):
            where = f" at <code>{_e(loc)}</code>" if loc else ""
            models = ", ".join(_short(m) for m in mods)
            items.append(
                f'<li><span class="sev sev-{_e(sev)}">{_e(sev)}</span> '
                f'<code class="rid">{_e(rule)}</code> <span class="model">({_e(models)})</span>'
                f'{where}: <span class="msg">{_e(msg)}</span></li>'
            )
        return f'<ul class="findings">{"".join(items)}</ul>' if items else ""

    def _dataset_section(self, i: int) -> str:
        d = self.datasets[i]
        verdict = _verdict(d)
        cls, symbol = _VERDICT_LOOK[verdict]
        nodes = int(d.get("nodes", 0))
        out = [
            f'<details class="ds" id="ds-{i}" data-ds="{i}"><summary>'
            f'<span class="dsname">{_p(str(d.get("name", "")))}</span> — '
            f'<span class="{cls}">{symbol} {verdict}</span> — {_plural(nodes, "node")}: '
            f"{int(d.get('valid', 0))} valid, {int(d.get('invalid', 0))} invalid, "
            f"{int(d.get('unreadable', 0))} unreadable, "
            f"{int(d.get('warnings', 0))} with warnings</summary>\n"
        ]
        problems = self.problems.get(i, [])
        if problems:
            out.append(f"<h3>Problems ({_plural(len(problems), 'node')})</h3>\n")
            out.append(f'<ul class="problems" data-ds="{i}">\n')
            for idx in problems[:_PROBLEM_CAP]:
                out.append(self._problem(idx))
            out.append("</ul>\n")
            if len(problems) > _PROBLEM_CAP:
                out.append(
                    f'<p class="more-note">… and {len(problems) - _PROBLEM_CAP} more. '
                    f'<button type="button" class="more" data-ds="{i}" hidden>'
                    f"Show all {len(problems)}</button></p>\n"
                )
        else:
            out.append("<p>No node of this dataset has an error or a warning.</p>\n")
        images = self.images.get(i, [])
        if images:
            out.append(f"<h3>Images to open in Neuroglancer ({len(images)})</h3>\n")
            out.append('<ul class="images">\n')
            for idx in images[:_IMAGE_CAP]:
                fmt = self.fmts[self.nodes[idx][4]] if self.nodes[idx][4] >= 0 else None
                url = neuroglancer_url(self.root, self.paths[idx], fmt)
                out.append(
                    f"<li><code>{_p(self.paths[idx])}</code> "
                    f'<a class="ngl" href="{_e(url)}" target="_blank" rel="noopener noreferrer">'
                    f"Open in Neuroglancer</a></li>\n"
                )
            out.append("</ul>\n")
            if len(images) > _IMAGE_CAP:
                out.append(f"<p>… and {len(images) - _IMAGE_CAP} more in the tree.</p>\n")
        out.append(
            f'<div class="tree-wrap" data-ds="{i}"><button type="button" class="tree-btn" '
            f'data-ds="{i}" aria-expanded="false" hidden>Show the tree of groups and arrays'
            "</button></div>\n</details>\n"
        )
        return "".join(out)

    def _problem(self, idx: int) -> str:
        status = _STATUSES[self.nodes[idx][5]]
        return (
            f'<li id="p-{idx}" tabindex="-1">{self._badge(status)} '
            f'<code class="path">{_p(self.paths[idx])}</code>{self._findings(idx)}</li>\n'
        )


def _nodes_of(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = list(report.get("nodes") or ())
    if any(nodes[i]["path"] > nodes[i + 1]["path"] for i in range(len(nodes) - 1)):
        nodes.sort(key=lambda n: n["path"])
    return nodes


def render_html(
    report: Mapping[str, Any], *, rules: Sequence[Mapping[str, str]] | None = None
) -> str:
    """The page of a decoded ``--format json`` report (a :class:`ScanReport` works too).

    ``rules`` is the rule table (``id``, ``severity``, ``summary``, ``source``; default:
    :func:`cellmap_schemas.rules.all_rules`), for the summaries of the rules the page lists.
    """
    if not isinstance(report, Mapping):
        report = msgspec.to_builtins(report)
    page = _Page(report, rules)
    for node in _nodes_of(report):
        page.add(node)
    return "".join(page.chunks())


class HtmlWriter:
    """The HTML report as a :class:`~cellmap_schemas._scan.report.Writer`.

    Keeps each node as its encoded JSON (as ``JsonWriter`` does: the page's summary precedes
    its nodes) and writes the page in chunks at ``finish``. ``meta`` adds header fields of the
    scan (``tool_version``, ``started_at``, ``options``, ``interrupted``, ``baseline``).
    """

    def __init__(
        self,
        out: IO[bytes],
        *,
        rules: Sequence[Mapping[str, str]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._out = out
        self._rules = rules
        self._meta = dict(meta or {})
        self._nodes: list[tuple[str, str, bytes]] = []
        self._encoder = msgspec.json.Encoder()

    def node(self, node: Any, dataset: str) -> None:
        self._nodes.append((node.path, dataset, self._encoder.encode(node)))

    def finish(self, root: str, models: list[str], summary: Any, datasets: Iterable[Any]) -> None:
        self._nodes.sort(key=lambda item: item[0])
        report: dict[str, Any] = {
            **self._meta,
            "root": root,
            "models": list(models),
            "summary": msgspec.to_builtins(summary),
            "datasets": msgspec.to_builtins(list(datasets)),
        }
        page = _Page(report, self._rules)
        decode = msgspec.json.Decoder().decode
        for _, dataset, raw in self._nodes:
            page.add(decode(raw), dataset)
        self._nodes.clear()
        for chunk in page.chunks():
            self._out.write(chunk.encode("utf-8", "replace"))
