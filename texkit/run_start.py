"""A run that fails before its first checkpoint leaves no trace in its folder.

A training run claims its folder (``run.json``) once its config is validated and its models are
loaded, then writes its first outputs (``config.json``, ``before/``) and trains. If it fails
before a checkpoint of it exists (out of memory in the first step, a reward whose weights do not
load, Ctrl-C or SIGTERM before any step), there is nothing to resume, and a half-made run would
only make the next plain ``texkit train`` refuse the folder. `undo_failed_start` removes what such
a start made: the run's files, ``config.json`` and friends as they were, and the folders it created.
A resumed run, or one with a checkpoint, is kept as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from texkit.checkpoint import RECORD_FILES, read_run_id, resume_candidates, run_artifacts

__all__ = ["undo_failed_start"]


def _has_checkpoint(run_dir: Path, run_id: str) -> bool:
    return bool(resume_candidates(run_dir / "checkpoints", run_id))


@contextlib.contextmanager
def undo_failed_start(run_dir: str | Path, enabled: bool = True) -> Iterator[None]:
    """On any exception in the body, undo a start of a new run that has no checkpoint yet, then re-raise.

    "A start" is the body writing a new ``run.json`` (a run id the folder did not hold before).
    Undoing it removes every texkit run file in the folder (`texkit.checkpoint.RUN_ARTIFACTS`),
    puts back the ``config.json``/``config.toml``/``versions.json`` the folder held before (when it held
    no run), and removes the run folder and its parents when this start created them and they are
    empty. A user's own files in the folder are never touched.

    Args:
        run_dir: the run folder.
        enabled: False: do nothing (ranks other than 0, which write nothing).
    """
    run_dir = Path(os.path.abspath(run_dir))
    if not enabled:
        yield
        return
    before_id = read_run_id(run_dir)
    created = [p for p in [run_dir, *run_dir.parents] if not p.exists()]
    records = {name: (run_dir / name).read_bytes() for name in RECORD_FILES if before_id is None and (run_dir / name).is_file()}
    try:
        yield
    except BaseException:
        run_id = read_run_id(run_dir)
        if run_id is not None and run_id != before_id and not _has_checkpoint(run_dir, run_id):
            for path in run_artifacts(run_dir):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            for name, data in records.items():
                (run_dir / name).write_bytes(data)
        for folder in created:  # innermost first; stops at the first that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
