"""``texkit generate``: paint a texture with the view loop (no training)."""

from __future__ import annotations

from pathlib import Path

from texkit.config import RunConfig
from texkit.report import EVAL_SEED, write_run_record
from texkit.session import Session

__all__ = ["generate"]


def generate(config: RunConfig, adapter: Path | None = None, out: Path | None = None) -> Path:
    """Paint the first prompt's texture; writes texture.png, views.png and mesh.glb into the output folder.

    Args:
        config: the run configuration.
        adapter: optional LoRA adapter folder (from ``texkit train``) loaded first.
        out: output folder (default ``config.output.dir``).
    """
    folder = Path(out or config.output.dir)
    session = Session.build(config, need_rewards=False)
    if adapter is not None:
        session.generator.load_adapter(adapter)
    write_run_record(folder, config)
    session.preview(folder, EVAL_SEED)
    return folder
