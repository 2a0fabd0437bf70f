"""``texkit studio`` from the command line: one line and exit 2 without the extra and for a taken port."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from texkit.commands.cli import main


def _run(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(["studio", *args])
    return done.value.code, capsys.readouterr().err


def test_without_the_extra_it_says_what_to_install(capsys, monkeypatch):
    from texkit.studio import INSTALL_HINT

    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the extra were not installed
    code, err = _run(capsys)
    assert code == 2 and err.strip() == f"texkit: error: {INSTALL_HINT}"
    assert "pip install 'texkit[studio]'" in INSTALL_HINT


def test_the_core_imports_without_gradio():
    code = "import sys; sys.modules['gradio'] = None; import texkit, texkit.studio, texkit.studio.workspace, texkit.commands.cli; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_taken_port_is_one_line(capsys, tmp_path):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _run(capsys, "--port", str(port), "--workspace", str(tmp_path / "ws"))
    assert code == 2
    assert err.strip() == f"texkit: error: port {port} on 127.0.0.1 is in use; pass --port with a free port (0 picks one)"
