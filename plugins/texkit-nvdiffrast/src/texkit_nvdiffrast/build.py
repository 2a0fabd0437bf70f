"""Building and importing nvdiffrast's CUDA extension.

nvdiffrast compiles its extension with ``torch.utils.cpp_extension.load`` on first use and then
imports it by name. Recent torch no longer leaves the built module importable by name, so the
import fails with ``ModuleNotFoundError: nvdiffrast_plugin_...`` although the build succeeded.
The fix measured on the GPU machine: put the extension's build folder on ``sys.path`` before the
first context is created. The build is cached under ``TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``) and reused by later runs.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import torch

from texkit import DeviceError

__all__ = ["plugin_name", "make_context"]


def plugin_name() -> str:
    """The module name nvdiffrast gives its CUDA extension for this nvdiffrast and torch."""
    import nvdiffrast

    name = f"nvdiffrast_plugin_{nvdiffrast.__version__}_torch{torch.__version__}"
    try:  # nvdiffrast's own rule, so the folder is the one it builds into
        from nvdiffrast.torch.ops import sanitize_name
    except ImportError:
        return re.sub(r"\W|^(?=\d)", "_", name)
    return sanitize_name(name)


def make_context(device: torch.device) -> Any:
    """A ``RasterizeCudaContext`` on ``device``, building the extension if needed.

    Raises:
        DeviceError: no CUDA, nvdiffrast missing, or the build failed (with the first line of why).
    """
    if not torch.cuda.is_available():
        raise DeviceError("renderer 'nvdiffrast' needs an NVIDIA GPU with CUDA; use renderer 'torch' on this machine")
    try:
        import nvdiffrast.torch as dr
        from torch.utils.cpp_extension import _get_build_directory
    except ImportError as err:
        raise DeviceError(f"nvdiffrast is not installed ({err}); pip install diffrp-nvdiffrast, or use renderer 'torch'") from None
    build_dir = _get_build_directory(plugin_name(), False)
    if build_dir not in sys.path:
        sys.path.insert(0, build_dir)
    try:
        return dr.RasterizeCudaContext(device=device)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DeviceError(
            f"nvdiffrast's CUDA extension could not be built or loaded ({type(err).__name__}: {first[:200]}); "
            "check that nvcc and ninja are installed and match torch's CUDA (`texkit doctor`), or use renderer 'torch'"
        ) from None
