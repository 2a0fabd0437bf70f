"""SIGTERM and SIGINT (issue 26): a checkpoint at the next safe point, exit 143/130, and a message naming
the exact command that resumes. Driven by the child's progress lines, never by a fixed sleep."""

from __future__ import annotations

import os
import re
import shlex
import signal

import pytest

from texkit.interrupts import Interrupted, RunStopped, StopRequests


def test_stop_requests_record_the_first_signal_and_raise_on_the_second():
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN where the runner started us in the background
    with StopRequests() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # delivered before the next bytecode
        assert stop.signum == signal.SIGINT
        with pytest.raises(Interrupted) as info:
            os.kill(os.getpid(), signal.SIGTERM)
        assert info.value.exit_code == 143
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_the_stop_message_says_what_was_kept(tmp_path):
    saved = RunStopped(signal.SIGTERM, tmp_path, 4, 6, tmp_path / "checkpoints" / "step_000004", saved=True)
    assert str(saved) == "stopped by SIGTERM after step 4 of 6; saved checkpoint step_000004" and saved.exit_code == 143
    kept = RunStopped(signal.SIGINT, tmp_path, 4, 6, tmp_path / "checkpoints" / "step_000004", saved=False)
    assert "no checkpoint was needed (step_000004 holds step 4)" in str(kept) and kept.exit_code == 130


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def test_ctrl_c_before_the_first_step_leaves_the_folder_as_it_was_and_says_to_run_again(tmp_path, runs, run_cli, monkeypatch):
    from texkit.session import Session

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the before preview is painted

    monkeypatch.setattr(Session, "preview", interrupted)
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(tmp_path / "run", 2, before_after=True))
    before = _snapshot(tmp_path)
    result = run_cli(["train", config])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 130 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("texkit: error: interrupted by SIGINT") and lines[0].endswith(f"run the command again: texkit train {config}")
    assert _snapshot(tmp_path) == before


def test_sigterm_in_generate_is_one_line_exit_143_and_no_output(tmp_path, runs, run_cli, monkeypatch):
    from texkit.session import Session

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends, while the texture is painted

    monkeypatch.setattr(Session, "preview", terminated)
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(tmp_path / "gen", 1))
    before = _snapshot(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    result = run_cli(["generate", config])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 143 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("texkit: error: stopped by SIGTERM; every output file is either complete or was not written")
    assert _snapshot(tmp_path) == before
    assert signal.getsignal(signal.SIGTERM) is previous  # the command put the process's handler back


@pytest.mark.slow
def test_sigterm_after_step_3_checkpoints_exits_143_and_its_command_finishes_the_run(tmp_path, runs, texkit_child):
    run = tmp_path / "run"
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(run, 6, checkpoint_every=10))  # no checkpoint before the end
    child = texkit_child(["train", config], tmp_path)
    child.wait_for(r"^step 3/6 ")
    child.proc.send_signal(signal.SIGTERM)
    code, stderr = child.finish()
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert code == 143 and "Traceback" not in stderr, stderr
    match = re.fullmatch(r"texkit: error: stopped by SIGTERM after step (\d) of 6; saved checkpoint step_00000\1; resume with: (.*)", last)
    assert match, last
    step = int(match.group(1))
    assert step >= 3 and [p.name for p in (run / "checkpoints").glob("step_*")] == [f"step_{step:06d}"]
    command = shlex.split(match.group(2))
    assert command[:2] == ["texkit", "train"] and "--resume" in command

    resumed = texkit_child(command[1:], tmp_path)  # the message's command, as a user would paste it
    code, stderr = resumed.finish()
    assert code == 0, stderr
    assert f"step_{step:06d} (step {step})" in stderr
    assert runs.metric_steps(run) == [1, 2, 3, 4, 5, 6]  # every step once
