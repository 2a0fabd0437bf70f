"""The ``texkit`` console script: a guard around the start-up of the command (`texkit.commands.cli`).

Importing the command loads torch and the plugins, which takes seconds; a Ctrl-C in that time
raises KeyboardInterrupt before `texkit.commands.cli.main` can catch anything, and Python would
print a traceback. This module imports nothing heavy (it lives outside the ``texkit`` package,
whose ``__init__`` imports torch), so its `main` turns that Ctrl-C into one line and exit code
130, as the command does once it runs.
"""

from __future__ import annotations

import sys

__all__ = ["main", "INTERRUPTED"]

#: The line printed for a Ctrl-C during start-up (the command has not touched any file yet).
INTERRUPTED = "texkit: error: interrupted while starting; no file was written, run the command again"


def main(argv: list[str] | None = None) -> int | None:
    """Import and run `texkit.commands.cli.main`; Ctrl-C before it takes over exits 130 with one line.

    Args:
        argv: the arguments (None: ``sys.argv[1:]``).

    Returns:
        What the command returns (it exits through ``SystemExit`` itself).
    """
    try:
        from texkit.commands.cli import main as run_command

        return run_command(argv)
    except KeyboardInterrupt:
        _exit_interrupted()
    return None  # pragma: no cover - _exit_interrupted raises


def _exit_interrupted() -> None:
    """Print `INTERRUPTED` on stderr and exit 130 (128 + SIGINT, as shells report a Ctrl-C)."""
    try:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: the exit code still tells
        pass
    raise SystemExit(130)
