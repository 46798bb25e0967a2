"""One self-contained HTML leaderboard page: every table and plot in a single file that opens from disk with no
network, with sortable columns and a filter by modality and protocol.

:func:`render_page` takes :class:`Section` s (a title, a table of display strings, a caption, SVG plots) and
returns the document. Contracts:

* Everything is inline: CSS, a small script, and the plots as ``data:image/svg+xml`` images (an SVG shown as an
  image never runs scripts, whatever its text). Nothing is fetched.
* Every string that can come from records (titles, headers, index, cells, captions, filter values) is
  HTML-escaped; a Content-Security-Policy allows only the page's own script (by its hash), inline styles and
  ``data:`` images, so even a string that slipped through could not run or load anything.
* Sorting: clicking a header sorts its table's rows by that column, numerically when the column holds numbers
  (``"85.6 ± 0.7"`` sorts as 85.6; cells without a leading number such as ``–`` or ``error`` go last), else as
  text (a column is numeric when its cells lead with a number or hold no digit at all); the first click sorts numbers descending (best first) and text ascending, the next reverses.
  ``aria-sort`` on the header says the current order.
* Filtering: a section with a ``modality`` or ``protocol`` is hidden when the filter names another one; rows
  of a table with a ``modality`` or ``protocol`` column are filtered the same way.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.leaderboards.safe_text import visible
from benchmark.storage.atomic import write_text

FILTERS = ("modality", "protocol")


@dataclass(frozen=True)
class Section:
    """One block of the page. ``table``: display strings (its index is shown as the first column unless it is
    a plain RangeIndex; None for a section of plots alone); ``caption``: the legend under it (plain text; blank lines separate paragraphs, `x` shows as code);
    ``plots``: SVG documents; ``published``: the rows are imported published numbers, not measured here."""

    title: str
    table: pd.DataFrame | None
    caption: str = ""
    plots: Sequence[str] = ()
    modality: str | None = None
    protocol: str | None = None
    published: bool = False
    links: Sequence[tuple[str, str]] = ()  # (text, relative path): other pages of a published folder

    def __post_init__(self) -> None:
        for _, href in self.links:
            if not _RELATIVE.match(href) or ".." in href.split("/"):
                raise ValueError(f"page link {href!r}: only relative paths inside the folder (letters, digits, "
                                 "- _ . / and %-escapes) can be linked")


_RELATIVE = re.compile(r"^[A-Za-z0-9_%][A-Za-z0-9_.%/-]*$")  # percent-encoded names allowed


def esc(value: object) -> str:
    """``value`` as text safe in HTML content and in a double-quoted attribute; a tuple (a MultiIndex label
    such as ``(dataset, protocol)``) as its parts joined by `` / ``."""
    if isinstance(value, tuple):
        return " / ".join(esc(v) for v in value)
    return html.escape(visible("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)),
                       quote=True)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;
padding:0 1rem;color:#1b1b1b;background:#fff}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.intro{color:#444;margin:.2rem 0 1rem}
.filters{display:flex;gap:1rem;align-items:center;padding:.5rem .7rem;background:#f4f6f8;border-radius:6px}
.filters label{font-weight:600}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.28rem .6rem;border-bottom:1px solid #e3e3e3;text-align:left;white-space:nowrap}
td.num,th.num{text-align:right}
thead th{background:#eef1f4;cursor:pointer;user-select:none;position:sticky;top:0}
thead th:hover{background:#e0e6ec}
thead th[aria-sort=ascending]::after{content:" \\25B2";font-size:.7em}
thead th[aria-sort=descending]::after{content:" \\25BC";font-size:.7em}
tbody tr:nth-child(even){background:#fafbfc}
tbody th{font-weight:500}
.caption{color:#444;font-size:.9rem;max-width:70rem}
.caption p{margin:.3rem 0}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f3f5;padding:0 .2rem;border-radius:3px}
.badge{display:inline-block;font-size:.75rem;font-weight:600;padding:.05rem .45rem;border-radius:4px;
background:#fff3cd;color:#6b4e00;border:1px solid #e8d48a;margin-left:.5rem;vertical-align:middle}
.plots img{max-width:100%;height:auto;margin:.5rem 1rem .5rem 0;border:1px solid #eee}
[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  "use strict";
  function lead(text) {
    var m = text.trim().match(/^[-+]?(\\d+(\\.\\d*)?|\\.\\d+)(e[-+]?\\d+)?/i);
    return m ? parseFloat(m[0]) : null;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var texts = rows.map(function (r) { return r.cells[col] ? r.cells[col].textContent : ""; });
    // numbers when some cells lead with one and the others are placeholders ("–", "error"), not names
    var numeric = texts.some(function (t) { return lead(t) !== null; }) &&
      texts.every(function (t) { return lead(t) !== null || !/\\d/.test(t); });
    var now = th.getAttribute("aria-sort");
    var dir = now === "descending" ? "ascending" : now === "ascending" ? "descending"
      : (numeric ? "descending" : "ascending");
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var order = rows.map(function (r, i) { return i; });
    order.sort(function (i, j) {
      var a = texts[i], b = texts[j];
      if (numeric) {
        var x = lead(a), y = lead(b);
        if (x === null || y === null) { return x === y ? i - j : (x === null ? 1 : -1); }
        return x === y ? i - j : sign * (x - y);
      }
      var c = a.localeCompare(b);
      return c === 0 ? i - j : sign * c;
    });
    order.forEach(function (i) { body.appendChild(rows[i]); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.lb"), function (table) {
    if (!table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.getAttribute("data-filter")] = s.value; });
    function hides(el) {
      return Object.keys(want).some(function (k) {
        var v = el.getAttribute("data-" + k);
        return want[k] !== "" && v !== null && v !== "" && v !== want[k];
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("section, tbody tr"), function (el) {
      el.hidden = hides(el);
    });
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
})();
"""


