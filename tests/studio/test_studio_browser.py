"""``texkit studio`` in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
selenium) uses the page of a real server (`studio_server`: the tiny generator on the CPU) as a person would.

One journey: upload an OBJ with quads and no UVs (the notices say it was unwrapped and triangulated), paint
(the 3D view's canvas shows something, the view grid image loads), score with two rewards (values and the
reward picture), start a 3-step fine-tune (the curve image changes at least twice, the run folder ends with
an adapter and three lines of metrics.jsonl, a second browser sees the same run), then paint with the new adapter (a different texture from the
same seed). And the errors: a file that is not a mesh, a corrupt OBJ and an invalid generator option each
show one line in the page, and the server log has no traceback.

Screenshots go to the test's folder; with ``TEXKIT_STUDIO_SCREENSHOTS=docs/images/studio`` they are also
written there (as the docs page shows them, reduced to a small palette PNG).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _wait(what: str, condition: Callable[[], Any], timeout: float = 120.0, every: float = 0.5) -> Any:
    """Poll ``condition`` until it is true; an element not drawn yet (or redrawn meanwhile) counts as not yet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _quad_cube_obj(path: Path, cells: int = 3) -> int:
    """An OBJ of a cube whose sides are ``cells x cells`` quads, without UVs; returns the number of quads."""
    verts: dict[tuple[float, float, float], int] = {}
    faces = []

    def vid(p: tuple[float, float, float]) -> int:
        key = tuple(round(c, 6) for c in p)
        return verts.setdefault(key, len(verts) + 1)

    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_axis, v_axis = [(1, 2), (2, 0), (0, 1)][axis]
            for i in range(cells):
                for j in range(cells):
                    corners = []
                    for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                        p = [0.0, 0.0, 0.0]
                        p[axis] = sign
                        p[u_axis] = -1 + 2 * (i + du) / cells
                        p[v_axis] = -1 + 2 * (j + dv) / cells
                        corners.append(vid(tuple(p)))
                    faces.append(corners if sign > 0 else corners[::-1])
    lines = [f"v {x} {y} {z}" for (x, y, z) in verts] + ["f " + " ".join(map(str, f)) for f in faces]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(faces)


