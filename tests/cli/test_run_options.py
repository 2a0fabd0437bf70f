"""--seed, --prompt and --device on the run commands; the run folder's config.toml runs again."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from texkit.config import load_config, parse_config, to_toml

CONFIG = """
device = "cpu"
[mesh]
path = "demo"
[prompts]
text = ["a vase"]
[generator]
name = "tiny"
[generator.options]
steps = 2
[cameras.paint]
elevation = [-20.0, -20.0]
azimuth = [0.0, 180.0]
[texture]
size = 64
render_size = 64
[output]
grid_views = 2
"""


def _texkit(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "texkit.commands.cli", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.mark.slow
def test_seed_and_prompt_change_the_generated_texture_and_are_recorded(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    runs = {}
    for name, extra in {"a": ["--seed", "1"], "b": ["--seed", "2"], "c": ["--seed", "1", "--prompt", "a red jar"], "d": ["--seed", "1"]}.items():
        proc = _texkit("generate", str(config), "--out", str(tmp_path / name), "--device", "cpu", *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = _image(tmp_path / name / "texture.png")
    assert np.abs(runs["a"] - runs["d"]).max() == 0  # same seed, same texture
    assert np.abs(runs["a"] - runs["b"]).max() > 10  # another seed, another texture
    assert np.abs(runs["a"] - runs["c"]).max() > 0  # another prompt
    again = load_config(tmp_path / "c" / "config.toml")
    assert again.prompts.text == ["a red jar"] and again.device == "cpu"


def test_config_toml_of_a_run_loads_back_to_the_same_config(tmp_path):
    cfg = parse_config({
        "prompts": {"text": ['a "quoted" vase', "ünïcode jar"]},
        "rewards": {"symmetry": {"weight": 0.5, "patch": 3}, "curvature_color": {}},
        "cameras": {"paint": {"elevation": [-20, 10], "azimuth": [0, 90]}, "learn": ["reward"]},
        "generator": {"name": "tiny", "options": {"steps": 3, "lora_targets": ["to_q"]}},
        "training": {"truncation": 2, "batch_size": 4},
    })
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    assert load_config(path).model_dump() == cfg.model_dump()


def test_cuda_asked_for_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    for args in (["render", "demo", "--out", str(tmp_path / "r"), "--device", "cuda"], ["train", str(config), "--device", "cuda", "--dry-run"]):
        proc = _texkit(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "no CUDA GPU" in proc.stderr


def test_render_and_score_run_on_the_asked_device(tmp_path):
    proc = _texkit("render", "demo", "--out", str(tmp_path / "r"), "--device", "cpu", "--views", "2", "--size", "32")
    assert proc.returncode == 0, proc.stderr
    proc = _texkit("score", "demo", str(tmp_path / "r" / "views.png"), "--reward", "symmetry", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "symmetry" in proc.stdout, proc.stdout
