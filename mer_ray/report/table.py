"""The per-video table of the report (sortable, filterable by a small inline script) and the
failed-inputs list.

Rows are rendered as HTML, so the page reads without JavaScript; the script only reorders and
hides them. The table is capped (``ROW_CAP`` rows by path) to keep the file a few MB at most.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from pathlib import PurePath

import pandas as pd

ROW_CAP = 5_000
"""Most rows embedded in the table (first by path); the page says when more were left out."""

FAILED_CAP = 2_000
"""Most rows in the failed-inputs list."""

COLUMNS = (   # key, header, sort type
    ("path", "video", "text"), ("emotion", "emotion", "text"), ("confidence", "confidence", "num"),
    ("fusion_mode", "modality", "text"), ("visual_emotion", "visual", "text"),
    ("audio_emotion", "audio", "text"), ("label", "true label", "text"),
    ("status", "status", "text"), ("error", "error", "text"), ("timeline", "over time", "text"),
)

SCRIPT = r"""
(function () {
  var table = document.getElementById('video-table');
  if (table) {
    var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._i = i; r._t = r.textContent.toLowerCase(); });
    var q = document.getElementById('f-text'), st = document.getElementById('f-status');
    var em = document.getElementById('f-emotion'), shown = document.getElementById('shown');
    var cellValue = function (r, k, num) {
      var c = r.cells[k], v = c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent;
      if (!num) return v.toLowerCase();
      return v === '' ? null : parseFloat(v);
    };
    var sortBy = function (key, desc) {
      var k = -1;
      for (var j = 0; j < heads.length; j++) if (heads[j].getAttribute('data-key') === key) k = j;
      if (k < 0) return;
      var num = heads[k].getAttribute('data-type') === 'num';
      rows.sort(function (a, b) {
        var x = cellValue(a, k, num), y = cellValue(b, k, num);
        if (x === y) return a._i - b._i;
        if (x === null) return 1;                /* missing values last either way */
        if (y === null) return -1;
        return (x < y ? -1 : 1) * (desc ? -1 : 1);
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
      for (var j = 0; j < heads.length; j++) heads[j].removeAttribute('aria-sort');
      heads[k].setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      document.body.setAttribute('data-sorted', (desc ? '-' : '') + key);
    };
    var filter = function () {
      var text = q.value.toLowerCase(), s = st.value, e = em.value, n = 0;
      rows.forEach(function (r) {
        var ok = (!text || r._t.indexOf(text) >= 0) && (!s || r.getAttribute('data-status') === s)
          && (!e || r.getAttribute('data-emotion') === e);
        r.style.display = ok ? '' : 'none';
        if (ok) n++;
      });
      shown.textContent = n;
    };
    for (var j = 0; j < heads.length; j++) {
      heads[j].addEventListener('click', function () {
        var key = this.getAttribute('data-key');
        sortBy(key, this.getAttribute('aria-sort') === 'ascending');
      });
    }
    [q, st, em].forEach(function (el) { el.addEventListener('input', filter); });
    var hash = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (part) {
      var kv = part.split('=');
      if (kv.length === 2) hash[kv[0]] = decodeURIComponent(kv[1]);
    });
    if (hash.sort) sortBy(hash.sort.replace(/^-/, ''), hash.sort.charAt(0) === '-');
    if (hash.q) q.value = hash.q;
    if (hash.status) st.value = hash.status;
    if (hash.emotion) em.value = hash.emotion;
    filter();
  }
  document.body.setAttribute('data-ready', '1');
})();
"""


def _text(value) -> str:
    """A cell's text: '' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _video_cell(path: str) -> str:
    p = PurePath(path)
    return (f"<td class=path data-v='{escape(path)}' title='{escape(path)}'><b>{escape(p.name)}"
            f"</b><br><small>{escape(str(p.parent))}</small></td>")


