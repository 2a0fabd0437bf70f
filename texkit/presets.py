"""The paper's experiments as presets: commented run configs and eval specs shipped in the package.

A preset is a run config (``texkit/data/presets/<name>.toml``) with an eval spec beside it
(``<name>.eval.toml``), listed with a one-line description in ``index.toml`` of the same folder.
Both files are plain TOML that the normal validation reads (`texkit.config.parse_config`,
`texkit.evaluation.spec.EvalSpec`), so ``texkit train PRESET`` is exactly ``texkit train`` of the
file. Every preset also has a ``<name>-quick`` variant: the same settings, `QUICK_STEPS` steps
(sized with the step model of `texkit.planning` to about one GPU hour) and its own run folder.

Where a command takes a config (or eval spec) path, a preset name works too: an existing file of
that name wins, anything else that looks like a name (no folder, no ``.toml``) is a preset, and an
unknown name is a one-line error naming the closest preset (`resolve_preset`).
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from texkit.config import RunConfig, apply_overrides, parse_config, read_toml
from texkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "PRESETS_DIR",
    "QUICK_SUFFIX",
    "QUICK_STEPS",
    "QUICK_CHECKPOINT_EVERY",
    "Preset",
    "all_presets",
    "get_preset",
    "resolve_preset",
    "load_run_config",
    "load_eval_spec",
    "check_inputs",
    "set_toml_value",
]

PRESETS_DIR = Path(__file__).resolve().parent / "data" / "presets"
"""Where the preset files live (package data)."""

QUICK_SUFFIX = "-quick"
"""Name suffix of the quick variant of every preset."""

QUICK_STEPS = 250
"""Training steps of a quick variant. The planner (`texkit.planning`) predicts 11.5 s per step
(compiled, batch 1, six painted views of 10 DDIM steps, fitted to measurements on an H200) plus 93 s
compiling once: 0.83 h, leaving about ten minutes of the hour for loading the weights, the
before/after previews and a somewhat slower GPU (300 steps would be predicted at 0.99 h)."""

QUICK_CHECKPOINT_EVERY = 50
"""``training.checkpoint_every`` of a quick variant (five checkpoints in its 250 steps)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Preset:
    """One preset (or the quick variant of one).

    Attributes:
        name: what ``texkit presets`` lists and commands accept, e.g. ``"symmetry-quick"``.
        base: the name of the files it comes from (``<base>.toml``, ``<base>.eval.toml``).
        description: one line for the listing.
        inputs: files the user supplies, ``{config key: what to pass there}`` (e.g. ``mesh.path``).
        quick: True for a ``-quick`` variant.
    """

    name: str
    base: str
    description: str
    inputs: dict[str, str] = field(default_factory=dict)
    quick: bool = False

    @property
    def config_file(self) -> Path:
        """The run config file it reads (the base preset's, for a quick variant)."""
        return PRESETS_DIR / f"{self.base}.toml"

    @property
    def eval_file(self) -> Path:
        """The eval spec file it reads (the base preset's, for a quick variant)."""
        return PRESETS_DIR / f"{self.base}.eval.toml"

    @property
    def run_dir(self) -> str:
        """``output.dir`` of the preset: ``runs/<name>``."""
        return f"runs/{self.name}"

    def config_text(self) -> str:
        """The commented run config (TOML); for a quick variant with its steps, checkpoints and run folder."""
        text = self.config_file.read_text(encoding="utf-8")
        if not self.quick:
            return text
        header = (
            f'# Quick variant "{self.name}": the settings of "{self.base}" for {QUICK_STEPS} steps (about one GPU hour;\n'
            f"# `texkit train {self.name} --dry-run` predicts it), a checkpoint every {QUICK_CHECKPOINT_EVERY}, "
            f"its own run folder.\n#\n"
        )
        text = set_toml_value(text, "training", "steps", str(QUICK_STEPS))
        text = set_toml_value(text, "training", "checkpoint_every", str(QUICK_CHECKPOINT_EVERY))
        text = set_toml_value(text, "output", "dir", f'"{self.run_dir}"')
        return header + text

    def eval_text(self) -> str:
        """The commented eval spec (TOML); a quick variant's evaluates its own run folder."""
        text = self.eval_file.read_text(encoding="utf-8")
        if not self.quick:
            return text
        text = text.replace(f"texkit eval {self.base} ", f"texkit eval {self.name} ").replace(f"evals/{self.base}\n", f"evals/{self.name}\n")
        return set_toml_value(text, None, "adapters", f'["{self.run_dir}"]')

    def config_data(self) -> dict[str, Any]:
        """The run config as a TOML table (not validated)."""
        return tomllib.loads(self.config_text())

    def eval_data(self) -> dict[str, Any]:
        """The eval spec as a TOML table (not validated)."""
        return tomllib.loads(self.eval_text())

    def config(self, overrides: list[str] | None = None) -> RunConfig:
        """The validated run config, with ``--set`` overrides applied.

        Raises:
            ConfigError: an override names an unknown key or gives a bad value.
        """
        return parse_config(apply_overrides(self.config_data(), overrides or []))

    def training_prompts(self) -> list[str]:
        """The prompts the preset trains on (``prompts.text``)."""
        return list(self.config_data()["prompts"]["text"])

    def reward_summary(self) -> str:
        """The rewards in one line: ``curvature_color (mode=smooth, compat=reference)``."""
        parts = []
        for name, table in self.config_data().get("rewards", {}).items():
            shown = [f"{k}={v}" for k, v in table.items() if k != "weight" and isinstance(v, (str, int, float)) and f"rewards.{name}.{k}" not in self.inputs]
            parts.append(f"{name} ({', '.join(shown)})" if shown else name)
        return "; ".join(parts)


