"""A real ``texkit studio`` server for the browser and API tests: the CLI command in a subprocess, with the
tiny generator on the CPU at tiny sizes, on a free port (``--port 0``; the port is read from its first line).

Skips where gradio (the studio extra) is missing; under CI (``CI`` set) a missing gradio fails instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY_CONFIG = {
    "device": "cpu",
    "mesh": {"path": "demo"},
    "prompts": {"text": ["a glazed ceramic gourd"]},
    "generator": {"name": "tiny", "options": {"steps": 2, "seed": 0}},
    "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": "tilted_short"},
    "texture": {"size": 32, "render_size": 64},
    "rewards": {"curvature_color": {"weight": 1.0}},
    "training": {"steps": 3, "lr": 1e-3, "before_after": False},
    "output": {"grid_views": 4},
}
"""The studio's base config: the tiny generator on the CPU, a 32-texel texture, 64 px renders, two views."""


@dataclass
class StudioServer:
    """A running studio: its URL, workspace and server log."""

    url: str
    workspace: Path
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def need_gradio() -> None:
    try:
        import gradio  # noqa: F401
        import gradio_client  # noqa: F401
    except ImportError:
        reason = "gradio is not installed (pip install 'texkit[studio]'; `make install` installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must not skip the studio tests")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory) -> StudioServer:
    """``texkit studio --config tiny.toml --port 0`` running until the session ends (then Ctrl-C, as a user would)."""
    need_gradio()
    root = tmp_path_factory.mktemp("studio")
    config = root / "tiny.toml"
    from texkit.config import parse_config, to_toml

    config.write_text(to_toml(parse_config(TINY_CONFIG)), encoding="utf-8")
    log = root / "server.log"
    workspace = root / "workspace"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from texkit_entry import main; main()", "studio", "--config", str(config), "--port", "0", "--workspace", str(workspace)],
            stdout=out, stderr=subprocess.STDOUT, cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C stops it even when pytest runs in the background
        )
    try:
        from texkit.studio import wait_until_serving

        url = wait_until_serving(log, 300, alive=lambda: process.poll() is None)
        yield StudioServer(url, workspace, log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
