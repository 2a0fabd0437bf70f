"""``texkit demo`` (what ``make demo`` runs): a small end-to-end fine-tuning on the CPU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from texkit.checkpoint import read_run_id
from texkit.config import RunConfig, parse_config
from texkit.defaults import DEFAULT_GENERATOR
from texkit.report import write_run_report
from texkit.training import train

__all__ = ["demo_config", "run_demo", "DEMO_STEPS"]


#: Training steps of the demo (``texkit demo --steps`` overrides it).
DEMO_STEPS = 30


def demo_config(out: Path, steps: int = DEMO_STEPS) -> RunConfig:
    """The demo run: the built-in mesh, the tiny generator, the curvature-colouring reward, four
    painting views, 128 px texture; about 2 minutes on 2 CPU cores (README, benchmarks/results/demo_cpu.json).

    Chosen so that the after views show what the reward asks for, not only a rising number
    (tests/demo/test_demo_effect.py measures it on the demo's own outputs):

    * ``curvature_color`` with ``tau = -0.5``: the threshold splits the gourd about in half, so the
      reward asks for blue on the hollow shoulder round the neck and the dimple underneath, and red
      on the round belly (the default -0.7 marks only a thin ring at the neck: too small to see);
    * ``training.resample = true``: a fresh noise draw every step, so what is learnt carries over
      to the fixed preview seeds of the before/after views (with one repeated draw the reward rose
      on that draw only and the previews barely changed);
    * ``lr = 0.03`` for 30 steps: the largest rate that kept rising steadily (0.06 collapsed after
      about 20 steps; 70 steps at 0.03 showed no more than 40, and 30 keep the demo near 2 minutes).
    """
    return parse_config(
        {
            "mesh": {"path": "demo"},
            "prompts": {"text": ["a glazed ceramic gourd"]},
            "generator": {"name": DEFAULT_GENERATOR, "options": {"steps": 3, "seed": 0}},
            "cameras": {
                "paint": {"elevation": [-20, -20, -20, -20], "azimuth": [0, 90, 180, -90]},
                "reward": {"elevation": [-20, -20, -20, -20], "azimuth": [45, 135, -135, -45]},
            },
            "texture": {"size": 128, "render_size": 128},
            "rewards": {"curvature_color": {"weight": 1.0, "tau": -0.5}},
            "training": {"steps": steps, "lr": 3e-2, "checkpoint_every": 10, "seed": 0, "unet_checkpointing": False, "resample": True},
            "output": {"dir": str(out), "grid_views": 4},
            "device": "cpu",
        }
    )


def run_demo(out: Path, steps: int | None = None, threads: int | None = None, notify: Callable[[str], None] | None = None) -> Path:
    """Train the demo and return the path of its report.

    An earlier demo run in ``out`` (its config names the demo's prompt and the built-in mesh) is
    replaced, which ``notify`` reports; a folder holding any other run is refused.
    """
    out = Path(out)
    replace = _is_demo_run(out)
    if replace and notify is not None:
        notify(f"replacing the earlier demo run in {out}")
    result = train(demo_config(out, DEMO_STEPS if steps is None else steps), overwrite=replace, threads=threads)
    return write_run_report(result.run_dir)


def _is_demo_run(out: Path) -> bool:
    """Whether ``out`` holds a run of ``texkit demo`` (same mesh, prompt and generator)."""
    try:
        cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    demo = demo_config(out).model_dump(mode="json")
    return all(cfg.get(key) == demo[key] for key in ("mesh", "prompts", "generator")) and read_run_id(out) is not None
