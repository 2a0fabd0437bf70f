"""``texkit presets``, ``texkit init`` and preset names in ``texkit train``: the listing, the written
config, the one-line errors, and one training step of every preset with the tiny generator swapped in."""

from __future__ import annotations

import io
import json
import math

import pytest

from texkit.presets import QUICK_SUFFIX, all_presets, get_preset, load_eval_spec, load_run_config

BASE = [p.name for p in all_presets(quick=False)]

#: what makes a preset run on the CPU in seconds: the tiny generator (1 DDIM step), the torch renderer,
#: the built-in mesh, 32 px textures, one step, no before/after previews; everything else is the preset's
TINY = [
    'generator={name = "tiny", options = {steps = 1}}',
    'renderer={name = "torch"}',
    "mesh.path=demo",
    "texture.size=32",
    "texture.render_size=32",
    "training.steps=1",
    "training.before_after=false",
    "training.unet_checkpointing=false",
    "training.view_checkpointing=false",
    "training.mixed_precision=no",
    "output.grid_views=1",
    "device=cpu",
]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def test_presets_lists_every_preset_with_reward_mesh_steps_and_description(run_texkit):
    result = run_texkit(["presets", "--json"])
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len([r for r in rows if not r["name"].endswith(QUICK_SUFFIX)]) >= 7
    assert [r["name"] for r in rows] == [p.name for p in all_presets()]
    for row in rows:
        cfg = get_preset(row["name"]).config()
        assert row["mesh"] == cfg.mesh.path and row["steps"] == cfg.training.steps
        assert row["reward"].split(" ")[0] in cfg.rewards and row["description"]
    piped = run_texkit(["presets"])  # not a terminal: tab-separated, nothing cut
    assert piped.code == 0
    lines = piped.stdout.splitlines()
    assert lines[0] == "name\treward\tmesh\tsteps\tdescription"
    assert [line.split("\t")[0] for line in lines[1:]] == [r["name"] for r in rows]


def test_the_terminal_table_never_cuts_a_name(run_texkit, monkeypatch):
    from rich.console import Console

    from texkit.commands import cli

    stream = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=stream, force_terminal=True, width=70, color_system=None))
    assert run_texkit(["presets"]).code == 0
    table = stream.getvalue()
    for preset in all_presets():
        assert any(line.split("│")[1].strip() == preset.name for line in table.splitlines() if line.count("│") > 2), preset.name
    assert "…" not in table


@pytest.mark.slow
@pytest.mark.parametrize("name", BASE)
def test_each_preset_trains_one_step_with_the_tiny_generator(name, run_texkit, tmp_path):
    """The preset's own rewards (in compat = "reference"), cameras (learnt elevations), prompts, learning
    rates and schedule; only the sizes and the weights are swapped for the CPU."""
    extra = []
    if name == "camera-pose":  # tiny random CLIP + aesthetic head instead of the hub weights
        extra = ["rewards.camera_pose.reward_params={tiny = true}"]
    if name == "3d-reference":  # the reference texture: an image in the demo mesh's UV layout
        import numpy as np
        from PIL import Image

        target = tmp_path / "target.png"
        Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(target)
        extra = [f"rewards.reference.texture={target}"]
    run = tmp_path / "run"
    result = run_texkit(["train", name, *_sets([*TINY, f"output.dir={run}", *extra])])
    assert result.code == 0, result.stderr
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (step,) = metrics
    reward = next(iter(get_preset(name).config().rewards))
    assert math.isfinite(step[f"reward/{reward}"]) and step["reward/total"] == step[f"reward/{reward}"]
    # the learnt painting elevations took their first Adam step (about camera_lr = 5 degrees) from front_short's
    moved = [abs(a - b) for a, b in zip(step["camera/paint_elevation"], [0, -35, -35, -35, -35, -35])]
    assert max(moved) > 1.0
    assert (run / "adapter").is_dir()
    recorded = json.loads((run / "config.json").read_text())
    preset = load_run_config(name, _sets([f"output.dir={run}", *extra])[1::2])
    assert recorded["rewards"] == preset.model_dump(mode="json")["rewards"]
    assert recorded["cameras"]["learn"] == preset.cameras.learn and recorded["training"]["lr"] == 5e-5


