"""Helpers of the run-folder tests: a tiny CPU training config and ``texkit`` in a child process.

Tests get them through fixtures (``--import-mode=importlib`` keeps test modules from importing
each other): ``runs`` (``tiny_config``, ``write_toml``, ``metric_steps``) and ``texkit_child``.

`TexkitChild` runs ``python -m texkit.commands.cli ...`` and reads its stderr line by line in a
thread, so a test can wait for a progress line (``step 3/6``, ``resuming from``) before it sends a
signal: signal tests are driven by what the child says, never by a fixed sleep.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 600.0  # a generous bound for a loaded CI machine; the tests finish long before


def tiny_config(out: Path, steps: int, **training: object) -> dict:
    """A tiny CPU training run on the built-in mesh (one painting view, 32 px texture)."""
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {}},
        "training": {"steps": steps, "lr": 3e-3, "checkpoint_every": 2, "log_every": 1, "before_after": False, **training},
        "output": {"dir": str(out), "grid_views": 1},
        "device": "cpu",
    }


def toml_text(data: dict, prefix: str = "") -> str:
    """A small TOML writer for the test configs (tables, strings, numbers, booleans, lists)."""
    scalars, tables = [], []
    for key, value in data.items():
        (tables if isinstance(value, dict) else scalars).append((key, value))
    out = ([f"[{prefix}]"] if prefix and (scalars or not tables) else []) + [f"{k} = {json.dumps(v)}" for k, v in scalars]
    for key, value in tables:
        out.append(toml_text(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out) + "\n"


def write_toml(path: Path, data: dict) -> Path:
    path.write_text(toml_text(data))
    return path


def metric_steps(run: Path) -> list[int]:
    """The ``step`` of every line of ``run/metrics.jsonl``."""
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


class TexkitChild:
    """``texkit ARGS`` in a child process, its stderr read line by line as it comes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
        command = [sys.executable, "-m", "texkit.commands.cli", *map(str, args)]
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = DEADLINE_S) -> str:
        """Block until a stderr line matches ``pattern`` (a regex); fails if the child ends first."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; stderr so far: {self.lines}") from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(f"the child ended before a line matching {pattern!r}; stderr: {self.lines}")
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, str]:
        """Wait for the exit; returns ``(exit code, all of stderr)``."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=60)
        while True:
            line = self._queue.get_nowait() if not self._queue.empty() else None
            if line is None:
                break
            self.lines.append(line)
        return code, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def runs():
    """The helpers ``tiny_config``, ``write_toml`` and ``metric_steps`` of this module."""
    import types

    return types.SimpleNamespace(tiny_config=tiny_config, write_toml=write_toml, metric_steps=metric_steps)


@pytest.fixture
def texkit_child():
    """``texkit_child(args, cwd) -> TexkitChild``; every child still running at the end is killed."""
    children: list[TexkitChild] = []

    def start(args: list[str], cwd: Path) -> TexkitChild:
        child = TexkitChild(args, cwd)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def run_cli(capsys):
    """``run_cli(argv) -> (code, stdout, stderr)`` of ``texkit argv`` run in this process, as the console script would."""
    import types

    from texkit.commands.cli import main

    def run(argv: list) -> types.SimpleNamespace:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in argv])
        except SystemExit as ex:
            code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
        captured = capsys.readouterr()
        return types.SimpleNamespace(code=code, stdout=captured.out, stderr=captured.err)

    return run
