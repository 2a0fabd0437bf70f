"""``texkit generate --samples N`` paints N textures in one batch; each equals the sample painted alone."""

from __future__ import annotations

import numpy as np
from PIL import Image

from texkit.commands.generate import generate
from texkit.config import parse_config


def _config(out) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase", "a jar"]},
        "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}},
        "texture": {"size": 64, "render_size": 64},
        "output": {"dir": str(out), "grid_views": 2},
        "device": "cpu",
    }


def _texture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_generate_samples_in_one_batch_equal_single_runs(tmp_path):
    batch = generate(parse_config(_config(tmp_path / "batch")), samples=2)
    single = generate(parse_config(_config(tmp_path / "single")))
    for name in ("texture.png", "views.png", "mesh.glb"):
        assert (batch / "sample_0" / name).exists() and (batch / "sample_1" / name).exists(), name
    # sample 0 is the single run (PNG rounding: within one grey level)
    assert np.abs(_texture(batch / "sample_0" / "texture.png") - _texture(single / "texture.png")).max() <= 1
    assert np.abs(_texture(batch / "sample_0" / "texture.png") - _texture(batch / "sample_1" / "texture.png")).max() > 10
