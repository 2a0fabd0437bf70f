"""Checkpoints verified whole (issue 26): every file is covered by the manifest, and a resume walks back
past a damaged newest checkpoint with a one-line notice, never a traceback."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from rich.console import Console

from texkit.checkpoint import CheckpointError, checkpoint_problem, newest_valid_checkpoint, save_checkpoint
from texkit.config import parse_config
from texkit.training import Trainer, train


class FileGenerator:
    """Writes a two-file adapter (weights and a card), as the diffusers plugin does."""

    def save_adapter(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "weights.safetensors").write_bytes(bytes(range(256)) * 8)
        (Path(folder) / "README.md").write_text("card")


def _state() -> dict:
    return {"angles": {"paint_elevation": torch.tensor([-20.0])}}


def test_the_manifest_covers_every_file_of_the_checkpoint(tmp_path):
    folder = save_checkpoint(tmp_path, 1, FileGenerator(), _state(), run_id="r")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == 3
    assert sorted(meta["files"]) == ["adapter/README.md", "adapter/weights.safetensors", "state.pt"]
    assert checkpoint_problem(folder) is None


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: (f / "adapter" / "weights.safetensors").write_bytes((f / "adapter" / "weights.safetensors").read_bytes()[:100]), "does not match its checksum"),
        (lambda f: (f / "adapter" / "weights.safetensors").unlink(), "is missing"),
        (lambda f: _flip_one_bit(f / "adapter" / "weights.safetensors"), "does not match its checksum"),
        (lambda f: (f / "adapter" / "extra.bin").write_bytes(b"x"), "was not written with the checkpoint"),
        (lambda f: shutil.rmtree(f / "adapter"), "adapter/ is missing"),
        (lambda f: (f / "meta.json").write_text("{"), "meta.json"),
    ],
    ids=["truncated", "deleted", "bit-flipped", "extra-file", "no-adapter", "meta-cut"],
)
def test_a_damaged_file_is_named_and_the_previous_checkpoint_is_used(tmp_path, damage, problem):
    for step in (2, 4):
        save_checkpoint(tmp_path, step, FileGenerator(), _state(), run_id="r")
    damage(tmp_path / "step_000004")
    if problem != "meta.json":
        assert problem in checkpoint_problem(tmp_path / "step_000004")
    ckpt, note = newest_valid_checkpoint(tmp_path, "r")
    assert ckpt.step == 2
    if problem != "meta.json":  # a checkpoint whose meta.json is unreadable names no run: nothing to say about it
        assert "step_000004" in note and problem in note


def _flip_one_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


ADAPTER = "adapter/pytorch_lora_weights.safetensors"
DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "deleted": lambda p: p.unlink(),
    "bit-flipped": _flip_one_bit,
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, runs) -> Path:
    """A tiny run trained to step 4, checkpoints at steps 2 and 4 (each test works on a copy)."""
    run = tmp_path_factory.mktemp("verified") / "run"
    train(parse_config(runs.tiny_config(run, 4)))
    return run


def _copy(run: Path, where: Path) -> Path:
    shutil.copytree(run, where / "run")
    return where / "run"


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_resume_skips_a_damaged_adapter_in_the_newest_checkpoint(tmp_path, trained_run, runs, damage):
    run = _copy(trained_run, tmp_path)
    DAMAGES[damage](run / "checkpoints" / "step_000004" / ADAPTER)
    out = io.StringIO()
    trainer = Trainer(parse_config(runs.tiny_config(run, 4)), run, console=Console(file=out, width=400))
    assert trainer.resume() and trainer.step == 2
    lines = out.getvalue().splitlines()
    skipped = [line for line in lines if line.startswith("skipped checkpoint")]
    assert len(skipped) == 1 and "step_000004" in skipped[0] and ADAPTER in skipped[0], lines
    assert any("step_000002 (step 2)" in line for line in lines)


@pytest.mark.slow
def test_train_resume_through_the_cli_walks_back_in_one_line_and_keeps_every_step_once(tmp_path, trained_run, runs, run_cli):
    run = _copy(trained_run, tmp_path)
    DAMAGES["truncated"](run / "checkpoints" / "step_000004" / ADAPTER)  # safetensors would raise SafetensorError on it
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(run, 4))
    result = run_cli(["train", config, "--resume"])
    assert result.code == 0 and "Traceback" not in result.stderr, result.stderr
    notices = [line for line in result.stderr.splitlines() if "step_000004" in line]
    assert len(notices) == 1 and notices[0].startswith("skipped checkpoint step_000004: ") and ADAPTER in notices[0]
    assert runs.metric_steps(run) == [1, 2, 3, 4]
    # the walk-back retrained steps 3-4 to the very weights the damaged checkpoint held
    assert (run / "adapter" / "pytorch_lora_weights.safetensors").read_bytes() == (trained_run / "adapter" / "pytorch_lora_weights.safetensors").read_bytes()


def test_every_checkpoint_damaged_is_one_line_naming_the_newest_and_why(tmp_path, trained_run, runs):
    run = _copy(trained_run, tmp_path)
    for step in ("step_000002", "step_000004"):
        _flip_one_bit(run / "checkpoints" / step / ADAPTER)
    trainer = Trainer(parse_config(runs.tiny_config(run, 4)), run, console=Console(file=io.StringIO()))
    with pytest.raises(CheckpointError) as info:
        trainer.resume()
    message = str(info.value)
    assert "\n" not in message and "step_000004" in message and "step_000002" in message and "--overwrite" in message
