"""Shared fixtures: the shared test meshes beside the repository and the torch renderer."""

from __future__ import annotations

import os
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
def demo_run(tmp_path_factory) -> Path:
    """A full ``texkit demo`` run (its own settings: 30 steps of the tiny generator on the built-in mesh),
    trained once per test session and shared, read-only, by the demo-effect and the eval tests."""
    from texkit.commands.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    run_demo(out)
    return out


def _browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or skip (fail under CI) with the reason."""
    import shutil

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
        reason = f"no real browser to test the HTML pages: {', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs them, so CI must not skip this test")
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture
def open_in_chromium():
    """``open_in_chromium(page, screenshot, scripts={}) -> dict``: open an HTML file from disk in headless
    Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by selenium), save a full-page screenshot.

    Returns ``{"images": [{src, complete, width}], "log": browser console entries, "title": str,
    <name>: the value of each script in ``scripts``}``. Skips where the browser is missing (fails under CI).
    """
    import shutil

    def open_page(page: Path, screenshot: Path, scripts: dict[str, str] | None = None) -> dict:
        chromium, driver_path = _browser()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.set_page_load_timeout(60)
            driver.get(Path(page).resolve().as_uri())
            found = {
                "images": driver.execute_script(
                    "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"
                )
            }
            for name, script in (scripts or {}).items():
                found[name] = driver.execute_script(script)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1300, min(int(height) + 100, 8000))
            assert driver.save_screenshot(str(screenshot))
            shutil.copy(screenshot, Path(page).parent / Path(screenshot).name)  # beside the page it shows
            found["log"] = driver.get_log("browser")
            found["title"] = driver.title
        finally:
            driver.quit()
        return found

    return open_page


def _tiny_run_config(run: Path, **changes) -> dict:
    """The config of the tiny run (2 painting views, 32-texel textures, one curvature_color reward)."""
    data = {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a glazed ceramic gourd"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 48},
        "rewards": {"curvature_color": {"tau": -0.5}},
        "output": {"dir": str(run), "grid_views": 2},
        "device": "cpu",
    }
    data.update(changes)
    return data


def _write_tiny_run(run: Path, scale: float = 0.05, **changes) -> Path:
    """A run folder with ``config.json`` and ``adapter/``: the tiny generator's LoRA set to seeded random values."""
    import torch

    from texkit.config import parse_config
    from texkit.run_record import write_run_record
    from texkit.session import Session

    cfg = parse_config(_tiny_run_config(run, **changes))
    session = Session.build(cfg, need_rewards=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in session.generator.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    session.generator.save_adapter(run / "adapter")
    write_run_record(run, cfg)
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny training run folder for the eval tests (read-only for its users): a real config and a real LoRA adapter
    of the tiny generator (seeded random values), written the way ``texkit train`` writes them, without training."""
    return _write_tiny_run(tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="session")
def make_tiny_run():
    """``make_tiny_run(folder, scale=0.05, **config sections) -> folder``: another tiny run folder, e.g. with
    another ``generator`` table."""
    return _write_tiny_run
