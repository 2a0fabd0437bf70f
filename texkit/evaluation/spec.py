"""The eval spec: what ``texkit eval`` evaluates, as a TOML file and a pydantic model.

An eval spec names the held-out set (prompts, seeds, meshes), the metrics (any installed reward,
by name and parameters, with an optional label so one reward can appear twice) and, optionally,
the painting settings. Every key is optional; unknown keys are errors that name the closest
valid key. Example (``docs/guide/evaluate.md`` explains every key)::

    adapters = ["runs/curvature"]            # run folders or adapter folders; --adapter adds more
    prompts = ["a wooden chess piece", "a marble bust"]
    num_seeds = 4                            # seeds 0..3; or seeds = [7, 11]
    meshes = ["demo"]                        # files or built-in names; default: the adapter run's mesh
    samples = 4                              # items painted together in one batch

    [[metrics]]
    name = "curvature_color"
    params = { tau = -0.5 }

    [[metrics]]
    name = "curvature_color"
    label = "curvature_color_reference"
    params = { tau = -0.5, compat = "reference" }

Settings not given (generator, renderer, cameras, texture, the prompt's prefix and negative
prompt, the mesh's normalisation) come from the first adapter's run config, so an adapter is
evaluated the way it was trained. The tables ``[generator]`` and ``[renderer]`` replace the run's
(name and options); the keys set in ``[cameras]`` and ``[texture]`` replace those of the run, the
others stay (same keys as the run config's).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from texkit.config import (
    CameraConfig,
    ComponentConfig,
    TextureConfig,
    apply_overrides,
    read_toml,
    toml_text,
    validate_model,
)
from texkit.errors import ConfigError
from texkit.options import parse_key_values

__all__ = ["EvalSpec", "MetricSpec", "load_spec", "parse_metric", "DEFAULT_SEEDS", "BOOTSTRAP_RESAMPLES"]

DEFAULT_SEEDS = 4
"""Seeds per prompt when the spec sets neither ``seeds`` nor ``num_seeds``."""

BOOTSTRAP_RESAMPLES = 10_000
"""Resamples of the paired bootstrap by default (`texkit.evaluation.stats.paired_bootstrap_ci`)."""

_LABEL = re.compile(r"^[A-Za-z0-9_.\-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MetricSpec(_Strict):
    """One metric: an installed reward by name, with its parameters, under a label."""

    name: str = Field(description="Registered reward name (`texkit rewards` lists them); differentiable or not.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The reward's parameters (as in a run config's reward table, without `weight`)."
    )
    label: str | None = Field(
        None,
        description="Name of this metric in the results (letters, digits, `_`, `-`, `.`); default: `name`. Two metrics "
        "with the same reward need different labels, e.g. its default and its `compat = \"reference\"` mode.",
    )

    @field_validator("label")
    @classmethod
    def _label_chars(cls, value: str | None) -> str | None:
        if value is not None and not _LABEL.match(value):
            raise ValueError(f"label '{value}' may hold only letters, digits, '_', '-' and '.'")
        return value

    @property
    def key(self) -> str:
        """The label the results use: ``label``, else ``name``."""
        return self.label or self.name


class EvalSpec(_Strict):
    """What ``texkit eval`` evaluates; every field is optional (see the module docstring for the TOML form)."""

    adapters: list[str] = Field(
        default_factory=list,
        description="Adapters to evaluate besides the base model (always evaluated): run folders of `texkit train` "
        "(their final `adapter/` and `config.json`) or adapter folders/files; `--adapter` adds more.",
    )
    prompts: list[str] = Field(
        default_factory=list, description="Held-out prompts; should be disjoint from the training prompts (overlap is noted)."
    )
    prompts_file: str | None = Field(
        None, description="Text file with one prompt per line (blank lines skipped), appended to `prompts`."
    )
    seeds: list[int] | None = Field(
        None, description="Noise seeds painted for every prompt (seed s paints view k with noise seed 1000 s + k)."
    )
    num_seeds: int | None = Field(None, ge=1, description="Use seeds 0 .. num_seeds - 1 (when `seeds` is not set); default 4.")
    meshes: list[str] = Field(
        default_factory=list,
        description="Mesh files or built-in names (`demo`, `sphere`, ...); default: the mesh of the first adapter's run.",
    )
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        description="Metrics computed on every texture, from the same renders; default: the rewards of the first "
        "adapter's run config, with their parameters.",
    )
    samples: int = Field(
        1,
        ge=1,
        description="Items (prompt + seed) painted together in one batch, through the training batch path "
        "(`training.batch_size`); results are identical run to run for the same value.",
    )
    grid_views: int = Field(4, ge=1, description="Views in each item's `views.png` (evenly spaced in azimuth at -20° elevation).")
    bootstrap_resamples: int = Field(
        BOOTSTRAP_RESAMPLES, ge=100, description="Resamples of the paired bootstrap confidence interval."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap confidence interval of the paired difference.")
    bootstrap_seed: int = Field(0, description="Seed of the bootstrap resampling (the summary is deterministic).")
    device: str | None = Field(None, description="`cpu`, `cuda`, `cuda:1`, `auto`; default: the adapter run's device.")
    generator: ComponentConfig | None = Field(
        None, description="The generator (name and options); default: the first adapter run's. Every adapter must fit it."
    )
    renderer: ComponentConfig | None = Field(None, description="The renderer; default: the first adapter run's.")
    cameras: CameraConfig | None = Field(
        None,
        description="Painting and metric cameras: the keys set here replace the first adapter run's (learnt angles are not loaded).",
    )
    texture: TextureConfig | None = Field(
        None, description="Texture and render resolutions: the keys set here replace the first adapter run's."
    )

    @model_validator(mode="after")
    def _unique_labels(self) -> "EvalSpec":
        seen: set[str] = set()
        for metric in self.metrics:
            if metric.key in seen:
                raise ValueError(f"two metrics are labelled '{metric.key}'; give one of them another label")
            seen.add(metric.key)
        return self

    def seed_list(self) -> list[int]:
        """``seeds``, else ``0 .. num_seeds - 1`` (default `DEFAULT_SEEDS`), duplicates dropped in order."""
        seeds = self.seeds if self.seeds is not None else list(range(self.num_seeds or DEFAULT_SEEDS))
        if not seeds:
            raise ConfigError("the eval spec's seeds list is empty; give at least one seed (or num_seeds)")
        return list(dict.fromkeys(seeds))

    def prompt_list(self) -> list[str]:
        """``prompts`` plus the lines of ``prompts_file``, duplicates dropped in order.

        Raises:
            ConfigError: the file is missing, or there is no prompt at all.
        """
        prompts = [p.strip() for p in self.prompts if p.strip()]
        if self.prompts_file:
            path = Path(self.prompts_file)
            if not path.is_file():
                raise ConfigError(f"prompts_file {path} not found; pass a text file with one prompt per line")
            prompts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not prompts:
            raise ConfigError("no eval prompts: pass --prompt (repeat it) or --prompts-file, or set prompts in the eval spec")
        return list(dict.fromkeys(prompts))

    def to_toml(self) -> str:
        """The spec as TOML that `load_spec` reads back to the same spec."""
        return toml_text(self.model_dump(mode="json", exclude_defaults=True))


def parse_metric(text: str) -> MetricSpec:
    """A metric from its command-line form ``NAME[@LABEL][:KEY=VALUE,...]``.

    Values are read as JSON when they parse (numbers, ``true``, quoted strings), else as plain
    strings: ``curvature_color:tau=-0.5`` or ``curvature_color@ref:tau=-0.5,compat=reference``.

    Raises:
        ConfigError: an empty name or a parameter without ``=``.
    """
    head, _, rest = text.partition(":")
    name, _, label = head.partition("@")
    params = parse_key_values([p for p in rest.split(",") if p.strip()], f"--metric '{text}' (NAME[@LABEL][:KEY=VALUE,...]): parameter")
    if not name.strip():
        raise ConfigError(f"--metric '{text}' names no reward; pass NAME[@LABEL][:KEY=VALUE,...], e.g. curvature_color:tau=-0.5")
    data: dict[str, Any] = {"name": name.strip(), "params": params}
    if label.strip():
        data["label"] = label.strip()
    return validate_model(MetricSpec, data, "--metric", "on the command line")


def load_spec(path: str | Path | None = None, overrides: list[str] | None = None, fields: dict[str, Any] | None = None) -> EvalSpec:
    """Read an eval spec (TOML; None: an empty one), apply ``--set`` overrides, then replace whole fields.

    Args:
        path: the spec file, or None.
        overrides: ``["key=value", ...]`` as ``texkit eval --set`` takes them (dotted keys, TOML values).
        fields: fields that replace the file's (``{"prompts": [...], "metrics": [MetricSpec, ...]}``);
            a None value removes the file's value (the field's default applies).

    Raises:
        ConfigError: the file cannot be read, or a key or value is invalid (one line).
    """
    data = read_toml(path, "eval spec", "pass the path of a TOML eval spec (docs/guide/evaluate.md)") if path is not None else {}
    data = apply_overrides(data, overrides or [])
    for key, value in (fields or {}).items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = [m.model_dump() if isinstance(m, MetricSpec) else m for m in value] if key == "metrics" else value
    return validate_model(EvalSpec, data, "eval spec", "in the eval spec or with --set")
