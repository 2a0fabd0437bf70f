"""Stable Diffusion + ControlNet generator for texkit (registered as ``tiny`` and ``stable-diffusion``)."""

from texkit_diffusers.attention import import_xformers_quietly

import_xformers_quietly()  # before diffusers imports xformers: its load warning becomes one line (texkit doctor)

from texkit_diffusers.generator import DiffusionGenerator, SamplerOptions  # noqa: E402

__all__ = ["DiffusionGenerator", "SamplerOptions"]
