"""The parts every texkit HTML page is made of: the page frame and style, images and figures with
paths relative to the page, key/value tables, file links.

``report.html`` of a training run (`texkit.report`) and ``eval.html`` of ``texkit eval``
(`texkit.evaluation.page`) are assembled from these, so both look alike and both work from disk
without a network (every path is relative to the page, nothing is fetched).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

__all__ = ["STYLE", "rel", "img", "figure", "table", "links", "page", "flatten", "read_json"]

STYLE = """body{font-family:system-ui,sans-serif;max-width:1280px;margin:1.5em auto;padding:0 1em;color:#222}
img{max-width:100%;border:1px solid #ddd;background:#fff} figure{margin:0.4em;display:inline-block;vertical-align:top}
figcaption{font-size:0.9em;color:#555;text-align:center} .pair{display:flex;flex-wrap:wrap;gap:0.5em}
.pair figure{flex:1 1 360px;margin:0} .pair img{width:100%} table{border-collapse:collapse} td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}
.up{color:#1a7f37} .down{color:#cf222e} summary{cursor:pointer;font-weight:bold}"""
"""The pages' shared CSS."""


def rel(base: Path, path: Path) -> str:
    """``path`` as an HTML-escaped URL relative to the folder ``base`` of the page."""
    return html.escape(Path(os.path.relpath(path, base)).as_posix())


def img(base: Path, path: Path | None, alt: str, width: int | None = None) -> str:
    """An ``<img>`` of ``path`` (relative to ``base``); "" for None."""
    if path is None:
        return ""
    size = f' width="{width}"' if width else ""
    return f'<img src="{rel(base, path)}" alt="{html.escape(alt)}"{size}>'


def figure(base: Path, path: Path | None, caption: str, width: int | None = None) -> str:
    """A ``<figure>`` of one image with its caption; "" for None."""
    if path is None:
        return ""
    return f"<figure>{img(base, path, caption, width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def table(rows: dict[str, str], head: tuple[str, str]) -> str:
    """A two-column table (key in ``<code>``), every cell escaped."""
    cells = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>" for k, v in rows.items())
    return f"<table><tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>{cells}</table>"


def links(base: Path, files: dict[str, Path]) -> str:
    """``label`` links to the files that exist, comma-separated."""
    return ", ".join(f'<a href="{rel(base, p)}">{html.escape(label)}</a>' for label, p in files.items() if p.exists())


def page(title: str, body: str, style: str = "") -> str:
    """A whole HTML document: ``title`` as its title and first heading, then ``body`` (HTML)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}{style}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def flatten(value: object, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}`` (lists stay one JSON cell), for the settings tables."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        if not value and prefix:
            out[prefix] = "{}"
        return out
    return {prefix: value if isinstance(value, str) else json.dumps(value)}


def read_json(path: Path) -> dict[str, object]:
    """The JSON object in ``path``; ``{}`` when the file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
