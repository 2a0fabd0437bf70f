"""The docs hooks that shape the site: MathJax served from the site (no CDN) and the navigation order.

docs/hooks/mathjax_assets.py copies MathJax from the ``django-static-mathjax`` distribution into the
site; docs/hooks/navigation.py builds ``nav`` from the folders (Guide, Rewards, Plugins, Reference,
API) so that pages added later need no edit. Checked on the hooks' functions and on the site built
once per session (the ``docs_site`` fixture).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def mathjax(docs_module) -> Any:
    return docs_module("hooks/mathjax_assets.py")


@pytest.fixture(scope="module")
def navigation(docs_module) -> Any:
    return docs_module("hooks/navigation.py")


def _mkdocs_yml() -> dict[str, Any]:
    return yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)  # noqa: S506 - plain tags only


def test_mkdocs_yml_registers_the_hooks_and_loads_mathjax_from_the_site(mathjax):
    config = _mkdocs_yml()
    assert {"docs/hooks/mathjax_assets.py", "docs/hooks/navigation.py"} <= set(config["hooks"])
    assert config["extra_javascript"] == ["javascripts/mathjax.js", f"{mathjax.SITE_FOLDER}/tex-chtml-full.js"]
    assert config["theme"]["font"] == "false"  # no web fonts from a CDN
    assert "nav" not in config  # built by the hook


def test_mathjax_files_come_from_the_installed_distribution(mathjax):
    files = mathjax.mathjax_files()
    script = files[f"{mathjax.SITE_FOLDER}/tex-chtml-full.js"]
    assert script.is_file() and script.stat().st_size > 500_000
    assert "Apache License" in files[f"{mathjax.SITE_FOLDER}/LICENSE"].read_text()
    fonts = [uri for uri in files if uri.startswith(f"{mathjax.SITE_FOLDER}/output/chtml/fonts/woff-v2/")]
    assert len(fonts) >= 20 and all(files[uri].is_file() for uri in fonts)


def test_built_site_serves_mathjax_and_loads_nothing_from_other_hosts(mathjax, docs_site):
    assert (docs_site / mathjax.SITE_FOLDER / "tex-chtml-full.js").is_file()
    assert (docs_site / mathjax.SITE_FOLDER / "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    for page in (docs_site / "index.html", docs_site / "rewards/curvature_color/index.html", docs_site / "api/cameras/index.html"):
        html = page.read_text(encoding="utf-8")
        external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert external == [], external
    # MathJax only where there is a formula
    with_math = (docs_site / "rewards/curvature_color/index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in with_math and "tex-chtml-full.js" in with_math and mathjax.CONFIG_SCRIPT in with_math
    without = (docs_site / "api/cameras/index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' not in without and "tex-chtml-full.js" not in without and mathjax.CONFIG_SCRIPT not in without


def test_mathjax_is_dropped_only_from_pages_without_formulas(mathjax):
    scripts = '<script src="../javascripts/mathjax.js"></script>\n<script src="../assets/mathjax/tex-chtml-full.js"></script>\n'
    other = '<script src="../assets/javascripts/bundle.js"></script>'
    plain = f"<p>text</p>{scripts}{other}"
    assert mathjax.without_mathjax(plain) == f"<p>text</p>{other}"
    with_formula = f'<span class="arithmatex">\\(K\\)</span>{scripts}{other}'
    assert mathjax.without_mathjax(with_formula) == with_formula


def test_navigation_order_and_every_page_listed_once(navigation):
    nav = navigation.navigation(DOCS)
    assert [next(iter(item)) for item in nav] == ["Home", "Guide", "Rewards", "Plugins", "Reference", "API"]
    sections = {next(iter(item)): next(iter(item.values())) for item in nav}
    assert sections["Guide"][0] == "guide/quickstart.md"
    assert sections["Rewards"][:2] == ["rewards/index.md", "rewards/gallery.md"]
    assert sections["API"][0] == "api/index.md"
    listed = [sections["Home"], *(page for title, pages in sections.items() if title != "Home" for page in pages)]
    assert len(listed) == len(set(listed))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if p.parts[len(DOCS.parts)] not in ("hooks", "scripts")}
    generated = {f"{folder}/{name}" for folder, names in navigation.GENERATED.items() for name in names}
    assert set(listed) == on_disk | generated


def test_navigation_takes_a_new_page_without_edits(navigation, tmp_path):
    for path in ("index.md", "guide/quickstart.md", "guide/zebra.md", "guide/alpha.md", "api/index.md", "notes.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("# x\n")
    nav = navigation.navigation(tmp_path)
    assert nav[1] == {"Guide": ["guide/quickstart.md", "guide/alpha.md", "guide/zebra.md"]}
    assert {"Reference": ["reference/cli.md", "reference/configuration.md", "notes.md"]} in nav
    assert [next(iter(item)) for item in nav] == ["Home", "Guide", "Reference", "API"]  # empty sections left out


def test_built_site_navigation_puts_the_guide_before_the_api(docs_site):
    html = (docs_site / "index.html").read_text(encoding="utf-8")
    positions = []
    for title in ("Guide", "Rewards", "Plugins", "Reference", "API"):
        found = re.search(rf">\s*{title}\s*<", html)  # the section's label in the navigation
        assert found is not None, title
        positions.append(found.start())
    assert positions == sorted(positions), positions
