"""Issue 15 item 2: no traceback for usage or config errors, --version, untruncated listings, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest


def _texkit(*args: str) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess, stdout piped (not a terminal), as `texkit ... | cat`."""
    return subprocess.run([sys.executable, "-m", "texkit.commands.cli", *args], capture_output=True, text=True, timeout=300)


def test_version_prints_the_installed_version(run_texkit):
    result = run_texkit(["--version"])
    assert result.code == 0 and result.stdout.strip() == f"texkit {metadata.version('texkit')}"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [(["nosuchcmd"], ["nosuchcmd", "texkit --help"]), (["score", "demo"], ["--reward", "texkit score --help"]), (["render", "demo"], ["--out"])],
)
def test_usage_errors_are_one_line_exit_2(run_texkit, contract, argv, mentions):
    contract.assert_clean_error(run_texkit(argv), mentions)


def test_usage_errors_through_the_real_entry_point():
    """typer raises its bundled click's exceptions (typer._click); the console script must catch those."""
    for args in (["--version"], ["nosuchcmd"], ["score", "demo"]):
        proc = _texkit(*args)
        assert "Traceback" not in proc.stderr, proc.stderr
    assert _texkit("--version").returncode == 0
    proc = _texkit("nosuchcmd")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_bad_config_key_and_all_errors_at_once(run_texkit, contract, tmp_path):
    one = tmp_path / "one.toml"
    one.write_text('[trainng]\nsteps = 2\n')
    contract.assert_clean_error(run_texkit(["train", one]), ["trainng", "did you mean 'training'"])
    three = tmp_path / "three.toml"
    three.write_text('[mesh]\npath = "demo"\nnormalise = "none"\n[training]\nsteps = -1\nlr = "fast"\n')
    line = contract.assert_clean_error(run_texkit(["train", three]), ["3 config errors", "mesh.normalise", "training.steps", "training.lr"])
    assert "did you mean 'normalize'" in line


def test_piped_rewards_list_every_full_name_and_no_pydantic_undefined():
    import texkit

    names = texkit.get_registry().names("rewards")
    proc = _texkit("rewards")
    assert proc.returncode == 0, proc.stderr
    first_fields = {line.split("\t")[0] for line in proc.stdout.splitlines()}
    assert set(names) <= first_fields, sorted(set(names) - first_fields)
    assert "…" not in proc.stdout and "PydanticUndefined" not in proc.stdout


@pytest.mark.parametrize("command", ["plugins", "rewards", "doctor"])
def test_every_listing_command_has_json(run_texkit, command):
    result = run_texkit([command, "--json"])
    assert result.code in (0, 1)  # doctor exits 1 when a check fails (e.g. no GPU)
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows


def test_reward_json_defaults_are_values_not_pydantic_undefined(run_texkit):
    rows = {row["name"]: row for row in json.loads(run_texkit(["rewards", "--json"]).stdout)}
    assert "PydanticUndefined" not in json.dumps(rows)
    if "camera_pose" in rows:
        assert rows["camera_pose"]["params"]["reward_params"]["default"] == {}
