"""HTML assembly for the report: one self-contained page, inline CSS, images as PNG data URIs.

No JavaScript, no external fonts, stylesheets or images: the page opens from disk offline. All
text that comes from files or the user goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["card", "figure", "key_value_table", "page", "section", "table", "text"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0; color: #222; background: #fafafa; }
header { background: #23395b; color: white; padding: 14px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 1.5em; }
header p { margin: 0; opacity: 0.85; font-size: 0.9em; }
main { padding: 8px 28px 40px 28px; max-width: 1400px; }
section { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 8px 18px 14px;
          margin: 16px 0; }
h2 { font-size: 1.2em; border-bottom: 1px solid #eee; padding-bottom: 4px; }
h3 { font-size: 1.0em; margin: 4px 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
            font-size: 0.85em; }
pre { background: #f5f5f5; padding: 6px 10px; white-space: pre-wrap; word-break: break-all; }
figure { margin: 6px 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; max-width: 680px; }
.notes { background: #fff8e1; border-color: #f0d890; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.class-card { border: 1px solid #ddd; border-left-width: 8px; border-radius: 6px; padding: 8px 12px;
              flex: 1 1 640px; max-width: 1160px; background: #fff; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px;
          vertical-align: middle; margin-right: 6px; }
.muted { color: #666; font-size: 0.85em; }
"""


def text(value: Any) -> str:
    """``value`` as escaped HTML text (floats with 4 significant digits, None as ``-``)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else html.escape(f"{value:.4g}")
    if isinstance(value, (list, tuple, dict)):
        return html.escape(json.dumps(value, default=str))
    return html.escape(str(value))


def _cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{text(value)}</td>' if numeric else f"<td>{text(value)}</td>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, css_class: str = "") -> str:
    """An HTML table; every header and cell is escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    attribute = f' class="{html.escape(css_class)}"' if css_class else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_value_table(items: Mapping[str, Any]) -> str:
    """A two-column table of names and values."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in items.items())
    return f"<table><tbody>{rows}</tbody></table>"


def figure(png: bytes, *, alt: str, caption: str = "") -> str:
    """An ``<img>`` holding ``png`` as a base64 data URI, with an optional caption."""
    encoded = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'
        f"{cap}</figure>"
    )


def section(title: str, body: str, *, anchor: str, css_class: str = "") -> str:
    """A titled ``<section id=anchor>``; ``body`` is HTML already escaped by its builder."""
    extra = f" {html.escape(css_class)}" if css_class else ""
    return (
        f'<section id="{html.escape(anchor)}" class="block{extra}">'
        f"<h2>{html.escape(title)}</h2>{body}</section>"
    )


def card(class_number: int, color: str, title: str, body: str) -> str:
    """One class's gallery entry (``<div class="class-card">``) with a colour swatch."""
    safe_color = html.escape(color)
    return (
        f'<div class="class-card" id="class-{int(class_number)}" '
        f'style="border-left-color: {safe_color}">'
        f'<h3><span class="swatch" style="background: {safe_color}"></span>'
        f"{html.escape(title)}</h3>{body}</div>"
    )


def page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """The complete HTML document."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n"
        "<main>\n" + "\n".join(sections) + "\n</main></body></html>\n"
    )
