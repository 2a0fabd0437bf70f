"""Failures leave no trace (issue 26): out of memory is one line with the batch size to use, exit 2,
and a new run that fails before its first checkpoint leaves its folder as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

import texkit
from texkit.registry import get_registry, reset_registry

SIMULATED = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.5 GiB is free."


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>" for p in sorted(folder.rglob("*"))}


@pytest.fixture
def oom_generator():
    """Registers ``oom_tiny``: the tiny generator, except that painting more than one sample at once raises
    ``torch.OutOfMemoryError`` (batch 1 fits, so the before preview of a run is written first)."""
    from texkit_diffusers.plugin import TinyParams, make_tiny

    def make(params: TinyParams):
        generator = make_tiny(params)
        paint = generator.paint

        def paint_or_run_out(prompt, image, *args, **kwargs):
            if image.shape[0] > 1:
                raise torch.OutOfMemoryError(SIMULATED)
            return paint(prompt, image, *args, **kwargs)

        generator.paint = paint_or_run_out
        return generator

    module = types.ModuleType("oom_generator_plugin")

    @texkit.hookimpl
    def texkit_register_generators(register):
        register("oom_tiny", make, TinyParams)

    module.texkit_register_generators = texkit_register_generators
    reset_registry()
    get_registry().register_plugin(module, distribution="test-oom")
    yield "oom_tiny"
    reset_registry()


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if line.startswith("texkit: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def test_out_of_memory_in_the_first_step_is_one_line_and_leaves_the_folder_as_it_was(tmp_path, runs, run_cli, oom_generator):
    config = runs.tiny_config(tmp_path / "run", 2, batch_size=4, before_after=True)  # the before preview is written, then step 1 fails
    config["generator"]["name"] = oom_generator
    path = runs.write_toml(tmp_path / "run.toml", config)
    before = _snapshot(tmp_path)
    line = _one_error_line(run_cli(["train", path]))
    assert "out of memory on cpu at training.batch_size 4" in line and "2.00 GiB" in line
    assert "set training.batch_size to 2 or less" in line and "training.grad_accum to 2" in line
    assert _snapshot(tmp_path) == before  # no run.json, before/, config.json or lock file left


def test_out_of_memory_in_generate_names_the_samples_that_fit(tmp_path, runs, run_cli, oom_generator):
    config = runs.tiny_config(tmp_path / "gen", 1)
    config["generator"]["name"] = oom_generator
    path = runs.write_toml(tmp_path / "run.toml", config)
    before = _snapshot(tmp_path)
    line = _one_error_line(run_cli(["generate", path, "--samples", "4"]))
    assert "painting 4 samples in one batch" in line and "--samples 2 or fewer" in line
    assert _snapshot(tmp_path) == before


def test_reward_weights_that_fail_at_the_first_score_leave_the_folder_as_it_was(tmp_path, runs, run_cli):
    """The issue's aesthetic reward with a CLIP folder without weights: it fails after the before preview was written."""
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text("{}")
    torch.save({"layers.0.weight": torch.zeros(1, 768)}, tmp_path / "head.pth")
    config = runs.tiny_config(tmp_path / "run", 1, before_after=True)
    config["rewards"]["aesthetic"] = {"clip_path": str(tmp_path / "clip"), "head_path": str(tmp_path / "head.pth")}
    path = runs.write_toml(tmp_path / "run.toml", config)
    before = _snapshot(tmp_path)
    line = _one_error_line(run_cli(["train", path]))
    assert "aesthetic" in line and "clip" in line
    assert _snapshot(tmp_path) == before
    assert _one_error_line(run_cli(["train", path])) == line  # the next plain `train` is not refused: it fails the same way


# `texkit ARGV` with its address space limited, as `ulimit -v` does, to what it uses once texkit and torch
# are imported plus 1.5 GiB: enough to build the tiny model and train one sample, not 100000
LIMITED = textwrap.dedent(
    """
    import resource, sys
    from texkit.commands.cli import main
    size = int([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize")][0]) * 1024
    limit = size + 1536 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    main(sys.argv[1:])
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS (ulimit -v) and /proc are Linux's")
def test_a_real_cpu_allocation_failure_under_ulimit_is_one_line(tmp_path, runs):
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(tmp_path / "run", 1, batch_size=100_000))
    before = _snapshot(tmp_path)
    child = subprocess.run([sys.executable, "-c", LIMITED, "train", str(config)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert child.returncode == 2 and "Traceback" not in child.stderr, child.stderr
    assert lines[-1].startswith("texkit: error: out of memory on cpu at training.batch_size 100000"), child.stderr
    assert "set training.batch_size to 50000 or less" in lines[-1]
    assert _snapshot(tmp_path) == before
