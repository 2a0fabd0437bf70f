"""The studio's actions without the page (`texkit.studio.workspace.Studio`), checked against the CLI's code paths."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from texkit.config import load_config, parse_config
from texkit.errors import ConfigError, TexkitError
from texkit.studio.workspace import PaintRequest

BASE = {
    "device": "cpu",
    "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
    "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}},
    "texture": {"size": 32, "render_size": 64},
    "training": {"before_after": False},
    "output": {"grid_views": 4},
}


def TINY(prompt: str) -> "PaintRequest":  # noqa: N802 - reads as a constructor
    """A request for the tiny generator with its test options."""
    return PaintRequest(prompt, generator="tiny", options={"steps": 2, "seed": 0})


@pytest.fixture
def studio(tmp_path):
    from texkit.studio.workspace import Studio

    return Studio(parse_config(BASE), tmp_path / "ws")


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_paths_stay_inside_the_workspace(studio, tmp_path):
    (tmp_path / "secret.obj").write_text("v 0 0 0\n")
    with pytest.raises(TexkitError, match="is outside the studio's workspace"):
        studio.mesh_path("../secret.obj")
    with pytest.raises(TexkitError, match="does not exist in the workspace"):
        studio.inside("paints/0099", "texture")
    with pytest.raises(TexkitError, match="no mesh chosen"):
        studio.mesh_path("  ")
    assert studio.mesh_path("demo") == "demo"
    with pytest.raises(ConfigError, match="run name 'a b' may use letters"):
        studio.new_run_name("a b")
    assert studio.new_run_name() == "run-1"


def test_painting_is_texkit_generate_and_keeps_the_generator(studio, tmp_path):
    from texkit.commands.generate import generate

    lines: list[str] = []
    first = studio.paint("demo", PaintRequest("a red vase", seed=5, generator="tiny", options={"steps": 2, "seed": 0}), progress=lambda f, line: lines.append(line))
    assert lines[-1] == "painting: view 2 of 2"
    kept = studio._generator[1]
    again = studio.paint("demo", PaintRequest("a blue vase", seed=5, generator="tiny", options={"steps": 2, "seed": 0}))
    assert studio._generator[1] is kept  # same generator and options: not built again
    config = load_config(first.config)
    assert config.prompts.text == ["a red vase"] and config.generator.options == {"steps": 2, "seed": 0}
    out = generate(config, out=tmp_path / "cli", seed=5)  # the folder's config.toml repaints it from the command line
    assert np.array_equal(_pixels(out / "texture.png"), _pixels(first.texture))
    assert not np.array_equal(_pixels(again.texture), _pixels(first.texture))
    with pytest.raises(ConfigError, match="the prompt is empty"):
        studio.paint("demo", PaintRequest(" "))
    with pytest.raises(ConfigError, match=r"^generator 'tiny': .*steps"):
        studio.paint("demo", PaintRequest("a vase", generator="tiny", options='{"steps": 0}'))


def test_out_of_memory_is_the_commands_one_line(studio, monkeypatch):
    import torch

    from texkit.commands import generate
    from texkit.errors import DeviceError

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(generate, "write_outputs", too_big)
    with pytest.raises(DeviceError) as err:
        studio.paint("demo", TINY("a vase"), samples=4)
    assert str(err.value) == (
        "out of memory on cpu painting 4 samples in one batch (an allocation of 20.00 GiB failed); "
        "pass --samples 2 or fewer (half of 4; the planner has no memory measurements for this device)"
    )
    assert "\n" not in str(err.value) and studio.queue.describe() == "idle"


def test_inpainting_keeps_every_painted_texel_outside_the_mask(studio):
    painted = studio.paint("demo", TINY("a red vase"))
    repaint = np.zeros((32, 32), dtype=bool)
    repaint[:, :16] = True
    mask = studio.save_mask(repaint)
    result = studio.refine("demo", painted.folder, TINY("a green vase"), mode="inpaint", mask=mask)
    config = load_config(result.config)
    assert config.texture.mode == "inpaint" and config.texture.mask == str(mask)
    before, after = _pixels(painted.texture), _pixels(result.texture)
    assert np.array_equal(before[:, 16:], after[:, 16:])  # kept exactly
    assert not np.array_equal(before[:, :16], after[:, :16])  # repainted
    refined = studio.refine("demo", painted.folder, TINY("a green vase"), mode="refine", strength=0.0)
    assert np.abs(_pixels(refined.texture) - before).mean() < 8  # strength 0 returns the input (up to the round trip)


def test_the_plan_is_the_planners(studio):
    from texkit.planning import plan_run

    config = studio.fine_tune_config("demo", TINY("a vase"), {"curvature_color": {}}, 7, 2, 1e-3, "run-1")
    assert config.training.checkpoint_every == 1 and config.output.latest_every == 1
    seconds = plan_run(config).prediction.seconds
    line = studio.plan(config)
    assert line.startswith(f"predicted about {seconds * 7:.0f} s for 7 steps ({seconds:.1f} s/step at batch_size 2 on cpu"), line
    with pytest.raises(ConfigError, match="no rewards chosen"):
        studio.fine_tune_config("demo", TINY("a vase"), {}, 7, 1, 1e-3, "run-2")


def _wait(what, condition, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_fine_tune_stops_with_its_checkpoint_and_resumes_to_the_end(studio):
    config = studio.fine_tune_config("demo", TINY("a vase"), {"curvature_color": {}}, 4, 1, 1e-3, "run-1")
    snap = studio.start_fine_tune(config, "run-1")
    assert snap.state in ("queued", "running") and snap.steps == 4
    with pytest.raises(TexkitError, match="fine-tune run-1 is (queued|running)"):
        studio.start_fine_tune(config, "run-2")
    _wait("the first checkpoint", lambda: studio.fine_tune.checkpoint_step() >= 1)
    studio.stop_fine_tune()
    assert studio.fine_tune.wait(120)
    stopped = studio.fine_tune.snapshot()
    kept = studio.fine_tune.checkpoint_step()
    assert stopped.state == "stopped" and 1 <= kept <= stopped.step < 4
    assert stopped.message == f"stopped after step {stopped.step} of 4; its checkpoints are kept, Resume continues from step {kept}"
    run = studio.workspace / "runs" / "run-1"
    assert not (run / "adapter").exists()

    studio.resume_fine_tune()
    assert studio.fine_tune.wait(300)
    done = studio.fine_tune.snapshot()
    assert done.state == "finished", (done.message, (studio.workspace / "logs" / "run-1.log").read_text()[-2000:])
    assert [m["step"] for m in done.metrics] == [1, 2, 3, 4]
    assert (run / "adapter").is_dir() and studio.adapters() == ["runs/run-1/adapter"]
    latest = json.loads((run / "latest" / "step.json").read_text())
    assert latest == {"step": 4, "prompt": "a vase"} and (run / "latest" / "views.png").exists()


def test_a_reward_that_cannot_be_trained_is_refused_before_texkit_train_starts(studio):
    from texkit.errors import RewardError

    config = studio.fine_tune_config("demo", TINY("a vase"), {"jpeg_compressibility": {}}, 2, 1, 1e-3, "run-1")
    with pytest.raises(RewardError) as err:
        studio.start_fine_tune(config, "run-1")
    assert str(err.value) == "reward 'jpeg_compressibility' is not differentiable and cannot be trained on; use it with `texkit score`"
    assert studio.fine_tune is None and not (studio.workspace / "runs" / "run-1").exists()


@pytest.mark.slow
def test_a_fine_tune_whose_command_fails_shows_the_clis_one_line(tmp_path):
    from texkit.studio.jobs import DeviceQueue, FineTune

    run = FineTune("run-1", tmp_path / "missing.toml", tmp_path / "run-1", tmp_path / "run-1.log", 2, DeviceQueue()).start()
    assert run.wait(300)
    snap = run.snapshot()
    assert snap.state == "failed"
    assert snap.message == f"config file not found: {tmp_path / 'missing.toml'}; pass the path of a TOML run config or a preset name (`texkit presets` lists them)"


def test_out_of_memory_while_scoring_says_scoring(studio, monkeypatch):
    """The studio's scoring tab gets the scoring line, not the painting one."""
    import torch

    from texkit.commands import score
    from texkit.errors import DeviceError

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(score, "score_texture", too_big)
    with pytest.raises(DeviceError) as err:
        studio.score("demo", "", {"symmetry": {}})
    line = str(err.value)
    assert line.startswith("out of memory on cpu scoring demo with symmetry (an allocation of 20.00 GiB failed); lower the render size (")
    assert "painting" not in line and "\n" not in line and studio.queue.describe() == "idle"


def test_out_of_memory_inside_the_scoring_gives_the_studios_advice(studio, monkeypatch):
    """Out of memory while the rewards score (inside `score_texture`): the studio's advice, not the CLI flag."""
    import torch

    from texkit.errors import DeviceError
    from texkit.reward_set import RewardSet

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(RewardSet, "score", too_big)
    (studio.workspace / "paints" / "0001").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 120, 40)).save(studio.workspace / "paints" / "0001" / "texture.png")
    with pytest.raises(DeviceError) as err:
        studio.score("demo", "paints/0001", {"symmetry": {}})
    line = str(err.value)
    assert line.startswith("out of memory on cpu scoring the texture with symmetry at ") and "(an allocation of 20.00 GiB failed); lower the render size (" in line, line
    assert "texkit score --size" not in line and "\n" not in line and studio.queue.describe() == "idle"
