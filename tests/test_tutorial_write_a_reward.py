"""docs/guide/write-a-reward.md, executed as written.

Every fenced block with a language carries a marker comment right above it:
``<!-- tutorial: run -->`` (a bash block, run), ``<!-- tutorial: write PATH -->`` (the block is
the new content of PATH) or ``<!-- tutorial: skip (why) -->``. The blocks become one bash script,
in page order, run with ``HOME`` in a temporary folder (so ``~/code`` is there) and this
environment's ``texkit``, ``pytest`` and ``python`` first on ``PATH``. The one substitution: ``pip
install`` goes to a temporary ``--target`` folder on ``PYTHONPATH`` (``--no-deps``, texkit and torch
are already here) instead of the shared environment, so other tests never see the tutorial's
reward.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "guide" / "write-a-reward.md"
BLOCK = re.compile(r"(?:<!-- tutorial: (?P<marker>[^>]*?) -->\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```", re.S | re.M)

PIP_SHIM = r'''
pip() {  # the tutorial's `pip install [-e] X` into $TUTORIAL_TARGET instead of the shared environment
    [ "$1" = install ] || { echo "tutorial test: unexpected pip $*" >&2; return 2; }
    shift
    local args=()
    for a in "$@"; do [ "$a" = -e ] || args+=("$a"); done
    "$TUTORIAL_PYTHON" -m pip install -q --no-deps --no-build-isolation --upgrade --target "$TUTORIAL_TARGET" "${args[@]}"
}
'''


def tutorial_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(marker, lang, body)`` of every fenced block; plain ``` blocks (file trees) have no language."""
    return [(m["marker"] or "", m["lang"], m["body"]) for m in BLOCK.finditer(text)]


def tutorial_script(text: str) -> str:
    lines = ["set -euo pipefail", PIP_SHIM]
    for marker, lang, body in tutorial_blocks(text):
        if not lang:
            continue
        assert marker, f"a ```{lang} block of {PAGE.name} has no <!-- tutorial: ... --> marker:\n{body[:200]}"
        if marker == "run":
            assert lang == "bash", f"only bash blocks run, not {lang}"
            lines += [f"echo {shlex.quote('>>> ' + line)}; {line}" if line.strip() and not line.lstrip().startswith("#") else line for line in body.splitlines()]
        elif marker.startswith("write "):
            path = marker.removeprefix("write ").strip()
            assert "'" not in body and "TUTORIAL_EOF" not in body
            lines += [f"mkdir -p \"$(dirname {path})\"", f"cat > {path} <<'TUTORIAL_EOF'", body.rstrip("\n"), "TUTORIAL_EOF"]
        else:
            assert marker.startswith("skip"), f"unknown marker {marker!r}"
    return "\n".join(lines) + "\n"


def test_every_code_block_is_marked():
    blocks = [b for b in tutorial_blocks(PAGE.read_text(encoding="utf-8")) if b[1]]
    assert len(blocks) >= 8
    for marker, lang, body in blocks:
        assert marker.startswith(("run", "write ", "skip")), (lang, body[:120])


def test_tutorial_has_no_stale_helper_names():
    text = PAGE.read_text(encoding="utf-8")
    assert "(context(" not in text  # the scaffold's helper is _context
    assert ".save('texture.png')" in text.split("texkit score demo texture.png", 1)[0]  # created before it is scored


@pytest.mark.slow
def test_write_a_reward_tutorial_runs_as_written(tmp_path):
    home, target = tmp_path / "home", tmp_path / "site"
    home.mkdir()
    script = tmp_path / "tutorial.sh"
    script.write_text(tutorial_script(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(target),
        "TUTORIAL_TARGET": str(target),
        "TUTORIAL_PYTHON": sys.executable,
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("TEXKIT_PLUGINS", None)
    run = subprocess.run(["bash", str(script)], cwd=home, env=env, capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    package = home / "code" / "texkit-reward-warm-colors"
    assert (package / "src" / "texkit_reward_warm_colors" / "reward.py").read_text().count("class WarmColorsReward") == 1
    assert re.search(r"5 passed", out), out[-3000:]  # the tutorial's own tests, all passing
    assert "warm_colors" in out.split(">>> texkit rewards", 1)[1]
    # texkit score: flat orange (230, 120, 40): strength 2 x (R - B) = 2 x 190/255
    score = out.split(">>> texkit score", 1)[1]
    assert re.search(r"warm_colors\D*1\.49", score), score[-2000:]
    # the run config of step 5 is valid against the installed rewards
    check = subprocess.run(
        [sys.executable, "-c", "from texkit.config import load_config; load_config('run.toml')"],
        cwd=package, env=env, capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stderr[-3000:]
