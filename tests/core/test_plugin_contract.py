"""One contract for every plugin kind: typed ``Params`` for renderers and generators, run-owned options,
plugin-supplied doctor checks, and no plugin knowledge in the core."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pydantic
import pytest

import texkit
from texkit.config import RunConfig
from texkit.errors import ConfigError
from texkit.registry import Registry, get_registry
from texkit.session import generator_options

REPO = Path(__file__).resolve().parents[2]


def _factory_plugin(with_params: bool) -> types.ModuleType:
    module = types.ModuleType("plugin_factory")

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        size: int = pydantic.Field(3, ge=1)
        mode: str = "fast"

    def typed_factory(params: Params):
        return ("typed", params.size, params.mode)

    def plain_factory(size: int = 3, mode: str = "fast"):
        return ("plain", size, mode)

    @texkit.hookimpl
    def texkit_register_renderers(register):
        if with_params:
            register("box", typed_factory, Params)
        else:
            register("box", plain_factory)

    module.texkit_register_renderers = texkit_register_renderers
    return module


@pytest.mark.parametrize("with_params", [True, False])
def test_misspelt_renderer_option_is_one_line_with_the_closest_valid_name(with_params):
    reg = Registry(load_entry_points=False)
    reg.register_plugin(_factory_plugin(with_params), distribution="dist-a")
    assert reg.make_renderer("box", size=5)[1:] == (5, "fast")
    with pytest.raises(ConfigError) as err:
        reg.make_renderer("box", sise=5)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown option 'sise'; did you mean 'size'?" in message and "renderer 'box'" in message


def test_all_option_errors_at_once():
    reg = Registry(load_entry_points=False)
    reg.register_plugin(_factory_plugin(True), distribution="dist-a")
    with pytest.raises(ConfigError, match="option 'size': .*; unknown option 'moda'; did you mean 'mode'"):
        reg.make_renderer("box", moda="x", size=0)


def test_misspelt_generator_option_names_the_closest_valid_one():
    with pytest.raises(ConfigError, match="generator 'tiny': unknown option 'lora_rnak'; did you mean 'lora_rank'"):
        get_registry().make_generator("tiny", lora_rnak=2)


def test_every_builtin_factory_declares_params_and_a_schema():
    schemas = get_registry().schemas()
    assert {"tiny", "stable-diffusion"} <= set(schemas["generators"])
    assert "torch" in schemas["renderers"]
    assert "lora_rank" in schemas["generators"]["tiny"]["properties"]
    assert "aa_walk_steps" in schemas["renderers"]["torch"]["properties"]


def test_run_owned_generator_options_come_from_the_run_config():
    import torch

    config = RunConfig.model_validate({"training": {"truncation": 2, "unet_checkpointing": False, "mixed_precision": "bf16"}})
    options = generator_options(config, torch.device("cpu"))
    assert options == {"device": "cpu", "truncation": 2, "checkpointing": False, "dtype": "bf16"}
    clash = RunConfig.model_validate({"generator": {"name": "tiny", "options": {"truncation": 1}}})
    with pytest.raises(ConfigError, match="generator.options.truncation is owned by the run: set training.truncation"):
        generator_options(clash, torch.device("cpu"))


def test_doctor_runs_checks_registered_by_plugins():
    from texkit.commands import doctor

    names = [c.name for c in doctor.plugin_checks()]
    assert "attention" in names  # registered by texkit-diffusers, not named by the core


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_no_plugin_package():
    plugin_packages = {p.name for p in (REPO / "plugins").glob("*/src/*") if p.is_dir() and (p / "__init__.py").exists()}
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in _imported_modules(path) if m.split(".")[0] in plugin_packages)
        for path in (REPO / "texkit").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_plugins_json_includes_every_option_schema():
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "texkit.commands.cli", "plugins", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    merged: dict[str, dict] = {}
    for row in rows:
        for kind, schemas in row.get("options", {}).items():
            merged.setdefault(kind, {}).update(schemas)
    assert "lora_rank" in merged["generators"]["tiny"]["properties"]
    assert "aa_walk_steps" in merged["renderers"]["torch"]["properties"]
    registered = {name for row in rows for kind in ("rewards", "renderers", "generators") for name in row["registers"].get(kind, [])}
    assert registered == {name for schemas in merged.values() for name in schemas}


def test_texkit_plugins_accepts_single_entry_point_names():
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, TEXKIT_PLUGINS="curvature_color,texkit-torch-render")
    proc = subprocess.run([sys.executable, "-m", "texkit.commands.cli", "rewards", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert names == {"curvature_color"}  # one reward of texkit-rewards-geometry, not its other five
