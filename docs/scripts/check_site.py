"""Check a built documentation site in a real browser, page by page, as a reader would see it.

Serves the site folder on 127.0.0.1 (a thread of this process; the search's web worker needs
http, not file://) and opens every page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium). A page passes when:

- it loads with no error in the browser console (a missing script, font or image is one);
- every image on it decodes;
- no formula is left raw: after MathJax has typeset, the visible text outside code has no ``\\(``,
  ``\\[`` or ``$$`` (the delimiters ``pymdownx.arithmatex`` writes and MathJax replaces).

Then the site's search box is asked for ``curvature`` and must list the reward pages. Run it on a
built site (``make docs-test`` does both)::

    .venv/bin/mkdocs build --strict --site-dir site
    .venv/bin/python docs/scripts/check_site.py site --screenshots /tmp/docs-shots

Exits 1 and prints one line per problem when a page fails.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RAW_MATH",
    "PageReport",
    "browser_paths",
    "check_page",
    "check_site",
    "main",
    "page_paths",
    "search",
    "serve",
    "start_browser",
]

#: Delimiters that must not survive in rendered text (arithmatex's generic output, a display block).
RAW_MATH = ("\\(", "\\[", "$$")

# Waits for MathJax's first typeset (on pages that load it: its startup, then every formula typeset) and for every image to decode, then
# calls back with the sources of the images that did not decode, the number of images, and the
# page's text outside code, scripts and typeset math (text nodes joined by newlines). One call per
# page: each WebDriver round trip costs about 0.1 s.
_SETTLE_JS = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { img.loading = 'eager'; });
const math = (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : Promise.resolve();
function visibleText() {
  const skip = 'pre, code, script, style, noscript, mjx-container, textarea, .md-search';
  if (!document.body) return '';  // the page is being left (a stalled check's late callback)
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent && !parent.closest(skip)) parts.push(node.textContent);
  }
  return parts.join('\\n');
}
// MathJax's first typeset can end after startup.promise on a loaded machine: wait (at most 20 s) until
// every arithmatex element holds typeset math; what is still raw after that is reported.
const hasMathJax = !!(window.MathJax && MathJax.startup);
const typeset = () => Array.from(document.querySelectorAll('.arithmatex')).every(el => el.querySelector('mjx-container'));
function settleMath(deadline) {
  if (!hasMathJax || typeset() || Date.now() > deadline) return Promise.resolve();
  return new Promise(wake => setTimeout(wake, 100)).then(() => settleMath(deadline));
}
math.catch(() => null)
  .then(() => settleMath(Date.now() + 20000))
  .then(() => Promise.all(images.map(img => img.decode().then(() => null, () => img.getAttribute('src')))))
  .then(broken => done({broken: broken.filter(src => src !== null), images: images.length, text: visibleText(), url: location.href}));
"""


@dataclass
class PageReport:
    """What the browser found on one page.

    Attributes:
        path: the page's path in the site (``rewards/curvature_color/index.html``).
        console_errors: messages the console logged at level SEVERE.
        broken_images: ``src`` of every image that did not decode.
        raw_math: snippets of visible text around a raw ``\\(``, ``\\[`` or ``$$``.
        images: how many images the page has.
    """

    path: str
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    raw_math: list[str] = field(default_factory=list)
    images: int = 0

    @property
    def problems(self) -> list[str]:
        """One line per problem (empty when the page passes)."""
        lines = [f"{self.path}: console error: {message}" for message in self.console_errors]
        lines += [f"{self.path}: image did not load: {src}" for src in self.broken_images]
        lines += [f"{self.path}: formula not rendered: {snippet!r}" for snippet in self.raw_math]
        return lines


def raw_math_snippets(text: str, width: int = 30) -> list[str]:
    """Snippets of ``text`` around every raw math delimiter of `RAW_MATH` (empty when there is none)."""
    found = []
    for delimiter in RAW_MATH:
        start = text.find(delimiter)
        while start >= 0:
            found.append(" ".join(text[max(0, start - width) : start + width].split()))
            start = text.find(delimiter, start + len(delimiter))
    return found


