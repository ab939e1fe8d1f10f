"""The ``--format html`` report: one self-contained page (issue #13).

The page fetches nothing: its style and script are inlined (``report.css`` and ``report.js``
next to this module), a Content-Security-Policy forbids any request, and the scan's data is
embedded once, as compact JSON (:mod:`._html_data`), for the script to sort, filter and draw
trees from. What must be readable without a script (the header, the dataset overview, the
broken rules, each dataset's problems) is rendered here, on the server side, with every string
from the data escaped.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import msgspec

from cellmap_schemas._scan._html_data import (
    CHANGE_CAP,
    CHANGE_ORDER,
    IMAGE_CAP,
    KINDS,
    NEUROGLANCER,
    PROBLEM_CAP,
    STATUSES,
    SYMBOL,
    VERDICT_LOOK,
    WORD,
    Collector,
    asset,
    embed,
    esc,
    esc_path,
    is_image_model,
    neuroglancer_url,
    plural,
    share_valid,
    short_model,
    text_of,
    tool_version,
    verdict_of,
)  # fmt: skip

__all__ = ["NEUROGLANCER", "HtmlWriter", "neuroglancer_url", "render_html"]


class _Page(Collector):
    """The collected nodes, rendered as the page in chunks."""

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
            f"<title>{esc(title)}</title>\n<style>\n{asset('report.css')}</style>\n</head>\n"
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
            "img": [1 if is_image_model(m) else 0 for m in self.model_names],
            "rules": self.rule_ids,
            "sev": [self.rule_table.get(r, {}).get("severity", "") for r in self.rule_ids],
            "fmts": self.fmts,
            "kinds": list(KINDS),
            "statuses": list(STATUSES),
            "ds": [str(d.get("name", "")) for d in self.datasets],
            "nodes": self.nodes,
        }
        yield '<script type="application/json" id="cs-data">'
        yield embed(data)
        yield "</script>\n<script>\n"
        yield asset("report.js")
        yield "</script>\n</body>\n</html>\n"

    def _header(self) -> str:
        s, meta = self.summary, self.meta
        out = ["<header>\n<h1>cellmap-schemas scan report</h1>\n"]
        if meta.get("interrupted"):
            why = meta["interrupted"]
            extra = f" ({esc(text_of(why))})" if not isinstance(why, bool) else ""
            out.append(
                '<p class="banner interrupted" role="status"><strong>⚠ Interrupted:</strong> '
                f"the scan stopped before it finished{extra}; this report covers only the nodes "
                "read until then.</p>\n"
            )
        invalid, unreadable = int(s.get("invalid", 0)), int(s.get("unreadable", 0))
        if invalid or unreadable:
            verdict = (
                f'<strong class="v-fails">✗ fails</strong>: {plural(invalid, "node")} invalid, '
                f"{unreadable} unreadable"
            )
        elif int(s.get("valid", 0)):
            verdict = (
                '<strong class="v-conforms">✓ conforms</strong>: no node invalid or unreadable'
            )
        else:
            verdict = '<strong class="v-nothing">\u2013 nothing judged</strong>: no model applied'
        rows: list[tuple[str, str]] = [("Root", f"<code>{esc(self.root)}</code>")]
        rows.append(("Verdict", verdict))
        if meta.get("started_at"):
            rows.append(("Started", esc(meta["started_at"])))
        if meta.get("finished_at"):
            rows.append(("Finished", esc(meta["finished_at"])))
        written = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append(("Report written", esc(written)))
        tool = meta.get("tool_version") or tool_version()
        rows.append(("Tool", f"cellmap-schemas {esc(tool)}"))
        models = "".join(f"<li><code>{esc(m)}</code></li>" for m in self.models)
        rows.append(("Models", f'<ul class="inline">{models}</ul>' if models else "—"))
        options = meta.get("options")
        if isinstance(options, Mapping) and options:
            # unset options (None, []) say nothing: ``models`` None means every model
            items = "".join(
                f"<li><code>{esc(k)}</code> = {esc(text_of(v))}</li>"
                for k, v in options.items()
                if v is not None and v != []
            )
            rows.append(("Options", f'<ul class="inline">{items}</ul>'))
        elif options:
            rows.append(("Options", esc(text_of(options))))
        n = int(s.get("nodes", len(self.nodes)))
        rows.append((
            "Nodes",
            f"{n} ({plural(int(s.get('groups', 0)), 'group')}, "
            f"{plural(int(s.get('arrays', 0)), 'array')}) in "
            f"{plural(len(self.datasets), 'dataset')}",
        ))  # fmt: skip
        rows.append((
            "Totals",
            f"{esc(s.get('valid', 0))} valid, {invalid} invalid, {unreadable} unreadable, "
            f"{esc(s.get('warnings', 0))} with warnings",
        ))  # fmt: skip
        if "elapsed_s" in s:
            rows.append(("Elapsed", f"{float(s['elapsed_s']):.2f} s"))
        if "requests" in s:
            rows.append(("Requests", esc(s["requests"])))
        if meta.get("resumed"):
            rows.append(("Resumed", f"{plural(int(meta['resumed']), 'node')} taken from a report"))
        baseline = meta.get("baseline")
        if baseline:
            rows.append(("Baseline", self._baseline_line(baseline)))
        out.append('<dl class="meta">\n')
        for k, v in rows:
            out.append(f"<div><dt>{k}</dt><dd>{v}</dd></div>\n")
        out.append("</dl>\n</header>\n")
        return "".join(out)

    def _baseline_line(self, baseline: Any) -> str:
        """``source`` and the counts of ``summary.baseline``; any other field as text."""
        if not isinstance(baseline, Mapping):
            return esc(text_of(baseline))
        parts = []
        for key in ("source", "root", "path", "file", "started_at", "tool_version"):
            if baseline.get(key):
                parts.append(f"<code>{esc(text_of(baseline[key]))}</code>")
        summary = baseline.get("summary")
        if isinstance(summary, Mapping):
            diffs = []
            for key in ("nodes", "valid", "invalid", "unreadable", "warnings"):
                if key in summary:
                    then, now = summary[key], self.summary.get(key)
                    delta = ""
                    if isinstance(then, int) and isinstance(now, int) and now != then:
                        delta = f" ({now - then:+d})"
                    diffs.append(f"{esc(key)} {esc(then)} → {esc(now)}{delta}")
            if diffs:
                parts.append("then → now: " + ", ".join(diffs))
        known = ("source", "root", "path", "file", "started_at", "tool_version", "summary")
        rest = [
            f"{esc(k.replace('_', ' '))}: {esc(text_of(v))}"
            for k, v in baseline.items()
            if k not in known
        ]
        if rest:
            parts.append(", ".join(rest))
        return "; ".join(parts) or "—"

    def _changes(self) -> str:
        out = ['<section id="changes" aria-labelledby="changes-h">\n']
        out.append('<h2 id="changes-h">What changed since the baseline</h2>\n')
        if not self.changes:
            out.append("<p>No node changed.</p>\n</section>\n")
            return "".join(out)
        counts = ", ".join(
            f"{esc(word.replace('_', ' '))}: {n}"
            for word, n in sorted(
                self.change_counts.items(), key=lambda kv: (CHANGE_ORDER.get(kv[0], 9), kv[0])
            )
        )
        out.append(f"<p>{plural(len(self.changes), 'node')} changed ({counts}).</p>\n")
        out.append('<ul class="changes">\n')

        def word_of(idx: int) -> str:
            rec = self.nodes[idx]
            change = rec[8] if len(rec) > 8 else None
            return change if isinstance(change, str) else text_of(change)

        ordered = sorted(self.changes, key=lambda i: (CHANGE_ORDER.get(word_of(i), 9), i))
        for idx in ordered[:CHANGE_CAP]:
            status = STATUSES[self.nodes[idx][5]]
            target = (
                f"#p-{idx}" if status in ("invalid", "unreadable") else f"#ds-{self.nodes[idx][2]}"
            )
            out.append(
                f'<li><span class="change">{esc(word_of(idx).replace("_", " "))}</span> '
                f'<a href="{target}"><code>{esc_path(self.paths[idx])}</code></a> '
                f"— now {self._badge(status)}</li>\n"
            )
        out.append("</ul>\n")
        if len(self.changes) > CHANGE_CAP:
            out.append(f"<p>… and {len(self.changes) - CHANGE_CAP} more.</p>\n")
        out.append("</section>\n")
        return "".join(out)

    @staticmethod
    def _badge(status: str) -> str:
        return (
            f'<span class="status s-{esc(status)}">{SYMBOL.get(status, "?")} '
            f"{esc(WORD.get(status, status))}</span>"
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
            verdict = verdict_of(d)
            share = share_valid(d)
            warnings = int(d.get("warnings", 0))
            cls, symbol = VERDICT_LOOK[verdict]
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
                label = esc(short_model(str(name)))
                models.append(f'<li><span class="model">{label}</span> {", ".join(bits)}</li>')
            name = str(d.get("name", ""))
            num = (int(d.get(k, 0)) for k in ("nodes", "valid", "invalid", "unreadable"))
            cells = "".join(f'<td data-v="{n}">{n}</td>' for n in num)
            out.append(
                f'<tr data-name="{esc(name)}" data-verdict="{verdict}" '
                f'data-warnings="{warnings}">'
                f'<th scope="row" data-v="{esc(name)}"><a href="#ds-{i}">{esc_path(name)}</a></th>'
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
                f"<p>{plural(len(fired), 'rule')} broken; open one for the nodes that break "
                "it.</p>\n"
            )
        for r, (n_nodes, n_findings, occ, sev) in fired:
            rule_id = self.rule_ids[r]
            info = self.rule_table.get(rule_id, {})
            severity = info.get("severity") or sev
            summary = info.get("summary") or "(not in the rule table)"
            out.append(
                f'<details class="rule" id="rule-{esc(rule_id)}" data-rule="{r}"><summary>'
                f'<code class="rid">{esc(rule_id)}</code> '
                f'<span class="sev sev-{esc(severity)}">{esc(severity)}</span> '
                f'<span class="count">{plural(n_nodes, "node")}</span>'
                f"{f' ({n_findings} findings)' if n_findings != n_nodes else ''}"
                f' — <span class="summary">{esc(summary)}</span></summary>\n'
            )
            if info.get("source"):
                out.append(f'<p class="source">Source: {esc(info["source"])}</p>\n')
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
        quiet = [q for rid, q in self.rule_table.items() if rid not in self._rule_index]
        if quiet:
            out.append(
                f'<details class="quiet"><summary>{plural(len(quiet), "other rule")} '
                'checked, none broken</summary>\n<table><thead><tr><th scope="col">Rule</th>'
                '<th scope="col">Severity</th><th scope="col">Summary</th></tr></thead><tbody>\n'
            )
            for q in quiet:
                out.append(
                    f"<tr><td><code>{esc(q['id'])}</code></td><td>{esc(q['severity'])}</td>"
                    f"<td>{esc(q['summary'])}</td></tr>\n"
                )
            out.append("</tbody></table>\n</details>\n")
        out.append("</section>\n")
        return "".join(out)

    def _occurrence(self, idx: int, loc: str, msg: str, mods: list[str]) -> str:
        models = ", ".join(short_model(m) for m in mods)
        where = f" at <code>{esc(loc)}</code>" if loc else ""
        return (
            f'<li><a href="#p-{idx}"><code>{esc_path(self.paths[idx])}</code></a> '
            f'<span class="model">({esc(models)})</span>{where}: '
            f'<span class="msg">{esc(msg)}</span></li>\n'
        )

    def _findings(self, idx: int) -> str:
        rec = self.nodes[idx]
        items = []
        if len(rec) > 7 and rec[7]:
            items.append(
                f'<li><span class="sev sev-error">unreadable</span> '
                f'<span class="msg">{esc(rec[7])}</span></li>'
            )
        for rule, sev, loc, msg, mods in self.findings_of.get(idx, ()):
            where = f" at <code>{esc(loc)}</code>" if loc else ""
            models = ", ".join(short_model(m) for m in mods)
            items.append(
                f'<li><span class="sev sev-{esc(sev)}">{esc(sev)}</span> '
                f'<code class="rid">{esc(rule)}</code> <span class="model">({esc(models)})</span>'
                f'{where}: <span class="msg">{esc(msg)}</span></li>'
            )
        return f'<ul class="findings">{"".join(items)}</ul>' if items else ""

    def _dataset_section(self, i: int) -> str:
        d = self.datasets[i]
        verdict = verdict_of(d)
        cls, symbol = VERDICT_LOOK[verdict]
        nodes = int(d.get("nodes", 0))
        out = [
            f'<details class="ds" id="ds-{i}" data-ds="{i}"><summary>'
            f'<span class="dsname">{esc_path(str(d.get("name", "")))}</span> — '
            f'<span class="{cls}">{symbol} {verdict}</span> — {plural(nodes, "node")}: '
            f"{int(d.get('valid', 0))} valid, {int(d.get('invalid', 0))} invalid, "
            f"{int(d.get('unreadable', 0))} unreadable, "
            f"{int(d.get('warnings', 0))} with warnings</summary>\n"
        ]
        problems = self.problems.get(i, [])
        if problems:
            out.append(f"<h3>Problems ({plural(len(problems), 'node')})</h3>\n")
            out.append(f'<ul class="problems" data-ds="{i}">\n')
            for idx in problems[:PROBLEM_CAP]:
                out.append(self._problem(idx))
            out.append("</ul>\n")
            if len(problems) > PROBLEM_CAP:
                out.append(
                    f'<p class="more-note">… and {len(problems) - PROBLEM_CAP} more. '
                    f'<button type="button" class="more" data-ds="{i}" hidden>'
                    f"Show all {len(problems)}</button></p>\n"
                )
        else:
            out.append("<p>No node of this dataset has an error or a warning.</p>\n")
        images = self.images.get(i, [])
        if images:
            out.append(f"<h3>Images to open in Neuroglancer ({len(images)})</h3>\n")
            out.append('<ul class="images">\n')
            for idx in images[:IMAGE_CAP]:
                fmt = self.fmts[self.nodes[idx][4]] if self.nodes[idx][4] >= 0 else None
                url = neuroglancer_url(self.root, self.paths[idx], fmt)
                out.append(
                    f"<li><code>{esc_path(self.paths[idx])}</code> "
                    f'<a class="ngl" href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
                    f"Open in Neuroglancer</a></li>\n"
                )
            out.append("</ul>\n")
            if len(images) > IMAGE_CAP:
                out.append(f"<p>… and {len(images) - IMAGE_CAP} more in the tree.</p>\n")
        out.append(
            f'<div class="tree-wrap" data-ds="{i}"><button type="button" class="tree-btn" '
            f'data-ds="{i}" aria-expanded="false" hidden>Show the tree of groups and arrays'
            "</button></div>\n</details>\n"
        )
        return "".join(out)

    def _problem(self, idx: int) -> str:
        status = STATUSES[self.nodes[idx][5]]
        return (
            f'<li id="p-{idx}" tabindex="-1">{self._badge(status)} '
            f'<code class="path">{esc_path(self.paths[idx])}</code>{self._findings(idx)}</li>\n'
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
