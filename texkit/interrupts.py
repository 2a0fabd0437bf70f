"""SIGINT and SIGTERM: stop at a safe point, say so in one line, exit 128 + the signal number.

A scheduler stops a job with SIGTERM (then SIGKILL after a grace period); a person with Ctrl-C
(SIGINT). Outside a training loop either signal raises `Interrupted` at once (every output is
written atomically, so nothing half-written stays). Inside the loop `StopRequests` only records
the signal; the loop looks at it between steps (the safe point), saves a checkpoint when steps were
done since the last one and raises `RunStopped`. A second signal while waiting for the safe point
raises `Interrupted` at once. The CLI prints the message and exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "RunStopped", "StopRequests", "raise_on_sigterm", "signal_name"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, ``"SIGINT"`` for 2."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(BaseException):
    """A SIGINT or SIGTERM stopped the command (a BaseException, like KeyboardInterrupt: no ``except Exception`` swallows it).

    Attributes:
        signum: the signal number.
        detailed: whether the message says more than "stopped by <signal>" (what was kept, what to run).
        exit_code: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), as shells report it.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"stopped by {signal_name(signum)}")
        self.signum = signum
        self.detailed = bool(message)

    @property
    def exit_code(self) -> int:
        """``128 + signum``."""
        return 128 + self.signum


class RunStopped(Interrupted):
    """A training run stopped at a safe point after a signal.

    Attributes:
        run_dir: the run folder.
        step: steps done.
        total: steps the run was asked for.
        checkpoint: the checkpoint that holds ``step`` (None: the run has none, no step was done).
        saved: whether the checkpoint was written because of the signal (False: it existed already).
    """

    def __init__(self, signum: int, run_dir: Path, step: int, total: int, checkpoint: Path | None, saved: bool) -> None:
        if checkpoint is None:
            what = "no step was done, so no checkpoint was needed"
        elif saved:
            what = f"saved checkpoint {checkpoint.name}"
        else:
            what = f"no checkpoint was needed ({checkpoint.name} holds step {step})"
        super().__init__(signum, f"stopped by {signal_name(signum)} after step {step} of {total}; {what}")
        self.run_dir, self.step, self.total, self.checkpoint, self.saved = run_dir, step, total, checkpoint, saved


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def raise_on_sigterm() -> Any:
    """Make SIGTERM raise `Interrupted` (Python's default ends the process without a word); main thread only.

    Returns:
        The previous handler, for ``signal.signal(signal.SIGTERM, previous)`` (None outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise)


class StopRequests:
    """Within ``with StopRequests() as stop:``, SIGINT and SIGTERM set ``stop.signum`` instead of raising.

    The body polls ``stop.signum`` at its safe points. A second signal raises `Interrupted` at once.
    Outside the main thread (where Python cannot install handlers) nothing is installed and
    signals behave as before.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
