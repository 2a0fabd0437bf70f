"""``texkit demo`` (what ``make demo`` runs): a small end-to-end fine-tuning on the CPU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from texkit.checkpoint import read_run_id
from texkit.config import RunConfig, parse_config
from texkit.training import train

__all__ = ["demo_config", "run_demo"]


def demo_config(out: Path, steps: int = 30) -> RunConfig:
    """The demo run: the built-in mesh, the tiny generator, the curvature-colouring reward
    (red where the surface bulges out, blue in the hollows), four painting views, 128 px texture.

    The demo repeats one prompt and one noise draw every step (``training.resample = false``), so
    its reward curve shows the optimisation itself rather than the spread between random seeds;
    real runs draw a fresh seed each step, as the method does."""
    return parse_config(
        {
            "mesh": {"path": "demo"},
            "prompts": {"text": ["a glazed ceramic gourd"]},
            "generator": {"name": "tiny", "options": {"steps": 3, "seed": 0}},
            "cameras": {
                "paint": {"elevation": [-20, -20, -20, -20], "azimuth": [0, 90, 180, -90]},
                "reward": {"elevation": [-20, -20, -20, -20], "azimuth": [45, 135, -135, -45]},
            },
            "texture": {"size": 128, "render_size": 128},
            "rewards": {"curvature_color": {"weight": 1.0}},
            "training": {"steps": steps, "lr": 3e-3, "checkpoint_every": 10, "seed": 0, "unet_checkpointing": False, "resample": False},
            "output": {"dir": str(out), "grid_views": 4},
            "device": "cpu",
        }
    )


def run_demo(out: Path, steps: int = 30, threads: int | None = None, notify: Callable[[str], None] | None = None) -> Path:
    """Train the demo and return the path of its report.

    An earlier demo run in ``out`` (its config names the demo's prompt and the built-in mesh) is
    replaced, which ``notify`` reports; a folder holding any other run is refused.
    """
    out = Path(out)
    replace = _is_demo_run(out)
    if replace and notify is not None:
        notify(f"replacing the earlier demo run in {out}")
    return train(demo_config(out, steps), overwrite=replace, threads=threads).report


def _is_demo_run(out: Path) -> bool:
    """Whether ``out`` holds a run of ``texkit demo`` (same mesh, prompt and generator)."""
    try:
        cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    demo = demo_config(out).model_dump(mode="json")
    return all(cfg.get(key) == demo[key] for key in ("mesh", "prompts", "generator")) and read_run_id(out) is not None
