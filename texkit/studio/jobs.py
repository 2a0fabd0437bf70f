"""One job at a time on the device: a first-come queue, and fine-tunes run as ``texkit train``.

`DeviceQueue` hands the device to one job at a time in the order they asked (paint, refine, score,
fine-tune); a waiting job hears what it waits for. `FineTune` runs a fine-tune exactly as the
command line does, as a ``texkit train CONFIG`` process (``--resume`` to continue one), while
holding its turn of the queue: the run folder is a normal run folder, stopping sends the process
the interrupt a Ctrl-C would (the checkpoints it wrote are kept, so Resume continues from the
newest), and its one-line ``texkit: error:`` message is what the page shows when it fails.
`FineTune.snapshot` reads the run folder (``metrics.jsonl``, ``latest/``) for every browser that
watches.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texkit.errors import TexkitError

__all__ = ["DeviceQueue", "FineTune", "RunSnapshot", "read_metrics", "last_error_line"]


class DeviceQueue:
    """First come, first served: one job holds the device at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[str] = []
        self._tickets: list[object] = []
        self._running: str | None = None
        self._done = 0

    @contextlib.contextmanager
    def turn(self, label: str, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the device for the body; wait first while earlier jobs hold or wait for it.

        Args:
            label: what the job is, for the others' waiting messages (``"painting"``).
            waiting: called about once a second while waiting, with a line saying for what.
        """
        ticket = object()
        with self._cond:
            self._tickets.append(ticket)
            self._waiting.append(label)
            while self._running is not None or self._tickets[0] is not ticket:
                if waiting is not None:
                    ahead = self._tickets.index(ticket)
                    what = self._running or "the job before"
                    waiting(f"waiting for the device: {what} is running" + (f", {ahead} job(s) ahead" if ahead else ""))
                self._cond.wait(1.0)
            index = self._tickets.index(ticket)
            self._tickets.pop(index)
            self._waiting.pop(index)
            self._running = label
        try:
            yield
        finally:
            with self._cond:
                self._running = None
                self._done += 1
                self._cond.notify_all()

    def describe(self) -> str:
        """One line: what runs and how many wait (``"idle"`` when nothing does)."""
        with self._cond:
            if self._running is None and not self._waiting:
                return "idle"
            waiting = f", {len(self._waiting)} waiting" if self._waiting else ""
            return f"{self._running or 'starting'}{waiting}"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The complete lines of ``run_dir/metrics.jsonl`` (a line being written is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def last_error_line(log: Path) -> str | None:
    """The message of the last ``texkit: error:`` line of a command's log (the CLI's one-line error)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("texkit: error: "):
            return line.removeprefix("texkit: error: ").strip()
    return None


@dataclass
class RunSnapshot:
    """What a watcher shows of a fine-tune.

    Attributes:
        name: the run's name (its folder under the workspace's ``runs/``).
        state: ``queued``, ``running``, ``stopping``, ``stopped``, ``finished`` or ``failed``.
        step: the last step in ``metrics.jsonl``.
        steps: the steps the run trains to.
        metrics: the lines of ``metrics.jsonl``.
        latest: ``latest/`` of the run folder when it holds a view grid (the newest painted texture).
        message: one line for the page (the CLI's error message when it failed).
        version: changes whenever anything above does (watchers redraw only then).
    """

    name: str
    state: str
    step: int
    steps: int
    metrics: list[dict[str, Any]] = field(default_factory=list)
    latest: Path | None = None
    message: str = ""
    version: str = ""


