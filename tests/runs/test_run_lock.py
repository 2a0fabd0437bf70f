"""One writer per run folder (issue 26): the folder lock, its stale-lock take-over, and two concurrent resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import texkit
from texkit.config import parse_config
from texkit.run_lock import RunFolderInUseError, hold_folder, holds_folder, lock_path
from texkit.training import train

# holds the lock of the folder given in argv[1] with texkit's own code, says so, and waits for stdin to
# close; it imports texkit.run_lock without texkit/__init__.py (which imports torch), to start fast
HOLDER = textwrap.dedent(
    """
    import sys, types
    package = types.ModuleType("texkit")
    package.__path__ = [sys.argv[2]]
    sys.modules["texkit"] = package
    from texkit.run_lock import hold_folder
    with hold_folder(sys.argv[1]):
        print("holding", flush=True)
        sys.stdin.read()
    """
)


def _holder(folder) -> subprocess.Popen:
    package = Path(texkit.__file__).parent
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(package)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    return child


def test_a_second_process_is_refused_in_one_line_naming_the_holder(tmp_path):
    child = _holder(tmp_path / "run")
    try:
        with pytest.raises(RunFolderInUseError) as info, hold_folder(tmp_path / "run"):
            pass
        message = str(info.value)
        assert "\n" not in message and f"pid {child.pid}" in message and "host" in message and str(tmp_path / "run") in message
        assert "output.dir" in message  # says what to do
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert not lock_path(tmp_path / "run").exists()  # the holder removed its lock file
    with hold_folder(tmp_path / "run"):  # free again
        assert lock_path(tmp_path / "run").exists()


def test_a_stale_lock_file_is_taken_over_with_a_notice(tmp_path):
    """A holder killed with SIGKILL leaves its lock file; the kernel dropped its lock, so the next writer takes it."""
    child = _holder(tmp_path / "run")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert lock_path(tmp_path / "run").exists()
    notes: list[str] = []
    with hold_folder(tmp_path / "run", notify=notes.append):
        record = json.loads(lock_path(tmp_path / "run").read_text())
        assert record["pid"] == os.getpid()
    assert len(notes) == 1 and f"pid {child.pid}" in notes[0] and "no longer running" in notes[0]


def test_the_lock_is_reentrant_in_one_process_and_removed_at_the_end(tmp_path):
    folder = tmp_path / "deep" / "run"
    with hold_folder(folder):
        assert holds_folder(folder)
        with hold_folder(folder):  # the train command and train() both take it
            assert holds_folder(folder)
        assert holds_folder(folder) and lock_path(folder).exists()
    assert not holds_folder(folder)
    assert not (tmp_path / "deep").exists()  # the parent made for the lock file is gone with it


@pytest.mark.slow
def test_two_concurrent_resumes_one_runs_the_other_exits_2_naming_the_holder(tmp_path, runs, texkit_child):
    run = tmp_path / "run"
    train(parse_config(runs.tiny_config(run, 2)))  # a run with a checkpoint at step 2
    config = runs.write_toml(tmp_path / "run.toml", runs.tiny_config(run, 5))
    first = texkit_child(["train", config, "--resume"], tmp_path)
    first.wait_for(r"^resuming from .*step_000002")  # it holds the lock from here on
    first.proc.send_signal(signal.SIGSTOP)  # keep it holding while the second one tries
    try:
        second = texkit_child(["train", config, "--resume"], tmp_path)
        code, stderr = second.finish()
    finally:
        first.proc.send_signal(signal.SIGCONT)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("texkit: error:") and f"pid {first.proc.pid}" in lines[0] and "in use" in lines[0]
    code, stderr = first.finish()
    assert code == 0, stderr
    assert runs.metric_steps(run) == [1, 2, 3, 4, 5]  # every step once
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_000004", "step_000005"]
