"""The API reference documents every public class and function.

Reads the site built once per test session (the ``docs_site`` fixture of tests/conftest.py; set
``TEXKIT_DOCS_SITE`` to a freshly built site folder to reuse it) and its mkdocstrings
inventory ``objects.inv`` (the Sphinx inventory format: four header lines, then zlib-compressed
lines ``name domain:role priority uri display-name``).
"""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path

import pytest

import texkit

REPO = Path(__file__).resolve().parents[1]


def read_inventory(path: Path) -> dict[str, str]:
    """``{object name: "domain:role"}`` from a Sphinx-format ``objects.inv``."""
    raw = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    assert raw[:header_end].startswith(b"# Sphinx inventory version 2"), raw[:header_end]
    entries = {}
    for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        name, role = line.split(" ", 2)[:2]
        entries[name] = role
    return entries


@pytest.fixture(scope="module")
def inventory(docs_site: Path) -> dict[str, str]:
    path = docs_site / "objects.inv"
    assert path.exists(), f"no objects.inv in {docs_site}"
    return read_inventory(path)


def public_objects() -> dict[str, str]:
    """``{public name: canonical dotted path}`` for every class or function in ``texkit.__all__``."""
    found = {}
    for name in texkit.__all__:
        obj = getattr(texkit, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found[name] = f"{obj.__module__}.{obj.__qualname__}"
    return found


def test_public_api_has_classes_and_functions():
    objects = public_objects()
    assert {"Reward", "Mesh", "Registry", "get_registry", "sample_texture"} <= set(objects)


@pytest.mark.slow
def test_every_public_class_and_function_is_in_the_inventory(inventory):
    missing = {name: path for name, path in public_objects().items() if path not in inventory}
    assert missing == {}, f"not in the API reference (add a ::: block to docs/api): {missing}"
    assert inventory["texkit.reward.Reward"] == "py:class"
    assert inventory["texkit.registry.get_registry"] == "py:function"


@pytest.mark.slow
def test_reward_plugin_pages_are_in_the_inventory(inventory):
    for path in (
        "texkit.hookspecs.texkit_register_rewards",
        "texkit.commands.scaffold.create_reward_package",
        "texkit_rewards_image.aesthetic.AestheticReward",
        "texkit_rewards_image.jpeg_compressibility.JpegCompressibility",
        "texkit_rewards_image.jpeg_incompressibility.JpegIncompressibility",
        "texkit_reward_palette.reward.PaletteReward",
    ):
        assert path in inventory, path
