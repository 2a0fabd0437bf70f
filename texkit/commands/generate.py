"""``texkit generate``: paint a texture with the view loop (no training).

The outputs are written into a temporary folder beside the output folder and renamed into place
when all of them exist, so the output folder holds either the complete old or the complete new
outputs, never a mix. A folder that holds a training run is never replaced. One process writes a
folder at a time (`texkit.run_lock`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from texkit.checkpoint import run_artifacts
from texkit.config import RunConfig
from texkit.errors import TexkitError
from texkit.io import atomic_folder
from texkit.out_of_memory import out_of_memory_as_error
from texkit.registry import get_registry
from texkit.run_lock import hold_folder
from texkit.run_record import PREVIEW_SEED, write_run_record
from texkit.session import Session
from texkit.threads import apply_threads, model_parameters

__all__ = ["generate", "write_outputs", "validate_rewards", "GENERATE_OUTPUTS"]

#: What ``generate`` writes into its folder (besides ``reward_<name>.png`` per reward with a picture).
GENERATE_OUTPUTS = ("texture.png", "views.png", "mesh.glb", "config.json", "config.toml", "versions.json", "turntable.gif")


def _generated(name: str) -> bool:
    return name in GENERATE_OUTPUTS or (name.startswith("reward_") and name.endswith(".png")) or name.startswith("sample_")


def validate_rewards(config: RunConfig) -> None:
    """Build every configured reward once, as ``train`` does, so misspelt names and parameters fail early.

    Raises:
        UnknownNameError: a reward name no installed plugin registers.
        ConfigError: a reward parameter that does not exist or has the wrong type.
    """
    reg = get_registry()
    for name, reward_cfg in config.rewards.items():
        reg.make_reward(name, reward_cfg.params())


def _check_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a file, a training run's folder, or earlier outputs without ``overwrite``."""
    if folder.exists() and not folder.is_dir():
        raise TexkitError(f"output folder {folder} is a file; pass --out with a folder path")
    if not folder.is_dir():
        return
    run = [p.name for p in run_artifacts(folder) if not _generated(p.name)]
    if run:
        raise TexkitError(f"output folder {folder} holds a training run ({', '.join(run)}); pass --out with another folder")
    foreign = sorted(p.name for p in folder.iterdir() if not _generated(p.name))
    if foreign:
        raise TexkitError(f"output folder {folder} holds files generate did not write ({', '.join(foreign[:3])}); pass --out with another folder")
    if any(folder.iterdir()) and not overwrite:
        raise TexkitError(f"output folder {folder} is not empty; pass --overwrite to replace it or --out with a new folder")


def generate(
    config: RunConfig,
    adapter: Path | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    samples: int = 1,
    seed: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """Paint the first prompt's texture; writes texture.png, views.png and mesh.glb into the output folder.

    With ``samples > 1`` the samples are painted together in one batch (prompts cycle through the
    config's, sample i seeded ``PREVIEW_SEED + 1000 i + view``; see `Session.paint_samples`) and
    each goes to ``sample_<i>/`` with the same files; sample 0 equals the single-sample output.

    Args:
        config: the run configuration.
        adapter: optional LoRA adapter folder (from ``texkit train``) loaded first.
        out: output folder (default ``config.output.dir``).
        overwrite: replace the outputs of an earlier ``generate`` in the folder.
        threads: intra-op CPU threads (0: torch's default); None: chosen from the work size.
        samples: textures to paint in one batch.
        seed: the noise seed of the painted views (view k: ``seed + k``); default ``PREVIEW_SEED``.
        notify: receives one-line notices (an initial texture resized to ``texture.size``).

    Holds the output folder's lock (`texkit.run_lock`) while it checks and writes it.

    Raises:
        TexkitError: the folder is a file, holds a training run, or holds outputs and ``overwrite`` is false;
            bad rewards, mesh, generator or adapter.
        RunFolderInUseError: another process writes the folder.
        DeviceError: out of memory (one line with the ``--samples`` that fits).
    """
    folder = Path(out or config.output.dir)
    with hold_folder(folder, notify), out_of_memory_as_error(config, samples=samples):
        _check_folder(folder, overwrite)
        _paint_into(folder, config, adapter, threads, samples, seed, notify)
    return folder


def _paint_into(
    folder: Path, config: RunConfig, adapter: Path | None, threads: int | None, samples: int, seed: int | None, notify: Callable[[str], None] | None
) -> None:
    """Build the session and write the outputs into ``folder`` as a whole (see `generate`)."""
    validate_rewards(config)
    session = Session.build(config, need_rewards=False, notify=notify)
    size = max(config.texture.size, config.texture.render_size) ** 2
    apply_threads(session.device, model_parameters(session.generator), size, threads)
    if adapter is not None:
        session.generator.load_adapter(adapter)
    write_outputs(session, folder, samples, seed)


def write_outputs(session: Session, folder: Path, samples: int = 1, seed: int | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """Paint with a built session and write what ``generate`` writes, replacing ``folder`` as a whole.

    Writes the run record (``config.json``, ``config.toml``: `texkit generate` runs it again) and
    `Session.preview`'s files (texture.png, views.png, mesh.glb, reward pictures), or with
    ``samples > 1`` one ``sample_<i>/`` folder of them per sample (`Session.paint_samples`).

    Args:
        session: the built session (generator with any adapter already loaded).
        folder: the output folder (replaced atomically: it holds the old or the new outputs, never a mix).
        samples: textures to paint in one batch.
        seed: the noise seed of the painted views (view k: ``seed + k``); default ``PREVIEW_SEED``.
        progress: optional ``progress(view_index)`` callback while the views are painted.

    Returns:
        ``folder``.
    """
    with atomic_folder(folder) as tmp:
        write_run_record(tmp, session.config, session.describe_generator())
        seed = PREVIEW_SEED if seed is None else seed
        if samples <= 1:
            session.preview(tmp, seed, progress=progress)
        else:
            prompts, textures = session.paint_samples(samples, seed, progress)
            for i, prompt in enumerate(prompts):
                session.preview(tmp / f"sample_{i}", seed, texture=textures.sample(i), prompt=prompt)
    return Path(folder)
