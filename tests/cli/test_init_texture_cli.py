"""``texkit generate`` and ``texkit train`` start from an existing texture (``texture.init``, issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CONFIG = {
    "device": "cpu",
    "mesh": {"path": "demo"},
    "prompts": {"text": ["a vase"]},
    "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
    "cameras": {"paint": {"elevation": [-20.0, -20.0], "azimuth": [0.0, 180.0]}, "reward": {"elevation": [-20.0], "azimuth": [90.0]}},
    "texture": {"size": 32, "render_size": 32},
    "rewards": {"curvature_color": {"weight": 1.0}},
    "training": {"steps": 1, "checkpoint_every": 1, "before_after": False},
    "output": {"grid_views": 1},
}


def _toml(data: dict, prefix: str = "") -> str:
    scalars = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in tables:
        out.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out) + "\n"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(_toml(CONFIG))
    return path


def _rgba(path: Path, size: int, opaque_columns: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(0)
    arr = (rng.random((size, size, 4)) * 255).astype(np.uint8)
    arr[..., 3] = 255
    if opaque_columns is not None:
        arr[:, opaque_columns:, 3] = 0
    Image.fromarray(arr, "RGBA").save(path)
    return arr


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_generate_inpaints_around_the_painted_texels(tmp_path, run_texkit):
    init = _rgba(tmp_path / "init.png", 32, opaque_columns=16)  # right half transparent: to paint
    mask = np.zeros((32, 32), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask, "L").save(tmp_path / "mask.png")
    sets = ["--set", f'texture.init="{tmp_path / "init.png"}"', "--set", 'texture.mode="inpaint"', "--set", f'texture.mask="{tmp_path / "mask.png"}"']
    result = run_texkit(["generate", _config(tmp_path), "--out", tmp_path / "out", *sets])
    assert result.code == 0, result.stderr
    out = _rgb(tmp_path / "out" / "texture.png")
    keep = np.zeros((32, 32), bool)
    keep[:, :16] = True
    keep[4:8, 4:8] = False
    assert np.array_equal(out[keep], init[..., :3].astype(np.int16)[keep])  # painted texels unchanged
    assert np.abs(out[~keep] - init[..., :3].astype(np.int16)[~keep]).max() > 10  # the rest painted
    from texkit.config import load_config

    again = load_config(tmp_path / "out" / "config.toml")  # the run folder's config repeats the run
    assert again.texture.init == str(tmp_path / "init.png") and again.texture.mode == "inpaint"


def test_generate_and_train_refine_a_texture_of_another_size_with_one_notice(tmp_path, run_texkit, monkeypatch):
    _rgba(tmp_path / "big.png", 48)
    sets = ["--set", 'texture.init="big.png"', "--set", 'texture.mode="refine"', "--set", "texture.strength=0.5"]
    monkeypatch.chdir(tmp_path)  # texture.init is relative to the working directory
    result = run_texkit(["generate", _config(tmp_path), "--out", tmp_path / "gen", *sets])
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("texkit: note:") and "big.png" in notes[0] and "48x48" in notes[0]
    assert "resized to 32x32" in notes[0]
    assert (tmp_path / "gen" / "mesh.glb").exists()
    trained = run_texkit(["train", _config(tmp_path), "--set", f'output.dir="{tmp_path / "run"}"', *sets])
    assert trained.code == 0, trained.stderr
    assert "resized to 32x32" in trained.stderr
    assert (tmp_path / "run" / "adapter").is_dir()