class Page:
    """The studio page in the browser, with the few moves the test makes."""

    def __init__(self, driver: Any, shots: Path) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.by, self.shots = driver, By, shots

    def find(self, css: str, timeout: float = 30.0) -> Any:
        """The element ``css`` selects, waiting (at most ``timeout`` s) for the page to draw it (an accordion
        just opened draws its fields a moment later)."""
        return _wait(css, lambda: self.driver.find_element(self.by.CSS_SELECTOR, css), timeout)

    def text(self, elem_id: str) -> str:
        return self.driver.execute_script(f"const e = document.getElementById('{elem_id}'); return e ? e.innerText : ''") or ""

    def tab(self, label: str) -> None:
        for button in self.driver.find_elements(self.by.CSS_SELECTOR, "button[role=tab]"):
            if button.text.strip() == label:
                button.click()
                return
        raise AssertionError(f"no tab {label}")

    def type_into(self, css: str, value: str) -> None:
        box = self.find(css)
        box.clear()
        box.send_keys(value)

    def upload(self, *paths: Path) -> None:
        """Give files to the upload button's file input (waiting for the page to draw it)."""
        from selenium.common.exceptions import StaleElementReferenceException

        def give() -> bool:
            try:
                box = self.driver.execute_script(
                    "const b = document.getElementById('upload');"
                    "return b && (b.querySelector('input[type=file]') || b.parentElement.querySelector('input[type=file]'))"
                )
                if box is not None:
                    self.driver.execute_script("arguments[0].value = ''", box)  # chromedriver adds to a multiple input's files
                    box.send_keys("\n".join(str(p) for p in paths))
                    return True
            except StaleElementReferenceException:
                pass
            return False

        _wait("the upload box", give, 30)

    def pick(self, elem_id: str, value: str) -> None:
        """Choose ``value`` in a Gradio dropdown."""
        box = self.find(f"#{elem_id} input")
        box.click()

        def options() -> list[Any]:
            found = self.driver.find_elements(self.by.CSS_SELECTOR, "[role=option]")
            return [o for o in found if value in (o.get_attribute("aria-label"), o.get_attribute("data-value"), o.text.strip())]

        _wait(f"option {value} of {elem_id}", options, 30)[0].click()

    def errors(self) -> list[str]:
        return [t.text for t in self.driver.find_elements(self.by.CSS_SELECTOR, "[data-testid=toast-text]")]

    def close_errors(self) -> None:
        for button in self.driver.find_elements(self.by.CSS_SELECTOR, "[data-testid=toast-close]"):
            button.click()

    def image(self, elem_id: str) -> dict[str, Any] | None:
        return self.driver.execute_script(
            f"const i = document.querySelector('#{elem_id} img'); return i && {{src: i.src, complete: i.complete, width: i.naturalWidth}}"
        )

    def canvas_spread(self) -> float:
        """Standard deviation of the 3D view's canvas pixels (0 for an empty, one-colour canvas)."""
        canvas = self.find("#view3d canvas")
        pixels = np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB"), dtype=np.float32)
        return float(pixels.std())

    def shot(self, name: str, focus: str | None = None) -> Path:
        """A screenshot of the window (scrolled so that ``focus`` is in the middle)."""
        if focus:
            self.driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", focus)
            time.sleep(0.5)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def page(studio_server, tmp_path, chromium):
    chromium_path, driver_path = chromium
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000", "--enable-unsafe-swiftshader"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(studio_server.url)
        view = Page(driver, tmp_path)
        _wait("the page", lambda: "texkit studio" in view.text("header"), 60)
        _wait("the start mesh", lambda: "demo:" in view.text("mesh-notices"), 120)  # the page's own load events are done
        yield view
    finally:
        driver.quit()
    keep = os.environ.get("TEXKIT_STUDIO_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in sorted(tmp_path.glob("*.png")):
            image = Image.open(shot).convert("RGB")
            image.thumbnail((1000, 1000))
            image.quantize(colors=128).save(Path(keep) / shot.name, optimize=True)


def _assert_one_line_error(page: Page, contains: str, shot: str | None = None) -> str:
    errors = _wait(f"an error containing {contains!r}", lambda: [e for e in page.errors() if contains in e], 60)
    message = errors[0]
    assert "\n" not in message.strip() and "Traceback" not in message, message
    if shot:
        page.shot(shot, focus="#paint")
    page.close_errors()
    return message


def test_upload_paint_score_fine_tune_and_paint_with_the_adapter(page, studio_server, tmp_path):
    workspace = studio_server.workspace
    # upload: an OBJ of quads without UVs
    obj = tmp_path / "quad_cube.obj"
    quads = _quad_cube_obj(obj)
    page.upload(obj)
    notices = _wait("the load notices", lambda: "unwrapped" in page.text("mesh-notices") and page.text("mesh-notices"), 90)
    assert f"{quads} polygons triangulated" in notices and "unwrapped with xatlas" in notices, notices
    _wait("the uploaded mesh in 3D", lambda: page.canvas_spread() > 5.0, 60)
    page.shot("studio_mesh")

    # paint
    page.find("#paint").click()
    status = _wait("the painted texture", lambda: "painted paints/" in page.text("status") and page.text("status"), 180)
    first = status.split("painted ", 1)[1].split(" ", 1)[0]
    views = _wait("the view grid image", lambda: (page.image("views") or {}).get("width"), 60)
    assert views > 0
    image = page.image("views")
    assert image["complete"], image
    assert page.canvas_spread() > 5.0, "the 3D view's canvas is empty"
    assert (workspace / first / "mesh.glb").exists() and (workspace / first / "config.toml").exists()
    page.shot("studio_paint")

    # score with two rewards: curvature_color (from the config) and symmetry
    page.tab("Score")
    next(label for label in page.driver.find_elements(page.by.CSS_SELECTOR, "#rewards label") if label.text.strip() == "symmetry").click()
    page.find("#score").click()
    table = _wait("the scores", lambda: "weighted total" in page.text("scores") and page.text("scores"), 120)
    assert "symmetry" in table and "curvature_color" in table
    _wait("the curvature_color picture", lambda: page.driver.find_elements(page.by.CSS_SELECTOR, "#pictures img"), 30)
    scores = json.loads(max((workspace / "scores").glob("*/scores.json")).read_text())  # the newest
    assert {row["reward"] for row in scores["rows"]} == {"curvature_color", "symmetry"}
    page.shot("studio_score", focus="#scores")

    # fine-tune 3 steps: the curve changes at least twice, the run folder completes
    page.tab("Fine-tune")
    _wait("the predicted time", lambda: "predicted about" in page.text("plan"), 30)
    page.find("#start").click()
    curve_sources: list[str] = []
    run = workspace / "runs" / "run-1"

    def finished() -> bool:
        image = page.image("curves")
        if image and image["src"] and image["src"] not in curve_sources:
            curve_sources.append(image["src"])
        return "finished" in page.text("train-status")

    _wait("the fine-tune to finish", finished, 400, every=0.3)
    assert len(curve_sources) >= 2, f"the curve updated {len(curve_sources)} time(s)"
    assert (run / "adapter").is_dir() and (run / "report.html").exists()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (page.image("latest") or {}).get("width"), "no latest views shown"
    page.shot("studio_fine_tune", focus="#curves")

    # another browser watching sees the same run
    first_window = page.driver.current_window_handle
    page.driver.switch_to.new_window("tab")
    page.driver.get(studio_server.url)
    _wait("the page in a second browser", lambda: "texkit studio" in page.text("header"), 60)
    page.tab("Fine-tune")
    _wait("the run in a second browser", lambda: "run-1: finished, step 3 of 3" in page.text("train-status"), 60)
    _wait("its curves in a second browser", lambda: (page.image("curves") or {}).get("width"), 60)
    page.driver.close()
    page.driver.switch_to.window(first_window)

    # paint again with the new adapter: same seed, different texture
    page.tab("Paint")
    page.pick("adapter", "runs/run-1/adapter")
    page.find("#paint").click()
    second = _wait("the paint with the adapter", lambda: "with adapter runs/run-1/adapter" in page.text("status") and page.text("status"), 180)
    folder = second.split("painted ", 1)[1].split(" ", 1)[0]
    before = np.asarray(Image.open(workspace / first / "texture.png"), dtype=np.float32)
    after = np.asarray(Image.open(workspace / folder / "texture.png"), dtype=np.float32)
    assert np.abs(before - after).max() > 0, "painting with the adapter gave the same texture"
    assert "Traceback" not in studio_server.log_text()


def test_bad_upload_and_invalid_option_are_one_line_in_the_page(page, studio_server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a mesh\n")
    page.upload(notes)
    message = _assert_one_line_error(page, "is not a mesh file")
    assert message.startswith("notes.txt is not a mesh file; upload a mesh"), message

    broken = tmp_path / "broken.obj"
    broken.write_text("v 0 0 0\nf 1 2 3\n")
    page.upload(broken)
    _assert_one_line_error(page, "broken.obj")

    page.find("#gen-tiny-options").click()  # open the accordion of the tiny generator's options
    page.find("#gen-tiny-steps input").clear()
    page.find("#gen-tiny-steps input").send_keys("0")
    page.find("#paint").click()
    message = _assert_one_line_error(page, "generator 'tiny'", shot="studio_error")
    assert "steps" in message, message
    assert "Traceback" not in studio_server.log_text(), studio_server.log_text()[-3000:]
