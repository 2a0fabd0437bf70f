"""``output.latest_every``: the run folder's ``latest/`` holds the newest painted texture while a run trains."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from texkit.config import parse_config
from texkit.training import Trainer


def _config(out, latest_every: int, steps: int = 3) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {}},
        "training": {"steps": steps, "lr": 1e-3, "checkpoint_every": steps, "before_after": False},
        "output": {"dir": str(out), "grid_views": 2, "latest_every": latest_every},
        "device": "cpu",
    }


def test_latest_is_written_every_n_steps_and_after_the_last(tmp_path, monkeypatch):
    written: list[int] = []
    original = Trainer.write_latest

    def record(self):
        written.append(self.step)
        return original(self)

    monkeypatch.setattr(Trainer, "write_latest", record)
    trainer = Trainer(parse_config(_config(tmp_path / "run", 2)), tmp_path / "run")
    trainer.fit()
    assert written == [2, 3]
    latest = tmp_path / "run" / "latest"
    assert json.loads((latest / "step.json").read_text()) == {"step": 3, "prompt": "a vase"}
    texture = np.asarray(Image.open(latest / "texture.png"))
    assert texture.shape == (32, 32, 3)
    expected = np.round(trainer.latest[1].image.clamp(0, 1).numpy() * 255)  # the last step's painted texture
    assert np.abs(texture.astype(np.float64) - expected).max() <= 1
    assert (latest / "views.png").exists() and (latest / "mesh.glb").exists()
    assert not list(tmp_path.glob("run/.latest*"))  # replaced as a whole: no temporary folder left


def test_no_latest_folder_by_default(tmp_path):
    Trainer(parse_config(_config(tmp_path / "run", 0, steps=1)), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "latest").exists()
