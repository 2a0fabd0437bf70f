"""The optimiser settings of a run, observed through their effect on one AdamW step of the tiny model.

AdamW's first step (Loshchilov & Hutter 2019, with Adam's bias correction, Kingma & Ba 2015) moves
each parameter by ``p <- p (1 - lr wd) - lr g / (|g| + eps)`` and leaves ``exp_avg = (1 - b1) g`` and
``exp_avg_sq = (1 - b2) g^2`` in the optimiser state, so the gradient the optimiser saw (after
clipping and accumulation), the learning rates, the weight decay, the betas and eps can all be read
back from one step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from texkit.config import parse_config
from texkit.training import Trainer


def _trainer(out: Path, run_dir: Path | None = None, prompts: list[str] | None = None, **training) -> Trainer:
    data = {
        "mesh": {"path": "demo"},
        "prompts": {"text": prompts or ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [30]}, "reward": {"elevation": [-20], "azimuth": [90]}, "learn": ["paint"]},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {}},
        "training": {"steps": 1, "before_after": False, **training},
        "output": {"dir": str(out), "grid_views": 1},
        "device": "cpu",
    }
    return Trainer(parse_config(data), run_dir or out)


def _step(trainer: Trainer) -> tuple[dict, list[torch.Tensor], list[torch.Tensor]]:
    """One train step; returns its metrics, the parameters before it and the gradient AdamW saw."""
    before = [p.detach().clone() for p in trainer.parameters()]
    metrics = trainer.train_step()
    beta1 = trainer.optimizer.param_groups[0]["betas"][0]
    seen = [trainer.optimizer.state[p]["exp_avg"] / (1 - beta1) if p in trainer.optimizer.state else torch.zeros_like(p) for p in trainer.parameters()]
    return metrics, before, seen


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))


def test_param_groups_hold_the_configured_rates_decay_betas_and_eps(tmp_path):
    trainer = _trainer(tmp_path / "configured", run_dir=tmp_path / "given", lr=2e-3, camera_lr=3.0, weight_decay=0.05, betas=[0.8, 0.95], eps=1e-6)
    assert trainer.run_dir == tmp_path / "given"  # the folder given wins over output.dir
    lora, cams = trainer.optimizer.param_groups
    assert lora["lr"] == 2e-3 and cams["lr"] == 3.0  # the cameras' own rate, not the LoRA one
    assert lora["weight_decay"] == cams["weight_decay"] == 0.05
    assert lora["betas"] == cams["betas"] == (0.8, 0.95)
    assert lora["eps"] == cams["eps"] == 1e-6
    assert {id(p) for p in cams["params"]} == {id(t) for t in trainer.session.angles.values() if t.requires_grad}
    assert {id(p) for p in lora["params"]} == {id(p) for p in trainer.session.generator.trainable_parameters()}
    assert trainer.effective_batch == 1


def test_one_step_moves_every_parameter_as_adamw_with_the_configured_settings(tmp_path):
    lr, camera_lr, wd, eps = 2e-3, 3.0, 0.05, 1e-3
    trainer = _trainer(tmp_path, lr=lr, camera_lr=camera_lr, weight_decay=wd, betas=[0.8, 0.95], eps=eps)
    metrics, before, seen = _step(trainer)
    assert "skipped" not in metrics and metrics["step"] == 1
    rates = [lr] * len(trainer.optimizer.param_groups[0]["params"]) + [camera_lr] * len(trainer.optimizer.param_groups[1]["params"])
    moved = 0
    for p, old, g, rate in zip(trainer.parameters(), before, seen, rates):
        want = old * (1 - rate * wd) - rate * g / (g.abs() + eps)
        torch.testing.assert_close(p.detach(), want, rtol=1e-4, atol=1e-6 * max(rate, 1.0))
        moved += int(g.abs().max() > 0)
    assert moved >= 2  # the camera angles and some LoRA matrices had a gradient
    state = trainer.optimizer.state[trainer.parameters()[-1]]
    ratio = state["exp_avg_sq"] / state["exp_avg"].square().clamp_min(1e-30)
    nonzero = state["exp_avg"].abs() > 0
    torch.testing.assert_close(ratio[nonzero], torch.full_like(ratio[nonzero], (1 - 0.95) / (1 - 0.8) ** 2), rtol=1e-3, atol=0)


def test_gradient_clipping_bounds_the_gradient_adamw_sees(tmp_path):
    free_metrics, _, free = _step(_trainer(tmp_path / "free", grad_clip=0.0))
    assert _norm(free) == pytest.approx(free_metrics["grad_norm"], rel=1e-4)  # 0: no clipping, the norm is logged
    clip = 0.25 * free_metrics["grad_norm"]
    clipped_metrics, _, clipped = _step(_trainer(tmp_path / "clipped", grad_clip=clip))
    assert clipped_metrics["grad_norm"] == pytest.approx(free_metrics["grad_norm"], rel=1e-4)  # the norm before clipping
    assert _norm(clipped) == pytest.approx(clip, rel=1e-3)
    for a, b in zip(clipped, free):  # the same direction, scaled
        torch.testing.assert_close(a, b * 0.25, rtol=1e-3, atol=1e-9)
    loose_metrics, _, loose = _step(_trainer(tmp_path / "loose", grad_clip=4.0 * free_metrics["grad_norm"]))
    assert _norm(loose) == pytest.approx(free_metrics["grad_norm"], rel=1e-4)  # a clip above the norm changes nothing


def test_accumulated_micro_batches_give_the_gradient_of_one_batch(tmp_path):
    """grad_accum = 2 of batch 1 equals batch_size 2: the loss is the mean over the effective batch."""
    accum = _trainer(tmp_path / "accum", grad_accum=2)
    assert accum.effective_batch == 2
    accum_metrics, _, accum_grad = _step(accum)
    batch = _trainer(tmp_path / "batch", batch_size=2)
    batch_metrics, _, batch_grad = _step(batch)
    assert accum_metrics["grad_accum"] == 2 and accum_metrics["effective_batch"] == batch_metrics["effective_batch"] == 2
    for a, b in zip(accum_grad, batch_grad):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-7)
    assert accum_metrics["loss"] == pytest.approx(batch_metrics["loss"], rel=1e-4)
    assert accum_metrics["reward/total"] == pytest.approx(-accum_metrics["loss"], rel=1e-6)


def test_a_non_finite_loss_skips_the_step_and_changes_nothing(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    before = [p.detach().clone() for p in trainer.parameters()]
    real = trainer.session.score_batch

    def nan_scores(*args, **kwargs):
        scores = real(*args, **kwargs)
        scores.total = scores.total * float("nan")
        return scores

    monkeypatch.setattr(trainer.session, "score_batch", nan_scores)
    metrics = trainer.train_step()
    assert metrics["skipped"] == "non-finite loss" and metrics["step"] == 1 and trainer.step == 1
    for p, old in zip(trainer.parameters(), before):
        assert torch.equal(p.detach(), old)
        assert p.grad is None
    assert not trainer.optimizer.state  # AdamW never stepped


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_non_finite_gradient_skips_the_optimiser_step(tmp_path, capsys, precision):
    """Also with fp16's loss scaling: the step is reported skipped (metrics and a notice naming the step
    on stderr) and the scale backs off by half (GradScaler's backoff_factor) from 2^16."""
    trainer = _trainer(tmp_path, mixed_precision=precision)
    camera = next(t for t in trainer.session.angles.values() if t.requires_grad)
    camera.register_hook(lambda grad: grad * float("inf"))
    before = [p.detach().clone() for p in trainer.parameters()]
    capsys.readouterr()
    metrics = trainer.train_step()
    assert metrics["skipped"] == "non-finite gradient" and not torch.isfinite(torch.tensor(metrics["grad_norm"]))
    assert "step 1: gradient is not finite, step skipped" in capsys.readouterr().err
    for p, old in zip(trainer.parameters(), before):
        assert torch.equal(p.detach(), old) and p.grad is None
    assert trainer.step == 1 and not trainer.optimizer.state
    if precision == "fp16":
        assert metrics["loss_scale"] == 2.0**15
    capsys.readouterr()
    metrics = trainer.train_step()  # the next step is numbered 2 in the notice
    assert metrics["step"] == 2 and "step 2: gradient is not finite, step skipped" in capsys.readouterr().err


def test_a_non_finite_first_micro_batch_stops_the_step_and_says_so_on_stderr(tmp_path, monkeypatch, capsys):
    """With grad_accum = 2, a NaN loss in the first micro-batch ends the step there (the second is
    never painted or scored) and the notice goes to stderr, never into stdout (which may be piped)."""
    trainer = _trainer(tmp_path, grad_accum=2)
    real = trainer.session.score_batch
    scored = []

    def nan_scores(*args, **kwargs):
        scores = real(*args, **kwargs)
        scored.append(1)
        scores.total = scores.total * float("nan")
        return scores

    monkeypatch.setattr(trainer.session, "score_batch", nan_scores)
    capsys.readouterr()
    metrics = trainer.train_step()
    assert metrics["skipped"] == "non-finite loss" and len(scored) == 1
    out, err = capsys.readouterr()
    assert "step 1" in err and "skipped" in err
    assert "skipped" not in out


def test_a_batch_reports_every_prompt_and_its_size_a_single_sample_does_not(tmp_path):
    single = _trainer(tmp_path / "one").train_step()
    assert "prompts" not in single and "batch_size" not in single and single["prompt"] == "a vase"
    batch = _trainer(tmp_path / "two", batch_size=2).train_step()
    assert batch["prompts"] == ["a vase", "a vase"] and batch["batch_size"] == 2
    accumulated = _trainer(tmp_path / "accum", grad_accum=2).train_step()  # two micro-batches of one
    assert accumulated["prompts"] == ["a vase", "a vase"] and "batch_size" not in accumulated


def test_one_sample_reports_its_integer_metrics_as_integers(tmp_path):
    """A step of one sample reports that sample's numbers unchanged: metrics.jsonl says "batch_size": 2,
    not 2.0."""
    metrics = _trainer(tmp_path, batch_size=2).train_step()
    assert type(metrics["batch_size"]) is int and json.dumps(metrics["batch_size"]) == "2"


def test_step_seconds_is_the_wall_time_of_the_step(tmp_path):
    trainer = _trainer(tmp_path)
    start = time.perf_counter()
    metrics = trainer.train_step()
    elapsed = time.perf_counter() - start
    assert 0.0 < metrics["step_seconds"] <= elapsed


def test_learned_camera_angles_are_reported_to_four_decimals(tmp_path):
    trainer = _trainer(tmp_path)
    with torch.no_grad():
        for tensor in trainer.session.angles.values():
            if tensor.requires_grad:
                tensor.add_(0.123456)  # off any 4-decimal value
    metrics = trainer.train_step()
    reported = {k: v for k, v in metrics.items() if k.startswith("camera/")}
    assert reported, "a learned camera path reports its angles"
    for key, values in reported.items():
        exact = [float(x) for x in trainer.session.angles[key.removeprefix("camera/")].detach()]
        assert values == [round(x, 4) for x in exact]
        assert any(round(x, 5) != round(x, 4) for x in exact)


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_only_fp16_scales_the_loss(tmp_path, precision):
    """fp16 frozen weights scale the loss (the step reports its loss scale); other dtypes do not."""
    metrics = _trainer(tmp_path, mixed_precision=precision).train_step()
    if precision == "fp16":
        assert metrics["loss_scale"] > 0
    else:
        assert "loss_scale" not in metrics


def test_the_latest_texture_is_the_first_sample_of_the_first_micro_batch_with_its_coverage(tmp_path):
    """``Trainer.latest`` (what ``<run>/latest/`` shows): the prompt and painted texture of the step's first
    sample, from micro-batch 0 even when a later micro-batch painted another prompt; with its coverage."""
    trainer = _trainer(tmp_path, prompts=["a vase", "a red jar", "a blue bowl", "a green cup", "a stone urn"], grad_accum=2)
    first, second = trainer.session.draw(0, 0)[0], trainer.session.draw(0, 1)[0]
    assert first != second  # the two micro-batches paint different prompts
    metrics = trainer.train_step()
    prompt, texture = trainer.latest
    assert prompt == first == metrics["prompt"] and metrics["prompts"] == [first, second]
    size = trainer.config.texture.size
    assert texture.coverage is not None and texture.coverage.shape == (size, size, 1)
    assert 0.0 < float(texture.coverage.mean()) < 1.0 and not texture.image.requires_grad


def test_a_single_mesh_step_reports_no_per_mesh_metrics_a_collection_step_does(tmp_path):
    metrics = _trainer(tmp_path / "one").train_step()
    assert "meshes" not in metrics and "reward_by_mesh" not in metrics
    data = {
        "meshes": [{"path": "demo"}, {"path": "sphere"}],  # built-in meshes
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {}},
        "training": {"steps": 1, "before_after": False},
        "output": {"dir": str(tmp_path / "two"), "grid_views": 1},
        "device": "cpu",
    }
    metrics = Trainer(parse_config(data), tmp_path / "two").train_step()
    assert metrics["meshes"] in (["demo"], ["sphere"]) and set(metrics["reward_by_mesh"]) == set(metrics["meshes"])
