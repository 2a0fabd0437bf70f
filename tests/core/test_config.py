"""Run config: TOML, overrides, unknown keys with suggestions."""

from __future__ import annotations

import pytest

from texkit.config import load_config, parse_config
from texkit.errors import ConfigError


def test_toml_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[mesh]\npath = "sphere"\n[rewards.symmetry]\nweight = 2.0\npairs = 64\n[training]\nsteps = 3\n')
    cfg = load_config(path, ["training.lr=1e-4", "cameras.paint=ring11", "training.truncation=2"])
    assert cfg.mesh.path == "sphere" and cfg.training.steps == 3
    assert cfg.training.lr == pytest.approx(1e-4)
    assert cfg.cameras.paint == "ring11" and cfg.training.truncation == 2
    assert cfg.rewards["symmetry"].weight == 2.0 and cfg.rewards["symmetry"].params() == {"pairs": 64}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trainig": {}}, "unknown config key 'trainig'; did you mean 'training'"),
        ({"training": {"learning_rate": 1}}, "unknown config key 'training.learning_rate'"),
        ({"texture": {"sise": 5}}, "did you mean 'size'"),
        ({"cameras": {"paint": "nope"}}, "unknown camera preset 'nope'"),
        ({"training": {"steps": -1}}, "training.steps"),
    ],
)
def test_bad_configs_are_one_line_errors(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_explicit_camera_path():
    cfg = parse_config({"cameras": {"paint": {"elevation": [0, -30], "azimuth": [0, 180]}}})
    assert cfg.cameras.paint.azimuth == [0, 180]
    with pytest.raises(ConfigError):
        parse_config({"cameras": {"paint": {"elevation": [0], "azimuth": [0, 180]}}})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
