"""Atomic, safely loadable training checkpoints and the run record that owns them.

A checkpoint is a folder ``checkpoints/step_<n>`` holding ``adapter/`` (the generator's own
format), ``state.pt`` (tensors, numbers, strings, lists and dicts only: optimiser state, camera
angles, RNG states) and ``meta.json`` (step, run id and the SHA-256 of every other file of the
checkpoint, the adapter's included: a checkpoint verifies only when every file is there, unchanged,
and no other file is). It is written
under a temporary name ``.step_<n>.*`` and renamed into place; ``checkpoints/latest`` (a one-line
file, also replaced atomically) is written after the folder it names. ``state.pt`` is read with
``torch.load(weights_only=True)``, so a checkpoint cannot run code when it is loaded.

A run folder records its own id in ``run.json``; a run only ever prunes or resumes from
checkpoints that carry its id. `resume_candidates` lists a run's checkpoints in the order a resume
tries them (``latest`` first, then newest step first) and `checkpoint_problem` says why one does
not verify; `newest_valid_checkpoint` is the first that verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from texkit.errors import TexkitError
from texkit.io import apply_umask, atomic_write_text, fsync_path

__all__ = [
    "CheckpointError",
    "RunFolderError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "newest_valid_checkpoint",
    "resume_candidates",
    "checkpoint_problem",
    "describe_load_failure",
    "remove_stale_temp",
    "read_run_id",
    "start_run",
    "check_run_folder",
    "run_artifacts",
]

FORMAT = 3
"""Format of ``meta.json``: 3 lists every file's SHA-256 (``files``); 2 (still read) hashed ``state.pt`` only."""
RUN_FILE = "run.json"
#: Files and folders a training run writes into its folder (what ``--overwrite`` removes).
RUN_ARTIFACTS = (
    RUN_FILE,
    "checkpoints",
    "metrics.jsonl",
    "before",
    "after",
    "latest",
    "adapter",
    "report.html",
    "reward_curves.png",
    "config.json",
    "config.toml",
    "versions.json",
)


#: The run's records (the config it ran with, library versions); present without ``run.json`` they do not make a run.
RECORD_FILES = ("config.json", "config.toml", "versions.json")


class CheckpointError(TexkitError):
    """A checkpoint is missing, incomplete, from another run, or holds something other than tensors."""


class RunFolderError(TexkitError):
    """A run folder already holds another run (and neither ``--resume`` nor ``--overwrite`` was given)."""


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint folder and what its ``meta.json`` says."""

    folder: Path
    step: int
    run_id: str | None


# -- run records ---------------------------------------------------------------------------
def read_run_id(run_dir: Path) -> str | None:
    """The id recorded in ``run_dir/run.json``, or None when the folder holds no run record."""
    try:
        return str(json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_artifacts(run_dir: Path) -> list[Path]:
    """The texkit-written files and folders present in ``run_dir`` (empty: the folder is free)."""
    run_dir = Path(run_dir)
    return [run_dir / name for name in RUN_ARTIFACTS if (run_dir / name).exists()]


def check_run_folder(run_dir: Path, overwrite: bool = False) -> None:
    """Refuse a run folder that is a file, or holds another run when ``overwrite`` is false.

    Raises:
        RunFolderError: one line saying what to pass instead.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is a file; set output.dir (or --out) to a folder")
    present = [p for p in run_artifacts(run_dir) if p.name not in RECORD_FILES]
    if present and not overwrite:
        raise RunFolderError(
            f"run folder {run_dir} already holds a run ({', '.join(p.name for p in present)}); "
            "pass --resume to continue it, --overwrite to replace it, or set output.dir to a new folder"
        )


def start_run(run_dir: Path, overwrite: bool = False) -> str:
    """Claim ``run_dir`` for a new run: write ``run.json`` with a fresh id and return the id.

    Args:
        run_dir: the run folder (created when missing).
        overwrite: remove what an earlier run wrote there first (only texkit's own files).

    Raises:
        RunFolderError: the folder holds another run and ``overwrite`` is false.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, overwrite)
    for path in run_artifacts(run_dir) if overwrite else []:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_id = uuid.uuid4().hex
    atomic_write_text(run_dir / RUN_FILE, json.dumps({"run_id": run_id}) + "\n")
    return run_id


# -- saving --------------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain numbers (no pickled objects)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }


def _restore_rng(rng: dict[str, Any]) -> None:
    py, npy = rng["python"], rng["numpy"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(rng["torch"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_files(folder: Path) -> list[Path]:
    """Every file of a checkpoint folder except ``meta.json``, in a fixed order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p != Path(folder) / "meta.json")


