"""Shared fixtures: the shared test meshes beside the repository, the torch renderer, a real browser."""

from __future__ import annotations

import os
import shutil
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
def headless_chromium() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths for a test in a real browser (Debian's ``chromium`` and
    ``chromium-driver``, driven by selenium); skips with the reason where one is missing, and fails
    instead under CI (``CI`` set: ``.ci/run`` installs them, so CI never skips such a test)."""
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
        reason = f"no real browser: {', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs them, so CI must not skip this test")
        pytest.skip(reason)
    return chromium, driver
