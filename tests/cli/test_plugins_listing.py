"""``texkit plugins`` lists one row per installed package; ``texkit new-reward`` refuses a taken name."""

from __future__ import annotations

import subprocess
import sys


def _texkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "texkit.commands.cli", *args], capture_output=True, text=True, timeout=120)


def test_plugins_table_has_one_row_per_package():
    proc = _texkit("plugins")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()[1:]]
    packages = [row[0] for row in rows]
    assert len(packages) == len(set(packages))
    geometry = dict((row[0], row[2]) for row in rows)["texkit-rewards-geometry"]
    assert "symmetry" in geometry and "curvature_color" in geometry


def test_new_reward_refuses_a_name_an_installed_reward_has(tmp_path):
    proc = _texkit("new-reward", "symmetry", "--dir", str(tmp_path))
    assert proc.returncode == 2 and "taken by the installed texkit-rewards-geometry" in proc.stderr
    assert list(tmp_path.iterdir()) == []