class FineTune:
    """A ``texkit train`` process in a run folder, run while holding a turn of the device queue.

    Args:
        name: the run's name.
        config: the run config file (its ``output.dir`` is the run folder).
        run_dir: the run folder.
        log: where the process's output goes.
        steps: the steps the run trains to.
        queue: the device queue.
        resume: continue the run from its newest checkpoint (``texkit train --resume``).
        before_start: called with the device held, before the process starts (to free the device).
    """

    def __init__(
        self,
        name: str,
        config: Path,
        run_dir: Path,
        log: Path,
        steps: int,
        queue: DeviceQueue,
        resume: bool = False,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        self.name, self.config, self.run_dir, self.log, self.steps = name, config, run_dir, log, steps
        self.resume = resume
        self._queue = queue
        self._before_start = before_start
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stop_asked = False
        self.state = "queued"
        self.message = ""
        self._thread = threading.Thread(target=self._run, name=f"texkit-studio-{name}", daemon=True)

    def command(self) -> list[str]:
        """The ``texkit train`` command line this fine-tune runs."""
        args = [sys.executable, "-c", "from texkit_entry import main; main()", "train", str(self.config)]
        return args + (["--resume"] if self.resume else [])

    def start(self) -> "FineTune":
        """Queue the fine-tune; it starts when the device is free."""
        self._thread.start()
        return self

    def _run(self) -> None:
        with self._queue.turn(f"fine-tune {self.name}"):
            with self._lock:
                if self._stop_asked:
                    self.state, self.message = "stopped", "stopped before it started"
                    return
                self.state = "running"
            try:
                if self._before_start is not None:
                    self._before_start()
                self.log.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log, "ab") as out:
                    with self._lock:
                        self._process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                        if self._stop_asked:  # Stop pressed while the device was being freed
                            self.state = "stopping"
                            self._process.send_signal(signal.SIGINT)
                    code = self._process.wait()
            except (OSError, TexkitError) as err:
                self.state, self.message = "failed", str(err)
                return
            self._finish(code)

    def _finish(self, code: int) -> None:
        done = read_metrics(self.run_dir)
        step = int(done[-1].get("step", 0)) if done else 0
        if code == 0:
            self.state, self.message = "finished", f"finished {step} steps; the adapter is {self.run_dir / 'adapter'}"
        elif self._stop_asked:
            kept = self.checkpoint_step()
            self.state = "stopped"
            self.message = f"stopped after step {step} of {self.steps}; " + (
                f"its checkpoints are kept, Resume continues from step {kept}" if kept else "no checkpoint was written yet, Resume starts it again"
            )
        else:
            self.state = "failed"
            self.message = last_error_line(self.log) or f"texkit train exited with code {code}; see {self.log}"

    def checkpoint_step(self) -> int:
        """The step of the newest valid checkpoint of the run (what ``--resume`` continues from); 0 for none."""
        from texkit.checkpoint import newest_valid_checkpoint, read_run_id

        checkpoint, _ = newest_valid_checkpoint(self.run_dir / "checkpoints", read_run_id(self.run_dir))
        return checkpoint.step if checkpoint is not None else 0

    def stop(self) -> None:
        """Interrupt the process as Ctrl-C does (its checkpoints are kept); a queued run does not start."""
        with self._lock:
            self._stop_asked = True
            if self._process is not None and self._process.poll() is None:
                self.state = "stopping"
                self._process.send_signal(signal.SIGINT)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the fine-tune to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def active(self) -> bool:
        """Queued, running or stopping."""
        return self.state in ("queued", "running", "stopping")

    def snapshot(self) -> RunSnapshot:
        """What watchers show now (reads the run folder)."""
        metrics = read_metrics(self.run_dir)
        step = int(metrics[-1].get("step", 0)) if metrics else 0
        latest = self.run_dir / "latest"
        latest_step = ""
        try:
            latest_step = (latest / "step.json").read_text(encoding="utf-8").strip()
        except OSError:
            latest = None  # type: ignore[assignment]
        if latest is not None and not (latest / "views.png").exists():
            latest = None  # type: ignore[assignment]
        version = f"{self.name}:{self.state}:{len(metrics)}:{latest_step}:{self.message}"
        return RunSnapshot(self.name, self.state, step, self.steps, metrics, latest, self.message, version)
