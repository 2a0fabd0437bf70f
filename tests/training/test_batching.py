"""Batched samples through the whole step: renderer, view loop, generator, back-projection, rewards, loss.

The contract: sample b of a batch of B equals painting and scoring it alone with the same prompt and
seeds, so a batched step of B has the loss and the gradients of B batch-1 micro-batches.
"""

from __future__ import annotations

import pytest
import torch

import texkit
from texkit.config import parse_config
from texkit.registry import get_registry
from texkit.training import Trainer

ATOL = 2e-5  # float32 on CPU: batched convolutions sum in another order than batch-1 ones


def _config(out, batch_size: int = 1, grad_accum: int = 1, rewards: dict | None = None) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase", "a jar", "a bowl", "a cup"]},
        "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
        "cameras": {
            "paint": {"elevation": [-20, -20], "azimuth": [0, 180]},
            "reward": {"elevation": [-20, 10], "azimuth": [90, -45]},
            "learn": ["paint", "reward"],
        },
        "texture": {"size": 64, "render_size": 64},
        "rewards": rewards or {"curvature_color": {}, "render_brightness": {"weight": 0.5}},
        "training": {"steps": 1, "lr": 3e-3, "before_after": False, "batch_size": batch_size, "grad_accum": grad_accum, "unet_checkpointing": False},
        "output": {"dir": str(out)},
        "device": "cpu",
    }


class RenderBrightness(texkit.Reward):
    """Mean rendered brightness of the reward views: a reward that reads ``ctx.renders``."""

    name = "render_brightness"
    needs_renders = True

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        weight = ctx.renders.alpha
        value = (ctx.renders.rgb.mean(-1, keepdim=True) * weight).sum() / weight.sum().clamp_min(1e-6)
        return texkit.RewardOutput(value=value)


@pytest.fixture
def render_reward(register_rewards):
    register_rewards(RenderBrightness)


def _loss_and_grads(trainer: Trainer) -> tuple[float, list[torch.Tensor]]:
    accum = trainer.config.training.grad_accum
    total = 0.0
    for micro in range(accum):
        loss, _ = trainer._sample(micro)
        (loss / accum).backward()
        total += float(loss.detach()) / accum
    grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in trainer.parameters()]
    return total, grads


def test_a_batch_of_three_equals_three_batch_one_micro_batches(tmp_path, render_reward):
    torch.manual_seed(0)
    batched = Trainer(parse_config(_config(tmp_path / "b", batch_size=3)), tmp_path / "b")
    torch.manual_seed(0)
    single = Trainer(parse_config(_config(tmp_path / "s", grad_accum=3)), tmp_path / "s")
    prompts, _ = batched.session.draw_batch(0, 0, 3)
    assert len(set(prompts)) > 1  # the samples really differ
    loss_b, grads_b = _loss_and_grads(batched)
    loss_s, grads_s = _loss_and_grads(single)
    assert loss_b == pytest.approx(loss_s, abs=ATOL)
    assert len(grads_b) == len(grads_s) > 4  # LoRA matrices + 4 camera angle tensors
    scale = max(float(g.abs().max()) for g in grads_s)
    assert scale > 0
    for gb, gs in zip(grads_b, grads_s):
        torch.testing.assert_close(gb, gs, atol=1e-4 * scale, rtol=1e-3)
    for name in ("paint_azimuth", "reward_elevation"):
        assert batched.session.angles[name].grad.abs().sum() > 0, name


def test_batched_paint_equals_painting_each_sample_alone(tmp_path):
    trainer = Trainer(parse_config(_config(tmp_path, rewards={"curvature_color": {}})), tmp_path)
    session = trainer.session
    prompts, seeds = session.draw_batch(0, 0, 3)
    with torch.no_grad():
        together = session.paint(prompts, seeds)
        alone = [session.paint(p, s) for p, s in zip(prompts, seeds)]
    assert together.image.shape == (3, 64, 64, 3)
    for b, texture in enumerate(alone):
        torch.testing.assert_close(together.image[b], texture.image, atol=ATOL, rtol=0)
    assert not torch.allclose(alone[0].image, alone[1].image)


def test_renderer_batch_equals_each_texture_rendered_alone():
    from texkit.geometry.primitives import load_mesh

    mesh = load_mesh("demo")
    cameras = texkit.Cameras.from_angles([-20, 10], [30, 200])
    textures = torch.rand(3, 32, 32, 3, generator=torch.Generator().manual_seed(1))
    renderer = get_registry().make_renderer("torch")
    together = renderer.render(mesh, textures, cameras, 48)
    assert together.rgb.shape == (6, 48, 48, 3)
    for b in range(3):
        alone = renderer.render(mesh, textures[b], cameras, 48)
        torch.testing.assert_close(together.rgb[2 * b : 2 * b + 2], alone.rgb, atol=1e-6, rtol=0)
        torch.testing.assert_close(together.alpha[2 * b : 2 * b + 2], alone.alpha)
        assert torch.equal(together.face_id[2 * b : 2 * b + 2], alone.face_id)


def test_each_rank_and_micro_batch_paints_its_own_slots_of_the_steps_draws(tmp_path, monkeypatch):
    """Sample b of micro-batch m of rank r takes slot (r grad_accum + m) batch_size + b of the step's draws
    (`Session.draw`): with grad_accum 2 and batch_size 2, rank 1's micro-batch 1 paints slots 6 and 7,
    rank 0's micro-batch 1 slots 2 and 3."""
    trainer = Trainer(parse_config(_config(tmp_path, batch_size=2, grad_accum=2, rewards={"curvature_color": {}})), tmp_path)
    drawn: list[tuple[int, int]] = []
    real = trainer.session.draw
    monkeypatch.setattr(trainer.session, "draw", lambda step, slot=0: drawn.append((step, slot)) or real(step, slot))
    result = trainer.batcher.run(3, rank=1, micro=1, world_size=2)
    assert drawn == [(3, 6), (3, 7)]
    assert result.prompts == [real(3, 6)[0], real(3, 7)[0]]
    drawn.clear()
    trainer.batcher.run(3, rank=0, micro=1, world_size=2)
    assert drawn == [(3, 2), (3, 3)]
