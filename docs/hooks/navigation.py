"""mkdocs hook: the navigation, built from the pages under ``docs/`` in a fixed order of sections.

mkdocs' automatic navigation sorts folders alphabetically, which put the 30 API pages before the
guides. `on_config` writes ``nav`` instead (mkdocs.yml has none): Home, then the sections of
`SECTIONS` in that order (Guide, Rewards, Plugins, Reference, API); inside a section, the pages
`SECTIONS` names first, in that order, then every other page of its folder alphabetically (so a
page added later needs no edit here). Pages at the top of ``docs/`` other than ``index.md`` go to
Reference. The generated pages (`GENERATED`: written by ``generate_reference.py`` at build time)
are listed although they are not files under ``docs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "GENERATED", "navigation", "on_config"]

#: ``(title, folder, pages first in this order)``; the folder's other pages follow alphabetically.
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Guide",
        "guide",
        ["quickstart.md", "install.md", "configuration.md", "refine-a-texture.md", "write-a-reward.md", "scaling-out.md"],
    ),
    ("Rewards", "rewards", ["index.md", "gallery.md"]),
    ("Plugins", "plugins", []),
    ("Reference", "reference", ["cli.md", "configuration.md", "hookspecs.md"]),
    ("API", "api", ["index.md"]),
]
#: Pages the build generates (not files under ``docs/``), by folder.
GENERATED: dict[str, list[str]] = {"reference": ["cli.md", "configuration.md"]}


def _section_pages(docs_dir: Path, folder: str, first: list[str]) -> list[str]:
    present = {p.name for p in (docs_dir / folder).glob("*.md")} | set(GENERATED.get(folder, []))
    ordered = [name for name in first if name in present]
    ordered += sorted(present - set(ordered))
    return [f"{folder}/{name}" for name in ordered]


def navigation(docs_dir: Path) -> list[Any]:
    """The ``nav`` list for the pages under ``docs_dir`` (mkdocs' format: titles map to lists of paths).

    Args:
        docs_dir: the documentation folder.

    Returns:
        ``[{"Home": "index.md"}, {"Guide": [...]}, {"Rewards": [...]}, ...]``; an empty section is left out.
    """
    docs_dir = Path(docs_dir)
    nav: list[Any] = [{"Home": "index.md"}]
    top = sorted(p.name for p in docs_dir.glob("*.md") if p.name != "index.md")
    for title, folder, first in SECTIONS:
        pages: list[Any] = _section_pages(docs_dir, folder, first)
        if folder == "reference":
            pages += top
        if pages:
            nav.append({title: pages})
    return nav


def on_config(config: Any) -> Any:
    """mkdocs ``on_config`` event: set ``nav`` (`navigation`) unless mkdocs.yml gives one."""
    if not config.get("nav"):
        config["nav"] = navigation(Path(config["docs_dir"]))
    return config
