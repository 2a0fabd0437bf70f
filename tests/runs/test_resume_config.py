"""A resume that says what changed (issue 26): changeable settings take effect (the optimiser's lr
really changes) and are recorded per step range; the others are refused in one line."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from texkit.config import parse_config
from texkit.errors import ConfigError
from texkit.run_history import CHANGEABLE, compare_with_run, updated_history
from texkit.training import Trainer, train


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory, runs) -> Path:
    """A tiny run trained to step 2 at lr 3e-3 (camera angles learnt at camera_lr 5), checkpoint at 2."""
    run = tmp_path_factory.mktemp("resume_config") / "run"
    config = runs.tiny_config(run, 2)
    config["cameras"]["learn"] = ["paint"]
    train(parse_config(config))
    return run


def _config(run: Path, runs, **training) -> dict:
    config = runs.tiny_config(run, 2)
    config["cameras"]["learn"] = ["paint"]
    config["training"].update(training)
    return config


def _copy(run: Path, where: Path) -> Path:
    shutil.copytree(run, where / "run")
    return where / "run"


def test_a_changed_lr_reaches_the_optimiser_after_its_state_is_restored(tmp_path, two_step_run, runs):
    run = _copy(two_step_run, tmp_path)
    trainer = Trainer(parse_config(_config(run, runs, lr=0.5, camera_lr=0.25)), run, console=Console(file=io.StringIO()))
    assert trainer.resume() and trainer.step == 2
    lora, cameras = trainer.optimizer.param_groups
    assert lora["lr"] == 0.5 and cameras["lr"] == 0.25  # not the checkpoint's 3e-3 and 5.0
    assert trainer.optimizer.state  # the restored Adam moments are kept


@pytest.mark.slow
def test_a_changed_lr_trains_with_the_new_lr_and_the_history_records_it(tmp_path, two_step_run, runs, run_cli):
    run = _copy(two_step_run, tmp_path)
    config = runs.write_toml(tmp_path / "run.toml", _config(run, runs, steps=3, lr=0.5))
    result = run_cli(["train", config, "--resume"])
    assert result.code == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if line.startswith("resuming with changed settings")]
    assert notice == ["resuming with changed settings: training.lr 0.003 -> 0.5, training.steps 2 -> 3"]
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["training"]["lr"] == 0.5
    first, second = recorded["history"]
    assert first["first_step"] == 1 and first["settings"]["training.lr"] == 0.003 and "changed" not in first
    assert second["first_step"] == 3 and second["settings"]["training.lr"] == 0.5
    assert second["changed"] == {"training.lr": [0.003, 0.5], "training.steps": [2, 3]}
    assert runs.metric_steps(run) == [1, 2, 3]


def test_a_changed_mesh_is_refused_in_one_line_with_the_difference(tmp_path, two_step_run, runs, run_cli):
    run = _copy(two_step_run, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    config = _config(run, runs)
    config["mesh"]["path"] = "cube"
    config["training"]["batch_size"] = 2
    result = run_cli(["train", runs.write_toml(tmp_path / "run.toml", config), "--resume"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert 'mesh.path "demo" -> "cube"' in lines[0] and "training.batch_size 1 -> 2" in lines[0] and "--allow-config-change" in lines[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written


def test_allow_config_change_accepts_a_fixed_setting_and_records_it(tmp_path, two_step_run, runs):
    run = _copy(two_step_run, tmp_path)
    config = _config(run, runs, steps=2)
    config["prompts"]["text"] = ["a jar"]
    with pytest.raises(ConfigError, match="prompts.text"):
        compare_with_run(run, parse_config(config))
    changes = compare_with_run(run, parse_config(config), allow_change=True)
    assert [c.key for c in changes.changes] == ["prompts.text"]
    history = updated_history(changes.recorded, parse_config(config), changes.changes, 3)
    assert history[-1]["first_step"] == 3 and history[-1]["changed"] == {"prompts.text": [["a vase"], ["a jar"]]}


def test_history_drops_ranges_redone_after_a_walk_back(tmp_path, runs):
    """A change recorded at step 5 whose steps were lost: resuming from step 2 with the old settings drops it."""
    first = parse_config(runs.tiny_config(tmp_path, 8))
    changed = parse_config(runs.tiny_config(tmp_path, 8, lr=0.5))
    recorded = json.loads(changed.model_dump_json())
    recorded["history"] = updated_history({}, first, [], 1) + [{"first_step": 5, "settings": {**updated_history({}, changed, [], 1)[0]["settings"]}}]
    history = updated_history(recorded, first, [], 3)
    assert [h["first_step"] for h in history] == [1]  # steps 3.. use the first entry's settings again
    history = updated_history(recorded, changed, [], 3)
    assert [h["first_step"] for h in history] == [1, 3] and history[-1]["settings"]["training.lr"] == 0.5


def test_the_changeable_settings_are_config_keys():
    flat = json.loads(parse_config({}).model_dump_json())
    for key in CHANGEABLE:
        value = flat
        for part in key.split("."):
            value = value[part]  # KeyError: a name that is not a setting
