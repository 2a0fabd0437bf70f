"""No raw Sphinx roles (``:func:`x```, ``:class:`x```, ...) in docstrings or in the built site.

mkdocstrings (Google style, markdown) does not interpret reStructuredText roles: they show up
literally on the rendered page. Docstrings use plain code spans (`` `name` ``) or mkdocstrings
cross-references instead. The fast test reads the sources; the slow one greps the HTML of the site
built once per test session (the ``docs_site`` fixture; ``TEXKIT_DOCS_SITE`` reuses a built one).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`")
SOURCES = [REPO / "texkit", *sorted((REPO / "plugins").glob("*/src")), REPO / "docs"]


def _source_files() -> list[Path]:
    files: list[Path] = []
    for root in SOURCES:
        files += [p for p in root.rglob("*") if p.suffix in (".py", ".md") and "egg-info" not in str(p)]
    return files


def test_no_sphinx_roles_in_sources():
    hits = []
    for path in _source_files():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if ROLE.search(line):
                hits.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()[:100]}")
    assert not hits, f"{len(hits)} Sphinx roles (use `name` or a mkdocstrings cross-reference):\n" + "\n".join(hits[:40])


@pytest.mark.slow
def test_built_site_shows_no_sphinx_roles(docs_site):
    site = docs_site
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    hits = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for role in (":func:", ":class:", ":meth:", ":mod:", ":attr:", ":data:", ":exc:"):
            if role + "<code>" in text or role + "`" in text:
                hits.append(f"{page.relative_to(site)}: {role}")
    assert not hits, "\n".join(hits[:40])
