"""Compile once per machine: ``torch.compile``'s on-disk caches in one documented folder.

A compiled generator call (``torch.compile``, e.g. the texkit-diffusers denoising call) costs
minutes the first time a shape is seen: Dynamo traces the Python code, AOTAutograd builds the
forward and backward graphs, Inductor generates and compiles kernels. Two of these three stages
have on-disk caches in torch itself:

* the **AOTAutograd cache** (``torch._functorch.config.enable_autograd_cache``), keyed by the
  traced graph: a hit skips building the joint forward/backward graph and its partitioning;
* the **Inductor FX-graph cache** (``torch._inductor.config.fx_graph_cache``), keyed by the
  graph Inductor is given: a hit loads the generated code instead of generating it; the Triton
  kernels it launches are cached beside it (``<folder>/triton``), so nothing is compiled again.

Dynamo's tracing is not cached; it runs again in every process (seconds, not minutes).

One torch setting is changed for the caches to work with activation checkpointing on CUDA: inside a
checkpointed region AOTAutograd wraps every random op it recomputes so that the forward and the
recomputation draw the same numbers (SDPA's flash and memory-efficient kernels count as random: they
take a dropout seed). torch 2.11's CUDA-graph-safe wrapper (``graphsafe_run_with_rng_state``) is not
cacheable, so the FX-graph cache bypassed the whole compiled UNet + ControlNet call and every run
compiled it again (measured on an H100, benchmarks/results/h100_2026-12-07_issue29/call5). texkit
compiles without CUDA graphs, so where that wrapper is not cacheable and the older one
(``run_and_save_rng_state`` / ``run_with_rng_state``) is, `enable_compile_cache` switches
``torch._functorch.config.graphsafe_rng_functionalization`` off (`graphsafe_rng_blocks_cache`).
torch keeps these caches under ``/tmp/torchinductor_<user>`` by default, which a reboot or a
fresh container empties. texkit points them at one folder that lasts (`compile_cache_dir`):

* ``$TEXKIT_COMPILE_CACHE_DIR`` if set;
* else ``$TEXKIT_CACHE_DIR/compile`` if ``TEXKIT_CACHE_DIR`` is set;
* else ``~/.cache/texkit/compile``.

A ``TORCHINDUCTOR_CACHE_DIR`` that the user set is respected (texkit then only reports where the
cache is). ``TEXKIT_COMPILE_CACHE=off`` leaves torch's settings alone. The caches are keyed by
the graph, the torch/Triton versions and the GPU, so the folder can be shared by runs of different
configurations and batch sizes: each static shape has its own entry, and a run of a shape compiled
before (by an earlier run or by ``texkit warmup``) loads it. `cache_counts` reads torch's hit and
miss counters, so a run can say whether its compilation came from the cache.
"""

from __future__ import annotations

import os
from dataclasses import astuple, dataclass
from pathlib import Path

__all__ = ["CompileCacheCounts", "compile_cache_dir", "enable_compile_cache", "cache_counts", "active_cache_dir", "graphsafe_rng_blocks_cache"]

_ENABLED: Path | None = None


