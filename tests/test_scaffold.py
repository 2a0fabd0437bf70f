"""``texkit new-reward``: the scaffolded package installs, registers, scores and passes its own test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import texkit
from texkit.commands.scaffold import create_reward_package, package_names, validate_reward_name
from texkit.registry import Registry
from texkit.types import RewardContext, Texture


@pytest.mark.parametrize("name", ["Stripes", "1stripes", "stripes-2", "my reward", "", "class", "a__b", "end_", "x" * 41])
def test_invalid_names_are_refused(tmp_path, name):
    with pytest.raises(texkit.TexkitError, match="invalid reward name"):
        create_reward_package(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_derived_names():
    assert validate_reward_name("warm_colors2") == "warm_colors2"
    assert package_names("warm_colors") == {
        "name": "warm_colors",
        "dist": "texkit-reward-warm-colors",
        "package": "texkit_reward_warm_colors",
        "class_name": "WarmColorsReward",
    }


def test_layout_and_valid_python(tmp_path):
    path = create_reward_package("stripes", tmp_path / "new" / "dir")
    assert path == tmp_path / "new" / "dir" / "texkit-reward-stripes"
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/texkit_reward_stripes/__init__.py",
        "src/texkit_reward_stripes/reward.py",
        "tests/test_stripes_reward.py",
    ]
    for py in path.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")
    pyproject = (path / "pyproject.toml").read_text()
    assert '[project.entry-points.texkit]\nstripes = "texkit_reward_stripes.reward"' in pyproject
    assert [p.name for p in path.parent.iterdir()] == ["texkit-reward-stripes"]  # no staging folder left


def test_never_overwrites_an_existing_folder(tmp_path):
    path = create_reward_package("stripes", tmp_path)
    (path / "README.md").write_text("mine")
    with pytest.raises(texkit.TexkitError, match="already exists"):
        create_reward_package("stripes", tmp_path)
    assert (path / "README.md").read_text() == "mine"
    file_dir = tmp_path / "a_file"
    file_dir.write_text("")
    with pytest.raises(texkit.TexkitError, match="is a file"):
        create_reward_package("stripes", file_dir)


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_scaffold_installs_registers_scores_and_passes_its_test(tmp_path, monkeypatch):
    name = f"scaffold_probe_{os.getpid()}"
    names = package_names(name)
    path = create_reward_package(name, tmp_path)
    try:
        installed = _pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(path))
        assert installed.returncode == 0, installed.stderr[-2000:]

        # a fresh registry in this process finds the entry point (the editable path is what the new .pth adds)
        monkeypatch.syspath_prepend(str(path / "src"))
        monkeypatch.setenv("TEXKIT_PLUGINS", names["dist"])
        registry = Registry()
        assert registry.names("rewards") == [name]
        assert registry.get("rewards", name).distribution == names["dist"]

        reward = registry.make_reward(name, {"target": 0.5})
        mesh = texkit.Mesh.from_arrays([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], uvs=[[0, 0], [1, 0], [0, 1]])
        out = reward(RewardContext(mesh=mesh, texture=Texture(torch.full((4, 4, 3), 0.25))))
        assert float(out.value) == pytest.approx(-(0.25**2))
        assert out.metrics["mean_brightness"] == pytest.approx(0.25)

        # the `texkit rewards` command of a new process lists it
        env = {**os.environ, "TEXKIT_PLUGINS": names["dist"]}
        listed = subprocess.run(
            [sys.executable, "-m", "texkit.commands.cli", "rewards", "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert f'"name": "{name}"' in listed.stdout

        # its own test passes
        tested = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=path, capture_output=True, text=True, env=env, timeout=300,
        )
        assert tested.returncode == 0, tested.stdout[-3000:]
        assert "6 passed" in tested.stdout
    finally:
        _pip("uninstall", "-y", "-q", names["dist"])
    assert _pip("show", "-q", names["dist"]).returncode != 0
