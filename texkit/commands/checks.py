"""Checks of paths given on the command line, made before any work starts (one-line errors)."""

from __future__ import annotations

from pathlib import Path

from texkit.errors import TexkitError, WeightsError

__all__ = ["check_output_dir", "check_output_file", "check_weights_dir"]


def check_output_dir(path: Path, option: str = "--out") -> None:
    """An output folder must be a folder or not exist yet, with a writable existing parent chain.

    Raises:
        TexkitError: the path is an existing file, or sits under one.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TexkitError(f"{option} {path} is an existing file; pass a folder (it is created when missing)")
    _refuse_a_file_above(path, option, "folder")


def check_output_file(path: Path, force: bool, option: str = "-o") -> None:
    """An output file must not exist yet (unless ``force``), must not be a folder, and must not sit under a file.

    Raises:
        TexkitError: the path is a folder, sits under a file, or exists without ``force``.
    """
    path = Path(path)
    if path.is_dir():
        raise TexkitError(f"{option} {path} is a folder; pass a file name, e.g. {path / 'run.toml'}")
    if path.exists() and not force:
        raise TexkitError(f"{path} exists and was left as it is; pass --force to replace it, or -o another file")
    _refuse_a_file_above(path, option, "file")


def check_weights_dir(path: Path, option: str) -> None:
    """A weights folder (e.g. ``--adapter``) must exist and be a folder.

    Raises:
        WeightsError: missing, or a file.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{option} {path} does not exist; pass the adapter folder a training run wrote (<run>/adapter)")
    if not path.is_dir():
        raise WeightsError(f"{option} {path} is a file; pass the adapter folder a training run wrote (<run>/adapter)")


def _refuse_a_file_above(path: Path, option: str, kind: str) -> None:
    """The nearest existing parent of ``path`` must be a folder (else ``path`` could never be created).

    Raises:
        TexkitError: that parent is a file (the message asks for another output ``kind``).
    """
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TexkitError(f"{option} {path}: {parent} is a file, not a folder; pass another output {kind}")
            break
