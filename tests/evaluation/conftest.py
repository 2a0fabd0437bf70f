"""A tiny training run folder for the fast eval tests: a real config and a real (perturbed) LoRA adapter
of the tiny generator, written the way ``texkit train`` writes them, without training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from texkit.config import parse_config


def tiny_run_config(run: Path, **changes) -> dict:
    """The config of the tiny run (2 painting views, 32-texel textures, one curvature_color reward)."""
    data = {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a glazed ceramic gourd"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 48},
        "rewards": {"curvature_color": {"tau": -0.5}},
        "output": {"dir": str(run), "grid_views": 2},
        "device": "cpu",
    }
    data.update(changes)
    return data


def write_tiny_run(run: Path, scale: float = 0.05, **changes) -> Path:
    """A run folder with ``config.json`` and ``adapter/``: the tiny generator's LoRA set to seeded random values."""
    from texkit.run_record import write_run_record
    from texkit.session import Session

    cfg = parse_config(tiny_run_config(run, **changes))
    session = Session.build(cfg, need_rewards=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in session.generator.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    session.generator.save_adapter(run / "adapter")
    write_run_record(run, cfg)
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny run folder (read-only for its users)."""
    return write_tiny_run(tmp_path_factory.mktemp("tiny") / "run")