def _cell(key: str, r: Mapping, anchors: Mapping[str, str]) -> str:
    value = _text(r.get(key))
    if key == "path":
        return _video_cell(value)
    if key == "confidence":
        shown = f"{float(value):.3f}" if value else "-"
        return f"<td class=num data-v='{value}'>{shown}</td>"
    if key == "timeline":
        anchor = anchors.get(r["path"])
        return f"<td><a href='#{anchor}'>plot</a></td>" if anchor else "<td></td>"
    if key == "emotion" and value and _text(r.get("label")):
        mark = "right" if value == r["label"] else "wrong"
        return f"<td class={mark}>{escape(value)}</td>"
    css = " class=err" if key == "error" else ""
    return f"<td{css}>{escape(value) or '-'}</td>"


def _row(r: Mapping, keys: list[str], anchors: Mapping[str, str]) -> str:
    return (f"<tr data-status='{escape(_text(r.get('status')))}' "
            f"data-emotion='{escape(_text(r.get('emotion')))}'>"
            + "".join(_cell(k, r, anchors) for k in keys) + "</tr>")


def _options(label: str, ident: str, values: list[str]) -> str:
    opts = "".join(f"<option value='{escape(v)}'>{escape(v)}</option>" for v in values)
    return (f"<label>{label} <select id={ident}><option value=''>all</option>{opts}"
            f"</select></label>")


def _controls(rows: pd.DataFrame, shown: int) -> str:
    statuses = sorted(rows["status"].dropna().unique())
    emotions = sorted(rows["emotion"].dropna().unique())
    return ("<p class=controls><label>filter <input id=f-text type=search "
            "placeholder='name, folder, error ...'></label> "
            f"{_options('status', 'f-status', statuses)} "
            f"{_options('emotion', 'f-emotion', emotions)} "
            f"<span class=note>showing <span id=shown>{shown}</span> of {shown}; "
            "click a header to sort</span></p>")


def video_table(rows: pd.DataFrame, anchors: Mapping[str, str], cap: int = ROW_CAP) -> str:
    """The table of every input (up to ``cap``, by path), with filter controls above it;
    ``anchors``: path -> id of the video's plot on the page."""
    has_labels = "label" in rows and rows["label"].notna().any()
    columns = [c for c in COLUMNS if (has_labels or c[0] != "label")
               and (anchors or c[0] != "timeline")]
    keys = [c[0] for c in columns]
    ordered = rows.sort_values("path", kind="stable")
    kept = ordered.head(cap)
    head = "".join(f"<th data-key={k} data-type={t}>{escape(h)}</th>" for k, h, t in columns)
    body = "".join(_row(r, keys, anchors) for r in kept.to_dict("records"))
    note = ""
    if len(ordered) > cap:
        note = (f"<p class=warn>The table holds the first {cap:,} of {len(ordered):,} inputs by "
                "path. Every row is in the score output: <code>mer-ray export SCORES --csv "
                "all.csv</code>.</p>")
    return (note + _controls(kept, len(kept))
            + f"<table id=video-table class=data><thead><tr>{head}</tr></thead><tbody>{body}"
            "</tbody></table>")


def failed_table(rows: pd.DataFrame, cap: int = FAILED_CAP) -> str:
    """Every input whose status is not ``ok``, with its reason and what was still scored."""
    bad = rows[rows["status"] != "ok"].sort_values(["status", "path"], kind="stable")
    if not len(bad):
        return "<p>Every input has status <code>ok</code>.</p>"
    body = "".join(
        f"<tr><td class=path title='{escape(r['path'])}'>{escape(r['path'])}</td>"
        f"<td>{escape(_text(r['status']))}</td><td>{escape(_text(r.get('error'))) or '-'}</td>"
        f"<td>{escape(_text(r.get('fusion_mode'))) or '-'}</td>"
        f"<td>{escape(_text(r.get('emotion'))) or 'not scored'}</td></tr>"
        for r in bad.head(cap).to_dict("records"))
    note = (f"<p class=warn>Showing {cap:,} of {len(bad):,}.</p>" if len(bad) > cap else "")
    return (f"<p>{len(bad):,} of {len(rows):,} inputs did not have status <code>ok</code>: "
            "failed inputs were not scored; <code>no_face</code> / <code>no_audio</code> ones "
            "were scored on the other modality.</p>" + note
            + "<table class=data><thead><tr><th>input</th><th>status</th><th>reason</th>"
            f"<th>modality used</th><th>emotion</th></tr></thead><tbody>{body}</tbody></table>")