def page_paths(site: Path) -> list[str]:
    """Every HTML page of a built site (paths relative to it), ``index.html`` first; not ``404.html``."""
    site = Path(site)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    return sorted(pages, key=lambda p: (p != "index.html", p))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` over http on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def browser_paths() -> tuple[str, str] | str:
    """``(chromium, chromedriver)`` paths, or a one-line reason why there is no browser to run."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = []
    if chromium is None:
        missing.append("chromium")
    if driver is None:
        missing.append("chromedriver (apt package chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium; in the dev extra)")
    if missing:
        return f"no browser to check the docs in: {', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    return chromium, driver


def start_browser(chromium: str, driver_path: str, width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium selenium driver that keeps the console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def check_page(driver: Any, base_url: str, path: str, screenshot: Path | None = None) -> PageReport:
    """Open ``base_url + path`` and report its console errors, broken images and raw formulas.

    Args:
        driver: a selenium driver (`start_browser`); its console log is read (and so emptied): what it
            holds is taken as this page's (the previous page's check emptied it).
        base_url: the site's URL, ending in ``/``.
        path: the page's path in the site.
        screenshot: where to save a full-page screenshot (None: none).
    """
    from selenium.common.exceptions import TimeoutException

    url = base_url + path
    for attempt in (1, 2, 3):
        if attempt > 1:
            driver.get("about:blank")  # leave the page first: a get of the URL already shown can return mid-navigation
        driver.get(url)
        try:
            settled = driver.execute_async_script(_SETTLE_JS)
        except TimeoutException:  # headless Chromium now and then stalls a page's promises for minutes: load it again
            if attempt == 3:
                raise
            continue
        # Under the full suite's load a check once got an empty page (no text, no images) on a reload: an
        # answer that is not this page with its text (a late callback, a page not yet there) is not used.
        if attempt < 3 and not (settled.get("url") == url and settled["text"].strip()):
            continue
        # On a machine loaded by the whole test suite a page's formulas were twice found raw although the
        # same page typesets in half a second on its own: a page with raw math is loaded once more, and
        # only what is raw again counts (a page whose MathJax cannot typeset is raw both times).
        if attempt == 1 and raw_math_snippets(settled["text"]):
            continue
        break
    report = PageReport(path, broken_images=list(settled["broken"]), images=int(settled["images"]))
    report.raw_math = raw_math_snippets(settled["text"])
    if screenshot is not None:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        size = driver.get_window_size()
        driver.set_window_size(size["width"], min(height + 100, 6000))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        driver.set_window_size(size["width"], size["height"])
    report.console_errors = [entry.get("message", "") for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    return report


def search(driver: Any, base_url: str, query: str, timeout: float = 30.0) -> list[str]:
    """Type ``query`` into the site's search box and return the result links (hrefs), best first.

    Waits up to ``timeout`` seconds for the search index (a web worker) to answer.
    """
    from selenium.webdriver.common.by import By

    driver.get(base_url)
    box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
    driver.execute_script("arguments[0].focus()", box)
    box.send_keys(query)
    deadline = time.monotonic() + timeout
    links: list[str] = []
    while time.monotonic() < deadline:
        links = driver.execute_script("return Array.from(document.querySelectorAll('.md-search-result__link')).map(a => a.href)")
        if links:
            break
        time.sleep(0.2)
    return links


def check_site(site: Path, screenshots: Path | None = None, shots_of: tuple[str, ...] = ()) -> tuple[list[PageReport], list[str]]:
    """Check every page of a built site and its search; returns the page reports and every problem line.

    Args:
        site: the built site folder.
        screenshots: folder for full-page screenshots of the pages in ``shots_of`` (None: none).
        shots_of: page paths to screenshot, e.g. ``("index.html", "rewards/curvature_color/index.html")``.

    Raises:
        RuntimeError: no browser (one line saying what to install).
    """
    paths = browser_paths()
    if isinstance(paths, str):
        raise RuntimeError(paths)
    driver = start_browser(*paths)
    reports, problems = [], []
    try:
        with serve(site) as base_url:
            for path in page_paths(site):
                shot = screenshots / (path.replace("/index.html", "").replace("/", "_").replace(".html", "") + ".png") if screenshots and path in shots_of else None
                report = check_page(driver, base_url, path, shot)
                reports.append(report)
                problems += report.problems
            found = search(driver, base_url, "curvature")
            for page in ("rewards/curvature_color/", "rewards/curvature_alignment/"):
                if not any(page in link for link in found):
                    problems.append(f"search for 'curvature' does not list {page} (it listed {len(found)} results: {found[:5]})")
    finally:
        driver.quit()
    return reports, problems


def main(argv: list[str] | None = None) -> int:
    """Command line: check a built site, print one line per problem; exit status 1 when there is one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site folder (mkdocs build --site-dir SITE)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for screenshots of the home page and a reward page")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"check_site: {args.site} has no index.html: build the site first (mkdocs build --site-dir {args.site})", file=sys.stderr)
        return 2
    try:
        reports, problems = check_site(args.site, args.screenshots, ("index.html", "rewards/curvature_color/index.html", "rewards/gallery/index.html"))
    except RuntimeError as err:
        print(f"check_site: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"{len(reports)} pages, {sum(r.images for r in reports)} images checked: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
