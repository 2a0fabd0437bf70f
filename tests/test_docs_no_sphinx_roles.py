"""No raw Sphinx roles (``:func:`x```, ``:class:`x```, ...) in docstrings or in the built site.

mkdocstrings (Google style, markdown) does not interpret reStructuredText roles: they show up
literally on the rendered page. Docstrings use plain code spans (`` `name` ``) or mkdocstrings
cross-references instead. The fast test reads the sources; the slow one builds the site (or reads
``TEXKIT_DOCS_SITE``, a freshly built site folder) and greps its HTML.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("TEXKIT_DOCS_SITE")
    if prebuilt:
        return Path(prebuilt)
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return site


@pytest.mark.slow
def test_built_site_shows_no_sphinx_roles(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    hits = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for role in (":func:", ":class:", ":meth:", ":mod:", ":attr:", ":data:", ":exc:"):
            if role + "<code>" in text or role + "`" in text:
                hits.append(f"{page.relative_to(site)}: {role}")
    assert not hits, "\n".join(hits[:40])
