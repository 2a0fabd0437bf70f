"""mkdocs hook: serve MathJax from the built site itself (no CDN), so formulas render offline.

``pymdownx.arithmatex`` (``generic: true``) writes every formula as ``\\(...\\)`` or ``\\[...\\]`` inside
an element of class ``arithmatex``; MathJax 3 typesets those in the browser (``docs/javascripts/mathjax.js``
configures it the mkdocs-material way). The MathJax files are not committed here: they come from
the PyPI distribution ``django-static-mathjax`` (MathJax 3.2.2 as static files, no dependencies,
Apache-2.0, in texkit's ``dev`` extra; its import package is ``mathjax``, its files under
``mathjax/static/mathjax/es5``). `on_files` adds to the site, under `SITE_FOLDER`:

- ``tex-chtml-full.js``: the TeX input with every extension built in (so MathJax never fetches an
  extension at run time) and the CommonHTML output;
- ``output/chtml/fonts/woff-v2/*.woff``: the fonts CommonHTML loads, at the path relative to the
  script where MathJax looks for them;
- ``LICENSE``: MathJax's Apache-2.0 licence, served beside the code it covers.

`on_post_page` drops both MathJax scripts from pages without a formula (no element of class
``arithmatex``), so only the pages that need it load MathJax (about 1.3 MB of script). The site
does not use mkdocs-material's instant navigation, so every page loads its own scripts.

A build without the distribution stops with one line saying what to install.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

__all__ = ["SITE_FOLDER", "DISTRIBUTION", "CONFIG_SCRIPT", "mathjax_files", "on_files", "on_post_page", "without_mathjax"]

#: Where the MathJax files go in the site (``extra_javascript`` in mkdocs.yml names the script there).
SITE_FOLDER = "assets/mathjax"
#: The PyPI distribution that ships the MathJax files.
DISTRIBUTION = "django-static-mathjax"
#: The MathJax configuration script under ``docs/`` (``extra_javascript`` lists it first).
CONFIG_SCRIPT = "javascripts/mathjax.js"


def _es5_folder() -> Path:
    """The ``es5`` folder of the installed MathJax distribution.

    Raises:
        RuntimeError: the distribution is not installed (one line naming it).
    """
    spec = importlib.util.find_spec("mathjax")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5" if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / "tex-chtml-full.js").is_file():
        raise RuntimeError(
            f"the docs serve MathJax from the site: pip install {DISTRIBUTION} (in texkit's dev extra: pip install -e '.[dev]')"
        )
    return folder


def mathjax_files() -> dict[str, Path]:
    """``{path in the site: file}`` of every MathJax file the site serves.

    Raises:
        RuntimeError: ``django-static-mathjax`` is not installed.
    """
    es5 = _es5_folder()
    files = {f"{SITE_FOLDER}/tex-chtml-full.js": es5 / "tex-chtml-full.js", f"{SITE_FOLDER}/LICENSE": es5.parent / "LICENSE"}
    for font in sorted((es5 / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")):
        files[f"{SITE_FOLDER}/output/chtml/fonts/woff-v2/{font.name}"] = font
    return files


def on_files(files: Any, config: Any) -> Any:
    """mkdocs ``on_files`` event: add the MathJax files (`mathjax_files`) to the build's files."""
    from mkdocs.structure.files import File

    for uri, path in mathjax_files().items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def without_mathjax(html: str) -> str:
    """``html`` without the ``<script>`` tags of MathJax and its configuration when it has no formula.

    Args:
        html: a built page.

    Returns:
        The page unchanged when an element of class ``arithmatex`` is on it; else the page without
        the two scripts (their ``src`` ends in ``tex-chtml-full.js`` or `CONFIG_SCRIPT`).
    """
    if 'class="arithmatex"' in html:
        return html
    pattern = r'<script src="[^"]*(?:{}|{})"></script>\s*'.format(re.escape(f"{SITE_FOLDER}/tex-chtml-full.js"), re.escape(CONFIG_SCRIPT))
    return re.sub(pattern, "", html)


def on_post_page(output: str, page: Any, config: Any) -> str:
    """mkdocs ``on_post_page`` event: `without_mathjax` on every page."""
    return without_mathjax(output)
