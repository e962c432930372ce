"""The report page: sections of text, tables and embedded PNG figures, one file.

No scripts, no web fonts, no external links for content: the page opens offline and
prints. Figures are embedded as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; color: #222; background: #fafaf7; }
header { background: #1f5f2b; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 0; opacity: 0.9; }
nav { background: #e9efe4; padding: 8px 32px; font-size: 14px; }
nav a { margin-right: 14px; color: #1f5f2b; text-decoration: none; }
main { padding: 8px 32px 40px 32px; max-width: 1280px; }
section { margin-top: 26px; }
h2 { border-bottom: 2px solid #1f5f2b; padding-bottom: 4px; font-size: 20px; }
h3 { font-size: 16px; margin-bottom: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px 0;
        display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #d4d8cc; padding: 3px 8px; text-align: right; }
th { background: #eef2e8; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #e2e2dc; background: white; margin: 6px 0; }
.note { color: #555; font-size: 13px; }
.warning { background: #fff4e0; border-left: 4px solid #d08a00; padding: 6px 10px; }
.kv td { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid > div { flex: 1 1 520px; }
"""


@dataclass
class Section:
    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, body: str) -> Section:
        self.parts.append(f"<p>{html.escape(body)}</p>")
        return self

    def warning(self, body: str) -> Section:
        """A finding the reader must not miss (shown as a WARNING box)."""
        self.parts.append(f'<p class="warning">WARNING {html.escape(body)}</p>')
        return self

    def note(self, body: str) -> Section:
        self.parts.append(f'<p class="note">{html.escape(body)}</p>')
        return self

    def heading(self, body: str) -> Section:
        self.parts.append(f"<h3>{html.escape(body)}</h3>")
        return self

    def table(self, frame: pd.DataFrame, digits: int = 4) -> Section:
        def fmt(v):
            if isinstance(v, float):
                return "" if v != v else f"{v:,.{digits}g}" if abs(v) < 1e5 else f"{v:,.0f}"
            return v

        shown = frame.map(fmt) if hasattr(frame, "map") else frame.applymap(fmt)
        self.parts.append(shown.to_html(index=False, escape=True, border=0))
        return self

    def pairs(self, items: dict[str, object]) -> Section:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in items.items())
        self.parts.append(f'<table class="kv">{rows}</table>')
        return self

    def image(self, path: Path | None, alt: str) -> Section:
        if path is not None and Path(path).exists():
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            self.parts.append(f'<img alt="{html.escape(alt)}" '
                              f'src="data:image/png;base64,{data}">')
        return self

    def code(self, body: str) -> Section:
        self.parts.append(f"<pre>{html.escape(body)}</pre>")
        return self


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
                   f'{"".join(s.parts)}</section>' for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")
