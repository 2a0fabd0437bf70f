"""Every bounded config setting at and beyond its documented limit, the defaults of an empty config,
and the validators of camera paths, presets, per-rank meshes and prompt files."""

from __future__ import annotations

import pytest

from texkit.config import RunConfig, parse_config
from texkit.errors import ConfigError

# (section, key, limit, kind): "ge"/"le" accept the limit itself, "gt"/"lt" refuse it.
BOUNDS = [
    ("cameras", "radius", 0.0, "gt"),
    ("cameras", "fov", 0.0, "gt"),
    ("cameras", "fov", 180.0, "lt"),
    ("texture", "size", 16, "ge"),
    ("texture", "render_size", 16, "ge"),
    ("texture", "cos_thresh", 0.0, "ge"),
    ("texture", "cos_thresh", 1.0, "lt"),
    ("texture", "trimap_sharpness", 0.0, "gt"),
    ("texture", "background", 0.0, "ge"),
    ("texture", "background", 1.0, "le"),
    ("texture", "strength", 0.0, "ge"),
    ("texture", "strength", 1.0, "le"),
    ("training", "steps", 0, "ge"),
    ("training", "lr", 0.0, "gt"),
    ("training", "camera_lr", 0.0, "gt"),
    ("training", "weight_decay", 0.0, "ge"),
    ("training", "eps", 0.0, "gt"),
    ("training", "grad_clip", 0.0, "ge"),
    ("training", "batch_size", 1, "ge"),
    ("training", "grad_accum", 1, "ge"),
    ("training", "checkpoint_every", 1, "ge"),
    ("training", "log_every", 1, "ge"),
    ("output", "grid_views", 1, "ge"),
    ("output", "latest_every", 0, "ge"),
    ("mesh", "previews", 0, "ge"),
]


def _with(section: str, key: str, value) -> dict:
    return {section: {key: value}}


def _step(limit, kind: str) -> float | int:
    """The nearest value on the other side of the limit (1 for integers, a small fraction otherwise)."""
    step = 1 if isinstance(limit, int) else 1e-6
    return -step if kind in ("ge", "gt") else step


@pytest.mark.parametrize("section, key, limit, kind", BOUNDS, ids=[f"{s}.{k}-{kind}" for s, k, _, kind in BOUNDS])
def test_bound_at_and_beyond_the_limit(section, key, limit, kind):
    beyond = limit + _step(limit, kind)
    inside = limit - _step(limit, kind)
    assert getattr(getattr(parse_config(_with(section, key, inside)), section), key) == inside
    if kind in ("ge", "le"):
        assert getattr(getattr(parse_config(_with(section, key, limit)), section), key) == limit
        refused = [beyond]
    else:
        refused = [limit, beyond]
    for value in refused:
        with pytest.raises(ConfigError) as info:
            parse_config(_with(section, key, value))
        message = str(info.value)
        assert f"config key '{section}.{key}'" in message and "\n" not in message, message


@pytest.mark.parametrize("key", ["init", "mask"])
def test_texture_paths_may_not_be_empty(key):
    with pytest.raises(ConfigError, match=f"texture.{key}"):
        parse_config({"texture": {key: "", "mode": "inpaint"}})
    assert getattr(parse_config({"texture": {key: "a.png", "mode": "inpaint"}}).texture, key) == "a.png"
    assert getattr(parse_config({"texture": {key: "x", "mode": "inpaint"}}).texture, key) == "x"  # one character is a name


