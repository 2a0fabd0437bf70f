"""report.html as a page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by selenium) opens the report of a real (one-step) run from disk; every image decodes, the console
shows no errors, and a full-page screenshot is kept in the test's output folder.

Skips with its reason where chromium, its driver or selenium is missing; under CI (``CI`` set, as
``.ci/run`` runs, which installs chromium first) a missing browser fails instead, so CI never skips it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from texkit.config import parse_config


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """report.html of a one-step training run on the tiny generator, with before/after previews."""
    from texkit.report import write_run_report
    from texkit.training import train

    run = tmp_path_factory.mktemp("browser") / "run"
    cfg = parse_config(
        {
            "mesh": {"path": "demo"},
            "prompts": {"text": ["a glazed ceramic gourd"]},
            "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
            "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
            "texture": {"size": 32, "render_size": 64},
            "rewards": {"curvature_color": {}, "symmetry": {"weight": 0.5}},
            "training": {"steps": 2, "checkpoint_every": 2, "before_after": True},
            "output": {"dir": str(run), "grid_views": 4},
            "device": "cpu",
        }
    )
    return write_run_report(train(cfg).run_dir)  # what the train command does after training


def test_report_in_headless_chromium(chromium, site_checker, report, tmp_path):
    driver = site_checker.start_browser(*chromium, width=1300, height=900)
    try:
        driver.get(report.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"
        )
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1300, min(int(height) + 100, 8000))
        shot = tmp_path / "report_screenshot.png"
        assert driver.save_screenshot(str(shot))
        shutil.copy(shot, report.parent / "report_screenshot.png")  # beside the report it shows
        log = driver.get_log("browser")
        title = driver.title
        viewer_note = driver.execute_script("const n = document.getElementById('viewer-note'); return n && n.textContent")
    finally:
        driver.quit()
    print(f"screenshot: {shot}")
    srcs = {img["src"] for img in images}
    assert {"before/views.png", "after/views.png", "reward_curves.png", "after/reward_curvature_color.png", "after/turntable.gif"} <= srcs
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0)]
    assert not broken, f"images that did not decode: {broken}"
    errors = [entry for entry in log if entry.get("level") == "SEVERE"]
    assert not errors, f"console errors: {errors}"
    assert title.startswith("texkit run")
    assert viewer_note in ("Drag to turn the textured mesh (WebGL, offline).", "No WebGL in this browser: see the turntables."), viewer_note
    assert shot.stat().st_size > 10_000
