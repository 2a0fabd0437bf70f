"""Run folders that cannot lose work: the resume scenario of issue 16, and SIGKILL during checkpoint writes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from texkit.checkpoint import RunFolderError, latest_checkpoint, load_state, newest_valid_checkpoint, save_checkpoint
from texkit.config import parse_config
from texkit.report import write_run_report
from texkit.training import train


@pytest.mark.slow
def test_the_resume_scenario_keeps_every_step_exactly_once(tmp_path, capsys, runs):
    def _config(out: Path, steps: int) -> dict:
        return runs.tiny_config(out, steps, before_after=True)

    run = tmp_path / "run"
    train(parse_config(_config(run, 8)))
    assert runs.metric_steps(run) == list(range(1, 9))
    first_id = json.loads((run / "run.json").read_text())["run_id"]
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}

    # the second command, without --resume: refused, nothing touched
    with pytest.raises(RunFolderError, match="--resume") as info:
        train(parse_config(_config(run, 2)))
    assert "\n" not in str(info.value)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before

    # --resume with fewer steps than done: the newest checkpoint (8), nothing retrained
    capsys.readouterr()
    train(parse_config(_config(run, 4)), resume=True)
    assert "step_000008 (step 8)" in capsys.readouterr().err
    assert runs.metric_steps(run) == list(range(1, 9))

    # a new run on purpose: --overwrite; then --resume to 4 continues that run at its step 2
    train(parse_config(_config(run, 2)), overwrite=True)
    assert json.loads((run / "run.json").read_text())["run_id"] != first_id
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_000002"]
    capsys.readouterr()
    result = train(parse_config(_config(run, 4)), resume=True)
    assert "step_000002 (step 2)" in capsys.readouterr().err
    assert runs.metric_steps(run) == [1, 2, 3, 4]
    assert [m["step"] for m in result.metrics] == [1, 2, 3, 4]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000004"
    report = write_run_report(run).read_text()  # what `texkit train --resume` does after training
    assert "before/views.png" in report  # the resumed run's report keeps its before images


@pytest.mark.slow
def test_resume_skips_a_damaged_latest_checkpoint(tmp_path, capsys, runs):
    run = tmp_path / "run"
    cfg = runs.tiny_config(run, 4)
    cfg["training"]["before_after"] = False
    train(parse_config(cfg))
    (run / "checkpoints" / "step_000004" / "state.pt").write_bytes(b"cut short")
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text() + '{"step": 5, "rew')  # a line cut by a kill
    capsys.readouterr()
    cfg["training"]["steps"] = 5
    train(parse_config(cfg), resume=True)
    err = capsys.readouterr().err
    assert "step_000004" in err and "step_000002 (step 2)" in err
    assert runs.metric_steps(run) == [1, 2, 3, 4, 5]


CHILD = r"""
import sys, torch
from pathlib import Path
from texkit.checkpoint import newest_valid_checkpoint, save_checkpoint

class Gen:
    def save_adapter(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "adapter.bin").write_bytes(b"x" * 300_000)

root = Path(sys.argv[1])
ckpt, _ = newest_valid_checkpoint(root, "kill-test")
step = ckpt.step if ckpt else 0
print("ready", flush=True)
while True:
    step += 1
    save_checkpoint(root, step, Gen(), {"weights": torch.randn(1_500_000)}, run_id="kill-test")
"""


class _Gen:
    def save_adapter(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "adapter.bin").write_bytes(b"x")


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_never_leaves_an_unloadable_latest(tmp_path):
    import torch

    root = tmp_path / "checkpoints"
    save_checkpoint(root, 0, _Gen(), {"weights": torch.zeros(1)}, run_id="kill-test")
    rng = random.Random(16)
    last_step, mid_write = 0, 0
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.8))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        mid_write += bool(list(root.glob(".step_*")))
        latest = latest_checkpoint(root)
        assert latest is not None, f"latest names no complete checkpoint: {(root / 'latest').read_text()!r}"
        state = load_state(latest)  # loads (weights_only) without error
        ckpt, note = newest_valid_checkpoint(root, "kill-test")
        assert note == "" and ckpt.folder == latest and state["step"] == ckpt.step >= last_step
        last_step = ckpt.step
    assert mid_write >= 1, "no kill landed inside a checkpoint write; the test did not test anything"
    assert last_step > 0
