"""`score_texture` with parameters per reward and each reward's ``visualize()`` picture (used by ``texkit studio``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from texkit.commands.score import score_texture


def _texture(path):
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(path)
    return path


def test_parameters_per_reward_equal_scoring_each_alone(tmp_path):
    texture = _texture(tmp_path / "t.png")
    both = score_texture("demo", texture, ["symmetry", "curvature_color"], reward_params={"symmetry": {"patch": 5}, "curvature_color": {"mode": "smooth"}}, size=32)
    alone_symmetry = score_texture("demo", texture, ["symmetry"], {"patch": 5}, size=32)
    alone_color = score_texture("demo", texture, ["curvature_color"], {"mode": "smooth"}, size=32)
    assert both["symmetry"]["value"] == alone_symmetry["symmetry"]["value"]
    assert both["curvature_color"]["value"] == alone_color["curvature_color"]["value"]
    default = score_texture("demo", texture, ["symmetry"], size=32)
    assert default["symmetry"]["value"] != both["symmetry"]["value"]  # the parameter was used


def test_pictures_of_the_rewards_that_have_one(tmp_path):
    from texkit.registry import get_registry
    from texkit.reward import Reward

    texture = _texture(tmp_path / "t.png")
    results = score_texture("demo", texture, ["jpeg_compressibility", "curvature_color"], size=32, pictures=tmp_path / "pics", picture_views=4)
    assert get_registry().reward_class("jpeg_compressibility").visualize is Reward.visualize  # draws nothing
    assert "picture" not in results["jpeg_compressibility"]
    picture = Image.open(results["curvature_color"]["picture"])
    assert picture.size[0] > 3 * 32 and picture.size[1] >= 32  # four 32 px views in a row
    assert np.asarray(picture).std() > 0


def test_out_of_memory_while_scoring_is_one_line_about_scoring(tmp_path, monkeypatch):
    """Scoring has no batch size: the line says what was scored, at which render size, and what to lower."""
    import pytest
    import torch

    from texkit.errors import DeviceError
    from texkit.reward_set import RewardSet

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.50 GiB")

    monkeypatch.setattr(RewardSet, "score", too_big)
    with pytest.raises(DeviceError) as err:
        score_texture("demo", _texture(tmp_path / "t.png"), ["symmetry", "curvature_color"], size=64)
    assert str(err.value) == (
        "out of memory on cpu scoring the texture with symmetry, curvature_color at 64 px (an allocation of 3.50 GiB failed); "
        "pass a render size below 64 (texkit score --size, texture.render_size in a config), or use a device with more memory"
    )
