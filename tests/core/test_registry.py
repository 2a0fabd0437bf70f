"""Plugin discovery: entry points, duplicate names, broken plugins, TEXKIT_PLUGINS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import texkit
from texkit.errors import PluginError, UnknownNameError
from texkit.registry import Registry


def _reward_plugin(name: str) -> types.ModuleType:
    module = types.ModuleType(f"plugin_{name}")

    class Dummy(texkit.Reward):
        description = "test reward"

        def __call__(self, ctx):
            return texkit.RewardOutput(value=ctx.texture.image.mean())

    Dummy.name = name

    @texkit.hookimpl
    def texkit_register_rewards(register):
        register(Dummy)

    module.texkit_register_rewards = texkit_register_rewards
    return module


def test_register_and_lookup_reward():
    reg = Registry(load_entry_points=False)
    reg.register_plugin(_reward_plugin("brightness"), distribution="dist-a")
    assert reg.names("rewards") == ["brightness"]
    reward = reg.make_reward("brightness")
    tex = texkit.Texture.constant(4, (0.2, 0.4, 0.6))
    assert float(reward(texkit.RewardContext(mesh=None, texture=tex)).value) == pytest.approx(0.4)


def test_duplicate_name_disables_only_that_name_and_names_both_distributions():
    reg = Registry(load_entry_points=False)
    reg.register_plugin(_reward_plugin("same"), distribution="dist-a")
    reg.register_plugin(_reward_plugin("other"), distribution="dist-a")
    with pytest.warns(RuntimeWarning, match="'same' is registered by both 'dist-a' and 'dist-b'"):
        reg.register_plugin(_reward_plugin("same"), distribution="dist-b")
    with pytest.raises(PluginError, match="dist-a.*dist-b.*disabled"):
        reg.get("rewards", "same")
    assert reg.names("rewards") == ["other"]  # the rest of both plugins stays usable


def test_unknown_name_suggests_closest():
    reg = Registry(load_entry_points=False)
    reg.register_plugin(_reward_plugin("symmetry"), distribution="dist-a")
    with pytest.raises(UnknownNameError, match="did you mean 'symmetry'"):
        reg.get("rewards", "symetry")


def test_reward_params_are_validated():
    class WithParams(texkit.Reward):
        name = "with_params"

        class Params(texkit.Reward.Params):
            k: int = 3

    assert WithParams({"k": 5}).params.k == 5
    with pytest.raises(texkit.ConfigError, match="parameter 'kk'.*valid parameters: k"):
        WithParams({"kk": 5})


def _fake_distribution(root: Path, dist: str, module: str, body: str) -> None:
    """An installed distribution in ``root``: a module plus a .dist-info with a texkit entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[texkit]\n{module} = {module}\n")


GOOD = """
    import texkit

    class Brightness(texkit.Reward):
        name = "test_brightness"
        description = "mean grey level"

        def __call__(self, ctx):
            return texkit.RewardOutput(value=ctx.texture.image.mean())

    @texkit.hookimpl
    def texkit_register_rewards(register):
        register(Brightness)
"""


def _plugins_json(tmp_path: Path, env_extra: dict[str, str] | None = None) -> tuple[list[dict], str]:
    env = dict(os.environ, PYTHONPATH=str(tmp_path), **(env_extra or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "texkit.commands.cli", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_installed_plugin_listed_and_broken_one_reported(tmp_path):
    _fake_distribution(tmp_path, "texkit-test-good", "texkit_test_good", GOOD)
    _fake_distribution(tmp_path, "texkit-test-broken", "texkit_test_broken", "raise RuntimeError('boom at import')\n")
    rows, stderr = _plugins_json(tmp_path)
    by_dist = {r["distribution"]: r for r in rows}
    assert by_dist["texkit-test-good"]["version"] == "1.2.3"
    assert by_dist["texkit-test-good"]["registers"] == {"rewards": ["test_brightness"]}
    assert "boom at import" in by_dist["texkit-test-broken"]["error"]
    assert "texkit-test-broken" in stderr  # the warning names the distribution
    # the other installed plugins still loaded
    assert any(r["error"] is None and r["distribution"] != "texkit-test-good" for r in rows) or len(rows) == 2


def test_texkit_plugins_env_limits_distributions(tmp_path):
    _fake_distribution(tmp_path, "texkit-test-good", "texkit_test_good", GOOD)
    rows, _ = _plugins_json(tmp_path, {"TEXKIT_PLUGINS": "texkit-test-good"})
    assert [r["distribution"] for r in rows] == ["texkit-test-good"]
    rows, _ = _plugins_json(tmp_path, {"TEXKIT_PLUGINS": ""})
    assert rows == []
