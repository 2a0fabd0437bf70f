"""Atomic training checkpoints: adapter, optimiser, camera angles, RNG states and step.

A checkpoint is a folder ``checkpoints/step_<n>`` written under a temporary name and renamed into
place; ``checkpoints/latest`` (a one-line file, also replaced atomically) names the newest
complete one. A failure mid-write therefore leaves the previous checkpoint and pointer intact.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from texkit.errors import TexkitError
from texkit.io import atomic_write_text

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint"]


def save_checkpoint(root: Path, step: int, generator: Any, state: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``root`` (the run's checkpoints folder) and prune old ones.

    Args:
        root: checkpoints folder.
        step: the number of completed steps.
        generator: has ``save_adapter(folder)``.
        state: picklable-by-torch dict (optimiser state, angles, ...); RNG states are added.
        keep: how many complete checkpoints to keep.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step:06d}.", dir=root))
    try:
        generator.save_adapter(tmp / "adapter")
        full = dict(state)
        full["step"] = step
        full["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        torch.save(full, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(root / "latest", final.name + "\n")
    complete = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The folder named by ``root/latest``, or None when there is no checkpoint."""
    pointer = root / "latest"
    if not pointer.exists():
        return None
    folder = root / pointer.read_text().strip()
    return folder if (folder / "state.pt").exists() else None


def load_checkpoint(folder: Path, generator: Any) -> dict[str, Any]:
    """Load the adapter into ``generator`` and return the saved state (RNG states restored).

    Raises:
        TexkitError: when the folder is not a complete checkpoint.
    """
    if not (folder / "state.pt").exists():
        raise TexkitError(f"{folder} is not a texkit checkpoint (state.pt missing); resume from the run folder")
    generator.load_adapter(folder / "adapter")
    state = torch.load(folder / "state.pt", weights_only=False)
    rng = state.get("rng", {})
    if rng:
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
    return state