def _attrs(values: dict[str, str | None]) -> str:
    return "".join(f' data-{k}="{esc(v)}"' for k, v in values.items() if v)


NUM = ' class="num"'  # a column of numbers: right-aligned
_LEAD = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)")


def _numeric(values: Sequence[object]) -> bool:
    """The script's rule: some cells lead with a number and the others hold no digit ("–", "error")."""
    texts = [esc(v) for v in values]
    return any(_LEAD.match(t) for t in texts) and all(_LEAD.match(t) or not re.search(r"\d", t) for t in texts)


def _table(df: pd.DataFrame) -> str:
    show_index = not isinstance(df.index, pd.RangeIndex)
    index_name = " / ".join(str(n) for n in df.index.names if n) if show_index else ""
    heads: list[object] = ([index_name] if show_index else []) + list(df.columns)
    num = [_numeric(list(df[c])) for c in df.columns] if len(df) else [False] * len(df.columns)
    klass = ([""] if show_index else []) + [NUM if n else "" for n in num]
    filters = [c for c in FILTERS if c in df.columns]
    rows = []
    for idx, row in zip(df.index, df.itertuples(index=False), strict=True):
        values = dict(zip(df.columns, row, strict=True))
        data = _attrs({k: None if pd.isna(values[k]) else str(values[k]) for k in filters})
        first = f'<th scope="row">{esc(idx)}</th>' if show_index else ""
        cells = "".join(f"<td{NUM if n else ''}>{esc(v)}</td>" for v, n in zip(row, num, strict=True))
        rows.append(f"<tr{data}>{first}{cells}</tr>")
    head = "".join(f'<th scope="col"{k} title="sort by {esc(h)}">{esc(h)}</th>' for h, k in zip(heads, klass, strict=True))
    body = "\n".join(rows) if rows else f'<tr><td colspan="{max(len(heads), 1)}">(no rows)</td></tr>'
    return f'<div class="scroll"><table class="lb">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>' \
           f"\n</table></div>"


def _caption(text: str) -> str:
    """Markdown's paragraphs: a blank line between them; a single line break inside one is a space (a README's
    hard-wrapped prose reads as flowing text, and a `code span` may wrap across lines)."""
    paras = [" ".join(p.split("\n")).strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    # escaped first: the `code` spans then wrap text that holds no markup of its own
    return "".join("<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(p)) + "</p>" for p in paras)


def _plot(svg: str, n: int, title: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img alt="{esc(title)}, plot {n}" src="data:image/svg+xml;base64,{data}">'


def _section(i: int, s: Section) -> str:
    badge = '<span class="badge">published, not measured here</span>' if s.published else ""
    plots = "".join(_plot(svg, n + 1, s.title) for n, svg in enumerate(s.plots))
    parts = [f'<section id="s{i}"{_attrs({"modality": s.modality, "protocol": s.protocol})}>',
             f"<h2>{esc(s.title)}{badge}</h2>"]
    if s.table is not None:
        parts.append(_table(s.table))
    if s.caption:
        parts.append(f'<div class="caption">{_caption(s.caption)}</div>')
    if s.links:
        parts.append('<p class="links">' + " · ".join(f'<a href="{esc(href)}">{esc(text)}</a>'
                                                      for text, href in s.links) + "</p>")
    if plots:
        parts.append(f'<div class="plots">{plots}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def _values(sections: Sequence[Section], key: str) -> list[str]:
    found = {getattr(s, key) for s in sections if getattr(s, key)}
    for s in sections:
        if s.table is not None and key in s.table.columns:
            found |= {str(v) for v in s.table[key].dropna() if str(v)}
    return sorted(found)


def _filters(sections: Sequence[Section]) -> str:
    out = []
    for key in FILTERS:
        values = _values(sections, key)
        if not values:
            continue
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        out.append(f'<label for="f-{key}">{key}</label><select id="f-{key}" data-filter="{key}">'
                   f'<option value="">all</option>{options}</select>')
    return f'<div class="filters">{"".join(out)}</div>' if out else ""


def render_page(title: str, sections: Sequence[Section], *, intro: str = "") -> str:
    """The whole page as one HTML document (see the module docstring for what it guarantees)."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    body = "\n".join(_section(i, s) for i, s in enumerate(sections))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n" + (f'<div class="intro">{_caption(intro)}</div>\n' if intro else "")
        + _filters(sections) + f"\n<main>\n{body}\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_page(path: Path | str, title: str, sections: Sequence[Section], *, intro: str = "") -> Path:
    """:func:`render_page` written atomically to ``path``; returns it."""
    target = Path(path)
    write_text(target, render_page(title, sections, intro=intro))
    return target
