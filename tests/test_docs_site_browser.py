"""The built documentation in a real browser (docs/scripts/check_site.py): every page loads with no
console error, every image decodes, no formula is left raw, and the search finds the reward pages.

The checker itself is tested on pages that break each rule, including the real curvature_color page
with its MathJax script removed (the state of the site before MathJax was served: raw ``\\(K\\)``).
Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) with selenium; skips with the
reason where they are missing, and fails instead under CI (``CI`` set: ``.ci/run`` installs them).
The site is built once per test session (the ``docs_site`` fixture).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = ("index.html", "rewards/curvature_color/index.html", "rewards/gallery/index.html")


@pytest.fixture(scope="module")
def browser(chromium, site_checker):
    driver = site_checker.start_browser(*chromium)
    yield driver
    driver.quit()


def test_raw_math_snippets_known_answers(site_checker):
    check_site = site_checker
    assert check_site.raw_math_snippets("no math here, $5 and $6") == []
    assert check_site.raw_math_snippets("the area \\(x^2\\) is") == ["the area \\(x^2\\) is"]
    found = check_site.raw_math_snippets("a \\[ r = 1 \\] b $$ c $$")
    assert len(found) == 3 and all("r = 1" in s or "c" in s for s in found)


def test_checker_flags_each_kind_of_problem(browser, site_checker, tmp_path):
    check_site = site_checker
    (tmp_path / "ok.png").write_bytes((REPO / "docs" / "images" / "threads_cpu.png").read_bytes())
    (tmp_path / "bad.html").write_text(
        "<html><body><p>The area \\(x^2\\) of a square.</p><pre><code>\\(kept in code\\)</code></pre>"
        '<img src="ok.png"><img src="missing.png"><script>console.error("boom")</script></body></html>'
    )
    (tmp_path / "good.html").write_text('<html><body><p>No formula; costs $5.</p><img src="ok.png"></body></html>')
    with check_site.serve(tmp_path) as base:
        bad = check_site.check_page(browser, base, "bad.html")
        good = check_site.check_page(browser, base, "good.html")
    assert bad.raw_math == ["The area \\(x^2\\) of a square."]  # the one in <code> is not flagged
    assert bad.broken_images == ["missing.png"] and bad.images == 2
    assert any("boom" in message for message in bad.console_errors)
    assert any("missing.png" in message for message in bad.console_errors)  # the 404 is a console error too
    assert len(bad.problems) == len(bad.raw_math) + len(bad.broken_images) + len(bad.console_errors)
    assert good.problems == [] and good.images == 1


def test_checker_fails_a_reward_page_without_mathjax(browser, site_checker, docs_site, tmp_path):
    """The real curvature_color page with its MathJax script removed shows raw formulas: the checker says so."""
    check_site = site_checker
    site = tmp_path / "site"
    shutil.copytree(docs_site, site)
    page = site / "rewards" / "curvature_color" / "index.html"
    text = page.read_text(encoding="utf-8")
    stripped = re.sub(r'<script src="[^"]*tex-chtml-full\.js"></script>', "", text)
    assert stripped != text, "the page should load MathJax from the site"
    page.write_text(stripped, encoding="utf-8")
    with check_site.serve(site) as base:
        broken = check_site.check_page(browser, base, "rewards/curvature_color/index.html")
        rendered = check_site.check_page(browser, base, "rewards/curvature_alignment/index.html")
    assert len(broken.raw_math) >= 5, broken.raw_math
    assert any("\\(K\\)" in snippet or "\\[" in snippet for snippet in broken.raw_math)
    assert rendered.problems == []


@pytest.mark.slow
def test_every_page_of_the_built_site(chromium, site_checker, docs_site, tmp_path):
    check_site = site_checker
    shots = Path(os.environ.get("TEXKIT_DOCS_SHOTS", tmp_path / "shots"))
    reports, problems = check_site.check_site(docs_site, shots, SCREENSHOTS)
    assert problems == [], "\n".join(problems)
    pages = {r.path: r for r in reports}
    assert len(pages) >= 40 and set(SCREENSHOTS) <= set(pages)
    assert pages["index.html"].images >= 1  # the home page opens with a picture
    gallery = pages["rewards/gallery/index.html"]
    assert gallery.images >= 8
    for name in SCREENSHOTS:
        shot = shots / (name.replace("/index.html", "").replace("/", "_").replace(".html", "") + ".png")
        assert shot.stat().st_size > 20_000, shot
    print(f"screenshots: {shots}")