def test_init_writes_a_commented_config_that_loads_to_the_preset(run_texkit, contract, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_texkit(["init", "symmetry-quick"])
    assert result.code == 0, result.stderr
    written = tmp_path / "symmetry-quick.toml"
    text = written.read_text()
    assert text.startswith("# Written by `texkit init symmetry-quick`") and text.count("  # ") > 20
    assert load_run_config(str(written)) == get_preset("symmetry-quick").config()
    assert "mesh.path" in result.stdout and f"texkit train {written.name}" in result.stdout

    before = contract.snapshot(tmp_path)
    refused = run_texkit(["init", "symmetry", "-o", str(written)])
    contract.assert_clean_error(refused, [str(written), "--force"], before, contract.snapshot(tmp_path))

    assert run_texkit(["init", "symmetry", "-o", str(written), "--force"]).code == 0
    assert load_run_config(str(written)) == get_preset("symmetry").config()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["symmetry-quick.toml"]  # no temporary file left

    assert run_texkit(["init", "camera-pose", "--eval", "-o", "spec/eval.toml"]).code == 0
    assert load_eval_spec(str(tmp_path / "spec" / "eval.toml")) == load_eval_spec("camera-pose")


@pytest.mark.parametrize(
    "argv,mentions",
    [
        (["train", "symetry", "--dry-run"], ["symetry", "did you mean 'symmetry'"]),
        (["init", "curvature-smoth"], ["curvature-smoth", "curvature-smooth"]),
        (["eval", "camera-pos", "--out", "e"], ["camera-pos", "camera-pose"]),
        (["warmup", "symetry"], ["symetry", "did you mean 'symmetry'"]),
        (["generate", "curvature-alignmnet"], ["curvature-alignmnet", "curvature-alignment"]),
        (["train", "nothing-like-it"], ["nothing-like-it", "symmetry", "texkit presets"]),
        (["train", "missing.toml"], ["missing.toml", "preset name"]),
        (["init", "symmetry", "-o", "."], ["folder"]),
    ],
)
def test_unknown_names_are_one_line_errors(argv, mentions, run_texkit, contract, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = contract.snapshot(tmp_path)
    contract.assert_clean_error(run_texkit(argv), mentions, before, contract.snapshot(tmp_path))


def test_missing_input_files_stop_a_preset_before_anything_loads(run_texkit, contract, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = contract.snapshot(tmp_path)
    result = run_texkit(["train", "symmetry"])
    contract.assert_clean_error(result, ["mesh.path", "meshes/balloon.obj", "--set mesh.path=", "balloon"], before, contract.snapshot(tmp_path))
    result = run_texkit(["train", "3d-reference", "--set", "mesh.path=demo"])
    contract.assert_clean_error(result, ["rewards.reference.texture", "Rabbit_albedo.png"], before, contract.snapshot(tmp_path))


def test_dry_run_of_a_preset_prints_its_predicted_gpu_time(run_texkit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    full = run_texkit(["train", "symmetry", "--dry-run"])
    quick = run_texkit(["train", "symmetry-quick", "--dry-run"])
    assert full.code == quick.code == 0, full.stderr + quick.stderr
    assert "predicted GPU time for 2000 steps: 6.44 h (2000 x 11.5 s + 93 s compiling" in full.stdout
    assert "predicted GPU time for 250 steps: 0.83 h" in quick.stdout
    assert list(tmp_path.iterdir()) == []  # nothing loaded, nothing written


@pytest.mark.slow
def test_a_preset_trains_then_its_eval_spec_evaluates_the_run(run_texkit, tmp_path, monkeypatch):
    """`texkit train symmetry-quick` then `texkit eval symmetry-quick`: the eval spec finds the run in
    its output.dir (runs/symmetry-quick), paints the preset's held-out prompts with the run's settings and
    scores the reward in both modes (clip_score with a tiny random CLIP instead of the hub weights)."""
    monkeypatch.chdir(tmp_path)
    trained = run_texkit(["train", "symmetry-quick", *_sets([*TINY, "training.steps=2"])])
    assert trained.code == 0, trained.stderr
    assert (tmp_path / "runs" / "symmetry-quick" / "adapter").is_dir()
    metrics = '[{name="symmetry", params={patch=3}}, {name="symmetry", label="symmetry_reference", params={patch=3, compat="reference"}}, {name="clip_score", params={tiny=true}}]'
    result = run_texkit(["eval", "symmetry-quick", "--out", "evals/s", "--set", "num_seeds=2", "--set", f"metrics={metrics}"])
    assert result.code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "evals" / "s" / "results.jsonl").read_text().splitlines()]
    spec = load_eval_spec("symmetry-quick")
    assert {r["prompt"] for r in rows} == set(spec.prompt_list()) and {r["seed"] for r in rows} == {0, 1}
    assert {r["model"] for r in rows} == {"base", "runs/symmetry-quick"} and len(rows) == 2 * 4 * 2
    for row in rows:
        assert all(math.isfinite(row["metrics"][key]) for key in ("symmetry", "symmetry_reference", "clip_score")), row
