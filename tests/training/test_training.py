"""End-to-end fine-tuning on the tiny generator: gradients, rising rewards, resume, checkpoints, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from texkit.config import parse_config
from texkit.errors import RewardError
from texkit.training import Trainer, train


def _config(out: Path, rewards: dict, steps: int = 4, **training) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase", "a jar"]},
        "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 64, "render_size": 64},
        "rewards": rewards,
        "training": {"steps": steps, "lr": 3e-3, "checkpoint_every": 2, "before_after": False, **training},
        "output": {"dir": str(out), "grid_views": 2},
        "device": "cpu",
    }


def test_gradients_reach_lora_and_cameras(tmp_path):
    cfg = parse_config(_config(tmp_path, {"curvature_color": {"weight": 1.0}}, cameras=None) if False else _config(tmp_path, {"curvature_color": {}}))
    cfg.cameras.learn = ["paint"]
    trainer = Trainer(cfg, tmp_path)
    prompt, seeds = trainer.session.draw(0)
    texture = trainer.session.paint(prompt, seeds)
    total, _ = trainer.session.score(texture, prompt)
    (-total).backward()
    lora = trainer.session.generator.trainable_parameters()
    assert sum(p.grad is not None and p.grad.abs().sum() > 0 for p in lora) >= len(lora) // 2  # B matrices (A waits for B != 0)
    for name in ("paint_elevation", "paint_azimuth"):
        grad = trainer.session.angles[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("reward", ["symmetry", "curvature_color"])
def test_reward_rises_with_training(tmp_path, reward):
    cfg = parse_config(_config(tmp_path, {reward: {}}, steps=6, resample=False, lr=5e-3))
    trainer = Trainer(cfg, tmp_path)
    history = trainer.fit()
    values = [m[f"reward/{reward}"] for m in history]
    print(reward, [round(v, 5) for v in values])
    assert values[-1] > values[0]


def test_resume_matches_an_uninterrupted_run(tmp_path):
    rewards = {"curvature_color": {}}
    straight = Trainer(parse_config(_config(tmp_path / "a", rewards, steps=4)), tmp_path / "a").fit()
    first = Trainer(parse_config(_config(tmp_path / "b", rewards, steps=4)), tmp_path / "b")
    first.fit(steps=2)
    resumed = Trainer(parse_config(_config(tmp_path / "b", rewards, steps=4)), tmp_path / "b")
    assert resumed.resume() and resumed.step == 2
    tail = resumed.fit()
    assert [m["step"] for m in tail] == [3, 4]
    for a, b in zip(straight[2:], tail):
        assert a["reward/total"] == pytest.approx(b["reward/total"], rel=1e-4, abs=1e-6)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


def test_interrupted_checkpoint_leaves_previous_loadable(tmp_path, monkeypatch):
    import texkit.checkpoint as ckpt

    trainer = Trainer(parse_config(_config(tmp_path, {"curvature_color": {}}, steps=4)), tmp_path)
    trainer.fit(steps=2)  # writes step_000002
    real_save = torch.save

    def failing_save(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        trainer.fit(steps=4)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_000002"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written folder
    again = Trainer(parse_config(_config(tmp_path, {"curvature_color": {}}, steps=4)), tmp_path)
    assert again.resume() and again.step == 2


def test_non_differentiable_reward_is_refused(tmp_path):
    with pytest.raises(RewardError, match="not differentiable"):
        Trainer(parse_config(_config(tmp_path, {"jpeg_compressibility": {}})), tmp_path)


def test_nan_loss_skips_the_step(tmp_path, monkeypatch):
    trainer = Trainer(parse_config(_config(tmp_path, {"curvature_color": {}}, steps=1)), tmp_path)
    before = [p.detach().clone() for p in trainer.session.generator.trainable_parameters()]
    from texkit.reward_set import Scores

    def nan_scores(texture, prompts):  # the trainer scores every step's batch through Session.score_batch
        return Scores(texture.image.sum().reshape(1) * float("nan"), metrics=[{"reward/total": float("nan")}])

    monkeypatch.setattr(trainer.session, "score_batch", nan_scores)
    (metrics,) = trainer.fit()
    assert metrics["skipped"] == "non-finite loss"
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.session.generator.trainable_parameters()))


def test_train_writes_run_folder_and_report(tmp_path):
    from texkit.report import write_run_report

    cfg = parse_config(_config(tmp_path / "run", {"curvature_color": {}}, steps=2, before_after=True))
    result = train(cfg)
    run = result.run_dir
    assert not (run / "report.html").exists()  # training writes plain data; the train command builds the page
    report = write_run_report(run)
    for name in ("config.json", "versions.json", "metrics.jsonl", "reward_curves.png", "after/mesh.glb", "before/texture.png", "adapter/pytorch_lora_weights.safetensors"):
        assert (run / name).exists(), name
    versions = json.loads((run / "versions.json").read_text())
    assert "texkit-diffusers" in versions["plugins"] and versions["torch"]
    # the generator describes itself (the core names no plugin library): backend that ran, its libraries
    assert versions["generator"]["generator"] == "tiny" and versions["generator"]["attention"].startswith("sdpa")
    assert versions["generator"]["diffusers"] and versions["generator"]["peft"]
    page = report.read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(refs) >= 8
    for ref in refs:
        path = run / ref
        assert path.exists(), ref
        if ref.endswith(".png"):
            with Image.open(path) as img:
                img.load()
                assert img.size[0] > 0


def test_learnable_preset_cameras_are_float(tmp_path):
    from texkit.session import Session

    cfg = parse_config({"cameras": {"paint": "front_short", "learn": ["paint"]}, "texture": {"size": 32}, "device": "cpu"})
    session = Session.build(cfg, need_rewards=False)
    elevation = session.angles["paint_elevation"]
    assert elevation.dtype == torch.float32 and elevation.requires_grad


def test_progress_lines_follow_log_every(tmp_path):
    """Without a terminal the trainer prints a progress line every ``log_every`` steps and after the last."""
    import io

    from rich.console import Console

    stream = io.StringIO()
    cfg = parse_config(_config(tmp_path, {"curvature_color": {}}, steps=3, log_every=2, checkpoint_every=3))
    Trainer(cfg, tmp_path, Console(file=stream, force_terminal=False)).fit()
    lines = re.findall(r"^step (\d+)/3 ", stream.getvalue(), flags=re.MULTILINE)
    assert lines == ["2", "3"]
