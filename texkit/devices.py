"""Device names as a config writes them (``auto``, ``cpu``, ``cuda``, ``cuda:1``) -> ``torch.device``.

Its own module so that planning (``texkit train --dry-run``), the session and the commands resolve
devices the same way without importing each other.
"""

from __future__ import annotations

import torch

from texkit.errors import ConfigError, DeviceError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; any other name as torch spells it.

    Raises:
        ConfigError: a name torch does not know. DeviceError: CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device '{name}' is not a device name; use cpu, cuda, cuda:1 or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device '{name}' asked for, but no CUDA GPU is visible here; use device cpu (or auto)")
    return device
