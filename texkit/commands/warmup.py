"""``texkit warmup CONFIG``: compile a configuration's generator calls once, before the run that needs them.

A compiled generator (texkit-diffusers' ``compile = "auto"`` on a GPU) pays its compilation in the
first training step: minutes for SD 1.5 at each batch size. The compiled code is kept in the compile
cache (`texkit.compile_cache`, ``~/.cache/texkit/compile`` by default), so the next run of the same
shapes on this machine loads it. ``texkit warmup`` runs one training step of the configuration in a
scratch folder that it deletes afterwards (no checkpoint, metrics or report is written, the output
folder is not touched) just to fill that cache; run it before a scheduled job, or once per machine
image. It builds what ``texkit train`` builds, so a config error fails here the same way.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from texkit.config import RunConfig
from texkit.errors import ConfigError

__all__ = ["WarmupResult", "warmup"]


@dataclass
class WarmupResult:
    """What ``texkit warmup`` did.

    Attributes:
        step_seconds: wall time of the training step (compilation included).
        batch_size: ``training.batch_size`` of the step (each batch size is its own compiled shape).
        cache_hits: compiled graphs loaded from the compile cache (an earlier run or warmup made them).
        cache_misses: graphs compiled now and stored in the cache.
        cache_dir: the compile cache folder, or None when texkit's cache was switched off.
        generator_compile: what the generator says about its compilation (``describe()["compile"]``).
    """

    step_seconds: float
    batch_size: int
    cache_hits: int
    cache_misses: int
    cache_dir: Path | None
    generator_compile: str

    def summary(self) -> str:
        """One line for the terminal."""
        head = f"warmup: one training step at batch size {self.batch_size} took {self.step_seconds:.1f} s"
        if self.cache_misses:
            return f"{head}; compiled {self.cache_misses} graph(s) into {self.cache_dir}: a run of this config on this machine now loads them"
        if self.cache_hits:
            return f"{head}; all {self.cache_hits} compiled graph(s) were already in {self.cache_dir}: nothing left to compile"
        return f"{head}; nothing was compiled ({self.generator_compile or 'the generator does not compile'}), so there is nothing to precompile for this config"


def warmup(config: RunConfig, threads: int | None = None, notify: Callable[[str], None] | None = None, console: Console | None = None) -> WarmupResult:
    """Run one training step of ``config`` in a scratch folder to fill the compile cache.

    Args:
        config: the run configuration (its generator, batch size, device and views set the shapes).
        threads: intra-op CPU threads (0: torch's default); None: chosen from the work size.
        notify: receives one-line notices while the session is built.
        console: where the trainer prints (stderr by default).

    Returns:
        What was compiled or loaded, and where the cache is.

    Raises:
        ConfigError: the config has no rewards (nothing to train, so nothing to warm up).
        TexkitError: anything ``texkit train`` would refuse (bad names, mesh, weights, memory).
    """
    from texkit.compile_cache import active_cache_dir, cache_counts
    from texkit.training import Trainer, _set_threads

    if not config.rewards:
        raise ConfigError("the config has no [rewards] table, so there is no training step to warm up; add one, e.g. [rewards.curvature_color]")
    with tempfile.TemporaryDirectory(prefix="texkit-warmup-") as scratch:
        trainer = Trainer(config, Path(scratch) / "run", console, notify)
        _set_threads(trainer, threads)
        before = cache_counts()
        start = time.perf_counter()
        trainer.train_step()
        seconds = time.perf_counter() - start
        counts = cache_counts() - before
        described = trainer.session.describe_generator()
    return WarmupResult(seconds, config.training.batch_size, counts.hits, counts.misses, active_cache_dir(), described.get("compile", ""))
