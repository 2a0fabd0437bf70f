"""What a resumed run may change, and the record of what each step range used.

``texkit train --resume`` compares its config with the one the run recorded (``config.json``):

* `CHANGEABLE` settings (steps, learning rates, checkpoint and log intervals, and how the run is
  executed: device, gradient checkpointing, the preview grid) take effect from the next step; the learning rates
  are set on the optimiser after its state is restored.
* every other setting (mesh, prompts, rewards, generator and its LoRA shape, cameras, texture,
  batch, seed, optimiser betas, ...) would make the run a different run: a difference is refused in
  one line listing it, unless ``--allow-config-change`` is given.
* ``output.dir`` is not compared: a run folder that was moved is resumed where it is.

``config.json`` keeps, besides the current config, ``history``: one entry per step range, ``{"first_step":
n, "settings": {key: value of every changeable setting}, "changed": {key: [old, new]}}``, the
first for the run's start and one for every resume that changed something.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texkit.config import RunConfig
from texkit.errors import ConfigError
from texkit.run_record import HISTORY_KEY, recorded_settings

__all__ = ["CHANGEABLE", "ConfigChange", "ResumeChanges", "compare_with_run", "flatten_config", "read_run_config", "updated_history"]

CHANGEABLE = (
    "training.steps",
    "training.lr",
    "training.camera_lr",
    "training.checkpoint_every",
    "training.log_every",
    "training.unet_checkpointing",
    "training.view_checkpointing",
    "output.grid_views",
    "device",
)
"""Settings a resumed run may change (dotted config keys); any other difference changes the run itself."""

NOT_COMPARED = ("output.dir",)
"""Where the run lives: a run folder that was moved is resumed where it is now."""


@dataclass(frozen=True)
class ConfigChange:
    """One setting whose value differs between the run's config and the new one (``None``: absent)."""

    key: str
    old: Any
    new: Any

    @property
    def changeable(self) -> bool:
        """Whether a resumed run may change it (`CHANGEABLE`)."""
        return self.key in CHANGEABLE

    def describe(self, width: int = 60) -> str:
        """``training.lr 0.001 -> 0.5`` (long values shortened with an ellipsis; the key never is)."""
        return f"{self.key} {_short(self.old, width)} -> {_short(self.new, width)}"


def _short(value: Any, width: int) -> str:
    text = "(not set)" if value is None else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class ResumeChanges:
    """The differences between the run's recorded config and the resuming one.

    Attributes:
        changes: every differing setting, changeable ones first.
        recorded: the run's ``config.json`` (its ``history`` included), empty when it has none.
    """

    changes: list[ConfigChange] = field(default_factory=list)
    recorded: dict[str, Any] = field(default_factory=dict)

    @property
    def fixed(self) -> list[ConfigChange]:
        """The differences a resumed run may not make without ``--allow-config-change``."""
        return [c for c in self.changes if not c.changeable]

    def notice(self) -> str:
        """One line saying what the resumed run uses differently (empty when nothing differs)."""
        return "resuming with changed settings: " + ", ".join(c.describe() for c in self.changes) if self.changes else ""


def flatten_config(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"training": {"lr": 1}}`` -> ``{"training.lr": 1}``; lists and empty tables stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten_config(value, name))
        else:
            out[name] = value
    return out


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.json`` as recorded (empty when the folder has none or it is unreadable)."""
    try:
        data = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def compare_with_run(run_dir: Path, config: RunConfig, allow_change: bool = False) -> ResumeChanges:
    """Compare ``config`` with the config the run in ``run_dir`` recorded.

    Args:
        run_dir: the run folder (its ``config.json``).
        config: the config of the resuming command.
        allow_change: accept differences in settings that cannot change mid-run (``--allow-config-change``).

    Returns:
        The differences (none when the run recorded no config).

    Raises:
        ConfigError: a setting that cannot change mid-run differs and ``allow_change`` is false
            (one line listing every such difference, old -> new).
    """
    recorded = read_run_config(run_dir)
    if not recorded:
        return ResumeChanges()
    old = flatten_config(recorded_settings(recorded))
    new = flatten_config(json.loads(config.model_dump_json()))
    keys = sorted((set(old) | set(new)) - set(NOT_COMPARED))
    changes = [ConfigChange(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]
    changes.sort(key=lambda c: not c.changeable)
    result = ResumeChanges(changes, recorded)
    fixed = result.fixed
    if fixed and not allow_change:
        listed = "; ".join(c.describe() for c in fixed)
        raise ConfigError(
            f"the run in {run_dir} was trained with other settings that cannot change mid-run ({listed}); "
            "restore them, start a new run (--overwrite or another output.dir), or pass --allow-config-change to continue anyway"
        )
    return result


def _changeable_settings(config: RunConfig) -> dict[str, Any]:
    flat = flatten_config(json.loads(config.model_dump_json()))
    return {k: flat.get(k) for k in CHANGEABLE}


def updated_history(recorded: dict[str, Any], config: RunConfig, changes: list[ConfigChange], first_step: int) -> list[dict[str, Any]]:
    """The run's history with the step range that starts at ``first_step`` (the next step to train).

    Entries that start after ``first_step`` are dropped (a resume from an earlier checkpoint redoes
    those steps); a new entry is added when there is no history yet, when the changeable settings
    differ from the last entry's, or when a fixed setting changed (``--allow-config-change``).

    Args:
        recorded: the run's ``config.json`` (empty for a new run).
        config: the config the steps from ``first_step`` on use.
        changes: what differs from the recorded config.
        first_step: the first step (1-based) trained with ``config``.
    """
    old = recorded.get(HISTORY_KEY)
    history = [h for h in old if isinstance(h, dict) and int(h.get("first_step", 1)) < first_step] if isinstance(old, list) else []
    if not history and recorded and first_step > 1:  # a run recorded before the history existed
        settings = flatten_config(recorded_settings(recorded))
        history = [{"first_step": 1, "settings": {k: settings.get(k) for k in CHANGEABLE}}]
    current = _changeable_settings(config)
    if history and history[-1].get("settings") == current and all(c.changeable for c in changes):
        return history
    entry: dict[str, Any] = {"first_step": first_step, "settings": current}
    if changes and history:
        entry["changed"] = {c.key: [c.old, c.new] for c in changes}
    return [*history, entry]
