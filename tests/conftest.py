"""Shared fixtures: the shared test meshes beside the repository, the torch renderer and the built docs site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


@pytest.fixture(scope="session", autouse=True)
def _private_geometry_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``TEXKIT_CACHE_DIR`` (geometry cache, UV unwraps) at a folder of this test session, so
    tests neither read a developer's ~/.cache/texkit nor write into it."""
    old = os.environ.get("TEXKIT_CACHE_DIR")
    os.environ["TEXKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("texkit_cache"))
    yield
    if old is None:
        os.environ.pop("TEXKIT_CACHE_DIR", None)
    else:
        os.environ["TEXKIT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def assets() -> Path:
    """Folder of the shared meshes (../shared/assets); skips when it is absent."""
    if not ASSETS.exists():
        pytest.skip(f"shared assets not found at {ASSETS}")
    return ASSETS


@pytest.fixture(scope="session")
def torch_renderer():
    """The registered ``torch`` renderer."""
    import texkit

    return texkit.get_registry().make_renderer("torch")


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation built once per test session (``mkdocs build``, about 10 s), shared by every docs test.

    Set ``TEXKIT_DOCS_SITE`` to a freshly built site folder to reuse it. Not ``--strict``: strictness
    is ``make docs``'s job; the tests are about what the site holds and shows.
    """
    prebuilt = os.environ.get("TEXKIT_DOCS_SITE")
    if prebuilt:
        return Path(prebuilt)
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "--site-dir", str(site)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return site