def _index() -> dict[str, dict[str, Any]]:
    return tomllib.loads((PRESETS_DIR / "index.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _presets() -> tuple[Preset, ...]:
    out = []
    for base, entry in _index().items():
        inputs = dict(entry.get("inputs", {}))
        out.append(Preset(base, base, entry["description"], inputs))
        quick = f"quick variant of {base}: {QUICK_STEPS} steps, about one GPU hour"
        out.append(Preset(base + QUICK_SUFFIX, base, quick, inputs, quick=True))
    return tuple(out)


def all_presets(quick: bool = True) -> list[Preset]:
    """Every preset in listing order, each followed by its quick variant (``quick=False``: the base presets only)."""
    return [p for p in _presets() if quick or not p.quick]


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ConfigError: no such preset (the message names the closest one).
    """
    for preset in _presets():
        if preset.name == name:
            return preset
    raise ConfigError(f"unknown preset '{name}'{_closest(name)}")


def _closest(name: str) -> str:
    names = [p.name for p in _presets()]
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if match:
        return f"; did you mean '{match[0]}'? (`texkit presets` lists them)"
    return f"; use one of: {', '.join(p.name for p in all_presets(quick=False))} (or NAME{QUICK_SUFFIX}; `texkit presets` lists them)"


def resolve_preset(source: str | Path | None) -> Preset | None:
    """The preset a command argument names, or None when it is a file path (or None).

    An existing file wins over a preset of the same name; an argument with a folder or a ``.toml``
    ending is a path. Anything else is a preset name.

    Raises:
        ConfigError: a name that is neither a file nor a preset (names the closest preset, or the
            file ``NAME.toml`` when that exists).
    """
    if source is None:
        return None
    text = str(source)
    if Path(text).is_file() or not _NAME.match(text) or text.endswith(".toml"):
        return None
    for preset in _presets():
        if preset.name == text:
            return preset
    if Path(f"{text}.toml").is_file():
        raise ConfigError(f"no file or preset named '{text}'; did you mean the file {text}.toml?")
    raise ConfigError(f"no config file or preset named '{text}'{_closest(text)}")


def load_run_config(source: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """The run config of a TOML file or a preset name, with ``--set`` overrides applied.

    Raises:
        ConfigError: unknown preset, unreadable file, invalid key or value (one line).
    """
    preset = resolve_preset(source)
    if preset is not None:
        return preset.config(overrides)
    if source is None:
        return parse_config(apply_overrides({}, overrides or []))
    data = read_toml(source, hint="pass the path of a TOML run config or a preset name (`texkit presets` lists them)")
    return parse_config(apply_overrides(data, overrides or []))


def load_eval_spec(source: str | Path | None, overrides: list[str] | None = None, fields: dict[str, Any] | None = None) -> Any:
    """The eval spec of a TOML file or a preset name (`texkit.evaluation.spec.load_spec` semantics).

    Args:
        source: a spec file, a preset name (its eval spec), or None (an empty spec).
        overrides: ``--set`` overrides, applied to the file's or preset's values.
        fields: fields that replace them afterwards (None values: back to the default).

    Returns:
        The validated `texkit.evaluation.spec.EvalSpec`.
    """
    from texkit.evaluation.spec import load_spec

    preset = resolve_preset(source)
    if preset is None:
        return load_spec(source, overrides, fields)
    data = apply_overrides(preset.eval_data(), overrides or [])
    return load_spec(None, [], {**data, **(fields or {})})


def check_inputs(preset: Preset, config: RunConfig) -> None:
    """Refuse to start a preset whose input files (mesh, reference texture) are not there, before anything loads.

    Raises:
        ConfigError: one line naming the key, the missing file and the ``--set`` that fixes it.
    """
    from texkit.geometry.primitives import BUILTIN_MESHES

    values = config.model_dump(mode="json")
    for key, what in preset.inputs.items():
        value: Any = values
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or (key == "mesh.path" and value in BUILTIN_MESHES) or Path(str(value)).is_file():
            continue
        raise ConfigError(f"preset '{preset.name}': {key} = '{value}' is not a file here; pass --set {key}=PATH ({what})")


def set_toml_value(text: str, table: str | None, key: str, value: str) -> str:
    """``text`` with the value of ``key`` in ``[table]`` (None: the top level) replaced, comments kept.

    Only a one-line ``key = value`` entry is edited; the result is checked by reading it back.

    Args:
        text: TOML text.
        table: the table's name as written in its header (``"training"``), or None.
        key: a bare key of that table.
        value: the new value as a TOML literal (``"250"``, ``'"runs/x"'``).

    Raises:
        ValueError: the key is not a one-line entry of the table.
    """
    lines = text.splitlines(keepends=True)
    current: str | None = None
    entry = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)([^#\n]*?)(\s*(#.*)?)$")
    for i, line in enumerate(lines):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
            continue
        match = entry.match(line.rstrip("\n"))
        if current == table and match:
            lines[i] = match.group(1) + value + match.group(3) + ("\n" if line.endswith("\n") else "")
            out = "".join(lines)
            data = tomllib.loads(out)
            node = data if table is None else data[table]
            if node[key] != tomllib.loads(f"v = {value}")["v"]:  # pragma: no cover - guarded by the regex
                raise ValueError(f"could not set {key} in [{table}]")
            return out
    raise ValueError(f"no one-line entry '{key}' in [{table or 'top level'}]")
