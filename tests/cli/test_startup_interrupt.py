"""Ctrl-C while ``texkit`` starts (torch and the plugins loading): one line, exit 130, no traceback.

The console script is ``texkit_entry:main``, a module outside the ``texkit`` package; each test runs
it in a fresh Python process, as the installed ``texkit`` script would, with an import hook that
interrupts the import of torch. (A Ctrl-C in the first tens of milliseconds, while Python itself
starts: ``site``, the ``.pth`` files, the script's own ``from texkit_entry import main``, comes
before any texkit code and is Python's to report.)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]

# An import hook for torch: "raise" interrupts at once, "wait" says so on stdout and sleeps until a
# real SIGINT arrives; then the console script's own two lines.
SCRIPT = textwrap.dedent(
    """
    import sys, time

    class InterruptTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                if sys.argv[1] == "raise":
                    raise KeyboardInterrupt
                print("importing torch", flush=True)
                time.sleep(60)
            return None

    sys.meta_path.insert(0, InterruptTorch())
    from texkit_entry import main
    sys.exit(main(["plugins"]))
    """
)


def _sigint_as_default() -> None:
    """In the child before exec: SIGINT back to its default, so Python installs its handler even when the
    test runner was started in the background (where SIGINT is ignored, and a child inherits that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_default,
    )


# Generous limits: on a loaded machine a fresh interpreter takes seconds to reach the torch import,
# and the tests wait for the child's own readiness line, never for a fixed time.
START_TIMEOUT = 300.0


def _read_ready_line(proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> str:
    """The child's first stdout line, waiting at most ``timeout`` seconds (a clear failure, never a hang)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"the child printed no readiness line within {timeout:.0f} s: {proc.communicate()[1][-2000:]}")
    return proc.stdout.readline().strip()


def _assert_one_line_130(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert code == 130, (code, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("texkit: error: interrupted"), stderr


def test_keyboard_interrupt_while_importing_torch_is_one_line_exit_130():
    proc = _start("raise")
    _, stderr = proc.communicate(timeout=START_TIMEOUT)
    _assert_one_line_130(proc.returncode, stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_real_sigint_during_start_up_is_one_line_exit_130():
    proc = _start("wait")
    try:
        assert _read_ready_line(proc) == "importing torch"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=START_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_one_line_130(proc.returncode, stderr)


def test_console_script_is_the_light_entry_module():
    """``texkit`` points at texkit_entry, and importing it loads neither texkit nor torch."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["texkit"] == "texkit_entry:main"
    probe = "import sys, texkit_entry; print(sorted({'texkit', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_entry_runs_the_command(capsys):
    from texkit_entry import main

    try:
        main(["--version"])
    except SystemExit as ex:
        assert ex.code in (0, None)
    assert capsys.readouterr().out.startswith("texkit ")
