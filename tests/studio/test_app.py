"""The page without a browser: it builds with a form for every installed generator and reward, exposes the
actions as API endpoints, and turns strokes drawn on the texture into a mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from texkit.config import parse_config

gr = pytest.importorskip("gradio")


@pytest.fixture
def studio(tmp_path):
    from texkit.studio.workspace import Studio

    return Studio(parse_config({"device": "cpu", "generator": {"name": "tiny", "options": {"steps": 2}}}), tmp_path / "ws")


def test_the_page_has_every_action_as_an_endpoint_and_every_option_as_a_field(studio):
    from texkit.registry import get_registry
    from texkit.studio.app import build_app

    page = build_app(studio)
    names = {dep.get("api_name") for dep in page.config["dependencies"]}
    assert {"paint", "refine", "score", "fine_tune", "stop", "resume", "show_mesh"} <= names
    ids = {block.elem_id for block in page.blocks.values() if getattr(block, "elem_id", None)}
    reg = get_registry()
    for name in reg.names("generators"):
        assert f"gen-{name}-options" in ids
    assert "gen-tiny-steps" in ids and "gen-tiny-device" not in ids  # run-owned options are the run's
    for name in reg.names("rewards"):
        assert f"reward-{name}-weight" in ids, name
    steps = next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "gen-tiny-steps")
    assert steps.value == 2  # the base config's value, not the schema default


def test_strokes_on_the_texture_become_the_mask(studio):
    from texkit.studio.app import _mask_from_editor

    background = np.zeros((16, 16, 4), np.uint8)
    stroke = np.zeros((16, 16, 4), np.uint8)
    stroke[2:5, 3:9] = (255, 0, 0, 255)
    path = _mask_from_editor(studio, {"background": background, "layers": [stroke], "composite": background})
    mask = np.asarray(Image.open(path))
    assert mask.shape == (16, 16) and set(np.unique(mask)) == {0, 255}
    assert np.array_equal(mask == 255, stroke[..., 3] > 0)
    assert _mask_from_editor(studio, {"background": background, "layers": [np.zeros((16, 16, 4), np.uint8)]}) is None
    assert _mask_from_editor(studio, None) is None