def test_defaults_are_the_documented_reference_values():
    cfg = RunConfig()
    assert (cfg.mesh.path, cfg.mesh.normalize, cfg.mesh.per_rank) == ("demo", "unit_sphere", [])
    assert cfg.prompts.view_suffix is True and cfg.prompts.file is None
    assert (cfg.cameras.paint, cfg.cameras.reward, cfg.cameras.radius, cfg.cameras.fov) == ("front_short", "tilted_short", 2.5, 50.0)
    assert cfg.cameras.learn == [] and cfg.cameras.learn_angles == ["elevation", "azimuth"]
    t = cfg.texture
    assert (t.size, t.render_size, t.cos_thresh, t.trimap_sharpness, t.background) == (512, 256, 0.0, 100.0, 1.0)
    assert (t.init, t.mode, t.strength, t.mask) == (None, None, 0.5, None)
    r = cfg.training
    assert (r.steps, r.lr, r.camera_lr, r.betas, r.weight_decay, r.eps, r.grad_clip) == (100, 5e-5, 5.0, (0.9, 0.999), 1e-4, 1e-8, 0.0)
    assert (r.truncation, r.unet_checkpointing, r.view_checkpointing, r.mixed_precision) == ("all", True, True, "no")
    assert (r.seed, r.resample, r.batch_size, r.grad_accum, r.checkpoint_every, r.log_every, r.before_after) == (0, True, 1, 1, 10, 5, True)
    assert (cfg.output.dir, cfg.output.grid_views, cfg.output.latest_every, cfg.device) == ("runs/texkit", 8, 0, "auto")
    assert (cfg.mesh.batching, cfg.mesh.previews) == ("per_batch", 4)
    reward = parse_config({"rewards": {"symmetry": {"mode": "lr"}}}).rewards["symmetry"]
    assert reward.weight == 1.0 and reward.params() == {"mode": "lr"}


@pytest.mark.parametrize(
    "path, ok",
    [
        ({"elevation": [-20.0, 10.0], "azimuth": [0.0, 90.0]}, True),
        ({"elevation": [-20.0], "azimuth": [0.0, 90.0]}, False),
        ({"elevation": [-20.0, 10.0], "azimuth": [0.0]}, False),
        ({"elevation": [], "azimuth": []}, False),
    ],
)
def test_camera_paths_need_one_azimuth_per_elevation(path, ok):
    if ok:
        assert parse_config({"cameras": {"paint": path}}).cameras.paint.azimuth == path["azimuth"]
    else:
        with pytest.raises(ConfigError, match="cameras.paint': elevation and azimuth need the same, non-zero number"):
            parse_config({"cameras": {"paint": path}})


@pytest.mark.parametrize("which", ["paint", "reward"])
def test_unknown_camera_presets_are_refused_with_the_known_ones(which):
    with pytest.raises(ConfigError, match=f"cameras.{which}.*unknown camera preset 'ring12'.*front_short"):
        parse_config({"cameras": {which: "ring12"}})
    assert getattr(parse_config({"cameras": {which: "ring11"}}).cameras, which) == "ring11"


def test_each_rank_takes_its_mesh_round_robin():
    cfg = parse_config({"mesh": {"path": "demo", "per_rank": ["sphere", "cube"]}}).mesh
    assert [cfg.path_for_rank(r) for r in range(5)] == ["sphere", "cube", "sphere", "cube", "sphere"]
    assert parse_config({"mesh": {"path": "cube"}}).mesh.path_for_rank(3) == "cube"


def test_prompt_file_lines_are_appended_without_blanks(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red jar\n\n  a blue bowl  \n")
    cfg = parse_config({"prompts": {"text": ["a vase"], "file": str(prompts)}}).prompts
    assert cfg.all_prompts() == ["a vase", "a red jar", "a blue bowl"]
    with pytest.raises(ConfigError, match="prompts.file not found"):
        parse_config({"prompts": {"file": str(tmp_path / "missing.txt")}}).prompts.all_prompts()
    with pytest.raises(ConfigError, match="no prompts"):
        parse_config({"prompts": {"text": []}}).prompts.all_prompts()
    assert parse_config({"prompts": {"text": ["x"]}}).prompts.all_prompts() == ["x"]


def test_an_unknown_key_in_a_reward_table_is_a_parameter_not_an_error():
    cfg = parse_config({"rewards": {"symmetry": {"weight": -0.5, "axis": "x"}}})
    assert cfg.rewards["symmetry"].weight == -0.5 and cfg.rewards["symmetry"].params() == {"axis": "x"}
    with pytest.raises(ConfigError, match="unknown config key 'training.lrr'.*did you mean 'lr'"):
        parse_config({"training": {"lrr": 1e-4}})