def _manifest(folder: Path) -> dict[str, str]:
    """``{path relative to folder: SHA-256}`` of every checkpoint file, each flushed to disk first."""
    out = {}
    for path in _checkpoint_files(folder):
        fsync_path(path)
        out[path.relative_to(folder).as_posix()] = _sha256(path)
    return out


def remove_stale_temp(root: Path) -> list[Path]:
    """Delete ``.step_*`` folders left by a checkpoint write that was killed; returns what was removed."""
    root = Path(root)
    stale = [p for p in root.glob(".step_*")] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return stale


def save_checkpoint(root: Path, step: int, generator: Any, state: dict[str, Any], keep: int = 2, run_id: str | None = None) -> Path:
    """Write checkpoint ``step`` under ``root`` (the run's checkpoints folder) and prune this run's old ones.

    Args:
        root: checkpoints folder.
        step: the number of completed steps.
        generator: has ``save_adapter(folder)``.
        state: tensors and plain values only (optimiser state, angles, ...); RNG states are added.
        keep: how many complete checkpoints of this run to keep.
        run_id: the run's id; checkpoints of other runs are never pruned.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(root)
    final = root / f"step_{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step:06d}.", dir=root))
    apply_umask(tmp, directory=True)
    try:
        generator.save_adapter(tmp / "adapter")
        full = dict(state)
        full["step"] = step
        full["rng"] = _rng_state()
        torch.save(full, tmp / "state.pt")
        apply_umask(tmp / "state.pt")
        files = _manifest(tmp)
        meta = {"format": FORMAT, "step": step, "run_id": run_id, "state_sha256": files["state.pt"], "files": files}
        atomic_write_text(tmp / "meta.json", json.dumps(meta) + "\n", fsync=True)
        old = None
        if final.exists():  # move the old one aside first: `latest` never names a half-deleted folder
            old = root / f".step_{step:06d}.old.{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_path(root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(root / "latest", final.name + "\n", fsync=True)
    ours = [c for c in _complete(root) if c.run_id == run_id and c.step <= step]
    for old_ckpt in ours[:-keep] if keep > 0 else []:
        shutil.rmtree(old_ckpt.folder, ignore_errors=True)
    return final


# -- finding -------------------------------------------------------------------------------
def checkpoint_problem(folder: Path) -> str | None:
    """Why the checkpoint in ``folder`` does not verify, in a few words; None when it does.

    It verifies when ``meta.json`` is readable and every file it lists is there with its SHA-256,
    and no other file is (format 3); a format-2 checkpoint (``state.pt``'s hash only) verifies its
    ``state.pt``.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return "meta.json is missing or unreadable"
    if not (folder / "adapter").is_dir():
        return "adapter/ is missing"
    files = meta.get("files")
    if not isinstance(files, dict):  # format 2
        if not (folder / "state.pt").is_file():
            return "state.pt is missing"
        return None if meta.get("state_sha256") == _sha256(folder / "state.pt") else "state.pt does not match its checksum"
    present = {p.relative_to(folder).as_posix() for p in _checkpoint_files(folder)}
    for name, digest in sorted(files.items()):
        if name not in present:
            return f"{name} is missing"
        if _sha256(folder / name) != digest:
            return f"{name} does not match its checksum (cut short or changed after it was written)"
    extra = sorted(present - set(files))
    return f"{extra[0]} was not written with the checkpoint" if extra else None


def _read_meta(folder: Path, verify: bool = True) -> Checkpoint | None:
    """The checkpoint in ``folder`` when its meta.json is readable (and, with ``verify``, it verifies)."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        step = int(meta["step"])
        if verify and checkpoint_problem(folder) is not None:
            return None
        run_id = meta.get("run_id")
        return Checkpoint(folder, step, None if run_id is None else str(run_id))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _complete(root: Path, verify: bool = False) -> list[Checkpoint]:
    """Every checkpoint under ``root`` with a readable meta.json (with ``verify``: that verifies), oldest step first."""
    found = [_read_meta(p, verify) for p in Path(root).glob("step_*") if p.is_dir()] if Path(root).is_dir() else []
    return sorted((c for c in found if c is not None), key=lambda c: c.step)


def _latest_name(root: Path) -> str | None:
    pointer = Path(root) / "latest"
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    return name if name.startswith("step_") and "/" not in name else None


def resume_candidates(root: Path, run_id: str | None) -> list[Checkpoint]:
    """The run's checkpoints in the order a resume tries them: ``latest`` first, then newest step first.

    Not verified: pass each to `checkpoint_problem` (a checkpoint whose meta.json cannot be read
    names no run and is not listed).
    """
    root = Path(root)
    ours = [c for c in reversed(_complete(root)) if c.run_id == run_id]
    name = _latest_name(root)
    first = [c for c in ours if c.folder.name == name]
    return first + [c for c in ours if c.folder.name != name]


def newest_valid_checkpoint(root: Path, run_id: str | None) -> tuple[Checkpoint | None, str]:
    """The checkpoint to resume: ``latest`` when it verifies and is of this run, else the newest that verifies.

    Returns:
        ``(checkpoint or None, note)``; the note says which checkpoints were skipped and why (empty when none was).
    """
    skipped = []
    name = _latest_name(Path(root))
    if (Path(root) / "latest").is_file() and (name is None or not (Path(root) / name).is_dir()):
        skipped.append(f"checkpoints/latest names '{name or '?'}', which is missing")
    for ckpt in resume_candidates(root, run_id):
        problem = checkpoint_problem(ckpt.folder)
        if problem is None:
            return ckpt, "; ".join(skipped)
        skipped.append(f"{ckpt.folder.name}: {problem}")
    return None, "; ".join(skipped)


def latest_checkpoint(root: Path) -> Path | None:
    """The folder named by ``root/latest`` when it is a complete checkpoint that verifies, else None."""
    name = _latest_name(Path(root))
    ckpt = _read_meta(Path(root) / name) if name is not None else None
    return None if ckpt is None else ckpt.folder


# -- loading -------------------------------------------------------------------------------
def load_state(folder: Path) -> dict[str, Any]:
    """Read ``folder/state.pt`` with ``weights_only=True``.

    Raises:
        CheckpointError: missing file, or it holds objects other than tensors and plain values.
    """
    path = Path(folder) / "state.pt"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a texkit checkpoint (state.pt missing); resume from the run folder")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain values and was refused (loading it could run code); "
            "only resume from checkpoints written by texkit"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        text = " ".join(str(err).split())
        first = text.split(". ")[0][:160] if text else type(err).__name__
        raise CheckpointError(f"{path} is damaged ({first}); resume from an earlier checkpoint or start a new run") from None


def load_checkpoint(folder: Path, generator: Any) -> dict[str, Any]:
    """Load the adapter into ``generator`` and return the saved state (RNG states restored).

    Raises:
        CheckpointError: the folder is not a complete checkpoint or its state is unsafe or damaged.
    """
    state = load_state(folder)
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{Path(folder) / 'state.pt'} holds no training state; resume from an earlier checkpoint or start a new run")
    if "rng" in state and not isinstance(state["rng"].get("python"), dict):
        raise CheckpointError(f"{folder} was written by an older texkit (pickled RNG state); start a new run")
    generator.load_adapter(Path(folder) / "adapter")
    if state.get("rng"):
        _restore_rng(state["rng"])
    return state


def describe_load_failure(err: BaseException) -> str:
    """A few words for an error raised while loading a checkpoint (its first sentence, without advice).

    A generator's adapter loader may raise anything (``safetensors``' ``SafetensorError`` for a file
    cut short, ``WeightsError``, ``RuntimeError``); the resume reports it in one line and tries an
    earlier checkpoint.
    """
    text = " ".join(str(err).split())
    if isinstance(err, TexkitError):
        return text.split("; ")[0]
    first = text.split(". ")[0][:160]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
