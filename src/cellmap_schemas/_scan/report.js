/* cellmap-schemas HTML report: sorting and filtering of the overview, the rest of long lists,
 * and each dataset's tree, drawn on demand from the data embedded once in #cs-data.
 * Plain DOM, no framework, no request: text from the data only ever goes in via textContent. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("cs-data").textContent);
  var N = D.nodes; // [parent, name, dataset, kind, format, status, results, error, change]
  var SYMBOL = { valid: "\u2713", invalid: "\u2717", unreadable: "\u26a0", not_applicable: "\u2013" };
  var WORD = { valid: "valid", invalid: "invalid", unreadable: "unreadable", not_applicable: "not judged" };
  var CHUNK = 500;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = visible(String(text));
    return e;
  }
  function visible(s) {
    return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, function (c) {
      return "\\x" + ("0" + c.charCodeAt(0).toString(16)).slice(-2);
    });
  }
  function visiblePath(s) {
    return visible(s).replace(/[\t\n]/g, function (c) { return c === "\t" ? "\\x09" : "\\x0a"; });
  }
  function short(m) { var p = m.split("."); return p.length > 2 ? p.slice(-2).join(".") : m; }
  function status(i) { return D.statuses[N[i][5]]; }
  function results(i) { return N[i][6] || []; }
  function error(i) { return N[i][7] || null; }
  function path(i) {
    var parts = [];
    while (i >= 0) { if (N[i][1]) parts.push(N[i][1]); i = N[i][0]; }
    return parts.reverse().join("/");
  }
  function isProblem(i) {
    var s = status(i);
    if (s === "invalid" || s === "unreadable") return true;
    var r = results(i);
    for (var k = 0; k < r.length; k++) if (r[k][3] && r[k][3].length) return true;
    return false;
  }

  // ---- findings (deduplicated across models, as on the server side) -------------------------
  function findings(i) {
    var seen = {}, out = [], r = results(i);
    for (var k = 0; k < r.length; k++) {
      var lists = [[r[k][2] || [], "error"], [r[k][3] || [], "warning"]];
      for (var l = 0; l < 2; l++) {
        var list = lists[l][0];
        for (var f = 0; f < list.length; f++) {
          var rule = D.rules[list[f][0]], key = [rule, lists[l][1], list[f][1], list[f][2]].join("\u0000");
          if (!(key in seen)) {
            seen[key] = out.length;
            out.push({ rule: rule, sev: lists[l][1], loc: list[f][1], msg: list[f][2], models: [] });
          }
          out[seen[key]].models.push(D.models[r[k][0]]);
        }
      }
    }
    return out;
  }
  function badge(s) { return el("span", "status s-" + s, SYMBOL[s] + " " + (WORD[s] || s)); }
  function findingItem(f) {
    var li = el("li");
    li.appendChild(el("span", "sev sev-" + f.sev, f.sev));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("code", "rid", f.rule));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "model", "(" + f.models.map(short).join(", ") + ")"));
    if (f.loc) {
      li.appendChild(document.createTextNode(" at "));
      li.appendChild(el("code", null, f.loc));
    }
    li.appendChild(document.createTextNode(": "));
    li.appendChild(el("span", "msg", f.msg));
    return li;
  }
  function findingsList(i) {
    var fs = findings(i), err = error(i);
    if (!fs.length && !err) return null;
    var ul = el("ul", "findings");
    if (err) {
      var li = el("li");
      li.appendChild(el("span", "sev sev-error", "unreadable"));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "msg", err));
      ul.appendChild(li);
    }
    fs.forEach(function (f) { ul.appendChild(findingItem(f)); });
    return ul;
  }

  // ---- Neuroglancer links (the same as neuroglancer_url in html.py) -------------------------
  function nglUrl(i) {
    if (!D.remote || status(i) !== "valid" || D.kinds[N[i][3]] !== "group") return null;
    var r = results(i), image = false;
    for (var k = 0; k < r.length; k++) if (r[k][1] && D.img[r[k][0]]) image = true;
    if (!image) return null;
    var p = path(i), url = D.root.replace(/\/+$/, "");
    if (p) url += "/" + p.split("/").map(encodeURIComponent).join("/");
    var fmt = N[i][4] >= 0 ? D.fmts[N[i][4]] : null;
    var name = p ? p.split("/").pop() : url.split("/").pop();
    var state = { layers: [{ type: "image", source: (fmt === "n5" ? "n5://" : "zarr://") + url, name: name }] };
    return D.ngl + encodeURIComponent(JSON.stringify(state));
  }
  function copy(text, note) {
    function done(ok) { note.textContent = ok ? "copied" : "copy failed: select the link"; }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallback()); });
    } else { done(fallback()); }
    function fallback() {
      var t = document.createElement("textarea");
      t.value = text; document.body.appendChild(t); t.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      t.remove();
      return ok;
    }
  }
  function nglLinks(i, into) {
    var url = nglUrl(i);
    if (!url) return;
    var a = el("a", "ngl", "Open in Neuroglancer");
    a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
    into.appendChild(a);
    copyButton(url, into);
  }
  function copyButton(url, into) {
    var b = el("button", "copy", "Copy link"); b.type = "button";
    var note = el("span", "copied"); note.setAttribute("role", "status");
    b.addEventListener("click", function () { copy(url, note); });
    into.appendChild(document.createTextNode(" "));
    into.appendChild(b); into.appendChild(note);
  }

  // ---- the tree of one dataset --------------------------------------------------------------
  var kids = null, tops = null, below = null;
  function index() {
    if (kids) return;
    kids = new Array(N.length); tops = {}; below = new Int32Array(N.length);
    for (var i = 0; i < N.length; i++) {
      var p = N[i][0], d = N[i][2];
      if (p >= 0 && N[p][2] === d) (kids[p] || (kids[p] = [])).push(i);
      else (tops[d] || (tops[d] = [])).push(i);
    }
    for (var j = N.length - 1; j >= 0; j--) {
      var q = N[j][0];
      if (q >= 0) below[q] += below[j] + (isProblem(j) ? 1 : 0);
    }
  }
  function fill(ul, list, start) {
    var end = Math.min(list.length, start + CHUNK);
    for (var k = start; k < end; k++) ul.appendChild(treeNode(list[k]));
    if (end < list.length) {
      var li = el("li"), b = el("button", "more", "Show " + Math.min(CHUNK, list.length - end) +
        " more of " + (list.length - end) + " remaining");
      b.type = "button";
      b.addEventListener("click", function () { li.remove(); fill(ul, list, end); });
      li.appendChild(b); ul.appendChild(li);
    }
  }
  function treeNode(i) {
    var li = el("li"); li.id = "n-" + i; li.tabIndex = -1;
    var line = el("div", "node-line"), children = kids[i] || [];
    var ul = null;
    if (children.length) {
      var t = el("button", "toggle", "\u25b8"); t.type = "button";
      t.setAttribute("aria-expanded", "false");
      t.setAttribute("aria-label", "Show the " + children.length + " members of " + visiblePath(N[i][1] || "."));
      ul = el("ul"); ul.hidden = true; ul.id = "k-" + i;
      t.setAttribute("aria-controls", ul.id);
      t.addEventListener("click", function () { toggle(t, ul, children); });
      line.appendChild(t);
    } else {
      line.appendChild(el("span", "leaf"));
    }
    var name = el("span", "name"); name.textContent = visiblePath(N[i][1] || "."); line.appendChild(name);
    var kind = N[i][3] >= 0 ? D.kinds[N[i][3]] : "unknown kind";
    var fmt = N[i][4] >= 0 ? D.fmts[N[i][4]] : "unknown format";
    line.appendChild(el("span", "kind", kind + " \u00b7 " + fmt));
    line.appendChild(badge(status(i)));
    var r = results(i);
    if (r.length) line.appendChild(el("span", "model", r.map(function (x) {
      return short(D.models[x[0]]) + (x[1] ? " \u2713" : " \u2717");
    }).join(", ")));
    if (below[i]) line.appendChild(el("span", "below", below[i] + " with problems below"));
    nglLinks(i, line);
    li.appendChild(line);
    var fl = findingsList(i);
    if (fl) li.appendChild(fl);
    if (ul) li.appendChild(ul);
    return li;
  }
  function toggle(t, ul, children, open) {
    var show = open === undefined ? ul.hidden : open;
    if (show && !ul.dataset.done) { ul.dataset.done = "1"; fill(ul, children, 0); }
    ul.hidden = !show;
    t.setAttribute("aria-expanded", show ? "true" : "false");
    t.textContent = show ? "\u25be" : "\u25b8";
  }
  function showTree(d, keepOpen) {
    index();
    var wrap = document.querySelector('.tree-wrap[data-ds="' + d + '"]');
    var btn = wrap.querySelector(".tree-btn"), ul = wrap.querySelector("ul.tree");
    if (!ul) {
      ul = el("ul", "tree"); ul.id = "tree-" + d; wrap.appendChild(ul);
      btn.setAttribute("aria-controls", ul.id);
      fill(ul, tops[d] || [], 0);
    } else if (!keepOpen && btn.getAttribute("aria-expanded") === "true") {
      ul.hidden = true; btn.setAttribute("aria-expanded", "false");
      btn.textContent = "Show the tree of groups and arrays";
      return ul;
    }
    ul.hidden = false; btn.setAttribute("aria-expanded", "true");
    btn.textContent = "Hide the tree";
    return ul;
  }
  function reveal(i) {
    // open the dataset, its tree and every ancestor, then focus the node
    var d = N[i][2], chain = [];
    for (var p = N[i][0]; p >= 0 && N[p][2] === d; p = N[p][0]) chain.unshift(p);
    document.getElementById("ds-" + d).open = true;
    showTree(d, true);
    chain.forEach(function (a) {
      var li = document.getElementById("n-" + a);
      if (!li) return;
      var t = li.querySelector(":scope > .node-line > .toggle"), ul = li.querySelector(":scope > ul[id^=k-]");
      if (t && ul) toggle(t, ul, kids[a], true);
    });
    var target = document.getElementById("n-" + i);
    if (target) { target.scrollIntoView({ block: "center" }); target.focus(); }
  }

  // ---- problem and rule lists beyond what the server rendered --------------------------------
  function problemItem(i) {
    var li = el("li"); li.id = "p-" + i; li.tabIndex = -1;
    li.appendChild(badge(status(i)));
    li.appendChild(document.createTextNode(" "));
    var c = el("code", "path"); c.textContent = visiblePath(path(i) || "."); li.appendChild(c);
    var b = el("button", "reveal", "in tree"); b.type = "button";
    b.addEventListener("click", function () { reveal(i); });
    li.appendChild(document.createTextNode(" ")); li.appendChild(b);
    var fl = findingsList(i); if (fl) li.appendChild(fl);
    return li;
  }
  function allProblems(d) {
    var ul = document.querySelector('ul.problems[data-ds="' + d + '"]');
    if (!ul || ul.dataset.all) return ul;
    ul.dataset.all = "1"; ul.textContent = "";
    for (var i = 0; i < N.length; i++) if (N[i][2] === d && isProblem(i)) ul.appendChild(problemItem(i));
    var more = document.querySelector('button.more[data-ds="' + d + '"]');
    if (more) more.parentNode.remove();
    return ul;
  }
  function allOccurrences(r, btn) {
    var det = btn.closest("details"), ul = det.querySelector("ul.occ");
    ul.textContent = "";
    var rule = D.rules[r];
    for (var i = 0; i < N.length; i++) {
      findings(i).forEach(function (f) {
        if (f.rule !== rule) return;
        var li = el("li"), a = el("a"); a.href = "#p-" + i;
        var c = el("code"); c.textContent = visiblePath(path(i) || "."); a.appendChild(c);
        li.appendChild(a); li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "model", "(" + f.models.map(short).join(", ") + ")"));
        if (f.loc) { li.appendChild(document.createTextNode(" at ")); li.appendChild(el("code", null, f.loc)); }
        li.appendChild(document.createTextNode(": ")); li.appendChild(el("span", "msg", f.msg));
        ul.appendChild(li);
      });
    }
    btn.parentNode.remove();
    ul.querySelector("a") && ul.querySelector("a").focus();
  }

  // ---- the overview: sort and filter ---------------------------------------------------------
  var table = document.getElementById("ov-table");
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filter = document.getElementById("ov-filter"), statusSel = document.getElementById("ov-status");
  var count = document.getElementById("ov-count");
  function applyFilter() {
    var q = filter.value.trim().toLowerCase(), s = statusSel.value, shown = 0;
    rows.forEach(function (tr) {
      var ok = (!q || tr.dataset.name.toLowerCase().indexOf(q) >= 0) &&
        (!s || (s === "warnings" ? tr.dataset.warnings !== "0" : tr.dataset.verdict === s));
      tr.hidden = !ok; if (ok) shown++;
    });
    count.textContent = shown + " of " + rows.length + " datasets shown";
  }
  function sortBy(th, col, type) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var keyed = rows.map(function (tr, k) {
      var v = tr.cells[col].dataset.v;
      return { tr: tr, k: k, v: type === "num" ? parseFloat(v) : v };
    });
    keyed.sort(function (a, b) {
      var c = type === "num" ? a.v - b.v : a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
      return (asc ? c : -c) || a.k - b.k;
    });
    rows = keyed.map(function (x) { return x.tr; });
    rows.forEach(function (tr) { tbody.appendChild(tr); });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    var type = th.dataset.type;
    if (type === "none") return;
    var b = el("button", null, th.textContent); b.type = "button";
    b.setAttribute("aria-label", "Sort by " + th.textContent.toLowerCase());
    th.textContent = ""; th.appendChild(b);
    b.addEventListener("click", function () { sortBy(th, col, type); });
  });
  document.getElementById("ov-controls").hidden = false;
  filter.addEventListener("input", applyFilter);
  statusSel.addEventListener("change", applyFilter);
  applyFilter();

  // ---- wiring ---------------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("button[hidden]"), function (b) { b.hidden = false; });
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("button, a") : null;
    if (!t) return;
    if (t.classList.contains("tree-btn")) { showTree(+t.dataset.ds); return; }
    if (t.classList.contains("more") && t.dataset.rule !== undefined) { allOccurrences(+t.dataset.rule, t); return; }
    if (t.classList.contains("more") && t.dataset.ds !== undefined) { allProblems(+t.dataset.ds); return; }
    var href = t.getAttribute("href") || "";
    var m = /^#(p|ds)-(\d+)$/.exec(href);
    if (t.tagName === "A" && m) {
      ev.preventDefault();
      var target;
      if (m[1] === "p") {
        var i = +m[2];
        document.getElementById("ds-" + N[i][2]).open = true;
        target = document.getElementById("p-" + i) || (allProblems(N[i][2]), document.getElementById("p-" + i));
      } else {
        target = document.getElementById("ds-" + m[2]);
        target.open = true;
        target = target.querySelector("summary");
      }
      if (target) {
        history.replaceState(null, "", href);
        target.scrollIntoView({ block: "start" });
        if (!target.hasAttribute("tabindex") && target.tagName !== "SUMMARY") target.tabIndex = -1;
        target.focus();
      }
    }
  });
  // SSR problem entries get an "in tree" button too
  Array.prototype.forEach.call(document.querySelectorAll("ul.problems > li[id^=p-]"), function (li) {
    var i = +li.id.slice(2), b = el("button", "reveal", "in tree"); b.type = "button";
    b.addEventListener("click", function () { reveal(i); });
    var path = li.querySelector("code.path");
    path.after(b); path.after(document.createTextNode(" "));
  });
  Array.prototype.forEach.call(document.querySelectorAll("ul.images a.ngl"), function (a) {
    copyButton(a.href, a.parentNode);
  });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
  document.documentElement.classList.add("js");
})();