def compile_cache_dir() -> Path:
    """Where texkit keeps ``torch.compile``'s caches (see the module docstring for the order)."""
    explicit = os.environ.get("TEXKIT_COMPILE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("TEXKIT_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "compile"
    return Path.home() / ".cache" / "texkit" / "compile"


def _torch_default_dir() -> str | None:
    """torch's own default Inductor cache folder (``/tmp/torchinductor_<user>``), when torch has one."""
    try:
        from torch._inductor.runtime.runtime_utils import default_cache_dir
    except ImportError:  # pragma: no cover - older torch
        return None
    return default_cache_dir()


def enable_compile_cache(folder: Path | None = None) -> Path | None:
    """Switch on torch's AOTAutograd and FX-graph caches and point them at ``folder``.

    Call before the first ``torch.compile`` call runs (texkit's `Session.build` does). Idempotent.

    Args:
        folder: the cache folder; None uses `compile_cache_dir`.

    Returns:
        The folder the caches now use (a user's ``TORCHINDUCTOR_CACHE_DIR`` if set), or None when
        ``TEXKIT_COMPILE_CACHE=off`` or the folder cannot be created (torch's default stays).
    """
    global _ENABLED
    if os.environ.get("TEXKIT_COMPILE_CACHE", "").lower() in ("off", "0", "false", "no"):
        return None
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    user_dir = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if user_dir and user_dir != _torch_default_dir() and (_ENABLED is None or user_dir != str(_ENABLED)):
        target = Path(user_dir)  # the user chose where torch caches: keep it
    else:
        target = Path(folder) if folder is not None else compile_cache_dir()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(target)  # read by Inductor at each cache access
    inductor_config.fx_graph_cache = True
    if hasattr(functorch_config, "enable_autograd_cache"):
        functorch_config.enable_autograd_cache = True
    if graphsafe_rng_blocks_cache():
        functorch_config.graphsafe_rng_functionalization = False
    _ENABLED = target
    return target


def graphsafe_rng_blocks_cache() -> bool:
    """Whether this torch's CUDA-graph-safe RNG wrapper keeps compiled checkpointed graphs out of the cache.

    True when AOTAutograd would wrap recomputed random ops in ``graphsafe_run_with_rng_state``
    (``torch._functorch.config.graphsafe_rng_functionalization``), that operator is not cacheable,
    and the older wrappers it replaces are (torch 2.11; torch 2.13 marks all three cacheable).
    """
    try:
        import torch._functorch.config as functorch_config
        from torch._prims import rng_prims
    except ImportError:  # pragma: no cover - torch without functorch
        return False
    if not getattr(functorch_config, "graphsafe_rng_functionalization", False):
        return False
    wrappers = [getattr(rng_prims, name, None) for name in ("graphsafe_run_with_rng_state", "run_and_save_rng_state", "run_with_rng_state")]
    if any(op is None or not callable(getattr(op, "cacheable", None)) for op in wrappers):
        return False
    graphsafe, save, replay = wrappers
    return not graphsafe.cacheable() and save.cacheable() and replay.cacheable()


def active_cache_dir() -> Path | None:
    """The folder `enable_compile_cache` set up in this process (None before, or when it was off)."""
    return _ENABLED


@dataclass(frozen=True)
class CompileCacheCounts:
    """torch's compile-cache counters at one moment (this process, since it started).

    Attributes:
        aot_hits: AOTAutograd cache hits (one per traced graph, forward and backward together).
        aot_misses: AOTAutograd cache misses.
        aot_bypasses: graphs the AOTAutograd cache could not handle.
        fx_hits: Inductor FX-graph cache hits (one per forward or backward graph).
        fx_misses: Inductor FX-graph cache misses.
        fx_bypasses: graphs the FX-graph cache could not handle (compiled every time).
    """

    aot_hits: int = 0
    aot_misses: int = 0
    aot_bypasses: int = 0
    fx_hits: int = 0
    fx_misses: int = 0
    fx_bypasses: int = 0

    @property
    def hits(self) -> int:
        """Graphs loaded from the cache (an AOTAutograd hit loads its forward and backward graphs: FX-graph hits count them)."""
        return max(self.aot_hits, self.fx_hits)

    @property
    def misses(self) -> int:
        """Graphs compiled and stored for the next run."""
        return max(self.aot_misses, self.fx_misses)

    @property
    def bypasses(self) -> int:
        """Graphs compiled without the caches."""
        return self.aot_bypasses + self.fx_bypasses

    def __sub__(self, other: "CompileCacheCounts") -> "CompileCacheCounts":
        return CompileCacheCounts(*(a - b for a, b in zip(astuple(self), astuple(other))))

    def __add__(self, other: "CompileCacheCounts") -> "CompileCacheCounts":
        return CompileCacheCounts(*(a + b for a, b in zip(astuple(self), astuple(other))))

    def describe(self) -> str:
        """One phrase, e.g. ``"loaded from the compile cache (2 graphs)"`` or ``"compiled (3 graphs, now cached)"``."""
        if self.hits and not self.misses:
            return f"loaded from the compile cache ({self.hits} graph{'s' if self.hits != 1 else ''})"
        if self.misses and not self.hits:
            return f"compiled ({self.misses} graph{'s' if self.misses != 1 else ''}, now cached)"
        if self.hits or self.misses:
            return f"compile cache: {self.hits} hit(s), {self.misses} miss(es)"
        if self.bypasses:
            return f"compiled without the cache ({self.bypasses} graph(s) bypassed it)"
        return "no graph compiled"


def cache_counts() -> CompileCacheCounts:
    """torch's compile-cache counters now (``torch._dynamo.utils.counters``; zeros before any compile)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return CompileCacheCounts()
    aot, inductor = counters["aot_autograd"], counters["inductor"]
    return CompileCacheCounts(
        aot.get("autograd_cache_hit", 0),
        aot.get("autograd_cache_miss", 0),
        aot.get("autograd_cache_bypass", 0),
        inductor.get("fxgraph_cache_hit", 0),
        inductor.get("fxgraph_cache_miss", 0),
        inductor.get("fxgraph_cache_bypass", 0),
    )
