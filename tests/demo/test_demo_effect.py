"""The demo shows what fine-tuning did: on its own outputs, the after views are redder where the
curvature_color reward asks for red and bluer where it asks for blue than the before views.

The measure reads only the files the demo writes, all rendered with the same preview cameras:
``before/views.png``, ``after/views.png`` and ``after/reward_curvature_color.png`` (the reward's
target: red where it wants red, blue where it wants blue). For the views V and target pixels split
into red (high curvature) and blue (low curvature) regions,

    contrast(V) = mean(R - B of V over the red region) - mean(R - B of V over the blue region),

and the test asserts contrast(after) - contrast(before) >= MARGIN. The demo run is the session-wide
``demo_run`` fixture of tests/conftest.py (trained once, shared with the eval tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: Required rise of the red-minus-blue contrast (R, B in [0, 1]) from before to after. Measured with
#: the demo's settings: see README ("make demo") and benchmarks/results/demo_cpu.json.
MARGIN = 0.25


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def target_regions(target: Path) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the pixels where the reward's picture is clearly red (high) and clearly blue (low)."""
    t = _rgb(target)
    high = (t[..., 0] > 0.8) & (t[..., 1] < 0.2) & (t[..., 2] < 0.2)
    low = (t[..., 2] > 0.8) & (t[..., 0] < 0.2) & (t[..., 1] < 0.2)
    return high, low


def red_blue_contrast(views: Path, high: np.ndarray, low: np.ndarray) -> float:
    """Mean R - B of ``views`` over ``high`` minus over ``low``."""
    v = _rgb(views)
    assert v.shape[:2] == high.shape, "views and target must come from the same cameras and size"
    rb = v[..., 0] - v[..., 2]
    return float(rb[high].mean() - rb[low].mean())


def demo_effect(run: Path) -> dict[str, float]:
    """The before/after contrast of a demo run folder."""
    high, low = target_regions(run / "after" / "reward_curvature_color.png")
    assert high.sum() > 500 and low.sum() > 500, (int(high.sum()), int(low.sum()))
    before = red_blue_contrast(run / "before" / "views.png", high, low)
    after = red_blue_contrast(run / "after" / "views.png", high, low)
    return {"before": before, "after": after, "rise": after - before, "high_px": int(high.sum()), "low_px": int(low.sum())}


@pytest.mark.slow
def test_demo_after_views_show_what_the_reward_asks_for(demo_run):
    effect = demo_effect(demo_run)
    print(json.dumps(effect))
    assert effect["rise"] >= MARGIN, effect
    metrics = [json.loads(line) for line in (demo_run / "metrics.jsonl").read_text().splitlines() if line]
    assert metrics[-1]["reward/curvature_color"] > metrics[0]["reward/curvature_color"] + 0.2


def test_contrast_measure_on_known_images(tmp_path):
    """The measure itself: a view coloured exactly as the target scores 2, its colour inverse -2, grey 0."""
    target = np.full((8, 8, 3), 1.0, dtype=np.float32)
    target[:4] = (1.0, 0.0, 0.0)
    target[4:6] = (0.0, 0.0, 1.0)
    for name, image in {"target": target, "inverse": target[..., ::-1], "grey": np.full_like(target, 0.5)}.items():
        Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
    high, low = target_regions(tmp_path / "target.png")
    assert high.sum() == 32 and low.sum() == 16
    assert red_blue_contrast(tmp_path / "target.png", high, low) == pytest.approx(2.0)
    assert red_blue_contrast(tmp_path / "inverse.png", high, low) == pytest.approx(-2.0)
    assert red_blue_contrast(tmp_path / "grey.png", high, low) == pytest.approx(0.0)
