"""Attention backend chosen at run time: the fastest exact kernel per shape on this GPU, or a fixed one.

Every backend here computes exact softmax attention (no approximation); they differ in speed by
shape and GPU. Three choices (generator option ``attention``):

* ``"auto"`` (default): on CUDA, **tuned per shape** (`texkit_diffusers.attention_tuning`): the first time an
  attention shape ``(batch, heads, query length, key length, head dim, dtype)`` runs, each candidate
  kernel is timed on random inputs of that shape, forward and forward + backward, and the fastest
  runs from then on (the forward winner for calls without gradients, the forward + backward winner
  for training). Candidates: PyTorch SDPA's FlashAttention-2, cuDNN and memory-efficient kernels,
  and xformers' memory-efficient attention when its kernels load here. The timings are kept in the
  compile cache folder (`texkit.compile_cache`), so later runs on the machine reuse them (and make
  the same choices, which keeps their compiled graphs in the compile cache). On the CPU: PyTorch SDPA.
* ``"sdpa"``: PyTorch SDPA with torch's own kernel choice (no tuning).
* ``"xformers"``: xformers everywhere when its kernels run here, else SDPA with a warning.

xformers wheels are built against one torch version; on another, ``import xformers`` succeeds but
prints a multi-line warning and its CUDA operators are missing ("No operator found for
memory_efficient_attention_forward"). `import_xformers_quietly` (run when this package is imported,
before diffusers imports xformers) turns that warning into one line (`xformers_status`), which
``texkit doctor`` and the run record show; a tiny test call then decides whether xformers is a candidate.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from typing import Any

import torch

__all__ = [
    "import_xformers_quietly",
    "xformers_status",
    "xformers_available",
    "select_attention_backend",
    "last_attention_reason",
]

log = logging.getLogger("texkit.diffusers")

_LAST_REASON = ""
_XFORMERS_STATUS: str | None = None

def last_attention_reason() -> str:
    """Why the last `select_attention_backend` call chose what it chose (for run records)."""
    return _LAST_REASON


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def import_xformers_quietly() -> str:
    """Import xformers (when installed) with its import-time warnings caught; return `xformers_status`.

    An xformers built for another torch logs a multi-line ``WARNING[XFORMERS]`` on import, and
    diffusers imports xformers in every process that loads a model. Importing it here first, with
    the ``xformers`` logger and Python warnings captured, keeps that off the terminal; what it said
    is kept as one line. ``XFORMERS_MORE_DETAILS=1`` (xformers' own switch) lets the warning through.
    """
    global _XFORMERS_STATUS
    if _XFORMERS_STATUS is not None:
        return _XFORMERS_STATUS
    if importlib.util.find_spec("xformers") is None:
        _XFORMERS_STATUS = "xformers not installed"
        return _XFORMERS_STATUS
    if os.environ.get("XFORMERS_MORE_DETAILS") or "xformers" in sys.modules:
        import xformers

        _XFORMERS_STATUS = _describe_xformers(xformers, [])
        return _XFORMERS_STATUS
    logger = logging.getLogger("xformers")
    captured: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    handler, propagate = _Keep(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                import xformers
                import xformers.ops  # noqa: F401  (what diffusers imports; may warn too)
            except Exception as err:  # a broken install: say so in one line, never crash
                _XFORMERS_STATUS = f"xformers installed but does not import ({type(err).__name__}: {_one_line(err)[:200]})"
                return _XFORMERS_STATUS
        captured += [str(w.message) for w in caught]
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    _XFORMERS_STATUS = _describe_xformers(xformers, captured)
    return _XFORMERS_STATUS


def _describe_xformers(module: Any, messages: list[str]) -> str:
    """One line: the xformers version and whether its compiled kernels loaded (and what they were built for)."""
    version = getattr(module, "__version__", "?")
    if getattr(module, "_has_cpp_library", True):
        return f"xformers {version} installed, C++/CUDA extension loaded"
    cpp = getattr(module, "_cpp_lib", None)
    err = getattr(cpp, "_cpp_library_load_exception", None)
    info = getattr(err, "build_info", None)
    if info is not None:
        built = f"built for torch {info.torch_version}" + (f" / CUDA {info.cuda_version}" if info.cuda_version else "")
        return f"xformers {version} installed but its C++/CUDA kernels do not load ({built}; this is torch {torch.__version__})"
    said = _one_line(messages[0])[:160] if messages else "no reason given"
    return f"xformers {version} installed but its C++/CUDA kernels do not load ({said})"


def xformers_status() -> str:
    """One line on xformers here (not installed / loaded / installed but its kernels do not load, and why)."""
    return import_xformers_quietly()


def xformers_available(device: torch.device) -> tuple[bool, str]:
    """Whether xformers memory-efficient attention runs on ``device``; with the reason if not."""
    if device.type != "cuda":
        return False, "xformers kernels need a CUDA device"
    status = import_xformers_quietly()
    if "not installed" in status or "does not import" in status:
        return False, status
    try:
        import xformers.ops as xops
    except Exception as err:  # not installed, or built for another torch
        return False, f"xformers unavailable ({type(err).__name__}: {_one_line(err)[:200]})"
    try:
        with torch.enable_grad():  # training needs the backward kernel too
            q = torch.randn(1, 8, 1, 8, device=device, dtype=torch.float16, requires_grad=True)
            xops.memory_efficient_attention(q, q, q).float().sum().backward()
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return False, f"{status}; its kernels do not run here ({type(err).__name__}: {first[:160]})"
    return True, "ok"


def select_attention_backend(models: list[Any], device: torch.device, prefer: str = "auto") -> str:
    """Set the attention processors of diffusers ``models``; return ``"tuned"``, ``"xformers"`` or ``"sdpa"``.

    Args:
        models: UNet / ControlNet / VAE modules (anything with ``set_attn_processor``).
        device: where they run.
        prefer: ``"auto"`` (tuned per shape on CUDA, SDPA on the CPU), ``"xformers"`` (warns on
            fallback) or ``"sdpa"``.

    Returns:
        The backend that will run; `last_attention_reason` says why. For ``"tuned"`` the models'
        processors share one table (`texkit_diffusers.attention_tuning.attention_table`).

    Raises:
        ConfigError: ``prefer`` is not one of the three names.
    """
    global _LAST_REASON
    if prefer not in ("auto", "xformers", "sdpa"):
        from texkit import ConfigError

        raise ConfigError(f"generator attention '{prefer}' is not one of auto, xformers, sdpa")
    from diffusers.models.attention_processor import AttnProcessor2_0

    if prefer == "auto" and device.type == "cuda":
        from texkit_diffusers.attention_tuning import (
            SDPA_KERNELS,
            AttentionTable,
            TunedAttnProcessor,
            default_table_path,
        )

        ok, why_not = xformers_available(device)
        candidates = SDPA_KERNELS + (("xformers",) if ok else ())
        table = AttentionTable(device, candidates, path=default_table_path(device))
        processor = TunedAttnProcessor(table)
        for model in models:
            model.set_attn_processor(processor)
        _LAST_REASON = f"fastest of {', '.join(candidates)} per shape, timed on this GPU" + ("" if ok else f"; {why_not}")
        log.info("attention backend: tuned per shape (%s)", _LAST_REASON)
        return "tuned"
    if prefer == "xformers":
        ok, reason = xformers_available(device)
        if ok:
            try:
                for model in models:
                    model.enable_xformers_memory_efficient_attention()
                log.info("attention backend: xformers")
                _LAST_REASON = "xformers kernels ran a test call on this device"
                return "xformers"
            except Exception as err:
                reason = f"enabling xformers failed ({type(err).__name__}: {_one_line(err)[:200]})"
        log.warning("attention backend: sdpa (%s)", reason)
        _LAST_REASON = reason
    elif prefer == "auto":
        _LAST_REASON = "PyTorch SDPA (the CPU has no other exact kernels to choose from)"
        log.info("attention backend: sdpa (%s)", _LAST_REASON)
    else:
        log.info("attention backend: sdpa (requested)")
        _LAST_REASON = "sdpa requested (torch's own kernel choice)"
    for model in models:
        model.set_attn_processor(AttnProcessor2_0())
    return "sdpa"
