"""Errors a user can cause. The CLI prints them in one line, without a traceback, and exits 2.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class TexkitError(Exception):
    """Base class of every error caused by user input (files, config, names, weights)."""


class MeshError(TexkitError):
    """A mesh file is missing, unreadable, empty or has invalid (NaN/inf) data."""


class ConfigError(TexkitError):
    """A run configuration is invalid: unknown key, wrong type, bad value."""


class PluginError(TexkitError):
    """A plugin is missing, broken, or two plugins claim the same name."""


class UnknownNameError(PluginError):
    """A reward, renderer or generator name that no installed plugin registers."""


class WeightsError(TexkitError):
    """Model weights were asked for but could not be found or loaded."""


class DeviceError(TexkitError):
    """The chosen device or backend cannot run here (no GPU, out of memory, missing kernel)."""


class RewardError(TexkitError):
    """A reward cannot be used the way it was asked for (e.g. a non-differentiable one in training)."""
