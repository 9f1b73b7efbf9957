"""A self-contained HTML report: every leaderboard view as a sortable table, the plots embedded.

One file, no network: styles and the sorting script are inline, plots are base64 PNGs. Every
name that comes from a suite or a dataset is escaped. Clicking a column header sorts by it; a link
ending in `#sort=<table>:<column>` opens with that table sorted (descending), so a sorted view can
be shared.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from harness.report.board import Board, Listing
from harness.report.export import text

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th.sorted::after { content: " ▼"; font-size: 70%; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; }
td.second { text-decoration: underline; }
p.note { color: #555; font-size: 90%; margin: 0.1em 0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
ul.examples { font-size: 90%; margin: 0.3em 0; padding-left: 1.2em; }
ul.examples .label { color: #777; font-variant-numeric: tabular-nums; }
"""

SCRIPT = """
function sortTable(table, col) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => { const v = r.cells[col].dataset.value; return v === undefined || v === "" ? NaN : Number(v); };
  const numeric = rows.some(r => !isNaN(key(r)));
  rows.sort((a, b) => {
    if (numeric) { const x = key(a), y = key(b); return (isNaN(y) ? -Infinity : y) - (isNaN(x) ? -Infinity : x); }
    return a.cells[col].textContent.localeCompare(b.cells[col].textContent);
  });
  rows.forEach(r => body.appendChild(r));
  table.querySelectorAll("th").forEach((th, i) => th.classList.toggle("sorted", i === col));
}
document.querySelectorAll("table.board").forEach(table => {
  table.querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => sortTable(table, i)));
});
const m = location.hash.match(/^#sort=([^:]+):(\\d+)$/);
if (m) { const t = document.getElementById(decodeURIComponent(m[1])); if (t) sortTable(t, Number(m[2])); }
"""


def render(title: str, sections: list[tuple[str, list[Board | Listing]]], plots: list[Path]) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    number = 0
    for heading, boards in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for board in boards:
            number += 1
            parts.append(_listing(board) if isinstance(board, Listing) else _table(board, f"t{number}"))
    if plots:
        parts.append("<h2>Plots</h2>")
        for path in plots:
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(path.stem, quote=True)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _table(board: Board, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [*board.index, *(c.title for c in board.columns)])
    rows = []
    for i, row in enumerate(board.rows):
        cells = [f"<td>{html.escape(part)}</td>" for part in row]
        for column in board.columns:
            cell = column.cells[i]
            classes = ["num"] + (["best"] if column.kind == "score" and cell.place == 1 else []) + \
                      (["second"] if column.kind == "score" and cell.place == 2 else [])
            value = "" if math.isnan(cell.mean) else repr(float(cell.mean))
            cells.append(f"<td class='{' '.join(classes)}' data-value='{value}'>{html.escape(text(cell, column.kind))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in board.notes)
    return (f"<h3>{html.escape(board.title)}</h3><table class='board' id='{table_id}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{notes}")


def _listing(listing: Listing) -> str:
    items = "".join(f"<li><span class='label'>{html.escape(label)}</span> {html.escape(said)}</li>"
                    for label, said in listing.items)
    more = f"<p class='note'>... and {listing.more} more</p>" if listing.more else ""
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in listing.notes)
    return f"<h3>{html.escape(listing.title)}</h3><ul class='examples'>{items}</ul>{more}{notes}"
