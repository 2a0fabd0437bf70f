"""The plain record of a run folder: the validated config (JSON and TOML) and the versions that ran.

``texkit train`` and ``texkit generate`` write it first; the report (`texkit.report`) and
``texkit eval`` (`texkit.evaluation`) read it back. Nothing here draws a page.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from texkit.config import RunConfig, to_toml
from texkit.io import atomic_write_text
from texkit.registry import get_registry

__all__ = ["write_run_record", "versions_record", "recorded_settings", "PREVIEW_SEED", "HISTORY_KEY"]

PREVIEW_SEED = 1234
"""Noise seed of the before/after previews of a training run and of ``texkit generate`` (view k: ``seed + k``)."""


HISTORY_KEY = "history"
"""Key of ``config.json`` that holds a training run's settings per step range (`texkit.run_history`)."""


def recorded_settings(record: dict[str, object]) -> dict[str, object]:
    """The run config in a ``config.json`` record: the record without its ``history`` (a config file
    ``texkit.config.parse_config`` accepts).

    Args:
        record: ``config.json`` as read (a dict).
    """
    return {key: value for key, value in record.items() if key != HISTORY_KEY}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_record(
    run_dir: Path, config: RunConfig, generator: dict[str, str] | None = None, history: list[dict[str, object]] | None = None
) -> None:
    """``config.json`` and ``config.toml`` (the validated config; the TOML is a config file ``texkit train``
    accepts again) and ``versions.json`` (python, torch, texkit, plugins, git commit).

    Args:
        run_dir: the run folder.
        config: the validated run config.
        generator: what the generator says about itself (``Generator.describe()``: backends that ran,
            the libraries it runs on), recorded under ``"generator"``; the core names no plugin library.
        history: a training run's settings per step range (`texkit.run_history`), kept in
            ``config.json`` under ``"history"``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    record = json.loads(config.model_dump_json())
    if history is not None:
        record[HISTORY_KEY] = history
    atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(run_dir / "config.toml", to_toml(config))  # `texkit train run/config.toml` runs it again
    atomic_write_text(run_dir / "versions.json", json.dumps(versions_record(generator), indent=2) + "\n")


def versions_record(generator: dict[str, str] | None = None) -> dict[str, object]:
    """``{"python", "torch", "git_commit", "texkit", "plugins": {distribution: version}, "generator"?}`` of this process."""
    versions: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__, "git_commit": _git_commit()}
    try:
        versions["texkit"] = metadata.version("texkit")
    except metadata.PackageNotFoundError:
        versions["texkit"] = None
    versions["plugins"] = get_registry().versions()
    if generator:
        versions["generator"] = dict(generator)
    return versions
