"""The dashboard's pages as HTML: a bar of links, tables of what the lake and registry hold, and
Plotly charts drawn in the page from their JSON. Every value is escaped; the page reloads itself
every ``refresh`` seconds."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

# Path -> title; links are relative, so the dashboard works wherever it is mounted.
PAGES = {"/": "Overview", "/timeline": "Timeline", "/metrics": "Metrics", "/drift": "Drift", "/quality": "Data quality",
         "/traffic": "Traffic"}  # fmt: skip
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 2rem 2rem; color: #222; }
nav { display: flex; gap: 1.2rem; padding: 1rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
nav a { color: #1f5fa8; text-decoration: none; } nav a.here { font-weight: 700; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
td, th { padding: .3rem .8rem; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } .muted { color: #777; }
.bad { color: #b00020; font-weight: 600; } .good { color: #1b7f3b; font-weight: 600; }
"""


def page(title: str, here: str, model: str, body: str, refresh: float) -> str:
    """A whole page: the bar of links, ``body``, and a reload every ``refresh`` seconds."""
    links = "".join(_link(path, name, path == here) for path, name in PAGES.items())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh:g}">'
        f"<title>{html.escape(title)} · {html.escape(model)}</title><style>{STYLE}</style>"
        f'<script src="plotly.js"></script></head><body><nav><strong>driftloop · {html.escape(model)}</strong>'
        f"{links}</nav><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _link(path: str, name: str, here: bool) -> str:
    target = "./" if path == "/" else path.lstrip("/")
    return f'<a href="{target}"{" class=here" if here else ""}>{html.escape(name)}</a>'


def table(headings: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str) -> str:
    """A table of ``rows`` (each cell escaped; a cell already marked up passes as :class:`Markup`)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Markup(str):
    """Text that is HTML already (built here from escaped parts)."""


def chart(chart_id: str, figure_json: str) -> str:
    """A Plotly chart drawn from a figure's JSON."""
    return (f'<div id="{chart_id}" class="chart"></div><script>(function() {{ const f = {figure_json}; '
            f'Plotly.newPlot("{chart_id}", f.data, f.layout, {{responsive: true}}); }})();</script>')  # fmt: skip


def paragraph(text: str, css: str = "") -> str:
    return f'<p class="{css}">{html.escape(text)}</p>'


def _cell(value: Any) -> str:
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value, default=str))
    return html.escape("" if value is None else str(value))


__all__ = ["PAGES", "Markup", "chart", "page", "paragraph", "table"]
