"""``texkit warmup CONFIG``: one training step in a scratch folder, nothing written where the run goes."""

from __future__ import annotations

CONFIG = """
device = "cpu"
[mesh]
path = "demo"
[prompts]
text = ["a vase"]
[generator]
name = "tiny"
[generator.options]
steps = 1
[cameras.paint]
elevation = [-20.0]
azimuth = [0.0]
[cameras.reward]
elevation = [-20.0]
azimuth = [90.0]
[texture]
size = 64
render_size = 64
[rewards.curvature_color]
weight = 1.0
[output]
dir = "{out}"
"""


def test_warmup_runs_one_step_and_writes_nothing_to_the_run_folder(tmp_path, run_texkit):
    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(out=out.as_posix()))
    result = run_texkit(["warmup", config])
    assert result.code == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("warmup: one training step at batch size 1 took ")
    # compile = "auto" never compiles on the CPU: warmup says so instead of pretending
    assert "nothing was compiled (compile off: 'auto' compiles on CUDA only" in line and "nothing to precompile" in line
    assert not out.exists()


def test_warmup_without_rewards_is_a_one_line_error(tmp_path, run_texkit, contract):
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(out=(tmp_path / "run").as_posix()).replace("[rewards.curvature_color]\nweight = 1.0\n", ""))
    contract.assert_clean_error(run_texkit(["warmup", config]), ["no [rewards] table", "warm up"])
