"""Helpers of the CLI tests: run ``texkit`` in-process and check its error contract.

``run_texkit(argv)`` calls :func:`texkit.commands.cli.main` as the console script would and
returns exit code, stdout and stderr; an exception escaping ``main`` is rendered as the traceback
Python would print, with exit code 1, so a regression shows up exactly as a user would see it.
``assert_clean_error`` is the contract of every bad input: exit 2, one line on stderr that names
the input and says what to do, no traceback, and no file under the watched folder changed.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ADVICE = re.compile(
    r"\b(pass|use|set|check|add|choose|see|fix|re-export|repair|install|save|remove|free|resume|start|give|"
    r"try|delete|rename|limit|uninstall|only|need|needs|must|export|did you mean|known|valid \w+|lists)\b"
)


@dataclass
class Result:
    """What one ``texkit`` invocation did."""

    code: int
    stdout: str
    stderr: str


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """``{relative path: (sha256 or '<dir>', mode)}`` of everything under ``folder``."""
    out: dict[str, tuple[str, int]] = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_dir():
            out[rel] = ("<dir>", path.stat().st_mode)
        else:
            out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
    return out


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """Run ``texkit argv`` in this process; an escaping exception becomes a printed traceback, exit 1."""
    from texkit.commands.cli import main

    capsys.readouterr()
    code = 0
    tb = ""
    try:
        main([str(a) for a in argv])
    except SystemExit as ex:
        code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    except BaseException:  # noqa: BLE001 - exactly what a user would see
        code = 1
        tb = traceback.format_exc()
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err + tb)


def assert_clean_error(result: Result, mentions: list[str], before: dict | None = None, after: dict | None = None) -> str:
    """The bad-input contract; returns the error line.

    Args:
        result: the invocation.
        mentions: substrings the line must contain (the input's name, option or path).
        before, after: snapshots of the watched folder; they must be equal (no output changed).
    """
    assert "Traceback" not in result.stderr, f"traceback on stderr:\n{result.stderr}"
    assert result.code == 2, f"exit {result.code}, expected 2; stderr: {result.stderr!r}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("texkit: error:")]
    assert len(errors) == 1 and len(lines) == 1, f"expected one 'texkit: error:' line, got: {result.stderr!r}"
    line = errors[0]
    for text in mentions:
        assert text.lower() in line.lower(), f"{text!r} not named in {line!r}"
    assert ADVICE.search(line), f"no advice (what to do) in {line!r}"
    if before is not None:
        assert before == after, "an existing file changed: " + ", ".join(
            sorted(k for k in set(before) | set(after or {}) if before.get(k) != (after or {}).get(k))
        )
    return line


@pytest.fixture
def contract():
    """The contract helpers (``assert_clean_error``, ``snapshot``, ``Result``) for test modules."""
    import types

    return types.SimpleNamespace(assert_clean_error=assert_clean_error, snapshot=snapshot, Result=Result)


@pytest.fixture
def run_texkit(capsys):
    """``run_texkit(argv) -> Result``."""
    return lambda argv: invoke(argv, capsys)
